"""What the crawl holds at its peak, per host: bench_polite_crawl's portal and crawl (one process), sampled while it runs.

    .venv/bin/python benchmarks/probe_crawl_memory.py --hosts 1000 [--trace] [--frames 1] [--top 30] [--at S] [--spike-mb M]

Every 0.1 s: RSS (/proc/self/statm), and with --trace the memory traced by tracemalloc; at the largest traced memory
a snapshot is kept and printed grouped by file:line (--frames 1) or by traceback (--frames N), with /proc/self/smaps_rollup
at the RSS peak. tracemalloc slows the crawl (so fewer hosts may be in progress at once): compare sizes under the same
flags, and read the peak RSS without --trace. --at S: the snapshot S seconds in (all hosts in progress) instead of at
the traced peak, to compare sizes; --spike-mb M: when glibc's mmapped blocks (each 128 kB or more) pass M MB, the
allocations of 128 kB or more then (tracemalloc's own tables are mmapped too: read it with care).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_polite_crawl as bench  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
SCHEDULERS: list = []  # the run's scheduler, to sample what it holds


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def mallinfo() -> dict[str, int]:
    """glibc's malloc: heap bytes from the system (arena), mmapped (hblkhd), in use (uordblks), free but kept (fordblks)."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    info = fn()
    return {k: getattr(info, k) for k in ("arena", "hblkhd", "uordblks", "fordblks")}


def held() -> dict[str, int]:
    if not SCHEDULERS:
        return {}
    s = SCHEDULERS[0]
    pool = s._parse_pool
    return {"fetching": s._fetching, "parse_queue": pool._tasks.qsize() if pool else 0, "ingesting": s._ingesting,
            "ingest_waiting": len(s._ingest_waiting), "queues": len(s._queues), "slots": len(s.slots._hosts),
            "pools": len(s.ctx.fetcher._adapter.poolmanager.pools),
            "conditions": sum(1 for h in list(s.slots._hosts.values()) if getattr(h, "changed", None) is not None)}


def anonymous_by_kind() -> dict[str, float]:
    """Resident anonymous memory (MB) by the size of its mapping, read from /proc/self/smaps: thread stacks (8 MB, glibc's
    default), glibc's thread arenas (64 MB reserved each), the main heap ([heap]), and the rest (pymalloc's 1 MB arenas,
    glibc's mmapped blocks, lxml's)."""
    kinds: dict[str, float] = {}
    size = 0
    name = ""
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                start, end = (int(x, 16) for x in first.split("-"))
                size = end - start
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif first == "Anonymous:":
                kb = int(line.split()[1])
                if not kb:
                    continue
                if name == "[heap]":
                    kind = "heap"
                elif name:
                    kind = "other named"
                elif size == 8 * 1024 * 1024:
                    kind = "thread stacks"
                elif size in (64 * 1024 * 1024, 128 * 1024 * 1024) or size % (64 * 1024 * 1024) == 0:
                    kind = "glibc arenas"
                elif size == 1024 * 1024:
                    kind = "1 MB (pymalloc arenas)"
                else:
                    kind = "other"
                kinds[kind] = kinds.get(kind, 0.0) + kb / 1024
    return {k: round(v, 1) for k, v in sorted(kinds.items())}


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakSampler:
    """A thread sampling this process every `every` s (`_watch`, its subclass's) and what both probes keep at the peaks:
    smaps_rollup and `at_peak` at the largest RSS, tracemalloc's snapshot at the largest traced memory."""

    def __init__(self, trace: bool, every: float) -> None:
        self.trace, self.every = trace, every
        self.peak_rss = 0
        self.peak_traced = 0
        self.snapshot: tracemalloc.Snapshot | None = None
        self.rollup = ""
        self.at_peak: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        raise NotImplementedError

    def _rss_peak(self, now: int, at_peak: Callable[[], dict[str, Any]]) -> None:
        if now > self.peak_rss:
            self.peak_rss = now
            with open("/proc/self/smaps_rollup") as f:
                self.rollup = f.read()
            self.at_peak = {"rss_mb": round(now / 1e6, 1), **at_peak(), "threads": threading.active_count()}

    def _traced_peak(self) -> None:
        traced = tracemalloc.get_traced_memory()[0]
        if traced > self.peak_traced * 1.03:
            self.peak_traced = traced
            self.snapshot = tracemalloc.take_snapshot()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Sampler(PeakSampler):
    def __init__(self, trace: bool, spike_mb: float = 0.0, at_s: float = 0.0) -> None:
        super().__init__(trace, 0.1)
        self.spike_mb, self.at_s = spike_mb, at_s
        self.spike: tuple[str, tracemalloc.Snapshot] | None = None
        self.timeline: list[tuple[int, float, int, int, int, float, int]] = []
        self._thread.start()

    def _watch(self) -> None:
        ticks = 0
        while not self._stop.wait(self.every):
            now = rss()
            ticks += 1
            if ticks % 10 == 0 and SCHEDULERS:
                sch = SCHEDULERS[0]
                self.timeline.append((ticks // 10, round(now / 1e6, 1), len(sch.ctx.state), sch._fetching,
                                      len(sch._queues), round(mallinfo().get("hblkhd", 0) / 1e6, 1),
                                      held().get("parse_queue", 0)))
            self._rss_peak(now, lambda: {**held(), **{k: round(v / 1e6, 1) for k, v in mallinfo().items()},
                                         **anonymous_by_kind()})
            if self.trace and self.spike_mb and not self.spike:
                mapped = mallinfo().get("hblkhd", 0) / 1e6
                if mapped > self.spike_mb:  # large blocks (mmapped, >= 128 kB): who holds them now
                    self.spike = f"{mapped:.1f} MB mmapped", tracemalloc.take_snapshot()
            if self.trace and self.at_s and self.snapshot is None and ticks >= self.at_s * 10:
                self.snapshot = tracemalloc.take_snapshot()  # what is held this far into the crawl
            if self.trace and not self.at_s:
                self._traced_peak()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--portals-in-progress", type=int, default=0, help="the scheduler's admission (0: derived)")
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--at", type=float, default=0.0, help="with --trace: the snapshot this many seconds in, not at the peak")
    parser.add_argument("--spike-mb", type=float, default=0.0,
                        help="with --trace: when glibc's mmapped blocks pass this, list the large allocations held then")
    args = parser.parse_args()
    bench.raise_fd_limit(4 * args.hosts + 1024)
    server, ports, control = bench.start_portal(args.hosts)
    from gongkai.crawler.scheduler import CrawlScheduler

    original = CrawlScheduler.__init__

    def remembered(self, *a, **k):  # type: ignore[no-untyped-def]
        original(self, *a, **k)
        SCHEDULERS.append(self)

    CrawlScheduler.__init__ = remembered  # type: ignore[method-assign]
    if args.trace:
        tracemalloc.start(args.frames)
    base = rss()
    sampler = Sampler(args.trace, args.spike_mb, args.at)
    with tempfile.TemporaryDirectory(prefix="gongkai-probe-") as tmp:
        reg = Path(tmp) / "registry.toml"
        reg.write_text(bench.registry(ports), "utf-8")
        started, cpu = time.perf_counter(), time.process_time()
        out = bench.crawl_only(reg, Path(tmp), 128, portals_in_progress=args.portals_in_progress)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    sampler.stop()
    control.send("stop")
    server.join(5)
    print(f"hosts {args.hosts}: requests {out['requests']}, wall {wall:.1f} s, CPU {cpu:.1f} s, RSS before {base / 1e6:.1f} MB, "
          f"peak {sampler.peak_rss / 1e6:.1f} MB (getrusage: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}), traced peak {sampler.peak_traced / 1e6:.1f} MB, scheduler {out['scheduler']}")
    print("at the RSS peak:", sampler.at_peak)
    print("timeline (s, RSS MB, state entries, fetching, host queues, mmapped MB, pages waiting for a parser):", sampler.timeline)
    print("\n".join(line for line in sampler.rollup.splitlines() if line.split(":")[0] in ("Rss", "Anonymous", "Pss_File", "Shared_Clean", "Private_Dirty")))
    if sampler.snapshot is not None:
        key = "lineno" if args.frames == 1 else "traceback"
        snap = sampler.snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        stats = snap.statistics(key)
        by_file = snap.statistics("filename")
        print(f"traced in the snapshot: {sum(s.size for s in by_file) / 1e6:.1f} MB; by file: " + ", ".join(
            f"{Path(s.traceback[0].filename).name} {s.size / 1e3:.0f} kB" for s in by_file[:15]))
        for stat in stats[: args.top]:
            print(f"{stat.size / 1e3:9.0f} kB {stat.count:7d}  " + " <- ".join(
                f"{Path(fr.filename).name}:{fr.lineno}" for fr in stat.traceback))
    if sampler.spike is not None:
        label, spike = sampler.spike
        large = [t for t in spike.traces if t.size >= 128 * 1024]
        print(f"spike: {label}, {len(large)} allocations of 128 kB or more, {sum(t.size for t in large) / 1e6:.1f} MB:")
        grouped: dict[str, list[int]] = {}
        for t in large:
            where = " <- ".join(f"{Path(fr.filename).name}:{fr.lineno}" for fr in t.traceback)
            grouped.setdefault(where, []).append(t.size)
        for where, sizes in sorted(grouped.items(), key=lambda kv: -sum(kv[1]))[: args.top]:
            print(f"{sum(sizes) / 1e3:9.0f} kB {len(sizes):5d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
