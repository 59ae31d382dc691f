"""The standard tables of a report laid out as the national template prints them, from schema/data.

Table 二 and 三 print the schema's rows as rows (a group label such as （三）不予公开 to their left) and its
columns under their group headers (法人或其他组织); table 四 (orientation "columns") prints the schema's rows
as column groups: 行政复议, then 行政诉讼 over 未经复议直接起诉 and 复议后起诉, each over its five result
columns, with one row of values. Nothing here knows a label: all come from gongkai.schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gongkai.schema import Key, TableDef, template

Status = str  # '' | 'fail' | 'incomplete'


@dataclass
class Slot:
    """One printed cell: a header (text) or a value slot (address), with its spans."""

    text: str = ""
    address: str | None = None
    colspan: int = 1
    rowspan: int = 1
    header: bool = False
    absent: bool = False  # a position the template leaves empty (a row without this column)


@dataclass
class Layout:
    title: str
    address: str
    head: list[list[Slot]] = field(default_factory=list)
    body: list[list[Slot]] = field(default_factory=list)


def printed(key: Key) -> str:
    return key.printed[0] if key.printed else key.key


def _runs(keys: tuple[Key, ...]) -> list[tuple[str | None, list[Key]]]:
    """Consecutive keys sharing a group, as (group, keys)."""
    runs: list[tuple[str | None, list[Key]]] = []
    for key in keys:
        if runs and key.group is not None and runs[-1][0] == key.group:
            runs[-1][1].append(key)
        else:
            runs.append((key.group, [key]))
    return runs


def shown_rows(table: TableDef, addresses: set[str]) -> tuple[Key, ...]:
    """The table's rows, less the alternative sets the report does not print when it prints another one
    (the single （六）其他处理 row or its three 2021 sub-rows)."""
    printed_sets = [s for s in table.alternatives if any(a.startswith(f"{table.address}.{r}.") for r in s for a in addresses)]
    hidden = {r for s in table.alternatives if printed_sets and s not in printed_sets for r in s}
    return tuple(r for r in table.rows if r.key not in hidden)


def _rows_layout(table: TableDef, rows: tuple[Key, ...]) -> Layout:
    layout = Layout(table.title, table.address)
    row_groups = any(r.group for r in rows)
    col_groups = any(c.group for c in table.columns)
    depth = 2 if col_groups else 1
    top: list[Slot] = [Slot("", colspan=2 if row_groups else 1, rowspan=depth, header=True)]
    second: list[Slot] = []
    for group, keys in _runs(table.columns):
        if group is None:
            top.extend(Slot(printed(k), rowspan=depth, header=True) for k in keys)
        else:
            top.append(Slot(group, colspan=len(keys), header=True))
            second.extend(Slot(printed(k), header=True) for k in keys)
    layout.head = [top] + ([second] if second else [])
    for group, keys in _runs(rows):
        for i, row in enumerate(keys):
            line: list[Slot] = []
            if group is not None and i == 0:
                line.append(Slot(group, rowspan=len(keys), header=True))
            if group is None:
                line.append(Slot(printed(row), colspan=2 if row_groups else 1, header=True))
            else:
                line.append(Slot(printed(row), header=True))
            own = {c.key for c in table.columns_of(row)}
            for column in table.columns:
                address = f"{table.address}.{row.key}.{column.key}"
                line.append(Slot(address=address) if column.key in own else Slot(absent=True))
            layout.body.append(line)
    return layout


def _columns_layout(table: TableDef, rows: tuple[Key, ...]) -> Layout:
    """Table 四: schema rows become column groups, one line of values."""
    layout = Layout(table.title, table.address)
    grouped = any(r.group for r in rows)
    levels: list[list[Slot]] = [[], [], []] if grouped else [[], []]
    values: list[Slot] = []
    for group, keys in _runs(rows):
        width = sum(len(table.columns_of(k)) for k in keys)
        if grouped and group is not None:
            levels[0].append(Slot(group, colspan=width, header=True))
        for row in keys:
            columns = table.columns_of(row)
            if grouped and group is None:
                levels[0].append(Slot(printed(row), colspan=len(columns), rowspan=2, header=True))
            else:
                levels[-2].append(Slot(printed(row), colspan=len(columns), header=True))
            levels[-1].extend(Slot(printed(c), header=True) for c in columns)
            values.extend(Slot(address=f"{table.address}.{row.key}.{c.key}") for c in columns)
    layout.head = levels
    layout.body = [values]
    return layout


def report_layouts(template_key: str | None, addresses: set[str]) -> list[Layout]:
    """The template's tables laid out; [] for a report without a known template."""
    if not template_key:
        return []
    try:
        tables = template(template_key).tables
    except StopIteration:
        return []
    out = []
    for table in tables:
        rows = shown_rows(table, addresses)
        out.append(_columns_layout(table, rows) if table.orientation == "columns" else _rows_layout(table, rows))
    return out


def laid_out(layouts: list[Layout]) -> set[str]:
    return {s.address for lay in layouts for line in lay.body for s in line if s.address}


def describe(address: str, template_key: str | None) -> dict[str, Any]:
    """Table title, row and column labels (Chinese as printed, English) of one address, as far as known."""
    table_part, _, rest = address.partition(".")
    row_key, _, column_key = rest.partition(".")
    try:
        tables = template(template_key).tables if template_key else ()
    except StopIteration:
        tables = ()
    for table in tables:
        if table.address != table_part:
            continue
        row = next((r for r in table.rows if r.key == row_key), None)
        column = next((c for c in table.columns if c.key == column_key), None)
        return {
            "table": table.title,
            "row": printed(row) if row else row_key,
            "row_group": row.group if row else None,
            "row_en": row.en if row else None,
            "column": printed(column) if column else column_key,
            "column_group": column.group if column else None,
            "column_en": column.en if column else None,
        }
    return {"table": table_part, "row": row_key, "column": column_key}
