"""`gongkai export`: Parquet and CSV read back equal the warehouse; datapackage.json is a valid Frictionless package."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pyarrow.parquet as pq
import pytest

from gongkai.cli import main
from gongkai.warehouse.export import export_warehouse
from gongkai.warehouse.export_plan import DROPPED, NATURAL_DESCRIPTIONS
from gongkai.warehouse.query import open_read_only

# The published Tabular Data Package profile (specs.frictionlessdata.io, JSON Schema draft 4), as shipped by
# frictionless-py 4.40.11 (frictionless/assets/profiles/package/tabular.json).
PROFILE = Path(__file__).parent / "data" / "frictionless" / "tabular-data-package.json"
DUCK_TYPES = {"integer": "BIGINT", "number": "DOUBLE", "string": "VARCHAR", "datetime": "TIMESTAMP", "boolean": "BOOLEAN", "date": "DATE"}

# Warehouses loaded with the corpus and the demo portal (DuckDB, PostgreSQL), and the PostgreSQL fixtures.


def normalised(rows: Iterable[Iterable[Any]]) -> list[tuple[Any, ...]]:
    """Rows in a canonical order, numbers compared as floats (a count may come back as 21 or 21.0)."""

    def value(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str | datetime):
            return v
        if isinstance(v, int | float):
            return round(float(v), 9)
        return float(v)

    out = [tuple(value(v) for v in row) for row in rows]
    return sorted(out, key=lambda r: tuple((v is None, str(v)) for v in r))


def warehouse_rows(url: str, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with open_read_only(url) as reader:
        result = reader.run(f"SELECT * FROM {name}")
    return result.columns, normalised(result.rows)


def export_once(url: str, fmt: str, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    out = tmp_path / f"export-{fmt}"
    return export_warehouse(url, out, fmt), out


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_reads_back_equal_to_the_warehouse(corpus_url: str, fmt: str, tmp_path: Path) -> None:
    package, out = export_once(corpus_url, fmt, tmp_path)
    names = [r["name"] for r in package["resources"]]
    for expected in ("report_cells_wide", "cells_long", "check_results", "check_error_rates", "coverage",
                     "year_over_year", "requests_by_outcome", "cells", "reports", "agencies", "cell_dictionary"):
        assert expected in names
    assert "schema_meta" not in names
    for resource in package["resources"]:
        columns, source = warehouse_rows(corpus_url, resource["name"])
        # every column of the warehouse but a dropped one, in its order, plus natural keys beside the surrogate ids
        dropped = DROPPED.get(resource["name"], frozenset())
        keep = [i for i, c in enumerate(columns) if c not in dropped]
        columns = [columns[i] for i in keep]
        source = normalised(tuple(row[i] for i in keep) for row in source)
        path = out / resource["path"]
        if fmt == "parquet":
            table = pq.read_table(path)
            exported = table.column_names
            assert [c for c in exported if c in columns] == columns
            assert set(exported) - set(columns) <= set(NATURAL_DESCRIPTIONS)
            back = normalised(tuple(r[c] for c in columns) for r in table.to_pylist())
        else:
            types = {f["name"]: DUCK_TYPES[f["type"]] for f in resource["schema"]["fields"]}
            assert [c for c in types if c in columns] == columns
            spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in types.items()) + "}"
            with duckdb.connect() as conn:
                back = normalised(conn.execute(
                    f"SELECT {', '.join(columns)} FROM read_csv('{path}', header = true, columns = {spec})").fetchall())
        if fmt == "csv":  # CSV has one empty value: an empty raw text reads back as missing (missingValues [""])
            source = normalised(tuple(None if v == "" else v for v in row) for row in source)
        assert back == source, resource["name"]
        assert len(back) == len(source)
    counts = {r["name"]: len(warehouse_rows(corpus_url, r["name"])[1]) for r in package["resources"]}
    assert counts["report_cells_wide"] == 7 and counts["cells_long"] > 700


def test_datapackage_validates_and_describes_cells_from_the_schema(duck_corpus: str, tmp_path: Path) -> None:
    export_once(duck_corpus, "parquet", tmp_path)
    package = json.loads((tmp_path / "export-parquet" / "datapackage.json").read_text(encoding="utf-8"))
    profile = json.loads(PROFILE.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(profile)
    errors = sorted(jsonschema.Draft4Validator(profile).iter_errors(package), key=str)
    assert not errors, [e.message for e in errors[:5]]
    broken = dict(package, resources=[dict(package["resources"][0], name="Not A Name!")])
    assert list(jsonschema.Draft4Validator(profile).iter_errors(broken))  # the profile does check names
    resources = {r["name"]: r for r in package["resources"]}
    for resource in resources.values():
        assert resource["description"], resource["name"]
        for field in resource["schema"]["fields"]:
            assert field["description"], (resource["name"], field["name"])
            assert field["type"] in DUCK_TYPES
    wide = {f["name"]: f for f in resources["report_cells_wide"]["schema"]["fields"]}
    new_total = wide["requests__new__total"]["description"]
    assert "本年新收政府信息公开申请数量" in new_total and "New requests received this year" in new_total and "总计" in new_total
    # counts are integers (they were floating-point numbers before issue 12), money a number (a decimal)
    assert wide["requests__new__total"]["type"] == "integer" and wide["year"]["type"] == "integer"
    assert wide["proactive__fees__amount_wan_yuan"]["type"] == "number"
    assert "本年收费金额" in wide["proactive__fees__amount_wan_yuan"]["description"]
    assert "10,000 yuan" in wide["proactive__fees__amount_wan_yuan"]["description"]
    outcome = {f["name"]: f for f in resources["requests_by_outcome"]["schema"]["fields"]}
    assert "本机关不掌握相关政府信息" in outcome["unavailable_not_held"]["description"]
    assert "three 2021 rows" in outcome["other_handling"]["description"]


def test_cli_export_csv_subset(duck_corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "subset"
    assert main(["export", "--db", duck_corpus, "--format", "csv", "--out", str(out), "--only", "report_cells_wide,coverage"]) == 0
    assert "wrote 2 files" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["coverage.csv", "datapackage.json", "report_cells_wide.csv"]
    with duckdb.connect() as conn:
        value = conn.execute(
            f"SELECT requests__new__total FROM read_csv('{out / 'report_cells_wide.csv'}', header = true) "
            "WHERE agency = '淮安市洪泽区人民政府'"
        ).fetchone()
    assert value is not None and math.isclose(value[0], 21)
    text = (out / "report_cells_wide.csv").read_text(encoding="utf-8")
    assert ",21," in text and ".0," not in text  # a count is written 21, never 21.0
    assert main(["export", "--db", duck_corpus, "--out", str(out), "--only", "no_such_view"]) == 1
    assert "cannot export" in capsys.readouterr().err


def test_a_new_view_gets_natural_keys_and_declared_kinds() -> None:
    """A view added later (a harmonised series) is exported typed and keyed without touching the export code."""
    from gongkai.warehouse.export_plan import plan_relation

    plan = plan_relation("some_series", [("report_id", "integer"), ("agency_id", "integer"), ("received", "number"),
                                         ("fees", "number"), ("share", "number")],
                         {"kinds": {"received": "count", "fees": "money"}})
    types = {c.name: str(c.arrow) for c in plan.columns}
    assert [c.name for c in plan.columns][:3] == ["agency_key", "report_ref", "revision"]
    assert types["received"] == "int64" and types["fees"].startswith("decimal128") and types["share"] == "double"
    assert "LEFT JOIN reports" in plan.sql and "LEFT JOIN agencies" in plan.sql
