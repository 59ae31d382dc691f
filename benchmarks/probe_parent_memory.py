"""What the PARENT of a multi-process crawl holds at its peak: bench_polite_crawl's portal and crawl over crawler
processes (crawler.processes), the parent sampled while it runs.

    .venv/bin/python benchmarks/probe_parent_memory.py --hosts 1000 [--processes 2] [--archive DIR] [--trace] [--frames 1]

Every 0.05 s: the parent's RSS (/proc/self/statm) and glibc's heap (mallinfo2: arena, mmapped, in use, free but kept);
at the RSS peak /proc/self/smaps_rollup. Printed per phase (imports, each run, and within a run the crawl state's load, each
child's share of it, the merge of the children's results, the state's save, and what follows each): the RSS at its
start and the peak within it, so what each step adds is told from what the imports hold (--timeline: every 0.25 s).
Python's small objects live in its own arenas (1 MiB mappings, not in mallinfo): sys._debugmallocstats() tells them. With --trace,
tracemalloc's snapshot at the largest traced memory, grouped by file:line (--frames 1) or traceback (--frames N);
tracemalloc slows the parent: read RSS figures without it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_polite_crawl as bench  # noqa: E402
from probe_crawl_memory import PeakSampler, mallinfo, rss  # noqa: E402


def hwm() -> int:
    """This process's peak RSS so far (bytes), as the kernel keeps it: what getrusage's ru_maxrss reports."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler(PeakSampler):
    def __init__(self, trace: bool) -> None:
        super().__init__(trace, 0.05)
        self.phase = "imports"
        self.phases: dict[str, dict[str, float]] = {}
        self.timeline: list[tuple[str, float, float, float, float]] = []  # (phase, s, RSS MB, heap in use MB, mmapped MB)
        self._t0 = time.monotonic()
        self.snapshots: dict[str, tracemalloc.Snapshot] = {}
        self.enter("imports")
        self._thread.start()

    def enter(self, phase: str) -> None:
        now = rss() / 1e6
        # the kernel's own peak so far (VmHWM): a spike between two samples (a few 0.05 s) shows as a rise in it
        self.phases[phase] = {"start_mb": round(now, 1), "peak_mb": round(now, 1), "hwm_mb": round(hwm() / 1e6, 1)}
        if self.trace:  # what Python holds as the phase begins (tracemalloc's peak since the last phase: its spike)
            held, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            self.phases[phase] |= {"traced_mb": round(held / 1e6, 1), "traced_peak_before_mb": round(peak / 1e6, 1)}
            self.snapshots[phase] = tracemalloc.take_snapshot()
        self.phase = phase  # after its entry: the sampling thread reads it

    def _watch(self) -> None:
        ticks = 0
        while not self._stop.wait(self.every):
            now = rss()
            ticks += 1
            if ticks % 5 == 0:
                info = mallinfo()
                self.timeline.append((self.phase, round(time.monotonic() - self._t0, 1), round(now / 1e6, 1),
                                      round(info.get("uordblks", 0) / 1e6, 1), round(info.get("hblkhd", 0) / 1e6, 1)))
            phase = self.phases[self.phase]
            phase["peak_mb"] = max(phase["peak_mb"], round(now / 1e6, 1))
            self._rss_peak(now, lambda: {"phase": self.phase, **{k: round(v / 1e6, 1) for k, v in mallinfo().items()}})
            if self.trace:
                self._traced_peak()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--archive", help="the archive in a new folder under this one (default: TMPDIR)")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--held-at", default="after first", help="with --trace: what is held as this phase begins")
    parser.add_argument("--timeline", action="store_true", help="print the RSS every 0.25 s")
    args = parser.parse_args()
    bench.raise_fd_limit(4 * args.hosts + 1024)
    # what the bench's parent imports before its first crawl (the crawl's modules and Politeness)
    import gongkai.crawler.politeness  # noqa: F401
    import gongkai.crawler.processes  # noqa: F401

    server, ports, control = bench.start_portal(args.hosts)
    if args.trace:
        tracemalloc.start(args.frames)
    sampler = Sampler(args.trace)
    from gongkai.crawler import processes
    from gongkai.crawler.state import CrawlState

    def phased(name: str, fn: Any) -> Any:  # the crawl's end apart: merging the children's results, saving the state
        def wrapped(*a: Any, **k: Any) -> Any:
            back = sampler.phase.split(":")[0]  # the run ("first", "second"): its steps named after it
            sampler.enter(f"{back}: {name}")
            try:
                return fn(*a, **k)
            finally:
                sampler.enter(f"{back}: after {name}")

        return wrapped

    processes._merge = phased("merge", processes._merge)  # type: ignore[attr-defined]
    CrawlState.save = phased("state save", CrawlState.save)  # type: ignore[method-assign]
    CrawlState.__init__ = phased("state load", CrawlState.__init__)  # type: ignore[method-assign]
    processes._state_entries = phased("a plan's entries", processes._state_entries)  # type: ignore[attr-defined]
    runs = []
    with tempfile.TemporaryDirectory(prefix="gongkai-probe-") as tmp, \
            tempfile.TemporaryDirectory(prefix="gongkai-probe-archive-", dir=args.archive or tmp) as archive:
        reg = Path(tmp) / "registry.toml"
        reg.write_text(bench.registry(ports), "utf-8")
        for label in ("first", "second"):
            sampler.enter(label)
            started, cpu = time.perf_counter(), time.process_time()
            out = bench.crawl_only(reg, Path(tmp), 128, args.processes, Path(archive))
            runs.append((label, out["requests"], round(time.perf_counter() - started, 1), round(time.process_time() - cpu, 1),
                         out["counts"], out["failed_portals"]))
            sampler.enter(f"after {label}")
            time.sleep(0.2)
    sampler.stop()
    control.send("stop")
    server.join(5)
    print(f"hosts {args.hosts}, {args.processes} processes: runs (label, requests, wall s, parent CPU s, counts, failed) {runs}")
    print(f"parent peak RSS {sampler.peak_rss / 1e6:.1f} MB (getrusage {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB)")
    print("phases (RSS MB at start, peak; VmHWM at start):", sampler.phases)
    print("at the RSS peak:", sampler.at_peak)
    if args.timeline:
        print("timeline (phase, s, RSS MB, heap in use MB, mmapped MB):", sampler.timeline)
    print("\n".join(line for line in sampler.rollup.splitlines()
                    if line.split(":")[0] in ("Rss", "Anonymous", "Pss_File", "Shared_Clean", "Private_Dirty")))
    if args.held_at in sampler.snapshots:
        print(f"held as {args.held_at!r} begins, against the imports':")
        stats = sampler.snapshots[args.held_at].compare_to(sampler.snapshots["imports"], "lineno" if args.frames == 1 else "traceback")
        for stat in stats[: args.top]:
            print(f"{stat.size_diff / 1e3:9.0f} kB {stat.count_diff:7d}  " + " <- ".join(
                f"{Path(fr.filename).name}:{fr.lineno}" for fr in stat.traceback))
    if sampler.snapshot is not None:
        print(f"traced peak {sampler.peak_traced / 1e6:.1f} MB")
        key = "lineno" if args.frames == 1 else "traceback"
        stats = sampler.snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]).statistics(key)
        for stat in stats[: args.top]:
            print(f"{stat.size / 1e3:9.0f} kB {stat.count:7d}  " + " <- ".join(
                f"{Path(fr.filename).name}:{fr.lineno}" for fr in stat.traceback))
    return 0


if __name__ == "__main__":
    sys.exit(main())
