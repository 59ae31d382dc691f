"""Export the warehouse's tables and views as Parquet or CSV files with a Frictionless datapackage.json.

The data dictionary is written from the same sources as the warehouse: schema/ for the cells (the
Chinese labels as printed in the national templates, and English), warehouse/catalog.toml for the
other columns. DuckDB writes its files itself (COPY … TO); PostgreSQL rows are streamed through
pyarrow. Both read through a connection that cannot write the warehouse.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gongkai.warehouse.query import load_catalog, open_read_only
from gongkai.warehouse.views import cell_catalog

FORMATS = ("parquet", "csv")
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
BATCH_ROWS = 50_000
# PostgreSQL type OIDs → Frictionless field types (anything else is a string).
PG_TYPES = {16: "boolean", 20: "integer", 21: "integer", 23: "integer", 700: "number", 701: "number",
            1700: "number", 1082: "date", 1114: "datetime", 1184: "datetime"}


def frictionless_type(sql_type: str) -> str:
    """A DuckDB column type as a Table Schema field type."""
    t = sql_type.upper()
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"):
        return "integer"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "number"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    return {"BOOLEAN": "boolean", "DATE": "date"}.get(t, "string")


def field_descriptions() -> dict[str, dict[str, str]]:
    """Per relation, per column: the description of the data dictionary (relation '*' holds the shared ones)."""
    catalog = load_catalog()
    out: dict[str, dict[str, str]] = {"*": dict(catalog["columns"])}
    for name, entry in catalog["relations"].items():
        out[name] = dict(entry.get("columns", {}))
    cells = cell_catalog()
    out["report_cells_wide"].update(
        {c.wide_column: f"{c.address}: {c.label} | {c.label_en} ({c.kind}; templates {', '.join(c.templates)})" for c in cells}
    )
    from gongkai.schema import TABLES

    for row in TABLES["requests"].rows:
        out["requests_by_outcome"].setdefault(
            row.key, f"requests.{row.key}.<applicant>: {TABLES['requests'].title}: {row.printed[0]} | {row.en or row.key}"
        )
    return out


def _describe(descriptions: dict[str, dict[str, str]], relation: str, column: str) -> str:
    return descriptions.get(relation, {}).get(column) or descriptions["*"].get(column, "")


def exported_relations(present: set[str]) -> list[str]:
    """Relations `gongkai export` writes, in catalog order, that the warehouse has."""
    return [name for name, entry in load_catalog()["relations"].items() if entry.get("export") and name in present]


def export_warehouse(url: str | None, out_dir: Path, fmt: str = "parquet", only: list[str] | None = None) -> dict[str, Any]:
    """Write one file per relation and datapackage.json into out_dir; return the datapackage descriptor."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: use one of {FORMATS}")
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptions = field_descriptions()
    catalog = load_catalog()["relations"]
    with open_read_only(url) as reader:
        present = {name for name, _kind, _desc in reader.relations()}
        names = exported_relations(present)
        if only:
            unknown = sorted(set(only) - set(names))
            if unknown:
                raise ValueError(f"cannot export {unknown}: exportable are {names}")
            names = [n for n in names if n in only]
        if reader.dialect == "postgresql":
            written = {name: _export_postgres(reader.connection, name, out_dir / f"{name}.{fmt}", fmt) for name in names}
        database_path = reader.database_path
    if reader.dialect == "duckdb":
        # A second connection with other settings cannot coexist with the reader's in one process: reader closed.
        written = _export_duckdb(database_path, names, out_dir, fmt)
    resources = [
        _resource(name, fmt, out_dir / f"{name}.{fmt}", written[name], catalog.get(name, {}), descriptions) for name in names
    ]
    package = {
        "profile": "tabular-data-package",
        "name": "gongkai-warehouse",
        "title": "政府信息公开工作年度报告 / Government information disclosure annual reports (gongkai warehouse)",
        "description": (
            "The three standard tables of Chinese government information-disclosure annual reports, as extracted "
            "by gongkai. Cell addresses follow docs/common-schema.md; cell_dictionary lists every address with its "
            "Chinese and English labels. Counts are integers stored as numbers; money is in 万元 (10,000 yuan)."
        ),
        "created": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "resources": resources,
    }
    (out_dir / "datapackage.json").write_text(json.dumps(package, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return package


def _resource(
    name: str, fmt: str, path: Path, columns: list[tuple[str, str]], entry: dict[str, Any], descriptions: dict[str, dict[str, str]]
) -> dict[str, Any]:
    fields = [{"name": col, "type": ftype, "description": _describe(descriptions, name, col)} for col, ftype in columns]
    resource: dict[str, Any] = {
        "profile": "tabular-data-resource",
        "name": name,
        "path": path.name,
        "format": fmt,
        "mediatype": MEDIA_TYPES[fmt],
        "description": entry.get("description", ""),
        "schema": {"fields": fields, "missingValues": [""]},
    }
    if fmt == "csv":
        resource["encoding"] = "utf-8"
        resource["dialect"] = {"delimiter": ",", "header": True}
    return resource


def _export_duckdb(database_path: str, names: list[str], out_dir: Path, fmt: str) -> dict[str, list[tuple[str, str]]]:
    """DuckDB writes the files itself, on a read-only connection that runs only these generated statements."""
    import duckdb

    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    written = {}
    conn = duckdb.connect(database_path, read_only=True)
    try:
        for name in names:
            described = conn.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()
            written[name] = [(str(row[0]), frictionless_type(str(row[1]))) for row in described]
            target = str(out_dir / f"{name}.{fmt}").replace("'", "''")
            conn.execute(f"COPY (SELECT * FROM {name}) TO '{target}' ({options})")
    finally:
        conn.close()
    return written


def _export_postgres(conn: Any, name: str, path: Path, fmt: str) -> list[tuple[str, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with conn.cursor(name=f"export_{name}") as cursor:  # server-side: rows arrive in batches
            cursor.execute(f"SELECT * FROM {name}")
            description = cursor.description or []
            columns = [(d.name, PG_TYPES.get(d.type_code, "string")) for d in description]
            schema = pa.schema([(col, _arrow_type(ftype)) for col, ftype in columns])
            if fmt == "parquet":
                with pq.ParquetWriter(str(path), schema) as writer:
                    for batch in _batches(cursor):
                        writer.write_table(pa.Table.from_pylist([_row_dict(columns, r) for r in batch], schema=schema))
            else:
                with path.open("w", encoding="utf-8", newline="") as fh:
                    out = csv.writer(fh, lineterminator="\n")
                    out.writerow([col for col, _ in columns])
                    for batch in _batches(cursor):
                        out.writerows([["" if v is None else _csv_value(v) for v in row] for row in batch])
    finally:
        conn.rollback()
    return columns


def _batches(cursor: Any) -> Iterator[list[tuple[Any, ...]]]:
    while True:
        rows = cursor.fetchmany(BATCH_ROWS)
        if not rows:
            return
        yield rows


def _row_dict(columns: list[tuple[str, str]], row: tuple[Any, ...]) -> dict[str, Any]:
    return {col: (float(v) if ftype == "number" and v is not None else v) for (col, ftype), v in zip(columns, row, strict=True)}


def _csv_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _arrow_type(ftype: str) -> Any:
    import pyarrow as pa

    return {
        "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
        "datetime": pa.timestamp("us"),
    }.get(ftype, pa.string())

