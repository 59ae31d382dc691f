"""What the Prefect per-host limits cost a crawl: the same crawl with the crawler's own per-host slots only ("local"); with
the per-host global concurrency limits on a real local Prefect server on top, taken by every request
(`Politeness.prefect_limits`, "prefect"); and with each host held for the whole crawl in one call, the crawler's slots
keeping its delay (`Politeness.host_leases`, as shards do, "leases"); side by side: requests/s, the crawler's CPU-s per request, calls to the Prefect server
per request, and the politeness kept (from the portal's log).

    .venv/bin/python benchmarks/bench_prefect_limits.py                  # 50 hosts, 1 s delay, 100 ms latency
    .venv/bin/python benchmarks/bench_prefect_limits.py --hosts 200 --timeout 600

The portal and the crawl are benchmarks/bench_polite_crawl.py's (crawl only: each file archived, not extracted).
Every wait is bounded: the Prefect server's start (120 s), each crawl (run in a child process killed after
--timeout s), the portal's shutdown; a crawl that times out is reported as such, never waited for.
Calls to the Prefect server are counted at its HTTP client (httpx), split into the set-up (the limits' upserts)
and the crawl itself; Prefect's concurrency events travel on its events websocket and are not counted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_polite_crawl as polite  # noqa: E402  (the portal, its registry and the crawl)

SERVER_START_S = 120.0
MODES = ("local", "prefect", "leases")


# --- the Prefect server ------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_prefect_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Prefect server of its own on loopback (SQLite in `folder`), healthy within SERVER_START_S or an error."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(folder / "prefect-server"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = folder / "prefect-server.log"
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
                               "--no-scheduler", "--no-ui", "--analytics-off"], env=env, stdout=log.open("wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    give_up = time.monotonic() + SERVER_START_S
    while time.monotonic() < give_up:
        if server.poll() is not None:
            raise RuntimeError("the Prefect server exited: " + log.read_text(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return server, url
        except OSError:
            time.sleep(0.5)
    stop_process_group(server)
    raise RuntimeError(f"the Prefect server was not healthy within {SERVER_START_S:.0f} s")


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


# --- one crawl, in a child process --------------------------------------------------------------------------------

class PrefectCalls:
    """Counts the HTTP requests this process sends to the Prefect API (both httpx clients), by path."""

    def __init__(self, api_url: str) -> None:
        import httpx

        self.api = api_url.rsplit("/api", 1)[0]
        self.calls: Counter[str] = Counter()
        counter = self

        def counted(send: Any) -> Any:
            def wrapper(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
                if str(request.url).startswith(counter.api):
                    counter.calls[request.url.path] += 1
                return send(self, request, *args, **kwargs)
            return wrapper

        httpx.Client.send = counted(httpx.Client.send)  # type: ignore[method-assign]
        httpx.AsyncClient.send = counted(httpx.AsyncClient.send)  # type: ignore[method-assign]

    def total(self) -> int:
        return sum(self.calls.values())


def crawl(mode: str, reg: Path, folder: Path, api_url: str, workers: int) -> dict[str, Any]:
    """One first crawl of the registry: the crawler's HostSlots only ("local"), with the Prefect server's per-host
    limits under them ("prefect"), or with every host held for the crawl ("leases")."""
    calls = PrefectCalls(api_url)
    from contextlib import nullcontext

    from gongkai.crawler.crawl import CrawlContext, Limits, Walk
    from gongkai.crawler.fetcher import Fetcher
    from gongkai.crawler.host_limits import PrefectHostGate, ensure_host_limits, hosts_held
    from gongkai.crawler.registry import all_hosts, load_registry
    from gongkai.crawler.scheduler import CrawlScheduler, HostSlots
    from gongkai.crawler.state import CrawlState
    from gongkai.warehouse import IngestOutcome, open_archive

    portals = load_registry(reg)
    hosts = all_hosts(portals)
    archive = open_archive(folder / f"archive-{mode}")

    def ingest(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
        return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

    setup_started = time.perf_counter()
    inner = None
    if mode == "prefect":
        ensure_host_limits(sorted(hosts), polite.CONCURRENCY, polite.DELAY)
        inner = PrefectHostGate(polite.DELAY)
    setup_s, setup_calls = time.perf_counter() - setup_started, calls.total()
    slots = HostSlots(polite.CONCURRENCY, polite.DELAY, inner=inner)
    fetcher = Fetcher(hosts, delay=polite.DELAY, concurrency=polite.CONCURRENCY, retries=1, backoff=0.1, gate=slots)
    ctx = CrawlContext(fetcher, CrawlState(None), ingest)
    scheduler = CrawlScheduler(ctx, slots, workers=workers, ingest_workers=8)
    started, cpu = time.perf_counter(), polite._cpu()
    with hosts_held(hosts, polite.DELAY, timeout_s=60) if mode == "leases" else nullcontext():
        walk = scheduler.run(Walk(ctx, portals, Limits()))
    wall, cpu = time.perf_counter() - started, polite._cpu() - cpu
    outcomes = Counter(doc.outcome for doc in walk.documents)
    return {"mode": mode, "requests": fetcher.requests_sent, "wall_s": wall, "cpu_s": cpu, "outcomes": dict(outcomes),
            "prefect_calls": calls.total() - setup_calls, "setup_calls": setup_calls, "setup_s": setup_s,
            "calls_by_path": dict(calls.calls.most_common(6))}


def run_child(mode: str, reg: Path, folder: Path, api_url: str, workers: int, timeout_s: float) -> dict[str, Any]:
    """One crawl in a child process, killed after `timeout_s` (then reported as timed out)."""
    env = os.environ | {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(folder / "prefect-client"), "DO_NOT_TRACK": "1",
                        "PREFECT_LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--child", mode, "--registry", str(reg), "--folder", str(folder), "--api", api_url,
           "--workers", str(workers)]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate(timeout=10)
        return {"mode": mode, "timed_out": timeout_s}
    if child.returncode:
        return {"mode": mode, "error": err.strip().splitlines()[-1] if err.strip() else f"exit {child.returncode}"}
    return dict(json.loads(out.strip().splitlines()[-1]))


# --- the comparison -----------------------------------------------------------------------------------------------

def measure(hosts: int, workers: int, timeout_s: float) -> list[dict[str, Any]]:
    polite.raise_fd_limit(4 * hosts + 4 * workers + 256)
    ports_in, ports_out = multiprocessing.Pipe(duplex=False)
    control, control_child = multiprocessing.Pipe()
    portal = multiprocessing.Process(target=polite.portal, args=(hosts, polite.LATENCY, ports_out, control_child), daemon=True)
    portal.start()
    results = []
    with tempfile.TemporaryDirectory(prefix="gongkai-prefect-limits-") as tmp:
        folder = Path(tmp)
        server, api_url = start_prefect_server(folder)
        try:
            if not ports_in.poll(60):
                raise RuntimeError("the portal did not start within 60 s")
            reg = folder / "registry.toml"
            reg.write_text(polite.registry(ports_in.recv()), "utf-8")
            for mode in MODES:
                load = os.getloadavg()[0]
                result = run_child(mode, reg, folder, api_url, workers, timeout_s)
                control.send("log")
                if control.poll(30):
                    result |= polite.politeness_from_log(control.recv())
                results.append(result | {"load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1)})
        finally:
            stop_process_group(server)
            control.send("stop")
            portal.join(5)
            if portal.is_alive():
                portal.kill()
    return results


def report(results: list[dict[str, Any]], hosts: int) -> None:
    print(f"{hosts} hosts, delay {polite.DELAY} s, latency {polite.LATENCY} s, concurrency {polite.CONCURRENCY} per host")
    print(f"{'limits':>8} {'requests':>8} {'wall s':>7} {'req/s':>6} {'CPU s':>6} {'CPU ms/req':>10} {'calls':>6} "
          f"{'calls/req':>9} {'set-up':>12} {'in flight':>9} {'min gap s':>9} {'load':>9}")
    for r in results:
        if "timed_out" in r or "error" in r:
            print(f"{r['mode']:>8}  " + (f"timed out after {r['timed_out']:.0f} s" if "timed_out" in r else f"failed: {r['error']}"))
            continue
        n = max(1, r["requests"])
        print(f"{r['mode']:>8} {r['requests']:>8} {r['wall_s']:>7.1f} {r['requests'] / r['wall_s']:>6.1f} {r['cpu_s']:>6.1f} "
              f"{1000 * r['cpu_s'] / n:>10.2f} {r['prefect_calls']:>6} {r['prefect_calls'] / n:>9.2f} "
              f"{r['setup_calls']:>4} /{r['setup_s']:>5.1f} s {r.get('max_in_flight', '?'):>9} {r.get('min_gap_s', '?'):>9} "
              f"{r['load_before']:>4.1f}/{r['load_after']:<4.1f}  {r['outcomes']}")
    for r in results:
        if r.get("calls_by_path"):
            print(f"  {r['mode']}: Prefect calls by path {r['calls_by_path']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=50, help="hosts (loopback ports), 11 requests each")
    parser.add_argument("--workers", type=int, default=128, help="most requests in flight across hosts")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each crawl may take before it is killed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)  # internal: one crawl in this process
    parser.add_argument("--registry", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(crawl(args.child, args.registry, args.folder, args.api, args.workers)))
        return 0
    results = measure(args.hosts, args.workers, args.timeout)
    report(results, args.hosts)
    if args.json:
        print(json.dumps(results))
    return 0 if all("requests" in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
