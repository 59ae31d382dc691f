"""gongkai browse on a large warehouse: `python benchmarks/bench_browse.py [--cells 1000000] [--repeat 7]`.

Builds benchmarks/bench_query.py's synthetic DuckDB warehouse (agencies over every province and level, a
report per agency and year 2019–2023, every cell of the template, ~5 % of checks failing), then requests
each page of the site through FastAPI's TestClient (the app in-process, no network) and prints the median
and p90 wall time in milliseconds, and the size of the HTML. The source page here is a cell without a
stored file (the synthetic warehouse has no archive): it times the queries and the page, not PDFium.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_query import build  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from gongkai.browse.app import create_app
    from gongkai.warehouse.archive import open_archive

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        started = time.perf_counter()
        sizes = build(path, args.cells)
        print(f"built {sizes} in {time.perf_counter() - started:.1f} s")
        app = create_app(f"duckdb:///{path}", open_archive(Path(folder) / "archive"))
        agency_id = sizes["agencies"] // 2
        report_id = agency_id * 10 + 4  # its 2023 report (bench_query numbers reports agency * 10 + year - 2019)
        pages = {
            "agencies (/)": "/",
            "agency": f"/agency/{agency_id}",
            "report": f"/report/{report_id}",
            "source (no file)": f"/source/{report_id}/requests.new.natural_person",
            "coverage, all (first 500 agencies)": "/coverage",
            "coverage, one province and level": "/coverage?province=江苏省&level=county",
            "coverage, failing only": "/coverage?status=extracted_failing_checks",
        }
        print(f"{'page':40} {'median ms':>10} {'p90 ms':>8} {'KB':>8}")
        with TestClient(app, base_url="http://127.0.0.1") as client:
            for name, url in pages.items():
                response = client.get(url)
                assert response.status_code == 200, (url, response.text[:200])
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    client.get(url)
                    times.append((time.perf_counter() - start) * 1000)
                times.sort()
                p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
                print(f"{name:40} {statistics.median(times):10.1f} {p90:8.1f} {len(response.content) / 1024:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
