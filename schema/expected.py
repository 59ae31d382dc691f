"""What a report following a template must show: every row of every standard table, with that row's columns.

A missing row is never silent: extraction lists each one (`requests.granted: row not found`) and the report is
`partial`. Rows that stand in for one another (schema/data/tables.toml `alternatives`) are expected as one set:
the set the report prints, else the first.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from functools import cache

from gongkai.schema import DATA, SchemaError, TableDef, Template


@cache
def alternatives(table_name: str) -> tuple[tuple[str, ...], ...]:
    """The table's sets of interchangeable rows, as declared in tables.toml."""
    with (DATA / "tables.toml").open("rb") as fh:
        spec = tomllib.load(fh).get(table_name, {})
    return tuple(tuple(rows) for rows in spec.get("alternatives", []))


def _expected_rows(table: TableDef, shown_rows: Collection[str]) -> list[str]:
    sets = alternatives(table.name)
    keys = [r.key for r in table.rows]
    for rows in sets:
        if any(r not in keys for r in rows):
            raise SchemaError(f"{table.name}: alternatives name rows it does not have: {rows}")
    left_out: set[str] = set()
    if sets:
        printed = max(sets, key=lambda rows: sum(1 for r in rows if r in shown_rows))
        if not any(r in shown_rows for r in printed):
            printed = sets[0]
        left_out = {r for rows in sets if rows is not printed for r in rows}
    return [k for k in keys if k not in left_out]


def missing(cells: Collection[str], template: Template) -> list[str]:
    """One line per expected row the cells do not show (`requests.granted: row not found`), and per cell of a
    shown row that is absent (`requests.granted.total: cell not found`), in schema order."""
    out: list[str] = []
    for table in template.tables:
        prefix = f"{table.address}."
        shown_rows = {a[len(prefix) :].split(".", 1)[0] for a in cells if a.startswith(prefix)}
        for row_key in _expected_rows(table, shown_rows):
            row = table.row(row_key)
            if row_key not in shown_rows:
                out.append(f"{table.address}.{row_key}: row not found")
                continue
            out.extend(
                f"{table.address}.{row_key}.{col.key}: cell not found"
                for col in table.columns_of(row)
                if f"{table.address}.{row_key}.{col.key}" not in cells
            )
    return out
