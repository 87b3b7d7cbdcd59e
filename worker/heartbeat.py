"""The running worker's heartbeat: a file it rewrites every :data:`HEARTBEAT_INTERVAL_S` seconds
from its event loop once its pipeline has started (the coder loaded). ``claimcoder health
--worker`` (``worker/health.py``) reads it: a stale file means a hung loop or a worker still
starting, a dead pid a worker gone."""

import json
import os
import time
from pathlib import Path
from typing import Final

from worker.settings import Settings

HEARTBEAT_FILE: Final = "worker.heartbeat"
HEARTBEAT_INTERVAL_S: Final = 10.0


def heartbeat_path(settings: Settings) -> Path:
    """``<state_dir>/worker.heartbeat``: one worker per state directory (a container has its
    own)."""
    return settings.state_dir / HEARTBEAT_FILE


def write_heartbeat(path: Path) -> None:
    """Write ``{"pid": int, "at": unix seconds}`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps({"pid": os.getpid(), "at": time.time()}))
    partial.replace(path)


def read_heartbeat(path: Path) -> tuple[int, float]:
    """``(pid, unix seconds)``. Raises OSError (FileNotFoundError: none yet), ValueError,
    KeyError or TypeError for a file that is not a heartbeat."""
    beat = json.loads(path.read_text())
    return int(beat["pid"]), float(beat["at"])
