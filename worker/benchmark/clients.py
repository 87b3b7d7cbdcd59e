"""aiokafka client options of the benchmark's own producers and consumers."""

from typing import Any

from worker.kafka import aiokafka_options
from worker.settings import KafkaSettings


def bench_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The worker's aiokafka options (:func:`worker.kafka.aiokafka_options`) under a client id
    of their own, ``<client_id>-bench``, so the broker tells the benchmark's clients apart."""
    return {**aiokafka_options(kafka), "client_id": f"{kafka.client_id}-bench"}
