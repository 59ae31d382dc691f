"""An extraction worker never outlives its command, even when the command ends at once (a second Ctrl-C, kill -9)
and no reaper watches it: the worker notices it was re-parented and ends itself.

Found when a forced stop left two spawned workers running for good (tests/test_stopping.py, under load)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = Path(__file__).parent / "corpus" / "documents" / "pingtan-2024.html"

SCRIPT = """
import os, sys
from gongkai.flows.pipeline import ExtractionPool
pool = ExtractionPool(2)
data = open(sys.argv[1], "rb").read()
pool.extract(data, "pingtan-2024.html", sha256="0" * 64, fmt=None, timeout_s=120)  # the pool's workers are up
print(" ".join(str(pid) for pid in pool._executor._processes), flush=True)
os._exit(0)  # as a forced stop does: no shutdown, no atexit, the workers left behind
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_workers_end_themselves_when_their_command_is_gone(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # output to a file: a worker left behind would hold a pipe open
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(DOCUMENT)], env=env, stdout=out, stderr=err, timeout=180)
    assert done.returncode == 0, (tmp_path / "err").read_text()
    workers = [int(pid) for pid in (tmp_path / "out").read_text().split()]
    assert workers
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leave them to the next test
        os.kill(pid, 9)
    assert not left, f"workers still running after their command ended: {left}"


EARLY_EXIT = """
import os
from gongkai.flows.pipeline import ExtractionPool
pool = ExtractionPool(2)
executor = pool._current()
executor.submit(abs, 1)  # spawns a worker, still importing when the command ends
print(" ".join(str(pid) for pid in executor._processes), flush=True)
os._exit(0)
"""


def test_a_worker_whose_command_ended_while_it_started_ends_too(tmp_path: Path) -> None:
    """The command gone before its worker's start-up ran: the worker once took init for its command and stayed
    (found alive 80 minutes after a test run, blocked on its task queue)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        done = subprocess.run([sys.executable, "-c", EARLY_EXIT], env=env, stdout=out, stderr=err, timeout=120)
    assert done.returncode == 0, (tmp_path / "err").read_text()
    workers = [int(pid) for pid in (tmp_path / "out").read_text().split()]
    assert workers
    deadline = time.monotonic() + 30  # the worker first finishes importing (seconds under load), then notices
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, 9)
    assert not left, f"workers still running after their command ended: {left}"
