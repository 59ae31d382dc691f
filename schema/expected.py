"""What a report following a template must show: every row of every standard table, with that row's columns.

A missing row is never silent: extraction lists each one (`requests.granted: row not found`) and the report is
`partial`. Rows and columns marked `optional` (the channels of the pre-2019 统计表, its 历年累计) are not
expected. Rows that stand in for one another (schema/data/tables.toml `alternatives`) are expected as one set:
the set the report prints, else the first.
"""

from __future__ import annotations

from collections.abc import Collection

from gongkai.schema import TableDef, Template


def _expected_rows(table: TableDef, shown_rows: Collection[str]) -> list[str]:
    sets = table.alternatives
    left_out: set[str] = set()
    if sets:
        printed = max(sets, key=lambda rows: sum(1 for r in rows if r in shown_rows))
        if not any(r in shown_rows for r in printed):
            printed = sets[0]
        left_out = {r for rows in sets if rows is not printed for r in rows}
    return [r.key for r in table.rows if r.key not in left_out and not r.optional]


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
                if not col.optional and f"{table.address}.{row_key}.{col.key}" not in cells
            )
    return out
