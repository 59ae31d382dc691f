"""Where a small command's seconds go: each command in a fresh interpreter, as an operator runs it, without a
configured Prefect server (PREFECT_API_URL unset).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--prefect]

Reports the median wall-clock and CPU seconds (user + system, of the command and what it started) of:
the imports that dominate (Prefect, DuckDB, the extractors, the ingest module as the command loads it), `gongkai
--version`, `gongkai nightly --agency nosuch` (a mistake answered before anything starts), a one-file ingest into
a fresh data folder and the same file again (unchanged). `--prefect` adds the same one-file ingest run as a
Prefect flow, which starts Prefect's temporary server (what every command paid before issue 11). Targets: the
unknown --agency and the one-file ingest under 2 s on this project's 2-core machine (wall-clock depends on the
machine's load: the CPU seconds are the steadier figure).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "tests" / "corpus" / "documents" / "pingtan-2024.html"
TARGET_S = 2.0


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the child and its children, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prefect", action="store_true", help="also time the ingest as a Prefect flow (temporary server)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gongkai-startup-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GONGKAI_DATA": str(work / "data")}
    env.pop("PREFECT_API_URL", None)
    py = sys.executable
    cases: list[tuple[str, list[str], bool]] = [
        ("import prefect", [py, "-c", "import prefect"], False),
        ("import duckdb", [py, "-c", "import duckdb"], False),
        ("import the extractors", [py, "-c", "import gongkai.extractors.extract"], False),
        ("import the ingest command's modules (no Prefect)", [py, "-c", "import gongkai.flows.ingest, sys; assert 'prefect' not in sys.modules"], False),
        ("gongkai --version", [py, "-m", "gongkai.cli", "--version"], False),
        ("gongkai nightly --agency nosuch", [py, "-m", "gongkai.cli", "nightly", "--agency", "nosuch"], False),
        ("gongkai ingest one file (new, fresh data folder)", [py, "-m", "gongkai.cli", "ingest", str(REPORT)], True),
        ("gongkai ingest the same file again (unchanged)", [py, "-m", "gongkai.cli", "ingest", str(REPORT)], False),
    ]
    if args.prefect:
        flow = ("from gongkai.flows.ingest import ingest_flow; "
                f"ingest_flow([{str(REPORT)!r}], db_url='duckdb:///{work / 'flow.duckdb'}', archive_location='{work / 'flow-archive'}')")
        cases.append(("one-file ingest as a Prefect flow (temporary server)", [py, "-c", flow], False))
    load = os.getloadavg()[0]
    print(f"{args.runs} runs each; load average {load:.1f} at the start; CPU count {os.cpu_count()}")
    print(f"{'what':<55} {'wall s':>7} {'CPU s':>7}  exit")
    for label, argv, fresh in cases:
        walls, cpus, codes = [], [], set()
        for _ in range(args.runs):
            if fresh:
                shutil.rmtree(work / "data", ignore_errors=True)
            wall, cpu, code = timed(argv, env)
            walls.append(wall)
            cpus.append(cpu)
            codes.add(code)
        mark = "" if "gongkai" not in label or "Prefect" in label or statistics.median(walls) < TARGET_S else f"  (over the {TARGET_S:g} s target)"
        print(f"{label:<55} {statistics.median(walls):7.2f} {statistics.median(cpus):7.2f}  {sorted(codes)}{mark}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
