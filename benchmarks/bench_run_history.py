"""What reading the previous run's statuses for a run's admission order costs (crawler/run_history.py): CPU seconds and
peak memory of `last_statuses` over a synthetic national run (N portals, D documents each), side by side: over the full
summaries (as flows/crawl.py writes them: indented JSON, every document; what the order read at first) and over the
statuses alone (data/runs/statuses, run_history.store_statuses: what it reads). Each measure runs in a fresh process
(peak RSS is per process).

    .venv/bin/python benchmarks/bench_run_history.py --portals 3000 --documents 30 --summaries 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gongkai.crawler.run_history import statuses_folder, store_statuses  # noqa: E402


def write(runs: Path, portals: int, documents: int, summaries: int) -> int:
    runs.mkdir(parents=True, exist_ok=True)
    size = 0
    for run_id in range(1, summaries + 1):
        ids = [f"portal-{i:05d}" for i in range(portals)]
        docs = [{"sha256": f"{i:064x}", "outcome": "not_modified", "name": f"{pid}-{d}.pdf", "report_id": None,
                 "version": None, "revision": None, "agency": f"某某县人民政府办公室{i}", "year": 2025, "reason": None,
                 "failing_checks": 0, "cells_changed": False, "url": f"http://www.example{i}.gov.cn/zfxxgk/ndbg/{d}.pdf",
                 "title": "2025年政府信息公开工作年度报告", "portal": pid}
                for i, pid in enumerate(ids) for d in range(documents)]
        summary = {"run_id": run_id, "kind": "nightly", "documents": docs,
                   "portals": {pid: {"status": "not_crawled" if i % 3 else "ok", "error": None, "pages": 3, "listed": 40,
                                     "listing_from_cache": False} for i, pid in enumerate(ids)},
                   "hosts": {f"www.example{i}.gov.cn": {"requests": 40, "bytes": 123456} for i in range(portals)}}
        path = runs / f"{run_id:06d}-nightly.json"
        path.write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")
        size += path.stat().st_size
        store_statuses(summary, runs.parent)
    return size


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(runs: str, portals: int) -> None:
    from gongkai.crawler.run_history import last_statuses

    peak_before = peak_mb()

    before = resource.getrusage(resource.RUSAGE_SELF)
    found = last_statuses(Path(runs), [f"portal-{i:05d}" for i in range(portals)] + ["never-run"])
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps({"found": len(found), "cpu_s": round(cpu, 3), "peak_mb_before": round(peak_before, 1),
                      "peak_mb_after": round(peak_mb(), 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--portals", type=int, default=3000)
    ap.add_argument("--documents", type=int, default=30, help="documents per portal in each summary")
    ap.add_argument("--summaries", type=int, default=1, help="summaries kept (a portal none names: all are read)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args.measure, args.portals)
        return
    with tempfile.TemporaryDirectory() as tmp:
        size = write(Path(tmp) / "runs", args.portals, args.documents, args.summaries)
        compact = sum(p.stat().st_size for p in statuses_folder(Path(tmp)).glob("*.json"))
        print(f"{args.summaries} summaries, {size / 1e6:.1f} MB; their statuses alone {compact / 1e6:.2f} MB")
        for _ in range(args.repeat):
            for name, folder in (("full summaries", Path(tmp) / "runs"), ("statuses alone", statuses_folder(Path(tmp)))):
                start = time.perf_counter()
                print(f"  {name}: ", end="", flush=True)
                subprocess.run([sys.executable, __file__, "--portals", str(args.portals), "--measure", str(folder)],
                               check=True)
                print(f"    wall {time.perf_counter() - start:.2f} s (with interpreter start)")


if __name__ == "__main__":
    main()
