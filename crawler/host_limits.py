"""Per-host politeness enforced by the Prefect server: global concurrency limits, strict.

The fetcher's own per-host gate holds within one process. When several flow runs may crawl at once
(a backfill while the nightly runs, several workers), the limits must live on the server: each host
gets a concurrency limit (requests in flight) and a rate limit (slot decay = 1 / delay), and every
request takes a slot of both. strict=True: a missing limit is an error, never an unthrottled request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager


def limit_names(host: str) -> tuple[str, str]:
    slug = re.sub(r"[^a-z0-9-]+", "-", host.lower())
    return f"gongkai-host-{slug}", f"gongkai-rate-{slug}"


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
