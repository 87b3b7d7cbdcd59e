"""`claimcoder eval FILE.jsonl`: score a coder against gold codes."""

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drg.codeset.catalog import shipped_catalog
from drg.registry import ReleasePeriod
from worker.cli.common import err, fail, load_settings, out
from worker.coders.base import Coder
from worker.coders.config import CoderKind
from worker.coders.exceptions import CoderUnavailableError, EngineStoppedError
from worker.coders.factory import build_coder
from worker.evaluation import Outcome, Report, run, score


def _read(path: Path, text_field: str, codes_field: str) -> tuple[list[str], list[list[str]]]:
    texts: list[str] = []
    codes: list[list[str]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            fail(f"{path}:{number}: not JSON")
        text, gold = record.get(text_field), record.get(codes_field)
        if not isinstance(text, str):
            fail(f"{path}:{number}: no string field {text_field!r}")
        if not isinstance(gold, list) or not all(isinstance(c, str) for c in gold):
            fail(f"{path}:{number}: no list of strings {codes_field!r}")
        texts.append(text)
        codes.append(gold)
    if not texts:
        fail(f"{path}: no documents")
    return texts, codes


def evaluate(
    file: Annotated[Path, typer.Argument(help="JSON Lines, one document a line.")],
    coder: Annotated[CoderKind, typer.Option(help="Coder to evaluate.")] = "retrieval",
    text_field: Annotated[str, typer.Option(help="Field with the narrative.")] = "text",
    codes_field: Annotated[str, typer.Option(help="Field with the gold codes.")] = "codes",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON here.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Claims a batch.")] = 32,
    discharge_date: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Code the documents as claims discharged on this date: its code-set release "
            "is the one coded and checked against [default: the newest release].",
        ),
    ] = None,
) -> None:
    """Micro, per-document and category F1, exact match, format compliance, hallucinated and
    non-billable code rates, and mean predicted vs gold codes of a coder on gold-coded text."""
    settings = load_settings()
    texts, gold = _read(file, text_field, codes_field)
    catalog = shipped_catalog()
    period = None
    if discharge_date is not None:
        period = catalog.registry.period_for(discharge_date.date())
        if period is None:
            fail(f"no release covers a discharge on {discharge_date.date()}")
    release = period.codeset_release if period else catalog.registry.newest_release
    try:
        engine = build_coder(
            coder, retrieval=settings.retrieval, vllm=settings.vllm, catalog=catalog
        )
        outcomes, elapsed = asyncio.run(_code(engine, texts, batch_size, period))
    except (CoderUnavailableError, EngineStoppedError) as exc:
        fail(str(exc))
    report = score(gold, outcomes, catalog.codeset(release).classify, elapsed)
    err.print(f"code set {release}")
    err.print(_table(report, engine.info.model))
    figures = json.dumps(report.to_dict(), indent=2)
    if json_out is not None:
        json_out.write_text(figures + "\n", encoding="utf-8")
        err.print(f"wrote {json_out}")
    else:
        out.print(figures)


async def _code(
    engine: Coder, texts: list[str], batch_size: int, period: ReleasePeriod | None
) -> tuple[list[Outcome], float]:
    async with engine:
        with Progress(
            TextColumn("coding"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("coding", total=len(texts))
            return await run(engine, texts, batch_size, lambda n: bar.advance(task, n), period)


def _table(report: Report, model: str) -> Table:
    table = Table(title=f"{report.n_docs} documents, {model}", title_justify="left")
    table.add_column("figure")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    table.add_column("F1", justify="right")
    r = report
    table.add_row("micro", f"{r.micro_precision:.3f}", f"{r.micro_recall:.3f}", f"{r.micro_f1:.3f}")
    table.add_row(
        "per document", f"{r.doc_precision:.3f}", f"{r.doc_recall:.3f}", f"{r.doc_f1:.3f}"
    )
    table.add_row("category (3 characters)", "", "", f"{r.category_f1:.3f}")
    for name, value in (
        ("exact match", f"{r.exact_match:.3f}"),
        ("format compliance", f"{r.format_compliance:.3f}"),
        ("hallucination rate", f"{r.hallucination_rate:.3f}"),
        ("non-billable rate", f"{r.non_billable_rate:.3f}"),
        ("mean predicted / gold codes", f"{r.mean_predicted:.2f} / {r.mean_gold:.2f}"),
        ("errors", str(r.errors)),
        ("docs/s", f"{r.docs_per_s:.1f}"),
    ):
        table.add_row(name, "", "", value)
    return table
