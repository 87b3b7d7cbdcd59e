"""Helpers shared by the tests: a worker subprocess, and bounded waits on real topics."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from worker.kafka import client_options
from worker.settings import Settings

T = TypeVar("T")


class Timeout:
    """``while Timeout(10):`` loops until the deadline, then fails the test."""

    def __init__(self, seconds: float, what: str = "condition") -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.what = what

    def __bool__(self) -> bool:
        if time.monotonic() > self.deadline:
            raise AssertionError(f"timed out after {self.seconds:g} s waiting for {self.what}")
        return True


def wait_for(check: Callable[[], T | None], seconds: float, what: str, every: float = 0.1) -> T:
    timeout = Timeout(seconds, what)
    while timeout:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("unreachable")


def fetch(
    settings: Settings,
    topic: str,
    count: int,
    seconds: float = 60.0,
    *,
    settle: float = 0.0,
    worker: "WorkerProcess | None" = None,
) -> list[ConsumerRecord]:
    """Read ``topic`` from the start until ``count`` records arrived (counting fetched records:
    Tansu's end offsets are wrong after multi-record batches); with ``settle``, keep reading
    that much longer to catch records beyond ``count``. With ``worker``, fail at once when the
    worker process has died."""
    consumer = KafkaConsumer(
        topic,
        **client_options(settings.kafka),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[ConsumerRecord] = []
    try:
        timeout = Timeout(seconds, f"{count} records on {topic} (have {{n}})")
        while len(records) < count:
            timeout.what = f"{count} records on {topic} (have {len(records)})"
            assert timeout
            if worker is not None and not worker.alive:
                raise AssertionError(f"the worker exited:\n{worker.log()[-4000:]}")
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


class WorkerProcess:
    """`python -m worker worker` as a child process with the test's settings (``module``: another
    entry point with the same command line, e.g. tests/broken_stage_worker.py)."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        module: str = "worker",
    ):
        self.settings = settings
        self.log_path = log_path
        self.module = module
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMCODER_")}
        env.update(settings.to_env())
        env.update(extra_env or {})
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> "WorkerProcess":
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "worker", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"worker ignored signal {sig} for {timeout} s:\n{self.log()}"
            ) from None


@contextmanager
def running_worker(
    settings: Settings,
    log_path: Path,
    *args: str,
    extra_env: dict[str, str] | None = None,
    module: str = "worker",
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(settings, log_path, extra_env, module).start(*args)
    try:
        yield worker
    finally:
        if worker.alive:
            code = worker.stop()
            assert code == 0, f"worker exited with {code}:\n{worker.log()}"


def describe(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    return [{"partition": r.partition, "offset": r.offset, "key": r.key} for r in records]
