"""Export the warehouse's tables and views as Parquet, CSV or SQLite, with a Frictionless datapackage.json
(Parquet, CSV) or a Datasette metadata.json (SQLite).

The data dictionary is written from the same sources as the warehouse: schema/ for the cells (the
Chinese labels as printed in the national templates, and English), warehouse/catalog.toml for the
other columns, warehouse/export_package.toml for the package (licence, sources). Each relation is read by
one typed query (warehouse/export_plan.py: counts int64, money decimal, natural keys beside the surrogate
ids) as Arrow batches, from DuckDB or PostgreSQL alike, and written by warehouse/export_writers.py; both
engines read through a connection that cannot write the warehouse.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gongkai.warehouse.export_plan import (
    FOREIGN_KEYS,
    LOCAL_IDS,
    LOCAL_NOTE,
    NATURAL_DESCRIPTIONS,
    PG_FAMILIES,
    RelationPlan,
    duckdb_family,
    plan_relation,
)
from gongkai.warehouse.query import load_catalog, open_read_only
from gongkai.warehouse.views import cell_catalog

FORMATS = ("parquet", "csv", "sqlite")
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
BATCH_ROWS = 50_000
PACKAGE = Path(__file__).parent / "export_package.toml"
SQLITE_NAME = "gongkai.sqlite"
MAX_SOURCES = 100  # portal hosts listed as sources in datapackage.json; the rest are counted


class ExportError(ValueError):
    """A value the export will not write as its type says (a count with a fraction): one line, names the column."""


def frictionless_type(sql_type: str) -> str:
    """A DuckDB column type as a Table Schema field type."""
    return {"integer": "integer", "number": "number", "datetime": "datetime", "boolean": "boolean",
            "date": "date"}.get(duckdb_family(sql_type), "string")


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


def column_description(descriptions: dict[str, dict[str, str]], relation: str, column: str) -> str:
    text = descriptions.get(relation, {}).get(column) or descriptions["*"].get(column) or NATURAL_DESCRIPTIONS.get(column, "")
    return text + LOCAL_NOTE if column in LOCAL_IDS else text


def exported_relations(present: set[str]) -> list[str]:
    """Relations `gongkai export` writes, in catalog order, that the warehouse has."""
    return [name for name, entry in load_catalog()["relations"].items() if entry.get("export") and name in present]


def _version() -> str:
    from gongkai import __version__

    return __version__


def package_info() -> dict[str, Any]:
    with PACKAGE.open("rb") as fh:
        return tomllib.load(fh)


def export_warehouse(
    url: str, out_dir: Path, fmt: str = "parquet", only: list[str] | None = None, csv_bom: bool = False
) -> dict[str, Any]:
    """Write one file per relation and datapackage.json (or gongkai.sqlite and metadata.json) into out_dir;
    return the datapackage descriptor (for sqlite: the same descriptor, not written)."""
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
            hosts = _source_hosts_postgres(reader.connection)
            plans = {n: plan_relation(n, _pg_columns(reader.connection, n), catalog.get(n, {})) for n in names}
            _write_all(plans, lambda plan: _postgres_batches(reader.connection, plan), out_dir, fmt, csv_bom, descriptions)
        database_path = reader.database_path
    if reader.dialect == "duckdb":
        # A second connection with other settings cannot coexist with the reader's in one process: reader closed.
        import duckdb

        conn = duckdb.connect(database_path, read_only=True)
        try:
            hosts = [str(r[0]) for r in conn.execute(_HOSTS_SQL).fetchall()]
            plans = {n: plan_relation(n, _duck_columns(conn, n), catalog.get(n, {})) for n in names}
            _write_all(plans, lambda plan: _duckdb_batches(conn, plan), out_dir, fmt, csv_bom, descriptions)
        finally:
            conn.close()
    package = _package(plans, names, fmt, csv_bom, descriptions, catalog, hosts)
    if fmt == "sqlite":
        from gongkai.warehouse.export_datasette import datasette_metadata

        metadata = datasette_metadata(package, plans, package_info())
        (out_dir / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    else:
        (out_dir / "datapackage.json").write_text(json.dumps(package, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return package


# Portal hosts the documents came from (scheme://host), for the package's sources.
_HOSTS_SQL = (
    "SELECT DISTINCT split_part(url, '/', 1) || '//' || split_part(url, '/', 3) AS host FROM documents "
    f"WHERE url LIKE 'http%' ORDER BY host LIMIT {MAX_SOURCES + 1}"
)


def _source_hosts_postgres(conn: Any) -> list[str]:
    try:
        with conn.cursor() as cursor:
            cursor.execute(_HOSTS_SQL)
            return [str(r[0]) for r in cursor.fetchall()]
    finally:
        conn.rollback()


def _package(
    plans: dict[str, RelationPlan], names: list[str], fmt: str, csv_bom: bool, descriptions: dict[str, dict[str, str]],
    catalog: dict[str, Any], hosts: list[str],
) -> dict[str, Any]:
    info = package_info()
    resources = [_resource(plans[n], fmt, csv_bom, catalog.get(n, {}), descriptions, set(names)) for n in names]
    sources = [dict(s) for s in info.get("sources", [])]
    sources += [{"title": f"Portal {h}", "path": h} for h in hosts[:MAX_SOURCES]]
    if len(hosts) > MAX_SOURCES:
        sources.append({"title": "More portals: see documents.url"})
    return {
        "profile": "tabular-data-package",
        "name": info["name"],
        "title": info["title"],
        "description": info["description"],
        "version": _version(),
        "licenses": [dict(lic) for lic in info.get("licenses", [])],
        "sources": sources,
        "created": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "gongkai": {"version": _version(), "format": fmt},
        "resources": resources,
    }


def _write_all(
    plans: dict[str, RelationPlan], batches: Any, out_dir: Path, fmt: str, csv_bom: bool,
    descriptions: dict[str, dict[str, str]],
) -> None:
    from gongkai.warehouse.export_writers import CsvOut, ParquetOut, SqliteOut, parquet_schema

    sqlite_path = out_dir / SQLITE_NAME
    if fmt == "sqlite":
        sqlite_path.unlink(missing_ok=True)  # a fresh file: no table of an earlier export left behind
    conn = sqlite3.connect(sqlite_path) if fmt == "sqlite" else None
    try:
        for name, plan in plans.items():
            column_text = {c.name: column_description(descriptions, name, c.name) for c in plan.columns}
            writer: Any
            if fmt == "parquet":
                writer = ParquetOut(out_dir / f"{name}.parquet", parquet_schema(plan, column_text, _version()))
            elif fmt == "csv":
                writer = CsvOut(out_dir / f"{name}.csv", plan, csv_bom)
            else:
                assert conn is not None
                writer = SqliteOut(conn, plan, [fk for fk in FOREIGN_KEYS.get(name, []) if fk[1] in plans])
            try:
                for batch in batches(plan):
                    writer.write(batch)
            finally:
                writer.close()
        if conn is not None:
            conn.commit()
    finally:
        if conn is not None:
            conn.close()


def _duck_columns(conn: Any, name: str) -> list[tuple[str, str]]:
    return [(str(r[0]), duckdb_family(str(r[1]))) for r in conn.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()]


def _pg_columns(conn: Any, name: str) -> list[tuple[str, str]]:
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {name} LIMIT 0")
            return [(d.name, PG_FAMILIES.get(d.type_code, "string")) for d in cursor.description or []]
    finally:
        conn.rollback()


def _typed(plan: RelationPlan, arrays: list[Any]) -> Any:
    """The batch in the plan's types; a cast that would change a value (2.5 as a count) stops the export."""
    import pyarrow as pa

    out = []
    for column, array in zip(plan.columns, arrays, strict=True):
        try:
            out.append(array.cast(column.arrow, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ExportError(f"{plan.name}.{column.name}: not exportable as {column.arrow}: {exc}") from None
    return pa.RecordBatch.from_arrays(out, schema=plan.schema)


def _duckdb_batches(conn: Any, plan: RelationPlan) -> Iterator[Any]:
    relation = conn.sql(plan.sql)
    reader = relation.to_arrow_reader(BATCH_ROWS) if hasattr(relation, "to_arrow_reader") else relation.fetch_arrow_reader(BATCH_ROWS)
    for batch in reader:
        yield _typed(plan, list(batch.columns))


def _postgres_batches(conn: Any, plan: RelationPlan) -> Iterator[Any]:
    import pyarrow as pa

    try:
        with conn.cursor(name=f"export_{plan.name}") as cursor:  # server-side: rows arrive in batches
            cursor.execute(plan.sql)
            while rows := cursor.fetchmany(BATCH_ROWS):
                columns = list(zip(*rows, strict=True))
                yield _typed(plan, [pa.array(list(values)) for values in columns])
    finally:
        conn.rollback()


def _resource(
    plan: RelationPlan, fmt: str, csv_bom: bool, entry: dict[str, Any], descriptions: dict[str, dict[str, str]],
    exported: set[str],
) -> dict[str, Any]:
    fields = []
    for c in plan.columns:
        described: dict[str, Any] = {"name": c.name, "type": c.ftype, "description": column_description(descriptions, plan.name, c.name)}
        if c.kind:
            described["gongkai:kind"] = c.kind
        fields.append(described)
    schema: dict[str, Any] = {"fields": fields, "missingValues": [""]}
    if plan.primary_key:
        schema["primaryKey"] = list(plan.primary_key)
    keys = [fk for fk in FOREIGN_KEYS.get(plan.name, []) if fk[1] in exported]
    if keys:
        schema["foreignKeys"] = [{"fields": f, "reference": {"resource": other, "fields": of}} for f, other, of in keys]
    resource: dict[str, Any] = {
        "profile": "tabular-data-resource",
        "name": plan.name,
        "path": f"{plan.name}.{fmt}" if fmt != "sqlite" else SQLITE_NAME,
        "format": fmt,
        "description": entry.get("description", ""),
        "schema": schema,
    }
    if fmt in MEDIA_TYPES:
        resource["mediatype"] = MEDIA_TYPES[fmt]
    if fmt == "csv":
        resource["encoding"] = "utf-8-sig" if csv_bom else "utf-8"
        resource["dialect"] = {"delimiter": ",", "header": True}
    return resource
