"""Per-host politeness enforced by the Prefect server: global concurrency limits, strict.

The fetcher's own per-host gate holds within one process. When several flow runs may crawl at once
(a backfill while the nightly runs, several workers), the limits must live on the server: each host
gets a concurrency limit (requests in flight) and a rate limit (slot decay = 1 / delay), and every
request takes a slot of both. strict=True: a missing limit is an error, never an unthrottled request.
That costs about 3 calls to the server per request (benchmarks/bench_prefect_limits.py).

`hosts_held` is the cheap way when whole hosts go to one crawler (the shards of a run split by host): one lock per
host (a limit of 1), all of a crawl's hosts taken in one call for the whole crawl (Prefect takes them all or none,
so two runs never deadlock) and renewed as one lease, the crawler's own per-host slots keeping the delay and the
requests in flight. A host is then crawled by one process at a time, whatever runs at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager


def limit_names(host: str) -> tuple[str, str]:
    slug = re.sub(r"[^a-z0-9-]+", "-", host.lower())
    return f"gongkai-host-{slug}", f"gongkai-rate-{slug}"


LEASE_S = 60.0  # renewed every 45 s while the crawl runs; Prefect's server takes no less


def lock_name(host: str) -> str:
    return f"gongkai-crawl-{re.sub(r'[^a-z0-9-]+', '-', host.lower())}"


class HostsBusy(RuntimeError):
    """Another run held some of this crawl's hosts for longer than it may wait."""


@contextmanager
def hosts_held(hosts: Iterable[str], delay: float, timeout_s: float) -> Iterator[None]:
    """Hold every host's crawl lock while the block runs (waiting up to `timeout_s` for a run that holds some of
    them: HostsBusy). After taking them, one `delay` passes before the block starts: the last request of the run
    that held a host before is at least that far back."""
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    names = sorted({lock_name(host) for host in hosts})
    if not names:
        yield
        return
    with get_client(sync_client=True) as client:
        for name in names:
            client.upsert_global_concurrency_limit_by_name(name, 1)
    with ExitStack() as held:
        try:
            # the shortest lease the server grants: a killed crawl's hosts are free again within about a minute
            held.enter_context(concurrency(names, occupy=1, timeout_seconds=timeout_s, strict=True, lease_duration=LEASE_S))
        except TimeoutError as exc:
            raise HostsBusy(f"{len(names)} hosts: another run held some of them for more than {timeout_s:.0f} s") from exc
        time.sleep(delay)
        yield


def ensure_host_limits(hosts: list[str], concurrency: int, delay: float) -> None:
    """Create or update each host's limits on the Prefect server (idempotent)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for host in hosts:
            in_flight, rate = limit_names(host)
            client.upsert_global_concurrency_limit_by_name(in_flight, concurrency)
            if delay > 0:
                client.upsert_global_concurrency_limit_by_name(rate, 1, slot_decay_per_second=1.0 / delay)


class PrefectHostGate:
    """A Fetcher gate: `with gate(host):` around each request."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    @contextmanager
    def __call__(self, host: str) -> Iterator[None]:
        from prefect.concurrency.sync import concurrency, rate_limit

        in_flight, rate = limit_names(host)
        if self.delay > 0:
            rate_limit(rate, strict=True)
        with concurrency(in_flight, occupy=1, strict=True):
            yield
