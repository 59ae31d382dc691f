"""The HTTP path's own cost: CPU (user and system) seconds per 1,000 requests of crawler.fetcher.Fetcher, two
checkouts side by side in one run (old, new, old, new, ...), against the polite-crawl benchmark's portal (one
asyncio process, N loopback ports, `--latency` per response), so the load of the machine hits both alike.

    .venv/bin/python benchmarks/bench_fetch_wire.py --old OLD_CHECKOUT --new .            # CPU per 1,000 requests
    .venv/bin/python benchmarks/bench_fetch_wire.py --old OLD_CHECKOUT --new . --strace   # + syscalls per request

Each client process (PYTHONPATH = its checkout) fetches every host's robots.txt, listing, 5 detail pages and 5
documents (the crawl's mix) `--rounds` times on `--threads` threads, each thread its own hosts, no politeness delay;
its CPU is measured from inside (resource.getrusage), imports and start-up excluded. Under --strace the futex
count is strace's own doing as much as the client's (every traced syscall is slow, so the threads queue for the GIL):
compare the other calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
YEARS = (2019, 2020, 2021, 2022, 2023)


def paths(agency: int) -> list[str]:
    out = ["/robots.txt", f"/a{agency}/index.html"]
    for year in YEARS:
        out.append(f"/a{agency}/{year + 1}03/t{year + 1}0301_{year}.html")
        out.append(f"/a{agency}/{year + 1}03/P0{year}.{('pdf', 'docx')[year % 2]}")
    return out


def client(ports: list[int], threads: int, rounds: int) -> dict[str, float]:
    from gongkai.crawler.fetcher import Fetcher

    hosts = [f"127.0.0.1:{p}" for p in ports]
    # each thread its own hosts (as the crawl's per-host limit keeps a host's requests on its idle connections)
    work = [[(h, f"http://{h}{p}") for _ in range(rounds) for i, h in enumerate(hosts) if i % threads == t for p in paths(i)]
            for t in range(threads)]
    # no per-host gate (the crawl's is the scheduler's HostSlots, not what is measured here)
    fetcher = Fetcher(hosts, delay=0.0, concurrency=2, retries=0, gate=lambda host: contextlib.nullcontext())
    lock, sizes = threading.Lock(), [0]

    def run(jobs: list[tuple[str, str]]) -> None:
        for host, url in jobs:
            got = fetcher.fetch(url, allowed_hosts={host})
            with lock:
                sizes[0] += len(got.content)

    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    pool = [threading.Thread(target=run, args=(jobs,)) for jobs in work]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    n = fetcher.requests_sent
    return {"requests": n, "bytes": sizes[0], "wall_s": time.perf_counter() - started,
            "user_ms_per_req": 1000 * (after.ru_utime - before.ru_utime) / n,
            "sys_ms_per_req": 1000 * (after.ru_stime - before.ru_stime) / n,
            "ctx_switches_per_req": (after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw - before.ru_nivcsw) / n}


def run_client(checkout: str, ports: list[int], threads: int, rounds: int, strace: bool) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(Path(checkout).resolve()))
    cmd = [sys.executable, __file__, "--client", json.dumps(ports), "--threads", str(threads), "--rounds", str(rounds)]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "strace"
        if strace:
            cmd = ["strace", "-f", "-qq", "-o", str(log)] + cmd
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
        if strace:
            calls = Counter(line.split(None, 1)[1].split("(", 1)[0] for line in log.read_text().splitlines()
                            if len(line.split(None, 1)) == 2 and not line.split(None, 1)[1].startswith("<..."))
            n = float(result["requests"])  # type: ignore[arg-type]
            result["syscalls_per_req"] = {k: round(v / n, 2) for k, v in calls.most_common(12)}
            result["syscalls_total_per_req"] = round(sum(calls.values()) / n, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="/work/main")
    parser.add_argument("--new", default=str(ROOT))
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--strace", action="store_true", help="count syscalls (one run each; CPU then not comparable)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(json.loads(args.client), args.threads, args.rounds)))
        return 0
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_polite_crawl import portal

    ports_in, ports_out = multiprocessing.Pipe(duplex=False)
    control, control_child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=portal, args=(args.hosts, args.latency, ports_out, control_child), daemon=True)
    server.start()
    ports = ports_in.recv()
    print(f"load {os.getloadavg()[0]:.1f}; {args.hosts} hosts, {args.threads} threads, {args.rounds} rounds, "
          f"latency {args.latency} s")
    for i in range(1 if args.strace else args.repeats):
        for label, checkout in (("old", args.old), ("new", args.new)):
            r = run_client(checkout, ports, args.threads, args.rounds, args.strace)
            print(f"{i} {label}: " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}),
                  flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")
    control.send("stop")
    server.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
