"""Clean stops: the first SIGINT or SIGTERM asks the run to stop, the second forces it.

First signal: one line on stderr; `requested` is set; the flows stop giving out work, wait up to GRACE_S for what
is in flight (a load is one transaction: it commits or not), record the run as `interrupted` with its counts and
return their summary; the command prints it and exits 130. From then on log lines are silenced (Prefect's
complaints about a server that got the terminal's Ctrl-C too are not news), and if the process has not ended
FORCE_AFTER_S later (a Prefect server gone while events drain, a download that will not end) it ends itself.
Second signal: the process ends at once. Either way the reaper (gongkai/reaper.py) stops what the command
started: Prefect's temporary server, the extraction workers.

No Prefect import here: the command line installs this before anything starts.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

GRACE_S = 3.0  # how long in-flight work may finish after the first signal
FORCE_AFTER_S = 12.0  # the first signal's hard bound on the whole stop
INTERRUPTED = 130

requested = threading.Event()
_command = "gongkai"
_interrupt_main = False


def stop_requested() -> bool:
    return requested.is_set()


def install(command: str, interrupt_main: bool = False) -> None:
    """Handle SIGINT and SIGTERM in this (main) thread's process. `interrupt_main`: the first signal also raises
    KeyboardInterrupt in the main thread (`gongkai serve`: Prefect's runner stops on it and cancels its runs)."""
    global _command, _interrupt_main
    _command = f"gongkai {command}"
    _interrupt_main = interrupt_main
    requested.clear()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if requested.is_set():
        _say(f"{_command}: {name} again: stopped at once; what was loaded stays")
        os._exit(INTERRUPTED)
    # logging silenced before the flag is set: a thread that sees the flag (an extraction refused as the command
    # stops) logged its warning between the two when they came the other way round
    logging.disable(logging.CRITICAL)  # no traceback storm from the libraries while everything winds down
    requested.set()
    _say(f"{_command}: {name}: stopping; finishing what is in flight (up to {GRACE_S:g} s), the run is recorded as "
         "interrupted (send it again to stop at once)")
    threading.Thread(target=_force_later, name="gongkai-stop-bound", daemon=True).start()
    if _interrupt_main:
        raise KeyboardInterrupt


def exit_now(code: int) -> NoReturn:
    """End the process once the run is recorded and its summary printed: stop the extraction workers, run the exit
    handlers (multiprocessing's clean-up of its queues and semaphores among them), and leave without joining the
    threads of work that was abandoned (a download waiting on a slow portal would hold the exit for its timeout)."""
    import atexit

    pipeline = sys.modules.get("gongkai.flows.pipeline")
    if pipeline is not None:
        pipeline.stop_pools()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
    finally:
        os._exit(code)


def _force_later() -> None:
    threading.Event().wait(FORCE_AFTER_S)
    _say(f"{_command}: still stopping after {FORCE_AFTER_S:g} s: stopped at once; what was loaded stays")
    os._exit(INTERRUPTED)


def _say(line: str) -> None:
    """Straight to the file descriptor: a signal handler may run while the main thread is inside sys.stderr.write."""
    try:
        os.write(sys.stderr.fileno(), (line + "\n").encode())
    except (OSError, ValueError):
        pass
