"""The same corpus exported from DuckDB, from PostgreSQL and from a DuckDB rebuilt in another load order gives
Parquet files with the same types, the same keys and the same rows (surrogate ids and load times aside)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from research_fixtures import corpus_files

from gongkai.warehouse.export import export_warehouse
from gongkai.warehouse.export_plan import LOCAL_COLUMNS


def _rows(table: Any, columns: list[str]) -> list[tuple[Any, ...]]:
    rows = [tuple(r[c] for c in columns) for r in table.to_pylist()]
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def assert_same_exports(a: Path, b: Path) -> None:
    files = sorted(p.name for p in a.glob("*.parquet"))
    assert files and files == sorted(p.name for p in b.glob("*.parquet"))
    for name in files:
        left, right = pq.read_table(a / name), pq.read_table(b / name)
        assert left.schema.equals(right.schema, check_metadata=True), name  # types, descriptions, pandas metadata
        compared = [c for c in left.column_names if c not in LOCAL_COLUMNS]
        assert _rows(left, compared) == _rows(right, compared), name
        assert left.num_rows == right.num_rows, name


@pytest.mark.postgres
def test_duckdb_and_postgres_exports_are_the_same(duck_corpus: str, pg_corpus: str, tmp_path: Path) -> None:
    export_warehouse(duck_corpus, tmp_path / "duck", "parquet")
    export_warehouse(pg_corpus, tmp_path / "pg", "parquet")
    assert_same_exports(tmp_path / "duck", tmp_path / "pg")
    wide = pq.read_table(tmp_path / "pg" / "report_cells_wide.parquet")
    assert str(wide.schema.field("year").type) == "int64" and str(wide.schema.field("requests__new__total").type) == "int64"


def test_keys_survive_a_rebuild_in_another_order(duck_corpus: str, cached_extract: Any, tmp_path: Path) -> None:
    """Loaded in reverse order, the agencies and reports get other ids: the exported keys stay the same."""
    from research_fixtures import HINTS

    from gongkai.flows.ingest import ingest_bytes
    from gongkai.warehouse import open_archive, open_warehouse, recorded_run

    url = f"duckdb:///{tmp_path / 'rebuilt.duckdb'}"
    archive = open_archive(tmp_path / "archive")
    with open_warehouse(url) as warehouse, recorded_run(warehouse, "ingest", {"paths": ["tests/corpus"]}) as run:
        for path in reversed(corpus_files()):
            run.add(ingest_bytes(path.read_bytes(), name=path.name, url=f"https://example.gov.cn/{path.name}",
                                 warehouse=warehouse, archive=archive, run_id=run.run_id, extract=cached_extract,
                                 **HINTS.get(path.name, {})))
    only = ["agencies", "reports", "cells_long", "report_cells_wide", "coverage", "check_results"]
    export_warehouse(duck_corpus, tmp_path / "first", "parquet", only=only)
    export_warehouse(url, tmp_path / "rebuilt", "parquet", only=only)
    first = pq.read_table(tmp_path / "first" / "agencies.parquet").to_pylist()
    rebuilt = pq.read_table(tmp_path / "rebuilt" / "agencies.parquet").to_pylist()
    by_key = {r["agency_key"]: r["agency_id"] for r in rebuilt}
    assert any(by_key[r["agency_key"]] != r["agency_id"] for r in first)  # the ids did change
    assert_same_exports(tmp_path / "first", tmp_path / "rebuilt")
