"""`claimcoder dlq replay`: dead letters back to claims.raw once their cause is fixed (logic in
``worker/replay.py``)."""

import asyncio
import datetime as dt
import json
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from worker.cli.common import err, fail, load_settings, out
from worker.replay import Letter, ReplayError, ReplayFilter, Unreadable, replay

app = typer.Typer(help="The dead-letter topic.", no_args_is_help=True)


def _moment(value: str | None) -> dt.datetime | None:
    """ISO 8601 date or date-time; without a time zone it is UTC."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "expected ISO 8601, e.g. 2026-11-30 or 2026-11-30T05:00:00+00:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@app.command(name="replay")
def replay_command(
    reason: Annotated[
        list[str] | None,
        typer.Option("--reason", help="Only letters of this error.type (repeatable)."),
    ] = None,
    stage: Annotated[
        list[str] | None,
        typer.Option("--stage", help="Only letters of this error.stage (repeatable)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only letters that failed at or after this ISO 8601 time (UTC if bare)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Only letters that failed before this ISO 8601 time (UTC if bare)."),
    ] = None,
    from_offset: Annotated[
        int | None, typer.Option(min=0, help="First dlq offset to read (in every partition read).")
    ] = None,
    to_offset: Annotated[
        int | None, typer.Option(min=0, help="Last dlq offset to read, inclusive.")
    ] = None,
    partition: Annotated[
        int | None, typer.Option(min=0, help="Read this dlq partition only.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print what would be replayed; publish and record nothing.")
    ] = False,
) -> None:
    """Re-publish dead letters to claims.raw with their original key, value and headers, once
    their cause is fixed. Reads the dlq up to its end offsets at start, skips letters an earlier
    run replayed (recorded in PostgreSQL) and prints one JSON line per letter (claim_id, reason,
    stage, partition, offset, failed_at; never the claim) and a summary. Exit code 1 when a dlq
    record is no dead letter (it is left alone), 2 on an error."""
    settings = load_settings()
    try:
        selection = ReplayFilter(
            reasons=frozenset(reason or ()),
            stages=frozenset(stage or ()),
            since=_moment(since),
            until=_moment(until),
            from_offset=from_offset,
            to_offset=to_offset,
            partition=partition,
        )
    except ReplayError as exc:
        fail(str(exc))

    def shown(letter: Letter) -> None:
        out.print(json.dumps(letter.shown(), ensure_ascii=True), markup=False)

    def unreadable(record: Unreadable) -> None:
        err.print(
            f"{settings.topics.dlq} partition {record.partition} offset {record.offset} "
            f"left alone: {record.why}",
            markup=False,
        )

    try:
        summary = asyncio.run(
            replay(settings, selection, dry_run=dry_run, on_letter=shown, on_unreadable=unreadable)
        )
    except ReplayError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"PostgreSQL: {type(exc).__name__}")
    read = ", ".join(f"{p}: {a}..{b - 1}" for p, (a, b) in sorted(summary.ranges.items()))
    verb = "dry run, nothing published: would replay" if dry_run else "replayed"
    err.print(
        f"{verb} {summary.replayed} to {settings.topics.raw}, "
        f"skipped {summary.already_replayed} already replayed, "
        f"filtered out {summary.filtered_out}, unreadable {len(summary.unreadable)} "
        f"({settings.topics.dlq} offsets read: {read or 'none'})",
        markup=False,
    )
    # a --reason or --stage no letter has is most likely a typo ("internal-error"): say so
    for option, asked, read_ in (
        ("--reason", reason or (), summary.reasons_read),
        ("--stage", stage or (), summary.stages_read),
    ):
        for value in sorted(set(asked) - read_):
            known = ", ".join(sorted(read_)) or "none"
            err.print(f"note: no letter read has {option} {value} (read: {known})", markup=False)
    if summary.unreadable:
        raise typer.Exit(1)
