"""Linux scheduling policies of a crawl's threads (crawler.scheduler.CrawlScheduler.run): SCHED_BATCH while a crawl
runs, and the process's own policy for what outlives it (a worker process started from a crawl thread)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# set once batch_scheduling has put a thread of this process under SCHED_BATCH: a thread found under it since may owe
# it to a crawl (a thread inherits its creator's policy) rather than to the command (chrt -b: then no crawl switches)
_batched_by_a_crawl = False


def _switch(policy_from: int | None, policy_to: int | None) -> bool:
    """The calling thread (0: the thread on Linux, not the process) from `policy_from` to `policy_to`: whether it was."""
    if policy_from is None or policy_to is None:
        return False
    try:
        if os.sched_getscheduler(0) != policy_from:
            return False
        os.sched_setscheduler(0, policy_to, os.sched_param(0))
    except OSError:  # refused (a container's seccomp profile): the policy as it is
        return False
    return True


@contextmanager
def _switched(policy_from: int | None, policy_to: int | None) -> Iterator[bool]:
    """The calling thread from `policy_from` to `policy_to` while the block runs, if it is under `policy_from`; gives
    whether it was switched."""
    # the block runs outside any try of the switch: an OSError of the block's own is not taken for a refused switch
    # (caught there, the generator yielded again: "generator didn't stop after throw()" instead of the crawl's error)
    if not _switch(policy_from, policy_to):
        yield False
        return
    try:
        yield True
    finally:
        if not _switch(policy_to, policy_from):  # (the same call succeeded a moment ago)
            log.debug("the thread's scheduling policy could not be put back")


@contextmanager
def batch_scheduling() -> Iterator[None]:
    """The calling thread, and every thread it starts meanwhile (a new thread inherits its creator's policy), under
    Linux's SCHED_BATCH while the block runs; the calling thread's policy put back after it (a long-lived thread a crawl
    thread started, the fetcher's deadline watch, keeps it; a process started meanwhile is given the process's policy
    by `unbatched`). A crawl is a hundred threads handing the GIL, tasks and events to each other: under the default
    policy each wake-up (a response arrived, a task queued, the GIL released) preempts the thread that made it, which
    holds the GIL or is about to want it back. SCHED_BATCH is SCHED_OTHER (the same share of the CPU, the same nice)
    without that wake-up preemption. Measured by benchmarks/probe_crawl_threads.py --hosts 300 (the first run, before
    and after alternately, three pairs): the crawler's CPU 1.69 -> 1.42 ms a request, context switches 31 -> 15 a
    request. Only from SCHED_OTHER (a policy chosen for the process, e.g. SCHED_IDLE, is kept); a no-op where there is
    none."""
    global _batched_by_a_crawl
    with _switched(getattr(os, "SCHED_OTHER", None), getattr(os, "SCHED_BATCH", None)) as switched:
        _batched_by_a_crawl = _batched_by_a_crawl or switched
        yield


@contextmanager
def unbatched() -> Iterator[None]:
    """The calling thread under SCHED_OTHER while the block runs if a crawl put it (or the thread that started it) under
    SCHED_BATCH: for starting a process that outlives the crawl (a process inherits its creator thread's policy), e.g.
    the extraction pool's workers, started at its first use, which in a one-process crawl is an ingest thread."""
    if not _batched_by_a_crawl:
        yield
        return
    with _switched(getattr(os, "SCHED_BATCH", None), getattr(os, "SCHED_OTHER", None)):
        yield
