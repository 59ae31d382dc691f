"""The fetcher's politeness settings, and the fetcher made of them: in a module of its own, light to import,
because a crawler process (crawler/processes.py) is handed `Politeness.fetcher` in its plan and imports the module
it is defined in before its first request (flows.crawl, where it is used, imports the settings, pydantic and the
extraction pipeline)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gongkai.crawler.fetcher import Fetcher
from gongkai.crawler.host_limits import PrefectHostGate, ensure_host_limits, hosts_held
from gongkai.crawler.scheduler import HostSlots

if TYPE_CHECKING:
    from gongkai.settings import Settings


@dataclass
class Politeness:
    """Fetcher settings; the defaults are for real portals (the demo and the benchmark turn the delay off)."""

    delay: float = 1.0
    concurrency: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    max_bytes: int = 50 * 1024 * 1024
    prefect_limits: bool = False  # per-host limits as Prefect global concurrency limits (across processes)
    host_leases: bool = False  # each host held by this crawl alone on the Prefect server (shards: whole hosts each)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Politeness:
        """The settings' values, with the caller's (command-line flags, the demo's) where given."""
        return cls(**(settings.politeness() | {k: v for k, v in overrides.items() if v is not None}))

    def hosts_held(self, hosts: frozenset[str], timeout_s: float) -> Any:
        """While the crawl runs: its hosts held against other runs (`host_leases`), or nothing to hold."""
        return hosts_held(hosts, self.delay, timeout_s) if self.host_leases else nullcontext()

    def fetcher(self, hosts: frozenset[str]) -> Fetcher:
        inner = None
        if self.prefect_limits:
            ensure_host_limits(sorted(hosts), self.concurrency, self.delay)
            inner = PrefectHostGate(self.delay)
        # the crawl scheduler's per-host slots: the scheduler gives turns, every request of the fetcher takes one
        gate = HostSlots(self.concurrency, self.delay, inner=inner)
        return Fetcher(hosts, delay=self.delay, concurrency=self.concurrency, timeout=(self.connect_timeout, self.read_timeout),
                       retries=self.retries, backoff=self.backoff, max_bytes=self.max_bytes, gate=gate)
