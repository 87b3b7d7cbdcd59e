"""Kafka clients built from :class:`KafkaSettings`: kafka-python for the CLI, options for faust
and for aiokafka (`claimcoder dlq replay`, which must write null header values).

Only standard Kafka protocol features are used, so production runs on Apache Kafka and the tests
on Tansu with the same code.
"""

import contextlib
import ssl
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from worker.settings import KafkaSettings, TopicSettings


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
