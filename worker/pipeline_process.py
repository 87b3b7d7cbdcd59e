"""The pipeline in a child process of the worker, so that Faust and the stages each have a core.

Why: Faust (the consumer, the producer, acks and commits) and the stages (intake, coder,
validation, grouping, pricing, store, spans) each take most of a core per claim, and one
process runs Python code on one core at a time (the GIL). In one process the worker was
CPU-bound on one core while the other idled (``claimcoder bench``, py-spy; docs/sizing.md).

How: :meth:`PipelineProcess.fork` forks the child before the worker starts any thread or event
loop (``multiprocessing``'s fork context, not daemonic, so that a vLLM engine can start
processes of its own). The child inherits the pipeline's factory and builds the pipeline, the
coder and their clients itself; the parent never loads them. They talk over a socket pair,
one pickled message per frame (both ends are this program; nothing else writes to the socket):

- parent -> child: ``("batch", token, records)``, ``("finish", token, published)``,
  ``("stopping",)`` (the worker is stopping: a batch waiting for a server gives up, as in
  process), ``("ping", n)`` (the heartbeat's question), ``("stop",)``;
- child -> parent: ``("started",)``, ``("pong", n)``, ``("outputs", token, outputs)``,
  ``("error", token, description)``, ``("start_failed", description)``, ``("stopped",)``.

The parent still does what the Faust agent did (publish, await the acks, ack, commit), so the
delivery guarantee is unchanged: a batch is committed only after its outputs were acknowledged.

Ending:

- the worker stops (SIGTERM, SIGINT): the parent sends ``stop`` once Faust has stopped
  consuming; the child stops its pipeline and exits. The child ignores SIGTERM and SIGINT
  itself (a terminal or systemd signals the whole group): the parent decides when it ends;
- the parent dies (SIGKILL, OOM): the child reads the end of the socket and stops the same
  way; any batch it was running was never committed, and is taken again;
- the child dies: the parent's waiting batches fail with :class:`PipelineProcessLost` and
  ``on_lost`` is called (the worker crashes and exits non-zero, to be restarted).
"""

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, Final

import setproctitle

from worker.errors import describe
from worker.outputs import Outgoing
from worker.pipeline import ClaimPipeline, ProcessedBatch
from worker.records import Record

log = logging.getLogger(__name__)

_LENGTH: Final = struct.Struct(">I")
#: How long the child may take to stop its pipeline (coder, clients) before it is killed, s.
STOP_TIMEOUT_S: Final = 60.0
#: How long a child whose socket closed may take to be reaped (its exit code known), s.
REAP_TIMEOUT_S: Final = 2.0
#: How long a worker that ends without having stopped its child (no broker at start) lets
#: the child finish a batch it may hold before killing it, s.
ABANDON_GRACE_S: Final = 5.0
#: How long the child may take to answer the heartbeat's ping, s.
PING_TIMEOUT_S: Final = 5.0
#: How often a waiting batch checks whether the worker is stopping, s.
STOPPING_POLL_S: Final = 0.5


class PipelineProcessLost(RuntimeError):
    """The pipeline's child process ended while the worker needed it."""


async def _read_message(reader: asyncio.StreamReader) -> Any | None:
    """The next message, or None at the end of the stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        data = await reader.readexactly(_LENGTH.unpack(header)[0])
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    # both ends are this program: a socket pair made before the fork, reachable by no one else
    return pickle.loads(data)  # noqa: S301


def _frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


# --- the child ------------------------------------------------------------------------------


def _child_main(
    sock: socket.socket, parents: socket.socket, build: Callable[[], ClaimPipeline]
) -> None:
    """The child's whole life: telemetry as the parent's, the pipeline served until ``stop`` or
    the end of the socket. ``parents``: the parent's end, inherited by the fork, closed at once
    (else the socket outlives the parent and its end is never read)."""
    parents.close()
    setproctitle.setproctitle("claimcoder: pipeline")  # `ps` tells it from its Faust parent
    from worker import telemetry  # the child's own providers and instrumentation

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    shutdown_telemetry = telemetry.configure(telemetry.service_version())
    telemetry.instrument_clients()
    try:
        asyncio.run(_serve(sock, build()))
    finally:
        shutdown_telemetry()


async def _serve(sock: socket.socket, pipeline: ClaimPipeline) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    stop = asyncio.Event()
    stopping = asyncio.Event()  # the worker stops: batches waiting for a server give up

    def halting() -> bool:
        return stop.is_set() or stopping.is_set()

    opened: dict[int, ProcessedBatch] = {}
    running: set[asyncio.Task[None]] = set()

    def send(message: object) -> None:
        if not writer.is_closing():
            writer.write(_frame(message))

    async def start() -> None:
        try:
            await pipeline.start(halting)
        except asyncio.CancelledError:
            if not halting():
                raise
            return  # stopped while it waited for a server
        except Exception as exc:
            log.error("the pipeline did not start: %s", describe(exc))
            send(("start_failed", describe(exc)))
            stop.set()
            return
        send(("started",))

    async def run(token: int, records: Sequence[Record]) -> None:
        try:
            batch = await pipeline.process(records, halting)
        except (Exception, asyncio.CancelledError) as exc:  # CancelledError: gave up waiting
            # as the Faust agent would have seen it in process: by type and place only
            log.error("batch of %d records failed: %s", len(records), describe(exc))
            send(("error", token, describe(exc)))
            return
        opened[token] = batch
        send(("outputs", token, batch.outputs))
        with contextlib.suppress(ConnectionError):  # the parent is gone: _serve ends on EOF
            await writer.drain()

    starting = asyncio.create_task(start())
    while not stop.is_set():
        message = await _read_message(reader)
        if message is None or message[0] == "stop":
            break
        if message[0] == "ping":
            send(("pong", message[1]))
        elif message[0] == "stopping":
            stopping.set()
        elif message[0] == "batch":
            task = asyncio.create_task(run(message[1], message[2]))
            running.add(task)
            task.add_done_callback(running.discard)
        elif message[0] == "finish" and (batch := opened.pop(message[1], None)) is not None:
            await batch.finish(message[2])
    stop.set()
    starting.cancel()  # still starting (a server away, a coder loading): give up now
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    if running:
        await asyncio.wait(running)
    for batch in opened.values():
        await batch.finish(False)
    try:
        await pipeline.stop()
    finally:
        send(("stopped",))
        writer.close()


# --- the parent -----------------------------------------------------------------------------


@dataclass(slots=True)
class RemoteBatch:
    """A batch processed in the child: its outputs, and the child's spans open until
    :meth:`finish`."""

    outputs: list[Outgoing]
    token: int
    owner: "PipelineProcess"

    async def finish(self, published: bool) -> None:
        await self.owner.send(("finish", self.token, published))


class PipelineProcess:
    """The parent's side: the same calls as :class:`ClaimPipeline` makes for the Faust agent
    (``start``, ``process``, ``stop``), answered by the child.

    ``build``: makes the pipeline, in the child. ``on_lost``: called once if the child ends
    while it is needed."""

    def __init__(
        self,
        build: Callable[[], ClaimPipeline],
        on_lost: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> None:
        self._build = build
        self.on_lost = on_lost
        self._process: BaseProcess | None = None
        self._sock: socket.socket | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._waiting: dict[int, asyncio.Future[list[Outgoing]]] = {}
        self._tokens = itertools.count()
        self._stopping = False
        self._told_stopping = False
        self._ready = False  # the child's pipeline has started
        self._pongs: dict[int, asyncio.Future[None]] = {}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def fork(self) -> None:
        """Start the child. Call before the worker starts any thread or event loop: a fork
        copies only the calling thread."""
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("fork")
        process = context.Process(
            target=_child_main,
            args=(theirs, ours, self._build),
            name="claimcoder-pipeline",
            daemon=False,
        )
        process.start()
        theirs.close()
        self._process, self._sock = process, ours
        log.info("pipeline process %d started", process.pid)

    async def start(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Wait until the child's pipeline has started (it loads code sets and the coder).
        Raises PipelineProcessLost if the child ends or fails to start."""
        if self._process is None or self._sock is None:
            raise RuntimeError("PipelineProcess.fork was not called")
        loop = asyncio.get_running_loop()
        self._started, self._stopped = loop.create_future(), loop.create_future()
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
        self._reading = asyncio.create_task(self._read(reader))
        await asyncio.shield(self._started)

    async def process(
        self, records: Sequence[Record], stopping: Callable[[], bool] = lambda: False
    ) -> RemoteBatch:
        """The child's :meth:`ClaimPipeline.process` of ``records``. Raises
        PipelineProcessLost if the child ended, RuntimeError if the batch failed there."""
        token = next(self._tokens)
        answer: asyncio.Future[list[Outgoing]] = asyncio.get_running_loop().create_future()
        self._waiting[token] = answer
        await self.send(("batch", token, list(records)))
        try:
            while not (await asyncio.wait({answer}, timeout=STOPPING_POLL_S))[0]:
                if stopping() and not self._told_stopping:
                    self._told_stopping = True
                    await self.send(("stopping",))
            outputs = answer.result()
        finally:
            # cancelled (partitions revoked, shutdown): the child's answer, when it comes,
            # finds no one waiting and its spans are ended (see _read)
            self._waiting.pop(token, None)
        return RemoteBatch(outputs, token, self)

    async def responsive(self) -> bool:
        """Whether the child's pipeline has started and its event loop answers within
        ``PING_TIMEOUT_S``: the worker's heartbeat (``claimcoder health --worker``) is written
        only then, so a hung child (stopped, deadlocked) fails the health check."""
        if not self._ready:
            return False
        ping = next(self._tokens)
        pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[ping] = pong
        try:
            await self.send(("ping", ping))
            await asyncio.wait_for(pong, PING_TIMEOUT_S)
        except (TimeoutError, PipelineProcessLost, ConnectionError):
            log.warning("the pipeline process did not answer within %.0f s", PING_TIMEOUT_S)
            return False
        finally:
            self._pongs.pop(ping, None)
        return True

    async def send(self, message: object) -> None:
        if self._writer is None or self._writer.is_closing():
            raise PipelineProcessLost("the pipeline process has ended")
        self._writer.write(_frame(message))
        await self._writer.drain()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            await self._dispatch(reader)
        finally:
            await self._lost()

    async def _dispatch(self, reader: asyncio.StreamReader) -> None:
        assert self._started is not None
        assert self._stopped is not None
        while (message := await _read_message(reader)) is not None:
            kind = message[0]
            if kind == "outputs" or kind == "error":
                answer = self._waiting.pop(message[1], None)
                if answer is None or answer.done():
                    if kind == "outputs":  # nobody waits: end its spans, unpublished
                        with contextlib.suppress(PipelineProcessLost, ConnectionError):
                            await self.send(("finish", message[1], False))
                elif kind == "outputs":
                    answer.set_result(message[2])
                else:
                    answer.set_exception(RuntimeError(f"the batch failed: {message[2]}"))
            elif kind == "pong":
                if (pong := self._pongs.pop(message[1], None)) is not None and not pong.done():
                    pong.set_result(None)
            elif kind == "started":
                self._ready = True
                self._started.set_result(None)
            elif kind == "start_failed":
                self._started.set_exception(
                    PipelineProcessLost(f"the pipeline did not start: {message[1]}")
                )
            elif kind == "stopped":
                self._stopped.set_result(None)

    async def _lost(self) -> None:
        """The child's end of the socket closed: fail whoever waits, and unless we are
        stopping, tell ``on_lost``."""
        assert self._started is not None
        assert self._stopped is not None
        exitcode = None
        if self._process is not None:  # reaped first, so that a kill shows as its signal (-9)
            await asyncio.to_thread(self._process.join, REAP_TIMEOUT_S)
            exitcode = self._process.exitcode
        lost = PipelineProcessLost(f"the pipeline process ended (exit code {exitcode})")
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(lost)
        self._waiting.clear()
        if not self._started.done():
            if self._stopping:  # stopped while it started: not a failure
                self._started.cancel()
            else:
                self._started.set_exception(lost)
        if not self._stopped.done():
            self._stopped.set_result(None)
        if self._writer is not None:
            self._writer.close()
        if not self._stopping and self.on_lost is not None:
            log.error("%s", lost)
            await self.on_lost(lost)

    async def stop(self) -> None:
        """Ask the child to stop and wait for it (at most ``STOP_TIMEOUT_S``, then kill it)."""
        self._stopping = True
        process = self._process
        if process is None:
            return
        if self._stopped is not None and self._writer is not None:
            try:
                await self.send(("stop",))
                await asyncio.wait_for(asyncio.shield(self._stopped), STOP_TIMEOUT_S)
            except (PipelineProcessLost, ConnectionError, TimeoutError):
                pass
        elif self._sock is not None:
            self._sock.close()  # never started: the child reads the end and stops
        await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        if process.exitcode is None:
            log.error("pipeline process %d did not stop in time: killed", process.pid)
            process.kill()
            await asyncio.to_thread(process.join)
        if self._reading is not None:
            self._reading.cancel()
        if self._writer is not None:
            self._writer.close()
        log.info("pipeline process %d ended (exit code %s)", process.pid, process.exitcode)

    def abandon(self) -> None:
        """For a worker that ends without having stopped its child (no broker at start, a
        crash): close the parent's end of the socket, so the child stops by itself, and kill it
        if it has not within ``ABANDON_GRACE_S`` (at once if it never started: it holds no
        batch, and loading a coder can take minutes). Blocking; a no-op once stopped."""
        if self._sock is not None:  # the writer's transport holds this socket: closed with it
            self._sock.close()
        process = self._process
        if process is None or process.exitcode is not None:
            return
        process.join(ABANDON_GRACE_S if self._ready else 0)
        if process.exitcode is None:
            process.kill()
            process.join()
