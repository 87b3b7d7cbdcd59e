"""Kafka clients built from :class:`KafkaSettings`: kafka-python for the CLI, options for faust
and for aiokafka (`claimcoder dlq replay`, which must write null header values).

Only standard Kafka protocol features are used, so production runs on Apache Kafka and the tests
on Tansu with the same code.
"""

import contextlib
import logging
import ssl
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.exceptions import ClaimcoderError
from worker.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)

#: Pauses between attempts to reach the broker at start, then steady at the last value.
BROKER_BACKOFF_S = (1.0, 2.0, 5.0)
#: One attempt's bound: an admin client's bootstrap (a metadata round trip).
BROKER_ATTEMPT_S = 2.0


class BrokerUnavailableError(ClaimcoderError):
    """Fatal for the process: no broker answered within ``kafka.startup_timeout_s``."""


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """kafka-python options shared by producer, consumer and admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_cafile"] = str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        options["ssl_certfile"] = str(kafka.ssl_certfile) if kafka.ssl_certfile else None
        options["ssl_keyfile"] = str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
        if kafka.ssl_password is not None:
            options["ssl_password"] = kafka.ssl_password.get_secret_value()
    return options


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka options for producer and consumer: the settings of :func:`client_options`."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "ssl_context": ssl_context(kafka),
    }
    if kafka.sasl_mechanism is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    if kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile is not None:
        context.load_cert_chain(
            str(kafka.ssl_certfile),
            str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None,
            kafka.ssl_password.get_secret_value() if kafka.ssl_password else None,
        )
    return context


def faust_credentials(kafka: KafkaSettings) -> Any:
    """faust's ``broker_credentials`` for the configured security protocol, or None."""
    import faust

    context = ssl_context(kafka)
    if kafka.sasl_mechanism is not None:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        username = kafka.sasl_username or ""
        if kafka.sasl_mechanism == "PLAIN":
            return faust.SASLCredentials(username=username, password=password, ssl_context=context)
        return faust.SASLCredentials(
            username=username,
            password=password,
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def producer(kafka: KafkaSettings, **overrides: Any) -> KafkaProducer:
    return KafkaProducer(**client_options(kafka), acks="all", **overrides)


def consumer(kafka: KafkaSettings, *topics: str, **overrides: Any) -> KafkaConsumer:
    return KafkaConsumer(*topics, **client_options(kafka), **overrides)


def create_topics(
    kafka: KafkaSettings, topics: TopicSettings, names: Iterable[str] | None = None
) -> dict[str, bool]:
    """Create the topics that do not exist; returns name -> created (False: it existed)."""
    wanted = list(names) if names is not None else [topics.raw, topics.coded, topics.dlq]
    admin = KafkaAdminClient(**client_options(kafka))
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            # Another worker may create them at the same moment: that is the outcome we wanted.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [NewTopic(t, topics.partitions, topics.replication_factor) for t in missing]
                )
        return {t: t in missing for t in wanted}
    finally:
        admin.close()


def wait_for_broker(kafka: KafkaSettings) -> None:
    """Return once a broker of ``kafka.bootstrap_servers`` answers a metadata request. Until
    then, log a WARNING per failed attempt (servers and error type; the bootstrap list holds no
    secret) and retry with a growing pause; after ``kafka.startup_timeout_s`` raise
    BrokerUnavailableError."""
    deadline = time.monotonic() + kafka.startup_timeout_s
    # kafka-python logs every refused connection at ERROR; our WARNING below says it once.
    quiet = logging.getLogger("kafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        _wait_for_broker(kafka, deadline)
    finally:
        quiet.setLevel(level)


def _wait_for_broker(kafka: KafkaSettings, deadline: float) -> None:
    attempt = 0
    while True:
        left = deadline - time.monotonic()
        try:
            admin = KafkaAdminClient(
                **client_options(kafka),
                bootstrap_timeout_ms=int(max(0.1, min(BROKER_ATTEMPT_S, left)) * 1000),
            )
            try:
                admin.list_topics()
            finally:
                admin.close()
            if attempt:
                log.info("Kafka broker at %s answers", kafka.bootstrap_servers)
            return
        except KafkaError as exc:
            attempt += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerUnavailableError(
                    f"no Kafka broker answered at {kafka.bootstrap_servers} within "
                    f"{kafka.startup_timeout_s:g} s ({attempt} attempts, last: "
                    f"{type(exc).__name__}); check CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS and the "
                    "broker, or raise CLAIMCODER_KAFKA_STARTUP_TIMEOUT_S"
                ) from exc
            pause = min(BROKER_BACKOFF_S[min(attempt - 1, len(BROKER_BACKOFF_S) - 1)], left)
            log.warning(
                "Kafka broker at %s not reachable (%s, attempt %d); retrying in %.1f s, "
                "giving up in %.0f s",
                kafka.bootstrap_servers,
                type(exc).__name__,
                attempt,
                pause,
                left,
            )
            time.sleep(pause)
