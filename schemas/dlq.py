"""`claims.dlq`: events the worker could not accept, with the reason and the original bytes."""

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class DeadLetterError(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field(description="Where it failed, e.g. validate_event.")
    type: str = Field(description="Machine-readable reason: bad_utf8, bad_json, invalid_event, ...")
    message: str = Field(description="Human-readable detail; names fields, never their values.")


class OriginalHeader(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    value: str | None = Field(description="Header value, base64.")


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", title="claims.dlq")

    schema_version: Literal[1] = 1
    event_id: str = Field(
        pattern=r"^[0-9a-f]{32}$",
        description="Stable for the same original topic, partition and offset.",
    )
    error: DeadLetterError
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp_ms: int | None = Field(default=None, description="Original record timestamp.")
    key: str | None = Field(
        description="Original key bytes, base64; null for no key, or when the record was too "
        "large to copy (error.message says so)."
    )
    value: str | None = Field(
        description="Original value bytes, base64; null for a tombstone, or when the record was "
        "too large to copy (error.message says so; read it at topic, partition, offset)."
    )
    headers: list[OriginalHeader]
    failed_at: AwareDatetime
