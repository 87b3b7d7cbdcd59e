"""A consumed Kafka record, independent of the client library that fetched it."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None = field(repr=False)  # the claim itself: patient data, never in a repr
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def normalize_headers(
    raw: Iterable[tuple[str, Any]] | Mapping[str, Any] | None,
) -> tuple[tuple[str, bytes | None], ...]:
    """Kafka clients hand headers over as a list of pairs or as a dict; keep them as pairs."""
    if raw is None:
        return ()
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    out = []
    for key, value in pairs:
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        data = value.encode("utf-8") if isinstance(value, str) else value
        out.append((name, data))
    return tuple(out)
