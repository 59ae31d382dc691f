"""Ingest throughput: `python benchmarks/bench_ingest.py [--count 2000] [--backends duckdb,postgres] [--flow]`.

Generates --count documents from the corpus's text and HTML reports, each a different file: the agency
renamed (another city), the year moved within the same template era, and a few table values changed.
About a third of (agency, year) pairs repeat, so those arrive as new versions. Then, per backend:

- ingest with `flows.ingest.ingest_bytes` (the crawler's path: archive, extract, load) — docs/s;
- resident memory (VmRSS) every 10 % of the documents, to show it stays flat as the count grows;
- the same documents again (nothing changes: no extraction, no load) — seconds;
- with --flow, the same through the Prefect flow behind `gongkai ingest FOLDER` (one task per document).

PostgreSQL is a throwaway cluster started like the tests' (initdb + pg_ctl), unless --pg-url is given.
Target: ≥ 10 documents/s on 2 cores, memory flat.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gongkai.settings import quiet_prefect  # noqa: E402

quiet_prefect()

from gongkai.flows.ingest import ingest_bytes  # noqa: E402
from gongkai.warehouse.archive import open_archive  # noqa: E402
from gongkai.warehouse.store import open_warehouse  # noqa: E402

DOCUMENTS = ROOT / "tests" / "corpus" / "documents"
# source file, the agency as printed, its city part to swap, the years of its template era
SOURCES = [
    ("zibo-stats-2023.txt", "淄博市", "2023", ("2021", "2022", "2023", "2024")),
    ("pingtan-2024.html", "平潭综合实验区", "2024", ("2021", "2022", "2023", "2024")),
    ("shanghai-szfbgt-2019.html", "上海市", "2019", ("2019", "2020")),
]
CITIES = [
    "济南市", "青岛市", "烟台市", "潍坊市", "临沂市", "济宁市", "泰安市", "威海市", "日照市", "德州市", "聊城市", "滨州市",
    "菏泽市", "枣庄市", "东营市", "南京市", "苏州市", "无锡市", "常州市", "徐州市", "南通市", "扬州市", "镇江市", "泰州市",
    "杭州市", "宁波市", "温州市", "嘉兴市", "湖州市", "绍兴市", "金华市", "衢州市", "舟山市", "台州市", "丽水市", "福州市",
]
TEXT_CELL = re.compile(r"(?m)^(\t*)(\d{1,4})$")
HTML_CELL = re.compile(r">(\d{1,4})<")


def generate(count: int, seed: int = 1) -> Iterator[tuple[str, bytes]]:
    """Distinct report files: renamed agency, moved year, changed values (deterministic for a seed)."""
    texts = {name: (DOCUMENTS / name).read_text(encoding="utf-8") for name, *_ in SOURCES}
    rng = random.Random(seed)
    for i in range(count):
        name, city, year, years = SOURCES[i % len(SOURCES)]
        new_city, new_year = rng.choice(CITIES), rng.choice(years)
        text = texts[name].replace(city, new_city).replace(f"{year}年", f"{new_year}年")
        pattern = HTML_CELL if name.endswith(".html") else TEXT_CELL
        matches = list(pattern.finditer(text))
        for match in rng.sample(matches, k=min(3, len(matches))):
            start, end = match.span(len(match.groups()))
            text = text[:start] + str(rng.randint(0, 999)).rjust(end - start, "0")[-(end - start):] + text[end:]
        text += f"\n<!-- {i} -->\n" if name.endswith(".html") else f"\n{i}\n"
        suffix = Path(name).suffix
        yield f"bench-{i:05d}{suffix}", text.encode("utf-8")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_direct(url: str, archive_dir: Path, count: int) -> dict[str, Any]:
    archive = open_archive(archive_dir)
    outcomes: dict[str, int] = {}
    samples = []
    step = max(1, count // 10)
    with open_warehouse(url) as wh:
        started = time.perf_counter()
        for i, (name, data) in enumerate(generate(count), start=1):
            outcome = ingest_bytes(data, name=name, warehouse=wh, archive=archive)
            outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1
            if i % step == 0:
                samples.append((i, round(rss_mb(), 1)))
        first = time.perf_counter() - started
        started = time.perf_counter()
        again = [ingest_bytes(data, name=name, warehouse=wh, archive=archive).outcome for name, data in generate(count)]
        rerun = time.perf_counter() - started
        cells = wh.db.scalar("SELECT count(*) FROM cells")
    assert set(again) == {"unchanged"}, set(again)
    return {
        "docs": count, "seconds": round(first, 1), "docs_per_s": round(count / first, 1), "outcomes": outcomes,
        "cells": cells, "rss_mb_by_docs": samples, "rerun_seconds": round(rerun, 2),
    }


def bench_flow(url: str, work: Path, count: int) -> dict[str, Any]:
    from gongkai.flows.ingest import ingest_paths

    folder, empty = work / "files", work / "empty"
    folder.mkdir()
    empty.mkdir()
    for name, data in generate(count):
        (folder / name).write_bytes(data)
    started = time.perf_counter()  # the first flow of a process starts Prefect's ephemeral server: timed apart
    ingest_paths([str(empty)], db_url=url, archive_location=str(work / "flow-archive"), results_dir=str(work / "results"))
    server_start = time.perf_counter() - started
    started = time.perf_counter()
    first = ingest_paths([str(folder)], db_url=url, archive_location=str(work / "flow-archive"), results_dir=str(work / "results"))
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    second = ingest_paths([str(folder)], db_url=url, archive_location=str(work / "flow-archive"), results_dir=str(work / "results"))
    rerun = time.perf_counter() - started
    assert second["counts"]["unchanged"] == count, second["counts"]
    return {
        "docs": count, "seconds": round(seconds, 1), "docs_per_s": round(count / seconds, 1),
        "outcomes": {k: v for k, v in first["counts"].items() if v}, "rerun_seconds": round(rerun, 2),
        "server_start_seconds": round(server_start, 1),
    }


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    import psycopg
    from postgres_fixture import throwaway_postgres

    with throwaway_postgres(durable=True) as admin:  # fsync on, like DuckDB's commits
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        yield admin.rsplit("/", 1)[0] + "/bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--backends", default="duckdb,postgres")
    parser.add_argument("--flow", action="store_true", help="also time the Prefect flow (gongkai ingest FOLDER)")
    parser.add_argument("--pg-url", help="an existing, empty PostgreSQL database instead of a throwaway cluster")
    args = parser.parse_args()
    report: dict[str, Any] = {"count": args.count}
    with tempfile.TemporaryDirectory(prefix="gongkai-bench-") as tmp:
        work = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "duckdb":
                result = bench_direct(f"duckdb:///{work / 'bench.duckdb'}", work / "archive-duckdb", args.count)
                if args.flow:
                    result["flow"] = bench_flow(f"duckdb:///{work / 'flow.duckdb'}", work, args.count)
            elif backend == "postgres":
                with postgres(args.pg_url) as url:
                    result = bench_direct(url, work / "archive-postgres", args.count)
            else:
                parser.error(f"unknown backend {backend}")
            report[backend] = result
            print(f"{backend}: {json.dumps(result, ensure_ascii=False)}", flush=True)
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    slow = [b for b in args.backends.split(",") if report[b]["docs_per_s"] < 10]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
