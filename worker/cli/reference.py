"""Reference data and checks: `claimcoder db`, `codeset`, `providers` and `estimate`."""

import asyncio
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from psycopg.errors import UndefinedTable
from redis.exceptions import RedisError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from drg.assess import AssessmentInput, Assessor
from drg.codeset.cache import CodesetKeys, redis_status, warm
from drg.codeset.catalog import CodesetCatalog, shipped_catalog
from drg.codeset.store import all_releases, counted, load_release
from drg.loader import CmsFile, LoadRequest
from drg.loader import load as load_fiscal_year
from drg.reference import load_providers, read_providers, registry_from, seed
from drg.registry import CodesetSource, ReleaseRegistry
from migrations.runner import current_revision, downgrade, head_revision, upgrade
from schemas.exceptions import ClaimcoderError
from schemas.raw import MAX_PROCEDURE_CODES
from worker.cli.common import REFERENCE_HINT, err, fail, load_settings, out, run_checked
from worker.resources import async_engine, redis_client, sync_engine
from worker.settings import Settings

db_app = typer.Typer(help="PostgreSQL schema and reference data.", no_args_is_help=True)
codeset_app = typer.Typer(help="The ICD-10-CM code set.", no_args_is_help=True)
providers_app = typer.Typer(help="Provider wage indexes.", no_args_is_help=True)
reference_app = typer.Typer(
    help="Fiscal years from CMS's own files (the release registry's loaded part).",
    no_args_is_help=True,
)

_HINT = REFERENCE_HINT


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = sync_engine(settings.database)
    try:
        yield engine
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        hint = "; run claimcoder db upgrade" if isinstance(cause, UndefinedTable) else ""
        fail(f"PostgreSQL: {type(exc).__name__}: {(str(cause).splitlines() or [''])[0]}{hint}")
    except ClaimcoderError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


def _print_json(value: Any) -> None:
    out.print(json.dumps(value, ensure_ascii=False, default=str), markup=False, highlight=False)


# --- db ----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or update the tables (Alembic), in the configured schema."""
    settings = load_settings()
    schema = settings.database.schema_name
    with _engine(settings) as engine:
        upgrade(engine, schema, revision)
        err.print(f"schema {schema or 'public'} at revision {current_revision(engine, schema)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Option(help="Target revision; base drops every table.")] = "-1",
) -> None:
    """Step the schema back (one revision by default)."""
    settings = load_settings()
    schema = settings.database.schema_name
    with _engine(settings) as engine:
        downgrade(engine, schema, revision)
        now = current_revision(engine, schema)
        err.print(
            f"schema {schema or 'public'} at revision {now or 'base'} (head {head_revision()})"
        )


@db_app.command("seed")
def db_seed() -> None:
    """Load the MS-DRG weights (Table 5) and IPPS rates of every fiscal year shipped in
    drg/data (those an operator loaded with `claimcoder reference load` are left as loaded)."""
    settings = load_settings()
    with _engine(settings) as engine:
        result = seed(engine)
    for year, rows in result.drg_weights.items():
        err.print(f"drg_weights: FY{year}: {rows} DRGs")
    err.print(f"ipps_rates: FY{', FY'.join(str(y) for y in result.ipps_rates)}")
    for year in result.skipped:
        err.print(f"FY{year}: kept as loaded by claimcoder reference load")


# --- codeset -----------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<30}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _advance(progress: Progress, task: Any) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return update


def _registry(engine: Engine) -> ReleaseRegistry:
    with engine.connect() as connection:
        return registry_from(connection)


@codeset_app.command("load")
def codeset_load(
    release: Annotated[
        str | None, typer.Option(help="One release of the registry (default: every release).")
    ] = None,
    force_redis: Annotated[
        bool, typer.Option(help="Rebuild the Redis copy even when it is complete.")
    ] = False,
) -> None:
    """Build each code-set release of the registry (FY2026 from simple-icd-10-cm, FY2027 from
    it plus the shipped FY2027 changes), write it to PostgreSQL (COPY), then warm Redis under a
    new generation and swap the current pointer. A second run is a no-op."""
    settings = load_settings()
    with _engine(settings) as engine:
        registry = _registry(engine)
        wanted = [release] if release else list(registry.codeset_releases)
        catalog = shipped_catalog()
        for name in wanted:
            _load_one(settings, engine, registry.codeset(name), catalog, force_redis)


def _load_one(
    settings: Settings,
    engine: Engine,
    source: CodesetSource,
    catalog: CodesetCatalog,
    force_redis: bool,
) -> None:
    release = source.release
    with _progress() as progress:
        parse = progress.add_task(f"{release}: build code set", total=None)
        copy = progress.add_task(f"{release}: PostgreSQL COPY", total=None)

        def parsed(n: int) -> None:
            progress.update(parse, completed=n, total=n)

        result = load_release(engine, source, catalog, _advance(progress, copy), parsed)
        if not result.loaded:
            progress.update(parse, completed=0, total=0, description=f"{release}: (in PostgreSQL)")
            progress.update(
                copy,
                completed=result.info.code_count,
                total=result.info.code_count,
                description=f"{release}: PostgreSQL (present)",
            )
        redis_task = progress.add_task(f"{release}: Redis warm", total=result.info.code_count)
        warmed = asyncio.run(_warm(settings, release, force_redis, _advance(progress, redis_task)))
        if not warmed.warmed:
            progress.update(
                redis_task,
                completed=warmed.status.code_count,
                description=f"{release}: Redis (present)",
            )
    info = result.info
    verb = "loaded" if result.loaded or warmed.warmed else "already loaded (no-op)"
    err.print(
        f"code set {info.release} (FY{info.fiscal_year}) {verb}: {info.code_count} codes, "
        f"{info.billable_count} billable; Redis generation {warmed.status.generation}"
    )


async def _warm(
    settings: Settings, release: str, force: bool, progress: Callable[[int, int], None]
) -> Any:
    client = redis_client(settings.redis)
    engine = async_engine(settings.database)
    try:
        return await warm(
            client,
            engine,
            CodesetKeys(settings.redis.key_prefix),
            release,
            force=force,
            progress=progress,
        )
    except RedisError as exc:
        fail(f"Redis: {type(exc).__name__}")
    finally:
        await client.aclose()
        await engine.dispose()


async def _redis_sides(settings: Settings, releases: list[str]) -> dict[str, dict[str, Any] | None]:
    client = redis_client(settings.redis)
    keys = CodesetKeys(settings.redis.key_prefix)
    sides: dict[str, dict[str, Any] | None] = {}
    try:
        for release in releases:
            status = await redis_status(client, keys, release)
            sides[release] = (
                None
                if status is None
                else {
                    "generation": status.generation,
                    "codes": status.code_count,
                    "billable": status.billable_count,
                }
            )
    except RedisError as exc:
        fail(f"Redis: {type(exc).__name__}")
    finally:
        await client.aclose()
    return sides


@codeset_app.command("status")
def codeset_status(
    release: Annotated[
        str | None, typer.Option(help="Only this release (default: every release).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every code-set release of the registry (and any other PostgreSQL holds): its fiscal year,
    periods, and code and billable counts in PostgreSQL and in Redis."""
    settings = load_settings()
    with _engine(settings) as engine, engine.connect() as connection:
        registry = registry_from(connection)
        stored = {info.release: info for info in all_releases(connection)}
        names = list(dict.fromkeys([*registry.codeset_releases, *stored]))
        if release is not None:
            names = [release]
        rows: list[dict[str, Any]] = []
        for name in names:
            info = stored.get(name)
            postgres = None
            if info is not None:
                codes, billable = counted(connection, name)
                postgres = {
                    "codes": codes,
                    "billable": billable,
                    "loaded_at": info.loaded_at.isoformat(),
                    "source": info.source,
                }
            periods = [p for p in registry.periods if p.codeset_release == name]
            fiscal_year = (
                periods[0].fiscal_year if periods else (info.fiscal_year if info else None)
            )
            rows.append(
                {
                    "release": name,
                    "fiscal_year": fiscal_year,
                    "in_registry": name in registry.codeset_releases,
                    "periods": [
                        {
                            "start": p.start.isoformat(),
                            "end": p.end.isoformat(),
                            "msdrg_version": p.msdrg_version,
                        }
                        for p in periods
                    ],
                    "postgres": postgres,
                }
            )
    redis_sides = asyncio.run(_redis_sides(settings, names))
    for row in rows:
        redis_side = redis_sides[row["release"]]
        postgres = row["postgres"]
        row["redis"] = redis_side
        row["in_sync"] = (
            postgres is not None
            and redis_side is not None
            and (postgres["codes"], postgres["billable"])
            == (redis_side["codes"], redis_side["billable"])
        )
    registry_rows = [r for r in rows if r["in_registry"]]
    status = {
        "releases": rows,
        "ready": bool(registry_rows) and all(r["in_sync"] for r in registry_rows),
    }
    if as_json:
        _print_json(status)
        return
    if not rows:
        err.print("no code set: run claimcoder codeset load")
        return
    for row in rows:
        head = f"{row['release']} (FY{row['fiscal_year']})"
        spans = ", ".join(f"{p['start']}..{p['end']} v{p['msdrg_version']}" for p in row["periods"])
        err.print(f"{head}: {spans or 'not in the registry'}")
        for side in ("postgres", "redis"):
            values = row[side]
            label = "PostgreSQL" if side == "postgres" else "Redis"
            if values is None:
                err.print(f"  {label}: not loaded")
            else:
                err.print(f"  {label}: {values['codes']} codes, {values['billable']} billable")


# --- reference load ------------------------------------------------------------------------


def _period(value: str) -> tuple[dt.date, dt.date, int]:
    """START,END,VERSION (commas; colons are taken too)."""
    parts = value.replace(":", ",").split(",")
    try:
        start, end, version = (p.strip() for p in parts)
        return dt.date.fromisoformat(start), dt.date.fromisoformat(end), int(version)
    except ValueError:
        fail(f"--period {value!r}: expected START,END,VERSION, e.g. 2027-10-01,2028-03-31,450")


_DOLLARS = re.compile(r"\$?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]{1,2})?")


def _money(option: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    text = value.strip()
    if not _DOLLARS.fullmatch(text):
        fail(f"{option} is not an amount in dollars, e.g. 46217 or $46,217.00")
    try:
        amount = Decimal(text.replace(",", "").lstrip("$"))
    except InvalidOperation:
        fail(f"{option} is not an amount in dollars")
    if not amount.is_finite() or amount <= 0:
        fail(f"{option} must be positive")
    return amount


@reference_app.command("load")
def reference_load(
    fiscal_year: Annotated[int, typer.Option(min=2000, max=2100, help="e.g. 2028.")],
    order: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="ICD-10-CM order file icd10cm_order_YYYY.txt, or CMS's zip holding it.",
        ),
    ],
    table5: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="IPPS Table 5 text file, or the zip holding it."
        ),
    ],
    rates: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="IPPS 'Tables 1A-1E' text file, or the zip holding it.",
        ),
    ],
    order_sha256: Annotated[str | None, typer.Option(help="SHA-256 the file must have.")] = None,
    table5_sha256: Annotated[str | None, typer.Option(help="SHA-256 the file must have.")] = None,
    rates_sha256: Annotated[str | None, typer.Option(help="SHA-256 the file must have.")] = None,
    outlier_fixed_loss: Annotated[
        str | None,
        typer.Option(help="Outlier fixed-loss threshold of the final rule, in dollars."),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(help="Name of the code-set release (default: YYYY-10, its start)."),
    ] = None,
    period: Annotated[
        list[str] | None,
        typer.Option(
            help="START,END,MSDRG_VERSION, repeatable (default: the whole fiscal year with "
            "version (year - 1983) x 10; it must end where msdrg's code editor ends)."
        ),
    ] = None,
) -> None:
    """Add (or replace) a fiscal year from CMS's files: code set, Table 5 and rates, checked in
    full before one transaction writes them, then the code set warmed in Redis. Restart the
    workers afterwards: they read the registry when they start."""
    settings = load_settings()
    if not re.fullmatch(r"[0-9A-Za-z._-]{1,16}", release or "x"):
        fail("--release: 1-16 letters, digits, '.', '_' or '-'")
    request = LoadRequest(
        fiscal_year=fiscal_year,
        order_file=CmsFile(order, order_sha256),
        table5=CmsFile(table5, table5_sha256),
        rates=CmsFile(rates, rates_sha256),
        outlier_fixed_loss=_money("--outlier-fixed-loss", outlier_fixed_loss),
        release=release,
        periods=tuple(_period(p) for p in period or ()),
    )
    with _engine(settings) as engine:
        err.print(f"FY{fiscal_year}: reading and checking the files ...")
        result = load_fiscal_year(engine, request)
    err.print(
        f"FY{result.fiscal_year}: code set {result.release} "
        f"({'written' if result.codeset_written else 'already in PostgreSQL'}): "
        f"{result.codes} codes, {result.billable} billable; Table 5: {result.drgs} DRGs; "
        "rates loaded"
    )
    for start, end, version in result.periods:
        err.print(f"  discharges {start}..{end}: MS-DRG v{version}")
    if result.replaced_shipped:
        err.print(f"FY{result.fiscal_year} now uses these files instead of those shipped")
    with _progress() as progress:
        task = progress.add_task(f"{result.release}: Redis warm", total=result.codes)
        asyncio.run(_warm(settings, result.release, False, _advance(progress, task)))
    err.print("restart the workers to pick the fiscal year up")


# --- providers ---------------------------------------------------------------------------


@providers_app.command("load")
def providers_load(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV: provider_id,name,wage_index,fiscal_year"
        ),
    ],
) -> None:
    """Load (upsert) provider wage indexes. Claims of an unknown or absent provider are priced
    at the national rate (wage index 1.0)."""
    settings = load_settings()
    with _engine(settings) as engine:
        rows = read_providers(file)
        written = load_providers(engine, rows)
    err.print(f"providers: {written} rows loaded from {file.name}")


# --- estimate ----------------------------------------------------------------------------


def _split(values: list[str] | None) -> list[str]:
    return [v for value in values or () for v in value.split(",") if v.strip()]


def estimate(
    pdx: Annotated[str, typer.Option(help="Principal diagnosis as the coder wrote it.")],
    age: Annotated[int, typer.Option(min=0, max=124, help="Age in years.")],
    sex: Annotated[Literal["M", "F", "U"], typer.Option(help="M, F or U.")],
    discharge_date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD.")],
    sdx: Annotated[
        list[str] | None,
        typer.Option(help="Secondary diagnosis; repeat the option or separate with commas."),
    ] = None,
    procedure: Annotated[
        list[str] | None,
        typer.Option(
            help="ICD-10-PCS procedure code of the claim, principal procedure first; repeat the "
            "option or separate with commas (at most 25)."
        ),
    ] = None,
    discharge_status: Annotated[
        int, typer.Option(help="UB-04 patient discharge status; 2, 3, 6, 62 ... are transfers.")
    ] = 1,
    admission_date: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="YYYY-MM-DD; the length of stay of a transfer's per diem."
        ),
    ] = None,
    provider_id: Annotated[str | None, typer.Option(help="CCN of the hospital.")] = None,
    wage_index: Annotated[
        str | None, typer.Option(help="Wage index override, e.g. 1.0369.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate, group and price one claim the way the pipeline does (claims.coded fields)."""
    settings = load_settings()
    if not pdx.strip():
        fail("--pdx is empty")
    admitted = admission_date.date() if admission_date is not None else None
    if admitted is not None and admitted > discharge_date.date():
        fail("--admission-date is after --discharge-date")
    procedures = tuple(p.strip() for p in _split(procedure))
    if len(procedures) > MAX_PROCEDURE_CODES:
        fail(f"--procedure: at most {MAX_PROCEDURE_CODES} procedure codes")
    override = None
    if wage_index is not None:
        try:
            override = Decimal(wage_index)
        except InvalidOperation:
            fail("--wage-index is not a number")
        if not override.is_finite() or not Decimal("0") < override < Decimal("100"):
            fail("--wage-index must be above 0 and below 100")
    item = AssessmentInput(
        claim_id="cli",
        codes=(pdx, *_split(sdx)),
        age=age,
        sex=sex,
        discharge_date=discharge_date.date(),
        discharge_status=discharge_status,
        admission_date=admitted,
        provider_id=provider_id.strip().upper() if provider_id else None,
        wage_index=override,
        check_conventions=True,  # a person's codes: flag convention breaks, never fix them
        procedure_codes=procedures,
    )
    fields = run_checked(_assess(settings, item))
    if as_json:
        _print_json(fields)
        return
    _print_human(fields)


async def _assess(settings: Settings, item: AssessmentInput) -> dict[str, Any]:
    client = redis_client(settings.redis)
    engine = async_engine(settings.database)
    assessor = Assessor(redis=client, engine=engine, key_prefix=settings.redis.key_prefix)
    try:
        (assessment,) = await assessor.assess_batch([item])
        return assessment.coded_fields()
    finally:
        assessor.close()
        await client.aclose()
        await engine.dispose()


def _print_human(fields: dict[str, Any]) -> None:
    if fields["fiscal_year"] is None:
        out.print(f"status: {fields['status']}  (no release covers the discharge date)")
    else:
        out.print(
            f"status: {fields['status']}  (FY{fields['fiscal_year']}, code set "
            f"{fields['codeset_release'] or '-'}, MS-DRG v{fields['msdrg_version']})"
        )
    for code in fields["codes"]:
        out.print(f"  {code['role']:<9} {code['code']:<9} {code['description']}", markup=False)
    for procedure in fields["procedure_codes"]:
        out.print(f"  procedure {procedure}", markup=False)
    for rejected in fields["rejected_codes"]:
        out.print(f"  rejected  {rejected['raw']:<9} {rejected['reason']}", markup=False)
    drg = fields["drg"]
    if drg:
        out.print(
            f"DRG {drg['code']} (v{drg['version']}, {drg['return_code']}): {drg['title']}, "
            f"weight {drg['relative_weight']}",
            markup=False,
        )
    est = fields["estimate"]
    if est:
        out.print(
            f"estimate FY{est['fiscal_year']}: operating {est['operating']} + capital "
            f"{est['capital']} = {est['total']} (wage index {est['wage_index']}, "
            f"{est['wage_index_basis']})"
        )
        transfer = est.get("transfer")
        if transfer:
            out.print(
                f"  transfer ({transfer['rule']}, status {transfer['discharge_status']}): "
                f"{transfer['length_of_stay']} day(s) against GMLOS {transfer['gmlos']}; full "
                f"payment {transfer['full_operating']} + {transfer['full_capital']}, adjustment "
                f"{transfer['adjustment']} (42 CFR 412.4(f))"
            )
        if est.get("upper_bound"):
            out.print("  upper bound: a transfer without an admission date is priced in full")
        out.print(f"  not included: {', '.join(est['not_included'])}")
    if fields["review_reasons"]:
        out.print(f"review: {', '.join(fields['review_reasons'])}", markup=False)
