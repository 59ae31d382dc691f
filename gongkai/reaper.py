"""Nothing outlives a killed command: a small watcher process ends what `gongkai` started once `gongkai` is gone.

A `kill -9` (or the OOM killer, or a lost terminal) gives a command no chance to stop what it started:
Prefect's temporary API server, the extraction workers and multiprocessing's resource tracker would run on
as orphans. The watcher is started by the command, notes the command's descendants every half second while
it lives, and when it dies sends them SIGTERM, then SIGKILL to those still there after a grace period.
Linux only (it reads /proc); elsewhere it is not started.

    python -m gongkai.reaper PID
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")
POLL_S = 0.5
GRACE_S = 5.0


def start_reaper() -> subprocess.Popen[bytes] | None:
    """Watch this process; None where /proc is missing. The watcher is in its own session, so a Ctrl-C sent to
    the terminal's process group reaches the command (which stops cleanly) and not the watcher."""
    if not (PROC / str(os.getpid()) / "stat").exists():
        return None
    return subprocess.Popen([sys.executable, "-m", "gongkai.reaper", str(os.getpid())], start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: the fields after its last ')' are plain
    state, parent = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(parent)


def _parent_of(pid: int) -> int | None:
    found = _state_and_parent(pid)
    return found[1] if found else None


def descendants(root: int) -> set[int]:
    """Every process below root, from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (parent := _parent_of(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _alive(pid: int) -> bool:
    found = _state_and_parent(pid)
    return found is not None and found[0] not in ("Z", "X")  # a zombie is dead, only not yet reaped


def _signal(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def watch(command_pid: int) -> None:
    known: set[int] = set()
    while _alive(command_pid):
        # orphans keep nothing that ties them to the command, so they are noted while it lives
        known = ({pid for pid in known if _alive(pid)} | descendants(command_pid)) - {os.getpid()}
        time.sleep(POLL_S)
    left = {pid for pid in known if _alive(pid)}
    left = (left | {d for pid in left for d in descendants(pid)}) - {os.getpid()}
    _signal(left, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in left):
        time.sleep(0.1)
    _signal({pid for pid in left if _alive(pid)}, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]))
