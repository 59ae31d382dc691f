"""Prefect's temporary API server, started by the command itself so that a terminal's Ctrl-C does not kill it.

With no PREFECT_API_URL, Prefect starts a temporary server as a child process on first use. A Ctrl-C in a terminal
reaches the whole process group: the server died with it, and the command then hung on a server that was gone
(flow states, ~1,100 events drained at one per 7 s). Started here, from a thread with SIGINT blocked, the server
inherits the blocked signal and never sees the terminal's Ctrl-C: the command stops cleanly (gongkai/stopping.py)
and Prefect stops its server at exit with SIGTERM, as it always does.
"""

from __future__ import annotations

import os
import signal
import tomllib
from pathlib import Path


def prefect_server_configured() -> bool:
    """PREFECT_API_URL in the environment, or in the active profile of Prefect's profiles file."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    profiles_file = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    try:
        profiles = tomllib.loads(profiles_file.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    return bool(profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


def start_temporary_server() -> None:
    """Start Prefect's temporary server now (the one Prefect would start on first use), unless a server is configured."""
    if os.environ.get("PREFECT_API_URL"):
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return  # a server from Prefect's profile, or none at all: Prefect's own answer stands
    from prefect.server.api.server import SubprocessASGIServer

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        SubprocessASGIServer().start()  # the singleton Prefect's client uses: started once, reused
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a Ctrl-C that came meanwhile is handled now
