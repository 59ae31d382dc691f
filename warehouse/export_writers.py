"""Writers of `gongkai export`: Arrow record batches (already typed by export_plan) into Parquet, CSV or SQLite.

Both engines hand the same batches to the same writer, so the files cannot differ by engine.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from gongkai.warehouse.export_plan import RelationPlan

UTF8_BOM = b"\xef\xbb\xbf"
# pandas (and frictionless, which reads Parquet through pandas) turn an int64 column with NULLs into floats
# with NaN unless the file's pandas metadata names a nullable dtype: these are pandas' own names for them.
PANDAS_DTYPES = {"int64": ("int64", "Int64"), "double": ("float64", "Float64"), "bool": ("bool", "boolean"),
                 "string": ("unicode", "object"), "date32[day]": ("date", "object"),
                 "timestamp[us]": ("datetime", "timestamp[us][pyarrow]")}


def _pandas_metadata(schema: Any) -> bytes:
    columns = []
    for f in schema:
        pandas_type, numpy_type = PANDAS_DTYPES.get(str(f.type), ("decimal", "object"))
        columns.append({"name": f.name, "field_name": f.name, "pandas_type": pandas_type, "numpy_type": numpy_type,
                        "metadata": {"precision": f.type.precision, "scale": f.type.scale} if pandas_type == "decimal" else None})
    return json.dumps({"index_columns": [], "column_indexes": [], "columns": columns,
                       "creator": {"library": "gongkai"}}).encode("utf-8")


def parquet_schema(plan: RelationPlan, descriptions: dict[str, str], version: str) -> Any:
    """The relation's Arrow schema with each column's description in its field metadata."""
    import pyarrow as pa

    fields = [pa.field(c.name, c.arrow, metadata={"description": descriptions.get(c.name, "")}) for c in plan.columns]
    plain = pa.schema(fields)
    return plain.with_metadata({"pandas": _pandas_metadata(plain), "gongkai_version": version, "relation": plan.name})


class ParquetOut:
    def __init__(self, path: Path, schema: Any) -> None:
        import pyarrow.parquet as pq

        self.schema = schema
        self._writer = pq.ParquetWriter(str(path), schema)

    def write(self, batch: Any) -> None:
        import pyarrow as pa

        self._writer.write_table(pa.Table.from_batches([batch]).cast(self.schema))

    def close(self) -> None:
        self._writer.close()


def _decimal_text(array: Any) -> Any:
    """Decimals as the shortest text: 859.000000 → 859, 25.100000 → 25.1 (a count reads as a count in a sheet)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(array, pa.string())
    text = pc.replace_substring_regex(text, r"(\.\d*?)0+$", r"\1")
    return pc.replace_substring_regex(text, r"\.$", "")


class CsvOut:
    def __init__(self, path: Path, plan: RelationPlan, bom: bool) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self._decimals = [i for i, c in enumerate(plan.columns) if pa.types.is_decimal(c.arrow)]
        self.schema = pa.schema([pa.field(c.name, pa.string() if i in self._decimals else c.arrow)
                                 for i, c in enumerate(plan.columns)])
        self._fh = path.open("wb")
        if bom:
            self._fh.write(UTF8_BOM)
        self._writer = pacsv.CSVWriter(self._fh, self.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))

    def write(self, batch: Any) -> None:
        import pyarrow as pa

        arrays = [_decimal_text(a) if i in self._decimals else a for i, a in enumerate(batch.columns)]
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self._writer.close()
        self._fh.close()


def _sqlite_type(column: Any) -> str:
    import pyarrow as pa

    t = column.arrow
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "INTEGER"
    if pa.types.is_decimal(t):
        return "NUMERIC"  # SQLite has no decimal: NUMERIC keeps a whole amount an integer, the rest REAL
    if pa.types.is_floating(t):
        return "REAL"
    return "TEXT"


def _sqlite_value(value: Any) -> Any:
    from datetime import date
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):  # datetime too: ISO 8601 text, as SQLite's date functions read it
        return value.isoformat()
    return value


class SqliteOut:
    """One table of gongkai.sqlite, with its primary key and foreign keys declared (Datasette links rows by them)."""

    def __init__(self, conn: sqlite3.Connection, plan: RelationPlan, foreign_keys: list[tuple[list[str], str, list[str]]]) -> None:
        self._conn = conn
        self._names = [c.name for c in plan.columns]
        lines = [f'"{c.name}" {_sqlite_type(c)}' for c in plan.columns]
        if plan.primary_key:
            lines.append("PRIMARY KEY (" + ", ".join(f'"{c}"' for c in plan.primary_key) + ")")
        for fields, other, other_fields in foreign_keys:
            lines.append(f"FOREIGN KEY ({', '.join(fields)}) REFERENCES \"{other}\" ({', '.join(other_fields)})")
        conn.execute(f'DROP TABLE IF EXISTS "{plan.name}"')
        conn.execute(f'CREATE TABLE "{plan.name}" (\n  ' + ",\n  ".join(lines) + "\n)")
        self._insert = (f'INSERT INTO "{plan.name}" VALUES (' + ", ".join("?" for _ in self._names) + ")")
        self._indexes = [(plan.name, fields) for fields, _other, _of in foreign_keys]

    def write(self, batch: Any) -> None:
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        self._conn.executemany(self._insert, ([_sqlite_value(v) for v in row] for row in zip(*columns, strict=True)))

    def close(self) -> None:
        for table, fields in self._indexes:  # Datasette follows foreign keys both ways: index the referring side
            self._conn.execute(f'CREATE INDEX IF NOT EXISTS "{table}__{"_".join(fields)}" ON "{table}" ({", ".join(fields)})')
