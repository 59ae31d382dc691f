"""The parent's CPU per file in a crawl over crawler processes (crawler/processes.py), apart from the ingest itself.

    .venv/bin/python benchmarks/bench_crawl_parent.py                  # 2 children × 2,500 files, paced
    .venv/bin/python benchmarks/bench_crawl_parent.py --files 1000 --pace 0

crawl_in_processes as the flows call it, with two stand-in children: each is the real ParentLink over the real pipe,
sending what a 1,000-host first crawl of bench_polite_crawl.py sends per file (one of the five benchmark documents,
12-293 kB, stored by the child in the shared archive, a temporary folder, and sent as its digest; 2.2 crawl-state
updates and 1.4 progress events), from `ingest_workers` threads that each wait for the answer and pause `--pace`
seconds between files (a real crawl's files trickle in: a blocking wait per message costs the parent more than a
burst). The parent's ingest only builds the outcome (it stores nothing), so what is measured is the parent's own
share: reading each message, reading the file back from the archive (its digest checked), handing it to an ingest
thread, applying the state, answering. Printed: the parent's CPU seconds (user, system) and per file, the children's
CPU, the load average. (Before the children stored their files, each file's bytes followed its header on the pipe:
run this file of an earlier version for the comparison.)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_crawl  # noqa: E402  (the benchmark's documents)

from gongkai.crawler import processes  # noqa: E402
from gongkai.crawler.crawl import CrawlContext, Documents  # noqa: E402
from gongkai.crawler.registry import Portal  # noqa: E402
from gongkai.crawler.state import CrawlState, pack  # noqa: E402
from gongkai.warehouse import IngestOutcome, open_archive  # noqa: E402

AGENCY = "示例市第7局"


def documents() -> list[bytes]:
    return [bench_crawl.unique(name, kind, 7, 2020) for name, kind in bench_crawl.KINDS]


def stand_in_child(conn: Any, parent_pid: int, files: int, pace: float) -> None:
    """A crawler child without a crawl: its ParentLink sends a crawl's stream of files, updates and events."""
    kind, plan = conn.recv()
    link = processes.ParentLink(conn, plan.portals, plan.ingest_timeout, open_archive(plan.archive))
    data, portal = documents(), plan.portals[0]
    numbers = iter(range(files))
    lock = threading.Lock()
    link.send(("ready",))
    started = time.process_time()

    def work() -> None:
        while True:
            with lock:
                i = next(numbers, None)
            if i is None:
                return
            url = f"http://127.0.0.1:1/a{i}/202103/P0{i}.pdf"
            if i % 5 == 0:  # a listing page: its items submitted, its state kept
                link.event("submitted", 5)
                link.state(f"http://127.0.0.1:1/a{i}/index.html", pack('"v1"', None, [{"url": url, "title": AGENCY * 3}] * 3))
            link.state(url + ".html", pack('"v1"', None, {"attachments": [[url, "附件"]], "agency": AGENCY}))
            link.ingest(data[i % len(data)], name="report.pdf", url=url, agency=AGENCY, year=2020, portal=portal)
            link.state(url, pack('"v1"', None, None))
            link.event("done", 1)
            time.sleep(pace)

    threads = [threading.Thread(target=work) for _ in range(plan.ingest_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu_ms = int((time.process_time() - started) * 1000)
    link.send(("done", processes.ChildResult(portals={}, rejected=[], noted=[], documents=Documents(), requests=0, hosts={},
                                              scheduler={"child_cpu_ms": cpu_ms})))


class _StandIn:
    """child_main's stand-in, picklable for spawn (a module-level class of this script, its settings as attributes)."""

    def __init__(self, files: int, pace: float) -> None:
        self.files, self.pace = files, pace

    def __call__(self, conn: Any, parent_pid: int) -> None:
        stand_in_child(conn, parent_pid, self.files, self.pace)


class _Counts:
    """The parent's fetcher as crawl_in_processes reads it: the children's request counts only."""

    def __init__(self) -> None:
        self._lock, self.requests_sent = threading.Lock(), 0
        self._stats: dict[str, Any] = {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2500, help="files per child")
    parser.add_argument("--pace", type=float, default=0.04, help="seconds an ingest thread of a child waits between files")
    parser.add_argument("--ingest-workers", type=int, default=8, help="files each child has in flight (as the benchmark)")
    args = parser.parse_args()

    processes.child_main = _StandIn(args.files, args.pace)
    portals = [Portal(f"p{i}", AGENCY, "110007", "department", "trs", (f"http://127.0.0.1:{i + 1}/",),
                      frozenset({f"127.0.0.1:{i + 1}"})) for i in range(2)]

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Portal,
               archived: str | None = None) -> IngestOutcome:
        return IngestOutcome(archived or "0" * 64, "new", name, agency=agency, year=year, url=url, portal=portal.id)

    ctx = CrawlContext(_Counts(), CrawlState(None), ingest)  # type: ignore[arg-type]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-crawl-parent-") as folder:
        archive = open_archive(folder)
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        summary = processes.crawl_in_processes(portals, ctx, processes=2, make_fetcher=None,  # type: ignore[arg-type]
                                               archive=archive, ingest_workers=args.ingest_workers)
        after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    files = 2 * args.files
    print(f"parent: {user:.2f} user + {system:.2f} system CPU-s = {(user + system) / files * 1e6:.0f} µs per file "
          f"({files} files, {len(ctx.state)} state entries); children {summary['scheduler'].get('child_cpu_ms', 0) / 1000:.2f} "
          f"CPU-s; wall {time.perf_counter() - started:.1f} s; load {load:.1f} / {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
