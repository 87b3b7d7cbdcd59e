"""Is a worker alive, and can it reach what it needs? The checks behind ``claimcoder health``,
which container health checks run (docker/Dockerfile's HEALTHCHECK, docker/compose.yaml).

Each check is cheap and bounded by a timeout, so it can run every 30 s:

- ``worker``: the heartbeat file the running worker rewrites (``worker/heartbeat.py``) is
  younger than ``max_age_s`` and names a live process. A hung event loop stops the heartbeat.
- ``postgres``: a connection, and the schema at the head revision of ``migrations/``.
- ``redis``: a PING.
- ``kafka``: the bootstrap servers answer and the three configured topics exist.

A failure is reported by the check's name and the exception type only: messages can quote URLs
with passwords.
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import redis
from sqlalchemy import text

from migrations.runner import current_revision, head_revision
from worker.heartbeat import heartbeat_path, read_heartbeat
from worker.kafka import client_options
from worker.resources import sync_engine
from worker.settings import Settings

DEFAULT_MAX_AGE_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str  # worker | postgres | redis | kafka
    ok: bool
    detail: str  # what was seen; on failure the exception type, never its message


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def check_heartbeat(path: Path, max_age_s: float, now: float | None = None) -> CheckResult:
    """The heartbeat at ``path`` is at most ``max_age_s`` seconds old and its process lives."""
    try:
        pid, at = read_heartbeat(path)
    except FileNotFoundError:
        return CheckResult("worker", False, f"no heartbeat at {path} (starting, or not running)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return CheckResult("worker", False, f"unreadable heartbeat: {type(exc).__name__}")
    age = (time.time() if now is None else now) - at
    if age > max_age_s:
        return CheckResult("worker", False, f"heartbeat {age:.0f} s old (max {max_age_s:g} s)")
    if not _process_alive(pid):
        return CheckResult("worker", False, f"process {pid} is gone")
    return CheckResult("worker", True, f"pid {pid}, heartbeat {age:.0f} s old")


def check_postgres(settings: Settings, timeout_s: float) -> CheckResult:
    engine = sync_engine(settings.database, connect_timeout_s=timeout_s)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        schema = settings.database.schema_name
        current, head = current_revision(engine, schema), head_revision()
    finally:
        engine.dispose()
    if current != head:
        return CheckResult(
            "postgres", False, f"schema at revision {current or 'none'}, head is {head}"
        )
    return CheckResult("postgres", True, f"revision {current}")


def check_redis(settings: Settings, timeout_s: float) -> CheckResult:
    client = redis.Redis.from_url(
        settings.redis.url.get_secret_value(),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    try:
        client.ping()
    finally:
        client.close()
    return CheckResult("redis", True, "PONG")


def check_kafka(settings: Settings, timeout_s: float) -> CheckResult:
    from kafka import KafkaAdminClient

    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        **client_options(settings.kafka),
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    topics = settings.topics
    missing = [t for t in (topics.raw, topics.coded, topics.dlq) if t not in existing]
    if missing:
        return CheckResult("kafka", False, f"missing topic(s) {', '.join(missing)}")
    return CheckResult("kafka", True, "topics present")


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as exc:  # a health check reports every failure, whatever its kind
        return CheckResult(name, False, f"unreachable: {type(exc).__name__}")


def run_checks(
    settings: Settings,
    *,
    worker: bool,
    dependencies: bool,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    timeout_s: float = 5.0,
) -> list[CheckResult]:
    """The chosen checks in order: worker (heartbeat), then postgres, redis and kafka."""
    results: list[CheckResult] = []
    if worker:
        results.append(check_heartbeat(heartbeat_path(settings), max_age_s))
    if dependencies:
        results.append(_guarded("postgres", lambda: check_postgres(settings, timeout_s)))
        results.append(_guarded("redis", lambda: check_redis(settings, timeout_s)))
        results.append(_guarded("kafka", lambda: check_kafka(settings, timeout_s)))
    return results
