"""Research queries on a warehouse of a million cells: `python benchmarks/bench_query.py [--cells 1000000] [--repeat 15]`.

Builds a synthetic DuckDB warehouse with the real schema and views (warehouse.store.open_warehouse), filled
with SQL from generate_series: agencies spread over every province and level, one report per agency and
year 2019–2023 (template 2019 for 2019–2020, 2021 after), every cell of the template, and the document
checks of table 三 and 四 (about 5 % failing). Then it runs each `gongkai query` of docs/research.md on a
read-only connection (warehouse.query, as the command does) and prints the median and p90 in milliseconds.
Target: median < 100 ms for each in DuckDB. With --postgres (or --pg-url) the same rows are copied into
PostgreSQL and the same queries timed there, for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from research_fixtures import research_examples  # noqa: E402

from gongkai.schema import all_addresses  # noqa: E402
from gongkai.warehouse.query import open_read_only  # noqa: E402
from gongkai.warehouse.store import open_warehouse  # noqa: E402

YEARS = (2019, 2020, 2021, 2022, 2023)
LEVELS = ("province", "city", "county", "department")


def research_queries() -> list[tuple[str, str]]:
    """(title, SQL) of every `gongkai query "…"` in docs/research.md, titled by the heading above it."""
    return [(heading, sql) for heading, sql, _output in research_examples()]


def build(path: Path, target_cells: int) -> dict[str, int]:
    per_agency = sum(len(all_addresses("2019" if y < 2021 else "2021")) for y in YEARS)
    agencies = max(1, round(target_cells / per_agency))
    addresses = [(a, "2019") for a in all_addresses("2019")] + [(a, "2021") for a in all_addresses("2021")]
    with open_warehouse(f"duckdb:///{path}") as wh:
        db = wh.db
        provinces = [row[0] for row in db.query("SELECT province_code FROM provinces ORDER BY 1")]
        db.execute("CREATE TEMP TABLE template_cells (address TEXT, template TEXT)")
        db.insert_many("template_cells", ("address", "template"), addresses)
        db.execute("CREATE TEMP TABLE province_list (i INTEGER, code TEXT)")
        db.insert_many("province_list", ("i", "code"), list(enumerate(provinces)))
        levels = "[" + ", ".join(f"'{level}'" for level in LEVELS) + "]"
        years = ", ".join(str(y) for y in YEARS)
        with db.transaction():
            db.execute(
                f"""INSERT INTO agencies (agency_id, name, name_key, division_code, level, created_at)
                SELECT g.i, 'agency ' || g.i, 'agency' || g.i, substr(p.code, 1, 2) || lpad(CAST(g.i % 10000 AS TEXT), 4, '0'),
                       {levels}[1 + g.i % 4], now()
                FROM range(1, {agencies + 1}) AS g(i) JOIN province_list p ON p.i = g.i % {len(provinces)}"""
            )
            db.execute(
                f"""INSERT INTO reports (report_id, report_key, version, revision, sha256, agency_id, year, template, status,
                    warnings, n_cells, checks_failing, checks_incomplete, extractor_version, fingerprint, loaded_at)
                SELECT a.agency_id * 10 + (y.year - 2019), a.agency_id || ':' || y.year, 1, 1,
                       sha256(a.agency_id || ':' || y.year), a.agency_id, y.year,
                       CASE WHEN y.year < 2021 THEN '2019' ELSE '2021' END, 'extracted', '[]', 0, 0, 0, 'bench', 'bench', now()
                FROM agencies a CROSS JOIN (SELECT unnest([{years}]) AS year) y"""
            )
            db.execute(
                """INSERT INTO documents (sha256, size, media_type, url, agency_id, year, first_seen, last_seen)
                SELECT sha256, 1000, 'application/pdf', 'https://example.gov.cn/' || report_key || '.pdf', agency_id, year,
                       now(), now() FROM reports"""
            )
            db.execute(
                """INSERT INTO cells (report_id, address, value, raw, page, table_no, row_no, col_no)
                SELECT r.report_id, t.address, CAST(hash(r.report_id, t.address) % 40 AS DOUBLE),
                       CAST(hash(r.report_id, t.address) % 40 AS TEXT), 3, 2, 1, 1
                FROM reports r JOIN template_cells t ON t.template = r.template"""
            )
            db.execute(
                """INSERT INTO checks (report_id, rule, target, expected, actual, status)
                SELECT c.report_id,
                       CASE WHEN c.address LIKE 'appeals.%' THEN 'appeals.row_total' ELSE 'requests.row_total' END,
                       c.address, c.value + CASE WHEN hash(c.report_id, c.address) % 20 = 0 THEN 1 ELSE 0 END, c.value,
                       CASE WHEN hash(c.report_id, c.address) % 20 = 0 THEN 'fail' ELSE 'pass' END
                FROM cells c WHERE c.address LIKE '%.total' AND c.address NOT LIKE 'proactive.%'"""
            )
            db.execute(
                """UPDATE reports SET n_cells = (SELECT count(*) FROM cells c WHERE c.report_id = reports.report_id),
                    checks_failing = (SELECT count(*) FROM checks k WHERE k.report_id = reports.report_id AND k.status = 'fail')"""
            )
        sizes = {t: int(db.scalar(f"SELECT count(*) FROM {t}")) for t in ("agencies", "reports", "cells", "checks")}
    return sizes


def copy_to_postgres(duck_path: Path, pg_url: str) -> None:
    """The synthetic warehouse's rows into a fresh PostgreSQL database (schema and views from open_warehouse)."""
    import duckdb

    source = duckdb.connect(str(duck_path), read_only=True)
    try:
        with open_warehouse(pg_url) as wh:
            for table in ("agencies", "documents", "reports", "cells", "checks"):
                columns = [str(row[0]) for row in source.execute(f"DESCRIBE {table}").fetchall()]
                cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table}")
                while batch := cursor.fetchmany(100_000):
                    wh.db.insert_many(table, columns, batch)
            wh.db.execute("ANALYZE")
    finally:
        source.close()


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """The given database, or a throwaway cluster like the tests' (initdb + pg_ctl)."""
    if url:
        yield url
        return
    import psycopg
    from postgres_fixture import throwaway_postgres

    with throwaway_postgres() as admin:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_query")
        yield admin.rsplit("/", 1)[0] + "/bench_query"


def run(url: str, repeat: int) -> list[tuple[str, float, float, float, int]]:
    """(title, median wall ms, p90 wall ms, median CPU ms, rows) per query.

    CPU time (all of DuckDB's threads) is reported beside wall time because it does not grow when other
    processes compete for the cores: on an idle machine, wall time is between CPU/threads and CPU.
    """
    results = []
    with open_read_only(url, allow_writable_role=True) as reader:  # the benchmark's own cluster, as its owner
        for title, sql in research_queries():
            reader.run(sql)  # warm: first run loads the columns from disk
            walls, cpus = [], []
            for _ in range(repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                rows = reader.run(sql).rows
                cpus.append((time.process_time() - cpu) * 1000)
                walls.append((time.perf_counter() - wall) * 1000)
            walls.sort()
            results.append((title, statistics.median(walls), walls[int(0.9 * (len(walls) - 1))], statistics.median(cpus), len(rows)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--db", type=Path, help="keep the synthetic warehouse at this path (default: a temp folder)")
    parser.add_argument("--postgres", action="store_true", help="also time the queries in PostgreSQL (a throwaway cluster)")
    parser.add_argument("--pg-url", help="…in this (empty) PostgreSQL database instead of a throwaway cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gongkai-bench-query-") as tmp:
        path = args.db or Path(tmp) / "bench.duckdb"
        if not path.exists():
            started = time.perf_counter()
            sizes = build(path, args.cells)
            print(f"built {path.name}: {sizes} in {time.perf_counter() - started:.1f} s")
        targets = [("DuckDB", f"duckdb:///{path}")]
        with postgres(args.pg_url) if args.postgres or args.pg_url else nullcontext("") as pg_url:
            if pg_url:
                started = time.perf_counter()
                copy_to_postgres(path, pg_url)
                print(f"copied into PostgreSQL in {time.perf_counter() - started:.1f} s")
                targets.append(("PostgreSQL", pg_url))
            for engine, url in targets:
                print(f"\n{engine}; load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
                print(f"{'query (docs/research.md)':<64} {'median ms':>9} {'p90 ms':>7} {'CPU ms':>7} {'rows':>5}")
                worst = 0.0
                for title, median, p90, cpu, n in run(url, args.repeat):
                    print(f"{title[:64]:<64} {median:>9.1f} {p90:>7.1f} {cpu:>7.1f} {n:>5}")
                    worst = max(worst, median)
                print(f"slowest median: {worst:.1f} ms (target < 100 ms in DuckDB); load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
