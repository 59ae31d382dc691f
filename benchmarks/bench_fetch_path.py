"""The crawler's CPU per request on the fetch path: the real Fetcher and CrawlScheduler over the polite-crawl
benchmark's portal (one asyncio process, M loopback ports, no latency), delay 0, two checkouts side by side in one
run (old, new, old, new, ...), so the load of the machine hits both alike.

    .venv/bin/python benchmarks/bench_fetch_path.py --old main          # a git ref (exported to a temp dir) ...
    .venv/bin/python benchmarks/bench_fetch_path.py --old /path/to/checkout --new . --hosts 200 --rounds 3

    .venv/bin/python benchmarks/bench_fetch_path.py --old main --single     # Fetcher.fetch alone, per kind

Each client process (PYTHONPATH = its checkout) runs one first crawl of every host (robots.txt, listing, detail
pages, documents: archived, not extracted), then `--repeats` crawls with nothing changed (conditional requests, 304
each). Its CPU (time.process_time: every thread of the crawling process) is measured from inside, per request sent
(Fetcher.requests_sent), imports and start-up excluded. The portal's CPU is its own process's, not counted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_polite_crawl  # noqa: E402  (the portal)

CONCURRENCY = 2


def client(ports: list[int], repeats: int, workers: int, delay: float = 0.0) -> dict[str, Any]:
    """In the client process: a first crawl, then `repeats` no-change crawls; CPU-ms per request of each."""
    from collections import defaultdict

    from gongkai.crawler.crawl import CrawlContext, Limits, Walk
    from gongkai.crawler.fetcher import Fetcher
    from gongkai.crawler.registry import all_hosts, load_registry
    from gongkai.crawler.scheduler import CrawlScheduler, HostSlots
    from gongkai.crawler.state import CrawlState
    from gongkai.warehouse import IngestOutcome, open_archive

    out: dict[str, Any] = {"first": None, "again": []}
    with tempfile.TemporaryDirectory(prefix="gongkai-fetch-path-") as tmp:
        folder = Path(tmp)
        reg = folder / "registry.toml"
        reg.write_text(bench_polite_crawl.registry(ports), "utf-8")
        os.environ["GONGKAI_DATA"] = tmp
        portals = load_registry(reg)
        archive = open_archive(folder / "archive")

        def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
            return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

        for run in range(1 + repeats):
            slots = HostSlots(CONCURRENCY, delay)
            fetcher = Fetcher(all_hosts(portals), delay=delay, concurrency=CONCURRENCY, retries=1, backoff=0.1, gate=slots)
            state = CrawlState(folder / "state.json")
            ctx = CrawlContext(fetcher, state, ingest)
            scheduler = CrawlScheduler(ctx, slots, workers=workers, ingest_workers=8)
            before, cpu, wall = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
            walk = scheduler.run(Walk(ctx, portals, Limits()))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = resource.getrusage(resource.RUSAGE_SELF)
            state.save()
            counts: dict[str, int] = defaultdict(int)
            for doc in walk.documents:
                counts[doc.outcome] += 1
            figures = {"requests": fetcher.requests_sent, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                       "cpu_ms_per_request": round(1000 * cpu / max(1, fetcher.requests_sent), 4),
                       "sys_ms_per_request": round(1000 * (after.ru_stime - before.ru_stime) / max(1, fetcher.requests_sent), 4),
                       "context_switches_per_request": round((after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw
                                                              - before.ru_nivcsw) / max(1, fetcher.requests_sent), 1),
                       "not_modified": sum(s["not_modified"] for s in fetcher.host_stats().values()),
                       "documents": dict(counts)}
            if run == 0:
                out["first"] = figures
            else:
                out["again"].append(figures)
    return out


SINGLE_KINDS = ("200", "304", "file")


def single(ports: list[int], count: int, repeats: int = 5) -> dict[str, Any]:
    """In the client process: the CPU (user + system, this process) of one Fetcher.fetch on one thread, no gate, no
    scheduler, keep-alive on loopback: a detail page (200), the same page with its ETag (304), a document (file);
    `count` fetches of each kind, `repeats` times, the median per kind (and its user CPU alone) in microseconds."""
    import contextlib

    import bench_crawl

    from gongkai.crawler.fetcher import Fetcher

    host = f"127.0.0.1:{ports[0]}"
    page, document = f"http://{host}/a0/202003/t20200301_2019.html", f"http://{host}/a0/202003/P02019.pdf"
    kinds: dict[str, tuple[str, dict[str, str] | None]] = {
        "200": (page, None), "304": (page, {"If-None-Match": bench_crawl.ETAG}), "file": (document, None)}
    fetcher = Fetcher([host], delay=0.0, concurrency=CONCURRENCY, retries=0, gate=lambda _host: contextlib.nullcontext())
    for url, validators in kinds.values():  # warm: robots.txt read, the connection open, every import done
        for _ in range(50):
            fetcher.fetch(url, allowed_hosts={host}, validators=validators)
    seen: dict[str, list[float]] = {}
    for _ in range(repeats):
        for kind, (url, validators) in kinds.items():
            before = resource.getrusage(resource.RUSAGE_SELF)
            for _ in range(count):
                fetcher.fetch(url, allowed_hosts={host}, validators=validators)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user = after.ru_utime - before.ru_utime
            seen.setdefault(kind, []).append(1e6 * (user + after.ru_stime - before.ru_stime) / count)
            seen.setdefault(f"{kind}_user", []).append(1e6 * user / count)
    return {kind: round(statistics.median(values), 1) for kind, values in seen.items()}


def assert_measuring(checkout: str) -> None:
    """The gongkai this client imports is its checkout's (and no other was imported before it)."""
    assert not any(name == "gongkai" or name.startswith("gongkai.") for name in sys.modules), "gongkai imported early"
    import gongkai

    where = Path(gongkai.__file__).resolve().parent
    if not where.is_relative_to(Path(checkout).resolve()):
        raise SystemExit(f"measuring {where}, not the checkout {checkout}")


def _export(ref: str, into: Path) -> Path:
    """A git ref of this repository as a checkout of its own (git archive: the package's symlinks included)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _run_client(checkout: Path, ports: list[int], repeats: int, workers: int, count: int = 0) -> dict[str, Any]:
    env = os.environ | {"PYTHONPATH": str(checkout)}
    call = f"b.single({ports!r}, {count})" if count else f"b.client({ports!r}, {repeats}, {workers})"
    # the checkout first on the path once the benchmark's modules are in: bench_polite_crawl puts this repository (ROOT)
    # first on the path when imported, and every client then measured ROOT's gongkai, whatever its checkout
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench_fetch_path as b; "
            f"sys.path.insert(0, {str(checkout)!r}); b.assert_measuring({str(checkout)!r}); print(json.dumps({call}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, timeout=1800)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="main", help="a checkout folder or a git ref (default: main)")
    parser.add_argument("--new", default=str(ROOT), help="a checkout folder (default: this one)")
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="no-change crawls per client after its first")
    parser.add_argument("--rounds", type=int, default=3, help="old/new client pairs, alternated")
    parser.add_argument("--workers", type=int, default=128)
    parser.add_argument("--single", action="store_true",
                        help="Fetcher.fetch alone on one thread: CPU-us per 200, 304 and file fetch (see single())")
    parser.add_argument("--count", type=int, default=2000, help="fetches of each kind per repeat, with --single")
    args = parser.parse_args()
    if args.single:
        args.hosts = 1
    bench_polite_crawl.raise_fd_limit(4 * args.hosts + 4 * args.workers + 256)

    ports_in, ports_out = multiprocessing.Pipe(duplex=False)
    control, control_child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=bench_polite_crawl.portal, args=(args.hosts, 0.0, ports_out, control_child),
                                     daemon=True)
    server.start()
    ports = ports_in.recv()
    with tempfile.TemporaryDirectory(prefix="gongkai-old-checkout-") as tmp:
        old = Path(args.old) if Path(args.old).is_dir() else _export(args.old, Path(tmp))
        checkouts = {"old": old, "new": Path(args.new)}
        seen: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for name, checkout in checkouts.items():
                load = os.getloadavg()[0]
                got = _run_client(checkout, ports, args.repeats, args.workers, args.count if args.single else 0)
                got |= {"load_before": round(load, 2)}
                seen[name].append(got)
                print(name, json.dumps(got), flush=True)
    control.send("stop")
    server.join(5)
    if args.single:
        print(f"\nFetcher.fetch alone, one thread, loopback; CPU-us per fetch (user+sys, and user), median of {args.rounds}:")
        for name, runs in seen.items():
            print(f"  {name}: " + ", ".join(f"{kind} {statistics.median(r[kind] for r in runs):.1f} "
                                            f"({statistics.median(r[kind + '_user'] for r in runs):.1f})"
                                            for kind in SINGLE_KINDS))
        return 0
    print(f"\n{args.hosts} hosts, delay 0, no latency, {args.workers} workers; CPU-ms per request (median of {args.rounds}):")
    for name, runs in seen.items():
        first = statistics.median(r["first"]["cpu_ms_per_request"] for r in runs)
        again = statistics.median(a["cpu_ms_per_request"] for r in runs for a in r["again"])
        print(f"  {name}: first crawl {first:.3f}, no-change crawl (304s) {again:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
