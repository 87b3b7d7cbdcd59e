"""Start the Faust worker from code (not faust's CLI, which ignores ``web_enabled=False``)."""

import logging
from typing import Final

import faust

from worker import telemetry
from worker.app import create_app, exit_at_once
from worker.kafka import create_topics, wait_for_broker
from worker.pipeline import ClaimPipeline, CoderFactory
from worker.pipeline_process import PipelineProcess
from worker.settings import Settings

log = logging.getLogger(__name__)


#: Client libraries whose DEBUG lines carry the records themselves (aiokafka.conn logs each
#: fetch response whole, claim bytes included): at most INFO, whatever
#: ``CLAIMCODER_LOG_LEVEL`` says, so a narrative never reaches the log.
PAYLOAD_LOGGERS: Final = ("aiokafka", "kafka", "faust.transport")


def quiet_client_loggers() -> None:
    """Keep :data:`PAYLOAD_LOGGERS` at INFO or above (faust's worker sets only the root
    logger's level, so these stay as set here)."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.INFO))


async def lost(exc: BaseException) -> None:
    """The pipeline's process ended under a running worker: end the worker too (see
    ``worker/app.py``: batches in flight must not be acknowledged)."""
    exit_at_once(str(exc))


def run_worker(
    settings: Settings, *, ensure_topics: bool = True, coder: CoderFactory | None = None
) -> None:
    """Run until SIGTERM or SIGINT; faust then stops consuming, flushes and commits. Raises
    BrokerUnavailableError when no broker answers within ``kafka.startup_timeout_s``.
    ``coder``: a coder factory instead of the configured one (tests/fault_worker.py).

    With ``pipeline_process`` (the default) the pipeline runs in a child process forked first
    of all, before any thread starts (``worker/pipeline_process.py``); a child that dies
    ends the worker at once, with status ``EXIT_BATCH_FAILED`` (70)."""

    def build() -> ClaimPipeline:
        return ClaimPipeline.from_settings(settings, coder=coder)

    child = PipelineProcess(build, on_lost=lost) if settings.pipeline_process else None
    if child is not None:
        child.fork()
    shutdown_telemetry = telemetry.configure(telemetry.service_version())
    if child is None:
        telemetry.instrument_clients()  # the clients are the child's otherwise
    try:
        wait_for_broker(settings.kafka)
        if ensure_topics:
            created = create_topics(settings.kafka, settings.topics)
            for topic, was_created in created.items():
                if was_created:
                    log.info("created topic %s", topic)
        app = create_app(settings, child if child is not None else build())
        quiet_client_loggers()
        worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
        worker.execute_from_commandline()
    finally:
        if child is not None:
            child.abandon()
        shutdown_telemetry()
