"""The one configuration of claimcoder, read from the environment (prefix ``CLAIMCODER_``).

Each component has its own model; the variable name is the prefix, the component and the field:
``CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS``, ``CLAIMCODER_DATABASE_URL``, ``CLAIMCODER_BATCH_MAX_SIZE``.
Sources, strongest first: arguments, environment variables, the local stack's ``stack.env``
(written by ``claimcoder dev up`` so that other terminals find its servers), defaults.
OpenTelemetry keeps its standard ``OTEL_*`` variables and is not configured here.
"""

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from worker.coders.config import CoderSettings
from worker.coders.retrieval.config import RetrievalSettings
from worker.coders.vllm.config import VLLMSettings

ENV_PREFIX = "CLAIMCODER_"
STACK_ENV_FILE = "stack.env"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "claimcoder"


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Component(BaseModel):
    # attribute docstrings are the descriptions (docs/configuration.md is generated from them)
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class KafkaSettings(_Component):
    """Kafka client options; production is Apache Kafka, tests and the local stack use Tansu."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated ``host:port`` of the brokers."""
    client_id: str = "claimcoder"
    """Client id the brokers see (quotas, logs)."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How to talk to the brokers."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism, with a ``SASL_*`` protocol."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password (a secret: never printed)."""
    ssl_cafile: Path | None = None
    """CA bundle (PEM) to verify the brokers; unset: the system's."""
    ssl_certfile: Path | None = None
    """Client certificate (PEM), for mutual TLS."""
    ssl_keyfile: Path | None = None
    """Client private key (PEM)."""
    ssl_password: SecretStr | None = None
    """Password of the client private key (a secret)."""
    # Short defaults: Tansu holds a JoinGroup for half the session timeout (notes: 10 s / 1 s is
    # ready in ~7 s). Production on Apache Kafka may raise both.
    session_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """Consumer group session timeout, seconds: a worker silent this long loses its partitions."""
    heartbeat_interval_s: Annotated[float, Field(gt=0)] = 1.0
    """Consumer group heartbeat interval, seconds (well below the session timeout)."""
    consumer_group: str = "claimcoder"
    """Consumer group of the workers: all workers of one deployment share it and split the
    partitions."""
    linger_ms: Annotated[int, Field(ge=0, le=1000)] = 5
    """How long the producer waits for more outputs before it sends a request, milliseconds
    (Kafka's ``linger.ms``). With 0, each output left in its own produce request as soon as
    the previous one had gone (one or two records a request, each acknowledged on its own);
    with 5, a batch's outputs go together, eight to ten a request (strace of the worker,
    `claimcoder bench`: the worker's CPU a claim 1,339-1,403 -> 1,257-1,279 µs)."""
    max_batch_bytes: Annotated[int, Field(ge=1024, le=1_000_000)] = 131_072
    """Largest batch of records the producer sends to one partition in a request, bytes
    (Kafka's ``batch.size``; its default, 16 KB, holds ~12 coded events). Keep it below the
    broker's ``message.max.bytes``."""
    startup_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """At start, the worker waits this long for a broker to answer (retrying, a WARNING each
    time), then exits non-zero (2) with a clear error, for a supervisor to restart it; seconds."""

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_listed(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers or any(":" not in s for s in servers):
            raise ValueError("expected host:port[,host:port...]")
        return ",".join(servers)

    @property
    def servers(self) -> list[str]:
        return self.bootstrap_servers.split(",")


class TopicSettings(_Component):
    """The three topics. claimcoder creates missing ones (`claimcoder prepare`, `topics create`,
    or the worker unless `--no-create-topics`) with these partitions and replicas."""

    raw: str = "claims.raw"
    """Input topic: claim events."""
    coded: str = "claims.coded"
    """Output topic: coded and priced claims."""
    dlq: str = "claims.dlq"
    """Dead-letter topic: events that could not be accepted, with the reason."""
    partitions: Annotated[int, Field(ge=1)] = 4
    """Partitions of each topic when claimcoder creates it: the most workers that can share the
    input."""
    replication_factor: Annotated[int, Field(ge=1)] = 1
    """Replicas of each topic when claimcoder creates it (3 on a production cluster)."""


class DatabaseSettings(_Component):
    """PostgreSQL, the system of record. A libpq URL; the password may sit inside it."""

    url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    """libpq URL ``postgresql://user:password@host:port/db`` (a secret: it may hold the
    password)."""
    schema_name: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="search_path schema; tests use one schema per test.",
    )
    pool_size: Annotated[int, Field(ge=1)] = 5
    """Connections kept open per engine."""
    # Timeouts: a server that is down or hung (accepts connections, never answers) fails the
    # call after these, and the batch waits and retries as for any server that is away
    # (worker/retry.py). libpq counts connect_timeout in whole seconds, at least 2.
    connect_timeout_s: Annotated[int, Field(ge=2, le=300)] = Field(
        default=5, description="Opening a connection (libpq connect_timeout), seconds."
    )
    round_trip_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=5.0,
        description="Each round trip of the worker's connections (a statement, a fetch, a "
        "commit), seconds; then the statement is cancelled and the connection dropped.",
    )
    pool_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=10.0, description="Waiting for a free connection of the pool, seconds."
    )
    reference_ttl_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        default=300.0,
        description="How long a worker keeps reference data it read (a fiscal year's pricing "
        "tables, code-set verdicts) before reading it again, seconds; a fiscal year reloaded "
        "with `claimcoder reference load` is used within this time. 0 reads it every batch.",
    )

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        return "postgresql+psycopg://" + self._without_scheme()

    @property
    def libpq_url(self) -> str:
        """The URL as libpq (psycopg) takes it."""
        return "postgresql://" + self._without_scheme()

    def _without_scheme(self) -> str:
        url = self.url.get_secret_value()
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return url[len(prefix) :]
        raise ValueError("CLAIMCODER_DATABASE_URL must be a postgresql:// URL")


class RedisSettings(_Component):
    """Redis, the cache of the code sets (rebuilt from PostgreSQL when lost)."""

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """Redis URL ``redis://[:password@]host:port/db`` or ``rediss://`` for TLS (a secret)."""
    key_prefix: str = "claimcoder:"
    """Prefix of every key claimcoder writes (one Redis can serve several deployments)."""
    # A command that gets no answer in time raises redis.TimeoutError: the code set is
    # unavailable, and the batch waits and retries (worker/retry.py).
    connect_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0, description="Opening a connection (socket_connect_timeout), seconds."
    )
    socket_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=5.0, description="Each command's reply (socket_timeout), seconds."
    )


class BatchSettings(_Component):
    """Micro-batches handed to the coder: at most ``max_size`` claims or ``max_wait_s``."""

    max_size: Annotated[int, Field(ge=1, le=4096)] = 64
    """Most claims in one micro-batch (the coder's batch)."""
    max_wait_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    """Longest wait for a micro-batch to fill, seconds."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    batch: BatchSettings = BatchSettings()
    coder: CoderSettings = CoderSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    vllm: VLLMSettings = VLLMSettings()
    state_dir: Path = Field(default_factory=default_state_dir)
    """The local stack's data and ``stack.env``, the worker's heartbeat file and faust's data
    directory."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level of claimcoder's own loggers (third-party ones log warnings only)."""
    pipeline_process: bool = True
    """Run the pipeline's stages (coder, validation, grouping, pricing, store, spans) in a
    child process of the worker, so that they and Faust each have a core; ``false`` runs them
    in the worker's own process (one core)."""

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process (secrets included:
        for subprocess environments only, never for printing)."""
        env: dict[str, str] = {}
        for name, value in self:
            if isinstance(value, BaseModel):
                for field, inner in value:
                    if inner is not None:
                        env[f"{ENV_PREFIX}{name}_{field}".upper()] = _env_value(inner)
            elif value is not None:
                env[f"{ENV_PREFIX}{name}".upper()] = _env_value(value)
        return env

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        state_dir = Path(os.environ.get(f"{ENV_PREFIX}STATE_DIR") or default_state_dir())
        stack_env = DotEnvSettingsSource(settings_cls, env_file=state_dir / STACK_ENV_FILE)
        return init_settings, env_settings, stack_env, file_secret_settings
