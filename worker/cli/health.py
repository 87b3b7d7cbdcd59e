"""`claimcoder health`: the container health check (see ``worker/health.py``)."""

import json
import logging
from typing import Annotated

import typer
from rich.markup import escape

from worker.cli.common import err, load_settings, out
from worker.health import DEFAULT_MAX_AGE_S, run_checks


def health(
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also check the heartbeat of the worker running with these settings.",
        ),
    ] = False,
    dependencies: Annotated[
        bool,
        typer.Option(
            "--dependencies/--no-dependencies",
            help="Check PostgreSQL (schema at head), Redis and Kafka (topics present).",
        ),
    ] = True,
    max_age: Annotated[
        float, typer.Option(min=1, help="Oldest acceptable heartbeat, in seconds.")
    ] = DEFAULT_MAX_AGE_S,
    timeout: Annotated[
        float, typer.Option(min=0.5, max=60, help="Seconds each dependency check may take.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Exit 0 when every chosen check passes, 1 otherwise; one line per check (no secrets).
    Liveness: `--worker --no-dependencies`; readiness: `--worker`."""
    if not worker and not dependencies:
        # a probe that checks nothing would always pass
        raise typer.BadParameter("choose --worker or --dependencies (or both)")
    settings = load_settings()
    # kafka-python logs every refused connection at ERROR; the check's own line says it once
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    results = run_checks(
        settings, worker=worker, dependencies=dependencies, max_age_s=max_age, timeout_s=timeout
    )
    healthy = all(r.ok for r in results)
    if as_json:
        report = {
            "healthy": healthy,
            "checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results],
        }
        out.print(json.dumps(report), markup=False, highlight=False)
    else:
        for r in results:
            mark = "[green]ok[/green]" if r.ok else "[red]FAILED[/red]"
            err.print(f"{r.name}: {mark} {escape(r.detail)}")
    if not healthy:
        raise typer.Exit(1)
