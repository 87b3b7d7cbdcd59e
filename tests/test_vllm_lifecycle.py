"""No vLLM engine process outlives the worker, however the worker ends.

- SIGTERM (how Kubernetes and systemd stop a worker): a worker process with a real engine exits
  cleanly and takes its engine processes with it.
- SIGKILL or the OOM killer (no Python code runs): the reaper sees its pipe close and kills the
  engine processes. Shown with stand-in processes, since what is tested is the reaper's part.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.support import Timeout, wait_for
from tests.tinymodel import build_tiny_model

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parent.parent
REAPER = REPO / "worker" / "coders" / "vllm" / "reaper.py"

# A worker in miniature: starts the coder, prints its engine processes, waits to be stopped.
WORKER = textwrap.dedent(
    """
    import asyncio
    import sys

    from worker.coders.vllm.coder import VLLMCoder
    from worker.coders.vllm.config import VLLMSettings


    async def main() -> None:
        settings = VLLMSettings(
            model=sys.argv[1],
            enforce_eager=True,
            kv_cache_memory_bytes=256 * 2**20,
            max_model_len=1024,
            max_num_seqs=4,
            constrain="format",
        )
        coder = VLLMCoder(settings)
        await coder.start()
        print("ready", *coder.engine.pids, flush=True)
        await asyncio.Event().wait()


    if __name__ == "__main__":  # engine processes are spawned: they import this module
        asyncio.run(main())
    """
)


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_line(
    proc: subprocess.Popen[str], prefix: str, seconds: float, log: Path | None = None
) -> str:
    """The child's first stdout line that starts with ``prefix`` (vLLM logs to stdout too),
    failing the test after ``seconds`` or when the child exits."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    timeout = Timeout(seconds, f"a line {prefix!r} from the child")
    buffered = ""
    while timeout:
        buffered += proc.stdout.readline()
        if buffered.endswith("\n"):
            if buffered.startswith(prefix):
                return buffered
            buffered = ""
            continue
        if proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None else ""
            raise AssertionError(f"the child exited with {proc.returncode}\n{tail}")
        time.sleep(0.1)
    raise AssertionError("unreachable")


def test_sigterm_stops_the_worker_and_its_engine(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = build_tiny_model(tmp_path_factory.getbasetemp() / "tinymodel", lora=True)
    script = tmp_path / "worker_sim.py"
    script.write_text(WORKER)
    env = {**os.environ, "VLLM_CACHE_ROOT": str(tmp_path / "vllm-cache"), "PYTHONPATH": str(REPO)}
    log = tmp_path / "worker.log"  # vLLM's own log lines, for a failure's message
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(model.path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    try:
        _, *pids = read_line(proc, "ready ", 120, log).split()
        engine_pids = [int(pid) for pid in pids]
        assert engine_pids
        assert all(running(pid) for pid in engine_pids)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        # The engine processes are gone with it (not orphaned to init).
        wait_for(lambda: not any(running(pid) for pid in engine_pids), 10, "engine exit")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_the_reaper_kills_engine_processes_when_the_worker_is_killed(tmp_path: Path) -> None:
    # The "worker" starts a stand-in engine process and the reaper, then is SIGKILLed.
    worker = textwrap.dedent(
        f"""
        import subprocess, sys, time
        import psutil
        engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        target = f"{{engine.pid}}:{{psutil.Process(engine.pid).create_time():.6f}}"
        reaper = subprocess.Popen(
            [sys.executable, "-I", {str(REAPER)!r}, target], stdin=subprocess.PIPE
        )
        print("started", engine.pid, reaper.pid, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", worker], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    pids: list[int] = []
    try:
        _, *found = read_line(proc, "started ", 30).split()
        pids = [int(pid) for pid in found]
        engine_pid, reaper_pid = pids
        assert running(engine_pid)
        assert running(reaper_pid)
        proc.kill()  # SIGKILL: no atexit, no signal handler, no finally
        proc.wait()
        wait_for(lambda: not running(engine_pid), 15, "the reaper to kill the engine")
        wait_for(lambda: not running(reaper_pid), 15, "the reaper to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        for pid in pids:  # orphans now: only their pids find them
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_reaper_leaves_a_process_that_reused_the_pid_alone(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        created = psutil.Process(bystander.pid).create_time()
        # Same pid, another start time: not the engine process the reaper was told about.
        reaper = subprocess.Popen(
            [sys.executable, "-I", str(REAPER), f"{bystander.pid}:{created - 100:.6f}"],
            stdin=subprocess.PIPE,
        )
        assert reaper.stdin is not None
        reaper.stdin.close()
        assert reaper.wait(timeout=15) == 0
        assert running(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()
