"""One measured run of `claimcoder bench`: a worker process, claims in, every output timed.

Latency of a claim is its output's timestamp minus its input's, both Kafka ``CreateTime`` set by
a producer on this machine (one clock): the input's by this module's producer when it sends the
claim, the output's by the worker's producer when it sends the result. So it covers the broker,
the worker's batching, its work and the acknowledgements, from produce to arrival on
claims.coded. Throughput is the claims of a burst over the time from the first input's timestamp
to the last output's.

The worker's peak resident memory (its process and children, such as vLLM's engine core) is
sampled with psutil every 0.2 s while it runs, and the CPU time it used during a burst is read
from the kernel's accounting (psutil ``cpu_times``, user + system) before and after: CPU a
claim moves far less from run to run than claims per second on a shared machine.
"""

import asyncio
import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.benchmark.clients import bench_client_options
from worker.settings import Settings

Progress = Callable[[int], None]  # claims that arrived since the last call


class BenchError(RuntimeError):
    """A run that could not be measured: the worker died or outputs did not arrive in time."""


@dataclass(frozen=True, slots=True)
class Latencies:
    """Milliseconds, one per claim, and the claims per second of the burst that gave them."""

    ms: tuple[float, ...]
    claims_per_s: float
    statuses: dict[str, int] = field(default_factory=dict)

    def percentile(self, q: int) -> float:
        """The ``q``-th percentile (1-99, exclusive method) in ms."""
        if len(self.ms) < 2:
            return self.ms[0] if self.ms else 0.0
        return statistics.quantiles(self.ms, n=100)[q - 1]

    def summary(self) -> dict[str, float]:
        return {f"p{q}": round(self.percentile(q), 1) for q in (50, 95, 99)}


class MemorySampler:
    """Peak RSS (MiB) of a process and its children, sampled on a thread until :meth:`stop`."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self._process = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> int:
        total = 0
        for process in (self._process, *self._process.children(recursive=True)):
            try:
                total += process.memory_info().rss
            except psutil.Error:  # a child that just ended
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_bytes = max(self.peak_bytes, self._sample())
            except psutil.Error:  # the worker ended
                return
            self._stop.wait(self._interval_s)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak_bytes / 2**20


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its live children."""
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.Error:  # a child that just ended
            continue
        total += times.user + times.system
    return total


class Probe:
    """Publishes claims to ``settings.topics.raw`` and times their outputs on
    ``settings.topics.coded`` (outputs keyed by claim_id, as the worker and the pass-throughs
    key them). Use as an async context manager around the worker's life."""

    def __init__(
        self, settings: Settings, worker: subprocess.Popen[bytes], log: Path, timeout_s: float
    ) -> None:
        self._settings = settings
        self._worker = worker
        self._log = log
        self._timeout_s = timeout_s
        options = bench_client_options(settings.kafka)
        self._producer = AIOKafkaProducer(**options, acks="all", linger_ms=5)
        self._consumer = AIOKafkaConsumer(
            settings.topics.coded, **options, group_id=None, auto_offset_reset="earliest"
        )
        self._sent: dict[bytes, int] = {}  # key -> input timestamp (ms)
        # key -> output timestamp and value; the value is read for its status after the burst,
        # so that the benchmark's own parsing takes no CPU from the worker while it is timed
        self._arrived: dict[bytes, tuple[int, bytes | None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._progress: Progress = lambda _n: None

    async def __aenter__(self) -> "Probe":
        await self._producer.start()
        await self._consumer.start()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._consumer.stop()
        await self._producer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            count = 0
            for records in batches.values():
                for record in records:
                    if record.key in self._sent and record.key not in self._arrived:
                        self._arrived[record.key] = (record.timestamp, record.value)
                        count += 1
            if count:
                self._progress(count)

    async def _send(self, message: tuple[bytes, bytes]) -> "asyncio.Future[Any]":
        key, value = message
        now_ms = int(time.time() * 1000)
        self._sent[key] = now_ms
        future: asyncio.Future[Any] = await self._producer.send(
            self._settings.topics.raw, value=value, key=key, timestamp_ms=now_ms
        )
        return future

    async def _wait_for(self, keys: Sequence[bytes]) -> None:
        deadline = time.monotonic() + self._timeout_s
        waiting = list(keys)
        while waiting := [k for k in waiting if k not in self._arrived]:
            if self._worker.poll() is not None:
                raise BenchError(f"the worker exited ({self._worker.returncode}); see {self._log}")
            if time.monotonic() > deadline:
                done = len(keys) - len(waiting)
                raise BenchError(
                    f"only {done} of {len(keys)} outputs arrived in {self._timeout_s:.0f} s "
                    f"(dead-lettered or stuck); see {self._log}"
                )
            await asyncio.sleep(0.05)

    async def warm_up(self, events: Sequence[dict[str, Any]]) -> None:
        """Publish ``events`` and wait for their outputs: the worker has joined its group and
        started its coder before the clock starts."""
        futures = [await self._send(m) for m in _encoded(events)]
        await asyncio.gather(*futures)
        await self._wait_for([str(e["claim_id"]).encode() for e in events])

    async def burst(self, events: Sequence[dict[str, Any]], progress: Progress) -> Latencies:
        """Publish every event at once and time their outputs."""
        self._progress = progress
        messages = _encoded(events)  # before the clock starts: the first send starts it
        futures = [await self._send(m) for m in messages]
        await asyncio.gather(*futures)
        return await self._collect(events)

    async def steady(
        self, events: Sequence[dict[str, Any]], rate_per_s: float, progress: Progress
    ) -> Latencies:
        """Publish the events at ``rate_per_s`` (sent every 10 ms as they fall due) and time
        their outputs."""
        self._progress = progress
        messages = _encoded(events)
        futures = []
        started = time.monotonic()
        sent = 0
        while sent < len(events):
            due = min(len(events), int((time.monotonic() - started) * rate_per_s) + 1)
            while sent < due:
                futures.append(await self._send(messages[sent]))
                sent += 1
            await asyncio.sleep(0.01)
        await asyncio.gather(*futures)
        return await self._collect(events)

    async def _collect(self, events: Sequence[dict[str, Any]]) -> Latencies:
        keys = [str(e["claim_id"]).encode() for e in events]
        await self._wait_for(keys)
        latencies = tuple(float(self._arrived[k][0] - self._sent[k]) for k in keys)
        first_in = min(self._sent[k] for k in keys)
        last_out = max(self._arrived[k][0] for k in keys)
        statuses: dict[str, int] = {}
        for k in keys:
            status = _status(self._arrived[k][1])
            self._arrived[k] = (self._arrived[k][0], None)  # read: its value is not kept
            statuses[status] = statuses.get(status, 0) + 1
        seconds = max(last_out - first_in, 1) / 1000
        return Latencies(latencies, len(keys) / seconds, statuses)


def _encoded(events: Sequence[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """Each event's key (its claim_id) and JSON value, as published."""
    return [(str(e["claim_id"]).encode(), json.dumps(e).encode()) for e in events]


def _status(value: bytes | None) -> str:
    """The output's ``status`` (claims.coded), or ``copied`` for a pass-through's copy."""
    try:
        document = json.loads(value or b"")
    except ValueError:
        return "unreadable"
    status = document.get("status") if isinstance(document, dict) else None
    return str(status) if status is not None else "copied"
