"""Start the Faust worker from code (not faust's CLI, which ignores ``web_enabled=False``)."""

import logging
from importlib.metadata import PackageNotFoundError, version

import faust

from worker import telemetry
from worker.app import create_app
from worker.kafka import create_topics
from worker.pipeline import ClaimPipeline
from worker.settings import Settings

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("claimcoder")
    except PackageNotFoundError:
        return "0+unknown"


def run_worker(settings: Settings, *, ensure_topics: bool = True) -> None:
    """Run until SIGTERM or SIGINT; faust then stops consuming, flushes and commits."""
    shutdown_telemetry = telemetry.configure(_version())
    telemetry.instrument_clients()
    try:
        if ensure_topics:
            created = create_topics(settings.kafka, settings.topics)
            for topic, was_created in created.items():
                if was_created:
                    log.info("created topic %s", topic)
        pipeline = ClaimPipeline.from_settings(settings)
        app = create_app(settings, pipeline)
        worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
        worker.execute_from_commandline()
    finally:
        shutdown_telemetry()
