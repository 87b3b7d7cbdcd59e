"""`claimcoder topics create`."""

from typing import Annotated

import typer

from worker.cli.common import err, load_settings
from worker.kafka import create_topics

app = typer.Typer(help="Kafka topics.", no_args_is_help=True)


@app.command()
def create(
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Partitions per topic (default: from settings)")
    ] = None,
) -> None:
    """Create claims.raw, claims.coded and claims.dlq (the configured names) if missing."""
    settings = load_settings()
    topics = settings.topics
    if partitions is not None:
        topics = topics.model_copy(update={"partitions": partitions})
    for topic, created in create_topics(settings.kafka, topics).items():
        err.print(f"{topic}: {'created' if created else 'exists'}")
