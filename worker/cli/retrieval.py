"""`claimcoder retrieval learn`: learn the retrieval coder's evidence from coded narratives.

The packaged artifact is rebuilt from CodiEsp train (../shared/data/codiesp/) with

    claimcoder retrieval learn train.jsonl --text-field text_en \\
        --codes-field codes_billable_fy2026 --release 2026-04 --name codiesp-train \\
        --credit "CodiEsp / CLEF eHealth 2020, BSC TeMU (CC BY 4.0)" \\
        --out worker/coders/retrieval/data/codiesp-train.json.gz
"""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from drg.codeset.catalog import shipped_catalog
from schemas.exceptions import ClaimcoderError
from worker.cli.common import err, fail, load_settings, out
from worker.coders.retrieval.evidence import LearnParams, save
from worker.coders.retrieval.index import index_for
from worker.coders.retrieval.learn import learn as learn_evidence
from worker.coders.retrieval.learn import read_jsonl

app = typer.Typer(help="The embedded retrieval coder.", no_args_is_help=True)


@app.command()
def learn(
    file: Annotated[Path, typer.Argument(help="JSON Lines with narratives and gold codes.")],
    out_path: Annotated[Path, typer.Option("--out", help="Artifact to write (.json.gz).")],
    text_field: Annotated[str, typer.Option(help="Field with the narrative.")] = "text",
    codes_field: Annotated[str, typer.Option(help="Field with the gold codes.")] = "codes",
    name: Annotated[str | None, typer.Option(help="Artifact name (default: file stem).")] = None,
    credit: Annotated[
        str | None, typer.Option(help="Attribution of the documents, kept in the artifact.")
    ] = None,
    min_pair_docs: Annotated[int, typer.Option(min=1)] = LearnParams().min_pair_docs,
    folds: Annotated[int, typer.Option(min=2, help="Folds for the scorer's weights.")] = 5,
    release: Annotated[
        str | None,
        typer.Option(help="Code-set release the gold codes are in (default: the newest)."),
    ] = None,
) -> None:
    """Count phrase-to-code evidence, fit the scorer and choose its threshold out of fold;
    point CLAIMCODER_RETRIEVAL_ARTIFACT at the result to use it."""
    settings = load_settings()
    try:
        docs = read_jsonl(file, text_field, codes_field)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {file}: {exc}")
    if not docs:
        fail(f"{file}: no documents")
    catalog = shipped_catalog()
    try:
        index = index_for(catalog.codeset(release or catalog.registry.newest_release))
    except ClaimcoderError as exc:
        fail(str(exc))
    with Progress(
        TextColumn("reading"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("reading", total=len(docs))
        evidence, report = learn_evidence(
            name or file.name.split(".")[0],
            docs,
            index,
            top_k=settings.retrieval.top_k,
            max_codes=settings.retrieval.max_codes,
            params=LearnParams(min_pair_docs=min_pair_docs),
            folds=folds,
            credit=credit,
            progress=lambda n: bar.update(task, completed=n),
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save(evidence, out_path)
    err.print(f"wrote {out_path}")
    out.print_json(json.dumps(asdict(report)))
