"""aiokafka client options from :class:`KafkaSettings` (the benchmark's producer and consumer)."""

from typing import Any

from worker.kafka import ssl_context
from worker.settings import KafkaSettings


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Bootstrap servers, client id and security options for any aiokafka client."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.servers,
        "client_id": f"{kafka.client_id}-bench",
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.sasl_mechanism is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options
