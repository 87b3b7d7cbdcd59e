"""The running worker's heartbeat: a file it rewrites every :data:`HEARTBEAT_INTERVAL_S` seconds
from its event loop once its pipeline has started (the coder loaded). ``claimcoder health
--worker`` (``worker/health.py``) reads it: a stale file means a hung loop or a worker still
starting, a dead pid a worker gone."""

import asyncio
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Final

from worker.settings import Settings

log = logging.getLogger(__name__)

HEARTBEAT_FILE: Final = "worker.heartbeat"
HEARTBEAT_INTERVAL_S: Final = 10.0


def heartbeat_path(settings: Settings) -> Path:
    """``<state_dir>/worker.heartbeat``: one worker per state directory (a container has its
    own)."""
    return settings.state_dir / HEARTBEAT_FILE


def write_heartbeat(path: Path) -> None:
    """Write ``{"pid": int, "at": unix seconds}`` atomically (a reader never sees half a file).
    Each call writes its own temporary file, so calls that overlap (the first beat and the
    timer's) never rename one another's. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    partial = Path(name)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps({"pid": os.getpid(), "at": time.time()}))
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


async def beat(path: Path) -> None:
    """One heartbeat from the event loop (off it, in a thread). A file that cannot be written
    (a full disk, a read-only volume) is logged, never raised: the worker goes on, and the
    health check reports the stale heartbeat."""
    try:
        await asyncio.to_thread(write_heartbeat, path)
    except OSError as exc:
        log.warning("could not write the heartbeat file: %s", type(exc).__name__)


def read_heartbeat(path: Path) -> tuple[int, float]:
    """``(pid, unix seconds)``. Raises OSError (FileNotFoundError: none yet), ValueError,
    KeyError or TypeError for a file that is not a heartbeat."""
    beat = json.loads(path.read_text())
    return int(beat["pid"]), float(beat["at"])
