"""Start the Faust worker from code (not faust's CLI, which ignores ``web_enabled=False``)."""

import logging

import faust

from worker.app import BatchProcessor, NoOutputProcessor, create_app
from worker.kafka import create_topics
from worker.settings import Settings

log = logging.getLogger(__name__)


def build_processor(settings: Settings) -> BatchProcessor:
    """The stages behind the contract check."""
    return NoOutputProcessor()


def run_worker(settings: Settings, *, ensure_topics: bool = True) -> None:
    """Run until SIGTERM or SIGINT; faust then stops consuming, flushes and commits."""
    if ensure_topics:
        created = create_topics(settings.kafka, settings.topics)
        for topic, was_created in created.items():
            if was_created:
                log.info("created topic %s", topic)
    app = create_app(settings, build_processor(settings))
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
