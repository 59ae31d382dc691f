"""Reconciliation: evaluate the rules of schema/data/checks.toml on a document's cells. Never changes a value.

A check compares a target cell with what its parts imply. Status:
- pass: both sides known and equal;
- fail: both known and different (the difference is kept as expected vs actual);
- incomplete: the target is blank while its parts are not, a part is a blank subtotal whose own parts are
  not (a report that leaves its row totals empty cannot be said to fail its column total), or a part could
  not be read.
Blank parts otherwise count as 0. Cells the document does not show are not parts at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gongkai import schema
from gongkai.schema import Rule, TableDef, expand_parts, table_for_address

Number = int | float
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Check:
    rule: str
    target: str
    expected: Number | None
    actual: Number | None
    status: str
    parts: tuple[str, ...] = field(default=(), compare=False, repr=False)  # the cells the check summed

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "target": self.target, "expected": self.expected, "actual": self.actual, "status": self.status}


def reconcile(
    cells: Mapping[str, Number | None], template_key: str, unreadable: Iterable[str] = ()
) -> list[Check]:
    """Every document-level check of the template on these cells; `unreadable` names cells whose text was not a number."""
    unreadable_set = set(unreadable)
    checks: list[Check] = []
    for rule in schema.RULES:  # the schema loaded on first use, not at import (gongkai.schema)
        if rule.kind in ("year_over_year", "cumulative_chain"):
            continue  # across years: the warehouse
        try:
            table = table_for_address(rule.table, template_key)
        except StopIteration:
            continue
        checks.extend(_evaluate(rule, table, cells, unreadable_set))
    return _blank_subtotals_make_incomplete(checks)


def _blank_subtotals_make_incomplete(checks: list[Check]) -> list[Check]:
    """A failing check one of whose parts is the blank target of another check that is incomplete (its own parts
    are not blank): the sum cannot be judged, since the blank subtotal stands for a figure left unprinted."""
    unprinted = {c.target for c in checks if c.actual is None and c.status == "incomplete"}
    if not unprinted:
        return checks
    out = []
    for check in checks:
        if check.status == "fail" and any(p in unprinted for p in check.parts):
            check = replace(check, status="incomplete")
        out.append(check)
    return out


def _evaluate(rule: Rule, table: TableDef, cells: Mapping[str, Number | None], unreadable: set[str]) -> list[Check]:
    """One check per row (row_sum) or per column (column_sum) of the table."""
    if rule.kind == "row_sum":
        assert rule.target_column is not None
        axis, lines, target_key = "columns", [r.key for r in table.rows], rule.target_column
    else:
        assert rule.target_row is not None
        axis, lines, target_key = "rows", [c.key for c in table.columns], rule.target_row

    def address(line: str, part: str) -> str:
        row, col = (line, part) if axis == "columns" else (part, line)
        return f"{table.address}.{row}.{col}"

    plus, minus = expand_parts(table, rule.plus, axis), expand_parts(table, rule.minus, axis)
    out = []
    for line in lines:
        target = address(line, target_key)
        parts = [address(line, p) for p in plus]
        if sum(1 for a in parts if a in cells) < rule.min_parts:
            continue  # stats.channel_sum: a table printing one channel (or none) says nothing about their sum
        check = _compare(rule.name, target, parts, [address(line, m) for m in minus], cells, unreadable)
        if check:
            out.append(check)
    return out


def _compare(
    rule: str, target: str, plus: list[str], minus: list[str], cells: Mapping[str, Number | None], unreadable: set[str]
) -> Check | None:
    shown_plus = [a for a in plus if a in cells]
    shown_minus = [a for a in minus if a in cells]
    if target not in cells or not shown_plus:
        return None  # the document does not show this check's cells
    parts = shown_plus + shown_minus
    summed = tuple(parts)
    expected_value: Number = sum(cells[a] or 0 for a in shown_plus) - sum(cells[a] or 0 for a in shown_minus)
    expected = _tidy(expected_value)
    actual = cells[target]
    if target in unreadable or any(a in unreadable for a in parts):
        return Check(rule, target, expected, actual, "incomplete", summed)
    if actual is None:
        if all(cells[a] is None for a in parts):
            return Check(rule, target, None, None, "pass", summed)
        return Check(rule, target, expected, None, "incomplete", summed)
    status = "pass" if abs(actual - expected) <= TOLERANCE else "fail"
    return Check(rule, target, expected, actual, status, summed)


def _tidy(value: Number) -> Number:
    if isinstance(value, float):
        rounded = round(value, 6)
        return int(rounded) if rounded.is_integer() else rounded
    return value


def year_over_year(previous: Mapping[str, Number | None], current: Mapping[str, Number | None], template_key: str) -> list[Check]:
    """carried_forward of year Y-1 against carried_over of year Y, per column (the warehouse-level rule)."""
    out = []
    for rule in schema.RULES:  # the schema loaded on first use, not at import (gongkai.schema)
        if rule.kind != "year_over_year":
            continue
        table = table_for_address(rule.table, template_key)
        for col in table.columns:
            before = f"{table.address}.{rule.previous_row}.{col.key}"
            target = f"{table.address}.{rule.current_row}.{col.key}"
            if before not in previous or target not in current:
                continue
            expected, actual = previous[before], current[target]
            if expected is None and actual is None:
                status = "pass"
            elif actual is None or expected is None:
                status = "incomplete"
            else:
                status = "pass" if abs(actual - expected) <= TOLERANCE else "fail"
            out.append(Check(rule.name, target, expected, actual, status))
    return out
