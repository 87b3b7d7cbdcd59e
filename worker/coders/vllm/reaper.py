"""Watchdog for the vLLM engine processes: ``python -I reaper.py PID:CREATE_TIME ...``.

The worker starts it with a pipe on its stdin and never writes to it. When the worker ends in any
way, the kernel closes the pipe; the reaper reads EOF and kills the listed processes that are
still running. A normal shutdown stops the engine first, so then there is nothing left to kill.
The create time guards against killing an unrelated process that reused a pid.

Standard library only, run with ``-I``: it must work when the worker's imports do not.
"""

import os
import signal
import sys
import time


def _create_time(pid: int) -> float | None:
    """Start time of ``pid`` in seconds since boot, as psutil computes it on Linux."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    if fields[0] == "Z":  # a zombie needs no killing; its parent reaps it
        return None
    ticks = int(fields[19])  # field 22 of /proc/PID/stat; fields[0] is field 3
    with open("/proc/stat", encoding="ascii") as stat:
        boot = next(float(line.split()[1]) for line in stat if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _same(pid: int, created: float) -> bool:
    actual = _create_time(pid)
    return actual is not None and abs(actual - created) < 1.0


def main(targets: list[str]) -> int:
    # The worker's SIGINT (Ctrl-C in a terminal reaches the whole process group) must not end
    # the reaper before the worker's own shutdown has had its chance.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    procs = [(int(pid), float(created)) for pid, created in (t.split(":") for t in targets)]
    while sys.stdin.buffer.read(4096):  # blocks until EOF: the worker is gone or done
        pass
    alive = [pid for pid, created in procs if _same(pid, created)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_same(p, c) for p, c in procs if p in alive):
        time.sleep(0.1)
    for pid, created in procs:
        if pid in alive and _same(pid, created):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
