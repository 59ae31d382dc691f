"""Running a flow without a Prefect server: the same flow body, its tasks on a plain thread pool.

A Prefect flow called with no configured server starts Prefect's temporary API server (8–20 s on this project's
machine, 55 s under load, and a process that a terminal's Ctrl-C kills under the command's feet). Nobody looks at
that server's UI. So the command line runs a flow on Prefect only when a server is configured (PREFECT_API_URL,
in the environment or the active Prefect profile); otherwise it calls the flow's function itself and `submit_task`
hands each task's function to a thread pool. Recording, logging, summaries and the run's counts are the flow's
own, either way. Nothing here imports Prefect.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

_executor: ContextVar[ThreadPoolExecutor | None] = ContextVar("gongkai_plain_executor", default=None)


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


@contextmanager
def plain_tasks(max_workers: int) -> Iterator[ThreadPoolExecutor]:
    """Within this block `submit_task` runs task functions on a thread pool of `max_workers` (no Prefect)."""
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gongkai-task")
    token = _executor.set(executor)
    try:
        yield executor
    finally:
        _executor.reset(token)
        executor.shutdown(wait=False, cancel_futures=True)  # after a stop, what is still in flight is abandoned


def submit_task(task: Any, first: Any, *args: Any) -> Any:
    """Submit a task: on the plain pool inside `plain_tasks`, else as a Prefect task (its first argument, the shared
    pipeline or crawl context, passed unchanged: `quote` keeps Prefect from walking it)."""
    executor = _executor.get()
    if executor is not None:
        return executor.submit(task.fn, first, *args)
    from prefect.utilities.annotations import quote

    return task.submit(quote(first), *args)


def run_flow(flow: Any, max_workers: int, **parameters: Any) -> Any:
    """The flow on Prefect when a server is configured; else its function, with plain tasks."""
    if prefect_server_configured():
        return flow(**parameters)
    with plain_tasks(max_workers):
        return flow.fn(**parameters)


