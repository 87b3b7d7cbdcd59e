"""Real servers for the whole session; each test isolated by its own names.

Servers come from the environment (``CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS``,
``CLAIMCODER_DATABASE_URL``, ``CLAIMCODER_REDIS_URL``; `.ci/run` points the last two at the
machine's PostgreSQL 15 and Redis 7) or are started once from the local stack. A server that can
be neither found nor started fails the session: nothing is skipped.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql

from migrations.runner import upgrade
from tests.fault_support import PrivateServers
from tests.reference_support import drop_prefix
from worker.kafka import create_topics
from worker.localstack import LocalStack, Service, ServiceName
from worker.prepare import prepare_reference_data
from worker.resources import sync_engine
from worker.settings import Settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[ServiceName, Service]]:
    local = LocalStack(tmp_path_factory.mktemp("stack"))
    try:
        services = local.up()
        yield services
    finally:
        local.down()


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def settings(stack: dict[ServiceName, Service], test_id: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings of one test: its own topics, consumer group, Redis key prefix and PostgreSQL
    schema, all created here and removed afterwards."""
    settings = Settings(
        kafka={
            "bootstrap_servers": stack["kafka"].url,
            "consumer_group": f"claimcoder-test-{test_id}",
            # short: Tansu holds a JoinGroup for half the session timeout
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
        },
        topics={
            "raw": f"t{test_id}.claims.raw",
            "coded": f"t{test_id}.claims.coded",
            "dlq": f"t{test_id}.claims.dlq",
            "partitions": 4,
        },
        database={"url": stack["postgres"].url, "schema_name": f"t_{test_id}"},
        redis={"url": stack["redis"].url, "key_prefix": f"test:{test_id}:"},
        batch={"max_size": 16, "max_wait_s": 0.2},
        state_dir=tmp_path / "state",
    )
    create_topics(settings.kafka, settings.topics)
    schema = settings.database.schema_name
    assert schema is not None
    with psycopg.connect(settings.database.url.get_secret_value(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield settings
    finally:
        with psycopg.connect(settings.database.url.get_secret_value(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        drop_prefix(settings.redis.url.get_secret_value(), settings.redis.key_prefix)


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    """``settings`` with its schema migrated to the head revision."""
    engine = sync_engine(settings.database)
    try:
        upgrade(engine, settings.database.schema_name)
    finally:
        engine.dispose()
    return settings


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fail a test that leaves a child process (a worker, an engine) running."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 10
    while True:
        left = [
            p
            for p in me.children(recursive=True)
            if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    names = [f"{p.pid}:{p.name()}" for p in left]
    assert not left, f"processes left behind: {names}"


# --- the fault tests' private servers (tests/fault_support.py): one pair per test module ------


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServers]:
    private = PrivateServers(tmp_path_factory.mktemp("faults"))
    try:
        yield private
    finally:
        private.close()


@pytest.fixture(scope="module")
def prepared(
    servers: PrivateServers,
    stack: dict[ServiceName, Service],
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings on the private servers, reference data loaded once for the module."""
    settings = Settings(
        kafka={
            "bootstrap_servers": stack["kafka"].url,
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
        },
        database={"url": servers.url("postgres")},
        redis={"url": servers.url("redis"), "key_prefix": "faults:"},
        batch={"max_size": 16, "max_wait_s": 0.2},
        # a claim the coder fails is retried twice; short pauses keep its batch's wait short
        coder={"retry_backoff_s": 0.05},
        state_dir=tmp_path_factory.mktemp("faults-state"),
    )
    prepare_reference_data(settings)
    return settings


@pytest.fixture
def fault_settings(prepared: Settings, test_id: str) -> Settings:
    """This test's topics and consumer group on the module's servers."""
    settings = prepared.model_copy(
        update={
            "kafka": prepared.kafka.model_copy(update={"consumer_group": f"faults-{test_id}"}),
            "topics": prepared.topics.model_copy(
                update={
                    "raw": f"f{test_id}.claims.raw",
                    "coded": f"f{test_id}.claims.coded",
                    "dlq": f"f{test_id}.claims.dlq",
                    "partitions": 4,
                }
            ),
        }
    )
    create_topics(settings.kafka, settings.topics)
    return settings
