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
from drg.conventions.apply import Conventions, conventions_for
from drg.grouping import GroupingEngine
from drg.registry import ReleasePeriod
from worker.cli.common import err, fail, load_settings, out
from worker.coders.base import Coder
from worker.coders.config import CoderKind
from worker.coders.exceptions import CoderUnavailableError, EngineStoppedError
from worker.coders.factory import build_coder
from worker.evaluation import Outcome, Patient, Report, drg_agreement, run, score


def _read(
    path: Path, text_field: str, codes_field: str, age_field: str | None, sex_field: str | None
) -> tuple[list[str], list[list[str]], list[Patient | None]]:
    texts: list[str] = []
    codes: list[list[str]] = []
    patients: list[Patient | None] = []
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
        age = record.get(age_field) if age_field else None
        sex = record.get(sex_field) if sex_field else None
        if age is None or sex is None:
            patients.append(None)
        elif isinstance(age, int) and 0 <= age <= 124 and sex in ("M", "F", "U"):
            patients.append(Patient(age, sex))
        else:
            fail(f"{path}:{number}: {age_field!r} must be 0-124 and {sex_field!r} M, F or U")
    if not texts:
        fail(f"{path}: no documents")
    return texts, codes, patients


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
            "and MS-DRG version are the ones used (default: the newest period).",
        ),
    ] = None,
    conventions: Annotated[
        bool,
        typer.Option(help="Score the codes after ICD-10-CM's conventions, as the pipeline bills."),
    ] = True,
    principal_first: Annotated[
        bool,
        typer.Option(help="The gold lists are ordered, principal diagnosis first."),
    ] = False,
    age_field: Annotated[
        str | None, typer.Option(help="Field with the age (with --principal-first: DRGs).")
    ] = None,
    sex_field: Annotated[str | None, typer.Option(help="Field with the sex, M/F/U.")] = None,
) -> None:
    """Micro, per-document and category F1, exact match, format compliance, hallucinated and
    non-billable code rates, mean predicted vs gold codes and, for ordered gold lists, principal
    accuracy and MS-DRG agreement of a coder on gold-coded text."""
    settings = load_settings()
    texts, gold, patients = _read(file, text_field, codes_field, age_field, sex_field)
    catalog = shipped_catalog()
    period = catalog.registry.periods[-1]
    if discharge_date is not None:
        found = catalog.registry.period_for(discharge_date.date())
        if found is None:
            fail(f"no release covers a discharge on {discharge_date.date()}")
        period = found
    release = period.codeset_release
    codeset = catalog.codeset(release)
    rules = conventions_for(catalog, release) if conventions else None
    try:
        engine = build_coder(
            coder, retrieval=settings.retrieval, vllm=settings.vllm, catalog=catalog
        )
        outcomes, elapsed = asyncio.run(_code(engine, texts, batch_size, period, rules))
    except (CoderUnavailableError, EngineStoppedError) as exc:
        fail(str(exc))
    agreement = None
    if principal_first and any(p is not None for p in patients):
        with GroupingEngine() as grouper:
            agreement = drg_agreement(
                gold,
                outcomes,
                patients,
                grouper,
                codeset.is_billable,
                period.start,
                period.msdrg_version,
            )
    report = score(
        gold,
        outcomes,
        codeset.classify,
        elapsed,
        principal_first=principal_first,
        drg_agreement=agreement,
    )
    err.print(f"code set {release}")
    err.print(_table(report, engine.info.model))
    figures = json.dumps(report.to_dict(), indent=2)
    if json_out is not None:
        json_out.write_text(figures + "\n", encoding="utf-8")
        err.print(f"wrote {json_out}")
    else:
        out.print(figures)


async def _code(
    engine: Coder,
    texts: list[str],
    batch_size: int,
    period: ReleasePeriod | None,
    rules: Conventions | None,
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
            return await run(
                engine, texts, batch_size, lambda n: bar.advance(task, n), period, rules
            )


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
        ("principal accuracy", _maybe(r.principal_accuracy)),
        ("MS-DRG agreement", _maybe(r.drg_agreement)),
        ("errors", str(r.errors)),
        ("docs/s", f"{r.docs_per_s:.1f}"),
    ):
        table.add_row(name, "", "", value)
    return table


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
