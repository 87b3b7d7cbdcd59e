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
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Component):
    """Kafka client options; production is Apache Kafka, tests and the local stack use Tansu."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "claimcoder"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None
    # Short defaults: Tansu holds a JoinGroup for half the session timeout (notes: 10 s / 1 s is
    # ready in ~7 s). Production on Apache Kafka may raise both.
    session_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    heartbeat_interval_s: Annotated[float, Field(gt=0)] = 1.0
    consumer_group: str = "claimcoder"

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
    raw: str = "claims.raw"
    coded: str = "claims.coded"
    dlq: str = "claims.dlq"
    partitions: Annotated[int, Field(ge=1)] = 4
    replication_factor: Annotated[int, Field(ge=1)] = 1


class DatabaseSettings(_Component):
    """PostgreSQL, the system of record. A libpq URL; the password may sit inside it."""

    url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    schema_name: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="search_path schema; tests use one schema per test.",
    )
    pool_size: Annotated[int, Field(ge=1)] = 5

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        url = self.url.get_secret_value()
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        raise ValueError("CLAIMCODER_DATABASE_URL must be a postgresql:// URL")


class RedisSettings(_Component):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    key_prefix: str = "claimcoder:"


class BatchSettings(_Component):
    """Micro-batches handed to the coder: at most ``max_size`` claims or ``max_wait_s``."""

    max_size: Annotated[int, Field(ge=1, le=4096)] = 64
    max_wait_s: Annotated[float, Field(gt=0, le=60)] = 0.5


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

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
