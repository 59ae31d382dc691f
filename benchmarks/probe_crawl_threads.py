"""Where the one-process crawl's CPU goes, by kind of thread: bench_polite_crawl's portal and crawl, each thread's own
CPU (user, system) and context switches, exact (getrusage(RUSAGE_THREAD) as each worker thread ends, and around the
run in the driver's thread).

    .venv/bin/python benchmarks/probe_crawl_threads.py --hosts 1000 [--runs 2]

Run 1 is the first crawl (pages parsed, files archived), run 2 the one with nothing changed (conditional requests
only). A voluntary switch is a thread that blocked: on a socket, a lock, a queue, or waiting for the GIL after any
call that gave it up; an involuntary one, a thread the kernel preempted. Under the GIL each such wait costs CPU
(futex calls, the switch, caches) beyond the work itself: compare the per-request figures across changes, on the
same machine load (printed beside them).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_polite_crawl as bench  # noqa: E402

FIELDS = ("threads", "user_s", "sys_s", "voluntary", "involuntary")


class ThreadUsage:
    """Each crawl worker thread's own usage as it ends, summed by pool name (gongkai-fetch, gongkai-parse, ...)."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0, 0])
        self._lock = threading.Lock()

    def add(self, kind: str, usage: resource.struct_rusage) -> None:
        with self._lock:
            row = self.by_kind[kind]
            row[0] += 1
            row[1] += usage.ru_utime
            row[2] += usage.ru_stime
            row[3] += usage.ru_nvcsw
            row[4] += usage.ru_nivcsw

    @contextmanager
    def watching_workers(self) -> Iterator[None]:
        """Workers._work wrapped: its thread's usage recorded when it ends (the pools are shut down at a run's end)."""
        from gongkai.crawler.scheduler import Workers

        original = Workers._work

        def work(pool: Any) -> None:
            try:
                original(pool)
            finally:
                self.add(pool.name, resource.getrusage(resource.RUSAGE_THREAD))

        Workers._work = work  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            Workers._work = original  # type: ignore[method-assign]


def _minus(after: resource.struct_rusage, before: resource.struct_rusage) -> list[float]:
    return [1, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, after.ru_nvcsw - before.ru_nvcsw,
            after.ru_nivcsw - before.ru_nivcsw]


def run_once(reg: Path, folder: Path) -> dict[str, Any]:
    usage = ThreadUsage()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    process, driver = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_THREAD)
    with usage.watching_workers():
        out = bench.crawl_only(reg, folder, 128)
    rows = dict(usage.by_kind)
    rows["driver"] = _minus(resource.getrusage(resource.RUSAGE_THREAD), driver)
    total = _minus(resource.getrusage(resource.RUSAGE_SELF), process)
    rows["other"] = [0] + [t - sum(r[i] for r in rows.values()) for i, t in enumerate(total) if i]  # deadlines, GC...
    rows["process"] = total
    return {"requests": out["requests"], "wall_s": time.perf_counter() - started, "load": load, "rows": rows}


def report(run: int, result: dict[str, Any]) -> None:
    requests = max(1, result["requests"])
    print(f"run {run}: {result['requests']} requests, wall {result['wall_s']:.1f} s, load before {result['load']:.1f}")
    print(f"  {'threads of':<15} {'n':>4} {'user s':>7} {'sys s':>6} {'vol. sw':>8} {'invol.':>7} {'CPU ms/req':>10} {'sw/req':>7}")
    for kind, (n, user, system, vol, invol) in sorted(result["rows"].items(), key=lambda kv: kv[0] == "process"):
        print(f"  {kind:<15} {int(n):>4} {user:>7.2f} {system:>6.2f} {int(vol):>8} {int(invol):>7} "
              f"{(user + system) / requests * 1e3:>10.3f} {(vol + invol) / requests:>7.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2, choices=(1, 2))
    args = parser.parse_args()
    bench.raise_fd_limit(4 * args.hosts + 1024)
    server, ports, control = bench.start_portal(args.hosts)
    try:
        with tempfile.TemporaryDirectory(prefix="gongkai-probe-") as tmp:
            reg = Path(tmp) / "registry.toml"
            reg.write_text(bench.registry(ports), "utf-8")
            os.environ["GONGKAI_DATA"] = tmp
            for run in range(1, args.runs + 1):
                report(run, run_once(reg, Path(tmp)))
    finally:
        control.send("stop")
        server.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
