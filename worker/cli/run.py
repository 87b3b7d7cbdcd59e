"""`claimcoder worker` (the stream worker alone) and `claimcoder run` (the main job)."""

from typing import Annotated

import typer

from worker.cli.common import err, fail, load_settings
from worker.localstack import LocalStack, LocalStackError, redacted
from worker.runner import run_worker


def worker(
    create_topics: Annotated[
        bool, typer.Option(help="Create the three topics first if they are missing.")
    ] = True,
) -> None:
    """Consume claims.raw until SIGTERM; dead-letter bad events to claims.dlq."""
    run_worker(load_settings(), ensure_topics=create_topics)


def run() -> None:
    """The main job: start the local stack (servers not given by URL), create the topics and run
    the worker until Ctrl-C. The servers keep running afterwards; `claimcoder dev down` stops
    them."""
    stack = LocalStack(load_settings().state_dir)
    try:
        services = stack.up()
    except LocalStackError as exc:
        fail(str(exc))
    for name, service in services.items():
        err.print(f"{name}: {redacted(service.url)} ({service.origin})")
    # Read again: `up` wrote stack.env, which the settings read below the environment.
    run_worker(load_settings(), ensure_topics=True)
