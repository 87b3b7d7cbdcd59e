"""Start the Faust worker from code (not faust's CLI, which ignores ``web_enabled=False``)."""

import logging
from importlib.metadata import PackageNotFoundError, version

import faust

from worker import telemetry
from worker.app import create_app
from worker.kafka import create_topics, wait_for_broker
from worker.pipeline import ClaimPipeline, CoderFactory
from worker.settings import Settings

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("claimcoder")
    except PackageNotFoundError:
        return "0+unknown"


def run_worker(
    settings: Settings, *, ensure_topics: bool = True, coder: CoderFactory | None = None
) -> None:
    """Run until SIGTERM or SIGINT; faust then stops consuming, flushes and commits. Raises
    BrokerUnavailableError when no broker answers within ``kafka.startup_timeout_s``.
    ``coder``: a coder factory instead of the configured one (tests/fault_worker.py)."""
    shutdown_telemetry = telemetry.configure(_version())
    telemetry.instrument_clients()
    try:
        wait_for_broker(settings.kafka)
        if ensure_topics:
            created = create_topics(settings.kafka, settings.topics)
            for topic, was_created in created.items():
                if was_created:
                    log.info("created topic %s", topic)
        pipeline = ClaimPipeline.from_settings(settings, coder=coder)
        app = create_app(settings, pipeline)
        worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
        worker.execute_from_commandline()
    finally:
        shutdown_telemetry()
