"""Reference data and checks: `claimcoder db`, `codeset`, `providers` and `estimate`."""

import asyncio
import datetime as dt
import json
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
from drg.codeset.source import packaged_release
from drg.codeset.store import counted, latest_release, load_release, release_info
from drg.reference import load_providers, read_providers, seed
from migrations.runner import current_revision, downgrade, head_revision, upgrade
from schemas.exceptions import ClaimcoderError
from worker.cli.common import REFERENCE_HINT, err, fail, load_settings, out, run_checked
from worker.resources import async_engine, redis_client, sync_engine
from worker.settings import Settings

db_app = typer.Typer(help="PostgreSQL schema and reference data.", no_args_is_help=True)
codeset_app = typer.Typer(help="The ICD-10-CM code set.", no_args_is_help=True)
providers_app = typer.Typer(help="Provider wage indexes.", no_args_is_help=True)

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
    """Load the FY2026 MS-DRG weights (Table 5) and IPPS rates shipped in drg/data."""
    settings = load_settings()
    with _engine(settings) as engine:
        result = seed(engine)
    for year, rows in result.drg_weights.items():
        err.print(f"drg_weights: FY{year}: {rows} DRGs")
    err.print(f"ipps_rates: FY{', FY'.join(str(y) for y in result.ipps_rates)}")


# --- codeset -----------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
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


@codeset_app.command("load")
def codeset_load(
    release: Annotated[str, typer.Option(help="Release packaged in simple-icd-10-cm.")] = "2026-04",
    force_redis: Annotated[
        bool, typer.Option(help="Rebuild the Redis copy even when it is complete.")
    ] = False,
) -> None:
    """Read the code list and tabular XML, write the release to PostgreSQL (COPY), then warm
    Redis under a new generation and swap the current pointer. A second run is a no-op."""
    settings = load_settings()
    try:
        files = packaged_release(release)
    except ClaimcoderError as exc:
        fail(str(exc))
    with _engine(settings) as engine, _progress() as progress:
        parse = progress.add_task("parse code list + XML", total=None)
        copy = progress.add_task("PostgreSQL COPY", total=None)

        def parsed(n: int) -> None:
            progress.update(parse, completed=n, total=n)

        result = load_release(engine, files, _advance(progress, copy), parsed)
        if not result.loaded:
            progress.update(parse, completed=0, total=0, description="parse (skipped)")
            progress.update(
                copy,
                completed=result.info.code_count,
                total=result.info.code_count,
                description="PostgreSQL (present)",
            )
        redis_task = progress.add_task("Redis warm", total=result.info.code_count)
        warmed = asyncio.run(_warm(settings, release, force_redis, _advance(progress, redis_task)))
        if not warmed.warmed:
            progress.update(
                redis_task, completed=warmed.status.code_count, description="Redis (present)"
            )
    info = result.info
    verb = "loaded" if result.loaded or warmed.warmed else "already loaded (no-op)"
    err.print(
        f"code set {info.release} {verb}: {info.code_count} codes, {info.billable_count} "
        f"billable; Redis generation {warmed.status.generation}"
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


async def _redis_side(settings: Settings, release: str) -> dict[str, Any] | None:
    client = redis_client(settings.redis)
    try:
        status = await redis_status(client, CodesetKeys(settings.redis.key_prefix), release)
    except RedisError as exc:
        fail(f"Redis: {type(exc).__name__}")
    finally:
        await client.aclose()
    if status is None:
        return None
    return {
        "release": status.release,
        "generation": status.generation,
        "codes": status.code_count,
        "billable": status.billable_count,
    }


@codeset_app.command("status")
def codeset_status(
    release: Annotated[
        str | None, typer.Option(help="Release to show [default: the newest in PostgreSQL].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The current release and its code and billable counts in PostgreSQL and in Redis."""
    settings = load_settings()
    with _engine(settings) as engine, engine.connect() as connection:
        info = release_info(connection, release) if release else latest_release(connection)
        name = release or (info.release if info else None)
        postgres = None
        if info is not None:
            codes, billable = counted(connection, info.release)
            postgres = {
                "release": info.release,
                "fiscal_year": info.fiscal_year,
                "codes": codes,
                "billable": billable,
                "loaded_at": info.loaded_at.isoformat(),
                "source": info.source,
            }
    redis_side = asyncio.run(_redis_side(settings, name)) if name else None
    in_sync = (
        postgres is not None
        and redis_side is not None
        and (postgres["codes"], postgres["billable"])
        == (redis_side["codes"], redis_side["billable"])
    )
    status = {"release": name, "postgres": postgres, "redis": redis_side, "in_sync": in_sync}
    if as_json:
        _print_json(status)
        return
    if name is None:
        err.print("no code set loaded: run claimcoder codeset load")
        return
    for side, values in (("PostgreSQL", postgres), ("Redis", redis_side)):
        if values is None:
            err.print(f"{side}: {name} not loaded")
        else:
            err.print(f"{side}: {name}: {values['codes']} codes, {values['billable']} billable")


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
    discharge_status: Annotated[int, typer.Option(help="UB-04 discharge status.")] = 1,
    provider_id: Annotated[str | None, typer.Option(help="CCN of the hospital.")] = None,
    wage_index: Annotated[
        str | None, typer.Option(help="Wage index override, e.g. 1.0369.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate, group and price one claim the way the pipeline does (claims.coded fields)."""
    settings = load_settings()
    override = None
    if wage_index is not None:
        try:
            override = Decimal(wage_index)
        except InvalidOperation:
            fail("--wage-index is not a number")
        if not override.is_finite() or override <= 0:
            fail("--wage-index must be positive")
    item = AssessmentInput(
        claim_id="cli",
        codes=(pdx, *_split(sdx)),
        age=age,
        sex=sex,
        discharge_date=discharge_date.date(),
        discharge_status=discharge_status,
        provider_id=provider_id.strip().upper() if provider_id else None,
        wage_index=override,
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
    out.print(f"status: {fields['status']}  (code set {fields['codeset_release'] or '-'})")
    for code in fields["codes"]:
        out.print(f"  {code['role']:<9} {code['code']:<9} {code['description']}", markup=False)
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
    if fields["review_reasons"]:
        out.print(f"review: {', '.join(fields['review_reasons'])}", markup=False)
