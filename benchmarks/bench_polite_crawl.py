"""Polite-crawl benchmark: N agencies, each on its own host (its own loopback port), a 1 s politeness delay and
100 ms latency per response; does politeness, not the number of threads, bound the crawl?

    .venv/bin/python benchmarks/bench_polite_crawl.py                        # 100 and 1,000 hosts, crawl only
    .venv/bin/python benchmarks/bench_polite_crawl.py --sizes 100 --full     # the nightly flow end to end
    .venv/bin/python benchmarks/bench_polite_crawl.py --sizes 1000 --processes 1   # all hosts in one crawler process
    .venv/bin/python benchmarks/bench_polite_crawl.py --sizes 1000 --processes 2 --archive /srv/archive  # on that disk

The crawler processes are those a crawl would choose on this machine (GONGKAI_CRAWL_PROCESSES=0: one per core, each
given at least 200 hosts: one at 100 hosts, two at 1,000 on 2 cores) unless --processes says otherwise.

The portal is benchmarks/bench_crawl.py's (a TRS column of 5 reports per agency: 11 requests per host with its
robots.txt), served by one asyncio process listening on N ports, logging every request's start and end.
Reported per size: requests, wall, the politeness bound (the busiest host's requests × delay), efficiency
(bound ÷ wall), the second (no-change) run, CPU seconds of the crawler and of the portal (they share the
machine), peak RSS of the crawling process, the load average before the run / at the end, and from the
portal's log the most requests one host had in flight and the shortest gap between two request starts to one host.

Crawl only (default): the real scheduler, fetcher (robots.txt, pinned connections, conditional GETs), listing
walk and crawl state; each file is archived (sha256) instead of extracted, so the figure is the crawl's own.
--full: the nightly flow (Prefect, extraction in the process pool, DuckDB): with unique documents extraction is
the bound (about 0.13 CPU-s per report), the crawl runs beside it with a bounded backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_crawl  # noqa: E402  (the portal's pages and documents)

DELAY = 1.0
LATENCY = 0.1
CONCURRENCY = 2


# --- the portal: one process, N ports --------------------------------------------------------------------

def _docx(agency: int, year: int) -> bytes:
    """The DOCX made unique through its zip comment (rezipping per request would cost the portal a core)."""
    data = bench_crawl.base("shanghai-szfbgt-2019-libreoffice.docx")
    tag = f"gongkai-bench agency {agency} year {year}".encode()
    if data[-22:-18] != b"PK\x05\x06":  # a zip with a comment of its own: fall back to rezipping
        return bench_crawl.unique("shanghai-szfbgt-2019-libreoffice.docx", "docx", agency, year)
    return data[:-2] + len(tag).to_bytes(2, "little") + tag


def route(path: str) -> tuple[bytes | None, str]:
    m = bench_crawl.ROUTE.match(path)
    if m and m.group(5) == "docx":
        return _docx(int(m.group(1)), int(m.group(4))), "application/octet-stream"
    if path == "/robots.txt":
        return b"User-agent: *\nAllow: /\n", "text/plain"
    if not m:
        return None, ""
    agency = int(m.group(1))
    if m.group(3):
        return bench_crawl.detail(agency, int(m.group(3)))
    if m.group(4):
        year, ext = int(m.group(4)), m.group(5)
        name = next(n for n, k in bench_crawl.KINDS if k == ext)
        return bench_crawl.unique(name, ext, agency, year), "application/octet-stream"
    return bench_crawl.listing(agency, int(m.group(2) or 0)), "text/html; charset=utf-8"


def portal(n: int, latency: float, ports_out: Any, control: Any) -> None:
    """Serve N ports until told to stop; on "log", send back every request as (port, start, end)."""
    log: list[tuple[int, float, float]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                start = time.monotonic()
                _method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    key, _, value = h.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                if int(headers.get("content-length") or 0):
                    await reader.readexactly(int(headers["content-length"]))
                await asyncio.sleep(latency)
                body, ctype = route(path)
                if body is None:
                    head, body = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", b""
                elif headers.get("if-none-match") == bench_crawl.ETAG:
                    head, body = f"HTTP/1.1 304 Not Modified\r\nETag: {bench_crawl.ETAG}\r\nContent-Length: 0\r\n\r\n", b""
                else:
                    head = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nETag: {bench_crawl.ETAG}\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n")
                writer.write(head.encode() + body)
                await writer.drain()
                log.append((port, start, time.monotonic()))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = []
        for _ in range(n):
            holder: dict[str, int] = {}
            server = await asyncio.start_server(lambda r, w, h=holder: handle(r, w, h["port"]), "127.0.0.1", 0, backlog=64)
            holder["port"] = server.sockets[0].getsockname()[1]
            servers.append((server, holder["port"]))
        ports_out.send([p for _, p in servers])
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, control.recv)
            if command == "log":
                control.send(list(log))
                log.clear()
            elif command == "cpu":  # the portal's own CPU seconds so far: it shares the machine with the crawler
                control.send(time.process_time())
            else:
                break

    asyncio.run(main())


def politeness_from_log(log: list[tuple[Any, float, float]]) -> dict[str, float | int]:
    """The most requests one host had in flight at once, and the shortest gap between two starts to one host."""
    by_port: dict[Any, list[tuple[float, float]]] = defaultdict(list)
    for port, start, end in log:
        by_port[port].append((start, end))
    most, gap = 0, float("inf")
    for spans in by_port.values():
        spans.sort()
        starts = [s for s, _ in spans]
        gap = min([gap, *(b - a for a, b in zip(starts, starts[1:], strict=False))])
        events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
        now = 0
        for _, step in events:
            now += step
            most = max(most, now)
    busiest = max((len(v) for v in by_port.values()), default=0)
    return {"max_in_flight": most, "min_gap_s": round(gap, 4), "busiest_host_requests": busiest} | lateness(by_port)


def lateness(by_port: dict[Any, list[tuple[float, float]]]) -> dict[str, Any]:
    """Where the wall goes beyond the bound (spans sorted by start): `ramp_s`, the last host's first request after
    the first host's; `late_s`, per position in a host's chain (its 1st gap, 2nd...), the mean of gap - DELAY over the
    hosts (a host's chain is its requests one delay apart at best: each late turn delays all it has left)."""
    firsts = [spans[0][0] for spans in by_port.values() if spans]
    late: dict[int, list[float]] = defaultdict(list)
    for spans in by_port.values():
        for i, ((a, _), (b, _)) in enumerate(zip(spans, spans[1:], strict=False)):
            late[i].append(b - a - DELAY)
    return {"ramp_s": round(max(firsts) - min(firsts), 2) if firsts else None,
            "late_s": [round(sum(v) / len(v), 2) for _, v in sorted(late.items())]}


# --- the crawl ---------------------------------------------------------------------------------------------

def registry(ports: list[int]) -> str:
    return "".join(
        f'[[portal]]\nid = "bench-{i}"\nagency = "示例市第{i}局"\ndivision_code = "{110000 + i:06d}"\nlevel = "department"\n'
        f'cms = "trs"\nlisting = ["http://127.0.0.1:{port}/a{i}/index.html"]\nhosts = ["127.0.0.1:{port}"]\n\n'
        for i, port in enumerate(ports)
    )


def crawl_only(reg: Path, folder: Path, workers: int, processes: int = 1, archive_root: Path | None = None,
               portals_in_progress: int = 0) -> dict[str, Any]:
    """One nightly through the scheduler and the real fetcher, each file archived instead of extracted: stored where it
    was fetched (CrawlContext.archive), read back by the ingest path, bounded and checked against its digest, as the
    flows' ingest does (processes.reading_back; not stored a second time); with `processes` > 1 through
    crawler.processes (the hosts split over crawler processes, each storing its files in the archive, this process
    reading each back the same way)."""
    from gongkai.crawler.crawl import CrawlContext, Limits, Walk
    from gongkai.crawler.fetcher import Fetcher
    from gongkai.crawler.processes import ArchivedFiles, reading_back
    from gongkai.crawler.registry import all_hosts, load_registry
    from gongkai.crawler.scheduler import CrawlScheduler, HostSlots
    from gongkai.crawler.state import CrawlState
    from gongkai.warehouse import IngestOutcome, open_archive

    portals = load_registry(reg)
    archive = open_archive(archive_root or folder / "archive")

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any,
               archived: str | None = None) -> IngestOutcome:
        # `archived`: stored where it was fetched and read back (the flows' Pipeline.ingest: not again)
        return IngestOutcome(archived or archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    if processes > 1:
        return _crawl_in_processes(portals, folder, workers, processes, ingest, archive, portals_in_progress)
    slots = HostSlots(CONCURRENCY, DELAY, record=True)
    fetcher = Fetcher(all_hosts(portals), delay=DELAY, concurrency=CONCURRENCY, retries=1, backoff=0.1, gate=slots)
    state = CrawlState(folder / "state.json")
    ctx = CrawlContext(fetcher, state, reading_back(ingest, ArchivedFiles(archive, fetcher.max_bytes)), archive=archive)
    scheduler = CrawlScheduler(ctx, slots, workers=workers, ingest_workers=8,  # archive reads: I/O, not CPU
                               portals_in_progress=portals_in_progress)
    walk = scheduler.run(Walk(ctx, portals, Limits()))
    state.save()
    counts: dict[str, int] = defaultdict(int)
    for doc in walk.documents:
        counts[doc.outcome] += 1
    kept = politeness_from_log(slots.log or [])
    return {"requests": fetcher.requests_sent, "counts": dict(counts), "scheduler": scheduler.stats.__dict__,
            "client_min_gap_s": kept["min_gap_s"], "client_max_in_flight": kept["max_in_flight"]}


def _crawl_in_processes(portals: list[Any], folder: Path, workers: int, processes: int, ingest: Any,
                        archive: Any, portals_in_progress: int = 0) -> dict[str, Any]:
    # Politeness from its own module, as a crawler process takes it: gongkai.flows.crawl (which re-exports it) brings the
    # flows' settings and pipeline, ~2.7 MB of the parent's RSS that a crawl in processes never uses (the flows' own
    # parent has them anyway; pydantic comes with load_registry's validation)
    from gongkai.crawler.crawl import CrawlContext, Limits
    from gongkai.crawler.politeness import Politeness
    from gongkai.crawler.processes import crawl_in_processes
    from gongkai.crawler.registry import all_hosts
    from gongkai.crawler.state import CrawlState

    politeness = Politeness(delay=DELAY, concurrency=CONCURRENCY, retries=1, backoff=0.1)
    fetcher = politeness.fetcher(all_hosts(portals))  # the parent's: it counts the children's requests
    state = CrawlState(folder / "state.json")
    ctx = CrawlContext(fetcher, state, ingest)
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    summary = crawl_in_processes(portals, ctx, processes=processes, make_fetcher=politeness.fetcher, archive=archive,
                                 workers=workers, limits=Limits(), ingest_workers=8,  # archive writes: I/O, not CPU
                                 portals_in_progress=portals_in_progress)
    after = resource.getrusage(resource.RUSAGE_SELF)  # the parent's own CPU (its threads), the children apart
    parent_cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    state.save()
    counts: dict[str, int] = defaultdict(int)
    for doc in summary["documents"]:
        counts[doc["outcome"]] += 1
    files = sum(n for outcome, n in counts.items() if outcome not in ("not_modified", "refused", "fetch_failed", "crashed"))
    return {"requests": fetcher.requests_sent, "counts": dict(counts), "scheduler": summary["scheduler"],
            "parent_cpu_s": round(parent_cpu, 2), "parent_us_per_file": round(parent_cpu / files * 1e6) if files else None,
            "processes": summary["processes"], "process_start_s": round(summary["process_start_s"], 2), "split_s": round(time.perf_counter() - started, 2),
            "failed_portals": sum(1 for p in summary["portals"].values() if p["status"] == "failed")}


def full_nightly(reg: Path, folder: Path, workers: int, processes: int = 1, archive_root: Path | None = None,
                 portals_in_progress: int = 0) -> dict[str, Any]:
    os.environ["GONGKAI_CRAWL_WORKERS"] = str(workers)
    os.environ["GONGKAI_CRAWL_PORTALS_IN_PROGRESS"] = str(portals_in_progress)
    os.environ["GONGKAI_CRAWL_PROCESSES"] = str(processes)
    from gongkai.settings import quiet_prefect

    quiet_prefect()
    from gongkai.flows.crawl import nightly_flow

    summary = nightly_flow(db_url=f"duckdb:///{folder}/bench.duckdb", archive_location=str(archive_root or folder / "archive"), registry_file=str(reg),
                           state_file=f"{folder}/state.json",
                           politeness={"delay": DELAY, "concurrency": CONCURRENCY, "retries": 1, "backoff": 0.1})
    return {"requests": summary["requests"], "counts": summary["counts"], "scheduler": summary.get("scheduler"),
            "process_start_s": round(summary.get("process_start_s", 0.0), 2),
            "failed_portals": sum(1 for p in summary["portals"].values() if p["status"] == "failed")}


def _cpu() -> float:
    """CPU seconds of this process (every thread) and of its reaped children (extraction workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def raise_fd_limit(need: int) -> tuple[int, int]:
    """Ports and connections are file descriptors: lift the soft limit to the hard one when it is short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class PeakFiles:
    """The most file descriptors this process (the crawler) held open, sampled every 0.2 s; with `children`, the largest
    VmHWM (the peak RSS of its own memory) of this process's live crawler processes, sampled as well. Not
    RUSAGE_CHILDREN's ru_maxrss: a spawned child's counts its parent's RSS at the fork (Linux keeps the larger of the
    old and new memory's peaks across exec), so no crawler process was reported below the parent's ~75 MB. Crawler
    processes only, known by their name (crawl_in_processes names them): with --full this process has other children,
    Prefect's ephemeral server and the extraction pool's workers, whose peaks were reported as a crawler process's."""

    CRAWLER = "gongkai-crawler-"

    def __init__(self, *, children: bool = False) -> None:
        import threading

        self.peak = 0
        self.children = children
        self.child_peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, len(os.listdir("/proc/self/fd")))
            if self.children:
                self.child_peak_kb = max(self.child_peak_kb, *self._children_hwm_kb())

    def _children_hwm_kb(self) -> list[int]:
        found = [0]
        # multiprocessing's own record of the children it started: read, not polled (active_children() reaps, racing
        # the crawl's own joins of its processes)
        for child in list(multiprocessing.process._children):  # type: ignore[attr-defined]
            if not child.name.startswith(self.CRAWLER) or child.pid is None:
                continue
            try:
                status = Path(f"/proc/{child.pid}/status").read_text()
            except OSError:
                continue
            found += [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
        return found

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def start_portal(n: int, latency: float = LATENCY) -> tuple[Any, list[int], Any]:
    """The portal on N loopback ports in a process of its own: (the process, its ports, its control pipe)."""
    ports_in, ports_out = multiprocessing.Pipe(duplex=False)
    control, control_child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=portal, args=(n, latency, ports_out, control_child), daemon=True)
    server.start()
    return server, ports_in.recv(), control


def measure(n: int, full: bool, workers: int, processes: int = 1, archive_dir: str | None = None,
            portals_in_progress: int = 0) -> dict[str, Any]:
    """One size's two runs. `archive_dir`: the archive in a new folder there (the archive's own disk: a figure with
    the rest in TMPDIR, e.g. RAM, and the files stored where they would be), removed afterwards."""
    fd_limit = raise_fd_limit(4 * n + 4 * workers + 256)
    server, ports, control = start_portal(n)
    files = PeakFiles(children=processes != 1)
    run = full_nightly if full else crawl_only
    if full:  # start Prefect's ephemeral server outside the timed runs
        from prefect import flow

        flow(name="bench-warm-up")(lambda: None)()
    results = []
    with tempfile.TemporaryDirectory(prefix="gongkai-polite-") as tmp, \
            tempfile.TemporaryDirectory(prefix="gongkai-polite-archive-", dir=archive_dir or tmp) as archive_root:
        reg = Path(tmp) / "registry.toml"
        reg.write_text(registry(ports), "utf-8")
        os.environ["GONGKAI_DATA"] = tmp
        for _ in range(2):  # the first nightly, then one with nothing changed (conditional requests only)
            control.send("cpu")
            portal_cpu = control.recv()
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), _cpu()
            out = run(reg, Path(tmp), workers, processes, Path(archive_root), portals_in_progress)
            wall, cpu = time.perf_counter() - started, _cpu() - cpu
            control.send("log")
            checked = politeness_from_log(control.recv())
            control.send("cpu")
            portal_cpu = control.recv() - portal_cpu
            bound = checked["busiest_host_requests"] * DELAY
            results.append(out | checked | {"wall_s": round(wall, 2), "bound_s": bound, "efficiency": round(bound / wall, 3),
                                            "crawler_cpu_s": round(cpu, 1), "portal_cpu_s": round(portal_cpu, 1),
                                            "load_before": round(load, 1)})
    # the largest reaped child: read while the portal still runs, so only crawler processes count (the portal, joined
    # below, is itself a child of this process and held the larger peak; read after the join, it was reported instead)
    assert server.is_alive(), "the portal ended before the crawler processes' peak was read"
    child_peak_mb = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)  # floored by this one's RSS
    control.send("stop")
    server.join(5)
    return {"hosts": n, "full": full, "workers": workers, "processes": processes, "first": results[0], "second": results[1], "fd_limit": fd_limit,
            "peak_open_files": files.stop(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "child_peak_rss_mb": child_peak_mb, "child_hwm_mb": round(files.child_peak_kb / 1024, 1),
            "load_avg": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000], help="host counts")
    parser.add_argument("--full", action="store_true", help="the nightly flow end to end (extraction, DuckDB)")
    parser.add_argument("--workers", type=int, default=128, help="most requests in flight across hosts (GONGKAI_CRAWL_WORKERS)")
    parser.add_argument("--processes", type=int, default=0,
                        help="crawler processes, the hosts split between them (GONGKAI_CRAWL_PROCESSES; 1: one process; "
                             "0, the default: as a crawl would choose on this machine, one per core, each given at "
                             "least 200 hosts)")
    parser.add_argument("--archive", metavar="DIR",
                        help="the archive in a new folder under DIR (its disk), removed afterwards (default: TMPDIR)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each size this many times (each in a new process) and print the spread: on a shared "
                             "VM the same code spans a wide range from one quarter hour to the next")
    parser.add_argument("--portals-in-progress", "--hosts-in-progress", type=int, default=0, dest="portals_in_progress",
                        help="most portals (here: hosts) in progress at once in one crawler process "
                             "(GONGKAI_CRAWL_PORTALS_IN_PROGRESS; 0, the default: derived from the delay)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size in this process
    args = parser.parse_args()
    if args.one:
        from gongkai.crawler.processes import process_count

        processes = process_count(args.processes, args.one)  # what GONGKAI_CRAWL_PROCESSES would give the crawl
        print(json.dumps(measure(args.one, args.full, args.workers, processes, args.archive, args.portals_in_progress)))
        return 0
    print(f"{'hosts':>5} {'run':>6} {'requests':>8} {'wall s':>7} {'bound s':>7} {'effic.':>6} {'in flight':>9} {'min gap s':>9} "
          f"{'CPU s':>6} {'portal':>6} {'peak MB':>7} {'load':>9}  outcomes")
    for n in args.sizes:
        runs = []
        for _ in range(max(1, args.repeat)):
            r = _one(n, args)
            if r is None:
                return 1
            runs.append(r)
            _print(n, r)
        if len(runs) > 1:
            _print_spread(n, runs)
    return 0


def _one(n: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """One size measured in a process of its own (a clean peak RSS, nothing imported before)."""
    cmd = [sys.executable, __file__, "--one", str(n), "--workers", str(args.workers), "--processes", str(args.processes),
           "--portals-in-progress", str(args.portals_in_progress)] + (
        ["--full"] if args.full else []) + (["--archive", args.archive] if args.archive else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _print_spread(n: int, runs: list[dict[str, Any]]) -> None:
    """Min / median / max over the repeats: the figure to quote, not one lucky or unlucky run."""
    def spread(values: list[float]) -> str:
        return f"{min(values)} / {round(statistics.median(values), 3)} / {max(values)}"

    firsts = [r["first"] for r in runs]
    print(f"      over {len(runs)} runs of {n} hosts (min / median / max): efficiency {spread([x['efficiency'] for x in firsts])}, "
          f"no-change run {spread([r['second']['efficiency'] for r in runs])}, crawler CPU s {spread([x['crawler_cpu_s'] for x in firsts])}, "
          f"peak MB {spread([r['peak_rss_mb'] for r in runs])}"
          + (f", a child's peak MB {spread([r['child_hwm_mb'] for r in runs])}" if runs[0].get("processes", 1) > 1 else "")
          + f"; runs at 0.8 or more: {sum(x['efficiency'] >= 0.8 for x in firsts)}", flush=True)


def _print(n: int, r: dict[str, Any]) -> None:
    for label in ("first", "second"):
        x = r[label]
        print(f"{n:>5} {label:>6} {x['requests']:>8} {x['wall_s']:>7} {x['bound_s']:>7} {x['efficiency']:>6} "
              f"{x['max_in_flight']:>9} {x['min_gap_s']:>9} {x['crawler_cpu_s']:>6} {x['portal_cpu_s']:>6} {r['peak_rss_mb']:>7} "
              f"{x['load_before']:>4.1f}/{r['load_avg']:<4.1f}  {x['counts']}", flush=True)
    print(f"      file descriptors (soft, hard): {r['fd_limit']}, the crawler's peak {r['peak_open_files']}; scheduler: {r['first']['scheduler']}; as kept by the "
          f"crawler: min gap {r['first'].get('client_min_gap_s')} s, in flight {r['first'].get('client_max_in_flight')}", flush=True)
    print(f"      where the wall goes (portal's log, first run): the last host's first request {r['first'].get('ramp_s')} s "
          f"after the first's; mean lateness of each host's 1st, 2nd, ... turn beyond the delay (s): "
          f"{r['first'].get('late_s')}", flush=True)
    if r.get("processes", 1) > 1:
        print(f"      crawler processes: {r['processes']} (CPU s counts the children; peak MB is the parent's, a child's "
              f"{r.get('child_hwm_mb')} MB: its own peak, VmHWM; its ru_maxrss {r['child_peak_rss_mb']} MB, at least the "
              f"parent's RSS when it was spawned), "
              f"start-up (spawn + imports) {r['first'].get('process_start_s')} s / {r['second'].get('process_start_s')} s, "
              f"failed portals: {r['first'].get('failed_portals')}; the parent's own CPU {r['first'].get('parent_cpu_s')} s "
              f"({r['first'].get('parent_us_per_file')} µs per file) / {r['second'].get('parent_cpu_s')} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
