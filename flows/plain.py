"""Running a flow without a Prefect server: the same flow body, its tasks on a plain thread pool.

A Prefect flow called with no configured server starts Prefect's temporary API server (8–20 s on this project's
machine, 55 s under load, and a process that a terminal's Ctrl-C kills under the command's feet). Nobody looks at
that server's UI. So the command line runs a flow on Prefect only when a server is configured (PREFECT_API_URL,
in the environment or the active Prefect profile); otherwise it calls the flow's function itself and `submit_task`
hands each task's function to a thread pool. Recording, logging, summaries and the run's counts are the flow's
own, either way.

Importing Prefect alone costs 1.7 s (2.5 s under load): a command that runs without a server must not pay it. So the
flows are declared with `prefect_flow` / `prefect_task` below, which keep the plain function and build the Prefect
flow or task on first use (a call, `.submit`, `.to_deployment`); nothing here imports Prefect before that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_executor: ContextVar[ThreadPoolExecutor | None] = ContextVar("gongkai_plain_executor", default=None)


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


class _Lazy:
    """A plain function and the options of its Prefect flow or task, built on first use. Options given as callables
    without arguments (a task runner) are called then too."""

    def __init__(self, fn: Callable[..., Any], kind: str, options: dict[str, Any]) -> None:
        self.fn = fn
        self._kind = kind
        self._options = options
        self._built: Any = None
        self.__name__ = getattr(fn, "__name__", kind)
        self.__doc__ = fn.__doc__

    def prefect(self) -> Any:
        if self._built is None:
            import prefect

            options = {k: (v() if k in ("task_runner",) and callable(v) else v) for k, v in self._options.items()}
            if options.get("cache_policy") == "none":
                from prefect.cache_policies import NO_CACHE

                options["cache_policy"] = NO_CACHE
            self._built = getattr(prefect, self._kind)(self.fn, **options)
        return self._built

    def __getattr__(self, name: str) -> Any:  # submit, to_deployment, name, with_options …: Prefect's own
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.prefect(), name)


class LazyFlow(_Lazy):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.prefect()(*args, **kwargs)


class LazyTask(_Lazy):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def prefect_flow(**options: Any) -> Callable[[Callable[..., Any]], LazyFlow]:
    """Like `@prefect.flow(...)`, built on first use (calling it runs it on Prefect; `.fn` is the plain function)."""
    return lambda fn: LazyFlow(fn, "flow", options)


def prefect_task(**options: Any) -> Callable[[Callable[..., Any]], LazyTask]:
    """Like `@prefect.task(...)`, built on first use; `cache_policy="none"` stands for Prefect's NO_CACHE."""
    return lambda fn: LazyTask(fn, "task", options)


def submit_task(task: Any, first: Any, *args: Any) -> Any:
    """Submit a task: on the plain pool inside `plain_tasks`, else as a Prefect task (its first argument, the shared
    pipeline or crawl context, passed unchanged: `quote` keeps Prefect from walking it)."""
    executor = _executor.get()
    if executor is not None:
        return executor.submit(task.fn, first, *args)
    from prefect.utilities.annotations import quote

    built = task.prefect() if isinstance(task, LazyTask) else task
    return built.submit(quote(first), *args)


def run_flow(flow: Any, max_workers: int, **parameters: Any) -> Any:
    """The flow on Prefect when a server is configured; else its function, with plain tasks."""
    from gongkai.prefect_server import prefect_server_configured

    if prefect_server_configured():
        return flow(**parameters)
    with plain_tasks(max_workers):
        return flow.fn(**parameters)


