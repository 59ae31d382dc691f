"""The parts of warehouse/views.sql that come from schema/: written here, checked by the tests.

views.sql is hand-written SQL with blocks marked `-- generated:begin NAME` / `-- generated:end NAME`;
`python -m warehouse.views` rewrites those blocks (cell columns of the wide view, the requests pivot,
the cell dictionary, templates, provinces, the file's digest; the views across templates from
schema/data/concepts.toml are written by warehouse/views_concepts.py). The SQL is plain enough for both engines:
`max(CASE WHEN address = '…' THEN value END)` pivots, VALUES lists, no engine-specific functions.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gongkai.schema import RULES, TABLES, TEMPLATES, Rule, TableDef, template
from gongkai.warehouse.views_concepts import (
    concept_dictionary_sql,
    concept_series_sql,
    derivations,
    derived_totals_sql,
    printed_or_derived,
    proactive_harmonised_sql,
)

VIEWS_SQL = Path(__file__).parent / "views.sql"
PROVINCES = Path(__file__).parent / "provinces.toml"
# PostgreSQL truncates identifiers longer than this; a wide column must survive intact.
MAX_IDENTIFIER = 63
BLOCK = re.compile(r"(-- generated:begin (\w+)\n)(.*?)(-- generated:end \2\n)", re.S)
DIGEST_LINE = re.compile(r"SELECT '[0-9a-f]*' AS digest")
# Templates whose cells the warehouse pivots (pre2019: the 统计表, table stats).
CELL_TEMPLATES = ("pre2019", "2019", "2021")
# The report columns shown before the cells in report_cells_wide.
WIDE_REPORT_COLUMNS = (
    "report_id", "agency_id", "agency", "division_code", "level", "province_code", "province", "year",
    "template", "status", "document_url", "checks_failing", "checks_incomplete",
)


@dataclass(frozen=True)
class CellInfo:
    """One address of the common schema, with everything a dictionary says about it."""

    address: str
    table: str
    row: str
    column: str
    templates: tuple[str, ...]
    kind: str
    table_title: str
    row_label: str
    column_label: str
    row_en: str
    column_en: str

    @property
    def wide_column(self) -> str:
        return wide_column(self.address)

    @property
    def label(self) -> str:
        return f"{self.table_title}: {self.row_label} / {self.column_label}"

    @property
    def label_en(self) -> str:
        return f"{self.row_en} / {self.column_en}"


def wide_column(address: str) -> str:
    """`requests.new.total` → `requests__new__total` (a plain SQL identifier)."""
    return address.replace(".", "__")


def cell_catalog() -> list[CellInfo]:
    """Every cell address of the templates with tables, in schema order, once (shared cells list both templates).

    A row that only some of its table's templates print (tables.toml `templates`: （六）1./2./3., 2021) is tagged
    with those; its place in the order stays that of the table."""
    found: dict[str, CellInfo] = {}
    for key in CELL_TEMPLATES:
        for table in template(key).tables:
            for row in table.rows:
                tags = (key,) if row.templates is None or key in row.templates else ()
                for column in table.columns_of(row):
                    address = f"{table.address}.{row.key}.{column.key}"
                    if address in found:
                        known = found[address]
                        found[address] = CellInfo(**{**known.__dict__, "templates": (*known.templates, *tags)})
                        continue
                    found[address] = CellInfo(
                        address, table.address, row.key, column.key, tags,
                        "money" if "money" in (row.kind, column.kind) else "count",
                        table.title, row.printed[0], column.printed[0], row.en or row.key, column.en or column.key,
                    )
    return list(found.values())


def _quote(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _values(rows: list[tuple[str | int | None, ...]]) -> str:
    def literal(value: str | int | None) -> str:
        return str(value) if isinstance(value, int) else _quote(value)

    return ",\n".join("    (" + ", ".join(literal(v) for v in row) + ")" for row in rows)


def _provinces_sql() -> str:
    with PROVINCES.open("rb") as fh:
        provinces = tomllib.load(fh)["provinces"]
    rows: list[tuple[str | int | None, ...]] = [(code, zh, en) for code, (zh, en) in provinces.items()]
    return (
        "CREATE VIEW provinces AS\nSELECT * FROM (VALUES\n" + _values(rows)
        + "\n) AS p (province_code, province, province_en);\n"
    )


def _templates_sql() -> str:
    rows: list[tuple[str | int | None, ...]] = [(t.key, t.notice, t.first_year, t.last_year) for t in TEMPLATES]
    # A NULL year would make the column's type unknown in PostgreSQL: cast every value.
    body = _values(rows).replace("NULL", "CAST(NULL AS INTEGER)")
    return "CREATE VIEW templates AS\nSELECT * FROM (VALUES\n" + body + "\n) AS t (template, notice, first_year, last_year);\n"


def _cell_dictionary_sql() -> str:
    rows: list[tuple[str | int | None, ...]] = [
        (c.address, c.table, c.row, c.column, ",".join(c.templates), c.kind, c.wide_column,
         c.table_title, c.row_label, c.column_label, c.row_en, c.column_en)
        for c in cell_catalog()
    ]
    return (
        "CREATE VIEW cell_dictionary AS\nSELECT * FROM (VALUES\n" + _values(rows) + "\n) AS d (address, table_name, "
        "row_key, column_key, templates, kind, wide_column, table_title, row_label, column_label, row_label_en, "
        "column_label_en);\n"
    )


def _pivot(column_of: str, pairs: list[tuple[str, str]]) -> str:
    """`max(CASE WHEN <column_of> = 'key' THEN value END) AS name` for each (key, name)."""
    return ",\n".join(f"        max(CASE WHEN {column_of} = {_quote(key)} THEN value END) AS {name}" for key, name in pairs)


def _wide_sql() -> str:
    cells = cell_catalog()
    for cell in cells:
        if len(cell.wide_column) > MAX_IDENTIFIER:
            raise ValueError(f"wide column {cell.wide_column} is longer than {MAX_IDENTIFIER} characters")
    report_columns = ", ".join(f"r.{c}" for c in WIDE_REPORT_COLUMNS)
    cell_columns = ",\n".join(f"       w.{c.wide_column}" for c in cells)
    return (
        "CREATE VIEW report_cells_wide AS\n"
        f"SELECT {report_columns},\n{cell_columns}\n"
        "FROM (\n    SELECT report_id,\n"
        + _pivot("address", [(c.address, c.wide_column) for c in cells])
        + "\n    FROM cells\n    GROUP BY report_id\n) w\nRIGHT JOIN report_index r ON w.report_id = r.report_id\n"
        "WHERE r.report_key NOT LIKE 'doc:%';\n"
    )


def _requests_rows() -> tuple[TableDef, list[str]]:
    table = TABLES["requests"]
    return table, [r.key for r in table.rows]


def _sum_of(keys: list[str]) -> str:
    """NULL when every part is blank, else the sum with blanks as 0 (as reconciliation counts them)."""
    parts = [f"p.{k}" for k in keys]
    return f"CASE WHEN coalesce({', '.join(parts)}) IS NULL THEN NULL ELSE " + " + ".join(f"coalesce({p}, 0)" for p in parts) + " END"


def _requests_by_outcome_sql() -> str:
    """One pivot per applicant column, stacked: a filter on `applicant` leaves a single branch to compute."""
    table, rows = _requests_rows()
    groups = {g: [r for r in rows if r.startswith(g + "_")] for g in ("denied", "unavailable", "rejected")}
    split_other = [r for r in rows if r.startswith("other_") and r != "other_handling"]
    selected = []
    for key in rows:
        if key == "other_handling":
            selected.append(
                f"CASE WHEN coalesce({', '.join('p.' + k for k in split_other)}) IS NULL THEN p.other_handling "
                f"ELSE {' + '.join(f'coalesce(p.{k}, 0)' for k in split_other)} END AS other_handling"
            )
            selected.append("p.other_handling AS other_handling_printed")
        else:
            selected.append(f"p.{key}")
    for group, keys in groups.items():
        selected.append(f"{_sum_of(keys)} AS {group}")
    selected.append("p.derived_rows")
    derived = derivations()
    branches = []
    for column in table.columns:
        addresses = [f"{table.address}.{row}.{column.key}" for row in rows]
        if any(a in derived for a in addresses):
            # a total the report printed blank: the sum of its parts (schema/data/concepts.toml
            # derive_totals), named in derived_rows
            flags = ", ".join(
                f"max(CASE WHEN address = {_quote(a)} AND derived = 1 THEN {_quote(row)} END)"
                for a, row in zip(addresses, rows, strict=True) if a in derived
            )
            pivot = [_pivot("address", list(zip(addresses, rows, strict=True))),
                     f"        nullif(concat_ws(',', {flags}), '') AS derived_rows"]
            source = "(\n        " + printed_or_derived(addresses) + "\n    ) t"
        else:
            pivot = [_pivot("address", list(zip(addresses, rows, strict=True))), "        CAST(NULL AS TEXT) AS derived_rows"]
            source = "cells"
        where = "" if source != "cells" else "\n    WHERE address IN (" + ", ".join(_quote(a) for a in addresses) + ")"
        branches.append(
            f"    SELECT report_id, {_quote(column.key)} AS applicant,\n"
            + ",\n".join(pivot)
            + f"\n    FROM {source}{where}\n    GROUP BY report_id"
        )
    return (
        "CREATE VIEW requests_by_outcome AS\n"
        "SELECT r.report_id, r.agency_id, r.agency, r.division_code, r.level, r.province_code, r.province,\n"
        "       r.year, r.template, p.applicant,\n       "
        + ",\n       ".join(selected)
        + "\nFROM (\n" + "\n    UNION ALL\n".join(branches) + "\n) p\n"
        "JOIN report_index r ON r.report_id = p.report_id\n"
        "WHERE r.status IN ('extracted', 'partial') AND r.report_key NOT LIKE 'doc:%';\n"
    )


# The proactive rows whose stock carries over: in_force(Y-1) + issued(Y) - repealed(Y) = in_force(Y).
STOCK_COLUMNS = ("in_force", "issued", "repealed")
# Equal within this (as schema.reconcile's tolerance): values are doubles.
TOLERANCE = "0.000001"


def _yoy_comparisons() -> list[tuple[str, str, str, str, str, str | None]]:
    """(rule, target, previous address, column_key, expected expression, template both years must have).

    Expressions read the pivot columns of `pairs`: cur_<n> of year Y, prev_<n> of year Y-1, where n indexes
    yoy_addresses().
    """
    out: list[tuple[str, str, str, str, str, str | None]] = []
    index = {a: i for i, a in enumerate(yoy_addresses())}
    for rule in RULES:
        if rule.kind != "year_over_year":
            continue
        table = TABLES[rule.table]
        for column in table.columns:
            target = f"{table.address}.{rule.current_row}.{column.key}"
            before = f"{table.address}.{rule.previous_row}.{column.key}"
            out.append((rule.name, target, before, column.key, f"prev_{index[before]}", None))
    for row in _stock_rows():
        target = f"proactive.{row}.in_force"
        prev, issued, repealed = (index[f"proactive.{row}.{c}"] for c in STOCK_COLUMNS)
        expected = (
            f"CASE WHEN prev_{prev} IS NULL AND cur_{issued} IS NULL AND cur_{repealed} IS NULL THEN NULL "
            f"ELSE coalesce(prev_{prev}, 0) + coalesce(cur_{issued}, 0) - coalesce(cur_{repealed}, 0) END"
        )
        out.append(("proactive.in_force_year_over_year", target, target, row, expected, "2021"))
    for rule, row in _chain_rows():
        # stats.cumulative_chain: cumulative of Y-1 + year of Y = cumulative of Y, for every row both reports print
        assert rule.cumulative_column is not None and rule.year_column is not None
        target = f"{rule.table}.{row}.{rule.cumulative_column}"
        prev, year = index[target], index[f"{rule.table}.{row}.{rule.year_column}"]
        expected = (
            f"CASE WHEN prev_{prev} IS NULL AND cur_{year} IS NULL THEN NULL "
            f"ELSE coalesce(prev_{prev}, 0) + coalesce(cur_{year}, 0) END"
        )
        out.append((rule.name, target, target, row, expected, None))
    return out


def _chain_rows() -> list[tuple[Rule, str]]:
    """(rule, row) of every cumulative_chain rule, per row of its table that has both columns."""
    out = []
    for rule in RULES:
        if rule.kind == "cumulative_chain":
            table = TABLES[rule.table]
            wanted = {rule.year_column, rule.cumulative_column}
            out.extend((rule, r.key) for r in table.rows if wanted <= {c.key for c in table.columns_of(r)})
    return out


def _stock_rows() -> list[str]:
    table = next(t for t in template("2021").tables if t.address == "proactive")
    return [r.key for r in table.rows if set(STOCK_COLUMNS) <= {c.key for c in table.columns_of(r)}]


def yoy_addresses() -> list[str]:
    """The cells the year-over-year rules read, in a fixed order."""
    out: list[str] = []
    for rule in RULES:
        if rule.kind == "year_over_year":
            for row in (rule.current_row, rule.previous_row):
                out.extend(f"{rule.table}.{row}.{c.key}" for c in TABLES[rule.table].columns)
    out.extend(f"proactive.{row}.{c}" for row in _stock_rows() for c in STOCK_COLUMNS)
    for rule, row in _chain_rows():
        out.extend(f"{rule.table}.{row}.{c}" for c in (rule.cumulative_column, rule.year_column))
    return out


def _year_over_year_sql() -> str:
    addresses = yoy_addresses()
    # s_<n>: the document shows the cell (a blank cell is shown; v_<n> alone cannot tell it from an absent one)
    shown = ",\n".join(
        f"           max(CASE WHEN address = {_quote(a)} THEN 1 ELSE 0 END) AS s_{i}" for i, a in enumerate(addresses)
    )
    pivot = _pivot("address", [(a, f"v_{i}") for i, a in enumerate(addresses)]).replace("        max(", "           max(")
    pair_columns = ",\n".join(
        f"           cur.v_{i} AS cur_{i}, prev.v_{i} AS prev_{i}, cur.s_{i} AS cur_shown_{i}, prev.s_{i} AS prev_shown_{i}"
        for i in range(len(addresses))
    )
    comparisons = _yoy_comparisons()
    # One row per comparison, crossed with the pairs of reports: a single reference to `pairs`.
    listed: list[tuple[str | int | None, ...]] = [
        (n, rule, target, before, column_key, both_template)
        for n, (rule, target, before, column_key, _expected, both_template) in enumerate(comparisons)
    ]
    pick_expected = " ".join(f"WHEN {n} THEN {c[4]}" for n, c in enumerate(comparisons))
    pick_actual = " ".join(f"WHEN {n} THEN cur_{addresses.index(c[1])}" for n, c in enumerate(comparisons))
    # As schema.reconcile.year_over_year: compared only where this year's report shows the target and last
    # year's shows the previous cell (two reports without the requests table make no requests check).
    pick_shown = " ".join(
        f"WHEN {n} THEN cur_shown_{addresses.index(c[1])} + prev_shown_{addresses.index(c[2])}"
        for n, c in enumerate(comparisons)
    )
    comparison_sql = (
        "    SELECT p.report_id, p.previous_report_id, p.agency_id, p.agency, p.division_code, p.level, p.province_code,\n"
        "           p.province, p.year, p.template, p.document_url, k.rule, k.target, k.previous_address,\n"
        f"           k.column_key,\n           CASE k.n {pick_expected} END AS expected,\n"
        f"           CASE k.n {pick_actual} END AS actual\n"
        "    FROM pairs p\n    CROSS JOIN (VALUES\n"
        + _values(listed).replace("    (", "        (").replace("NULL)", "CAST(NULL AS TEXT))")
        + "\n    ) AS k (n, rule, target, previous_address, column_key, template)\n"
        "    WHERE (k.template IS NULL OR (p.template = k.template AND p.previous_template = k.template))\n"
        f"      AND CASE k.n {pick_shown} END = 2"
    )
    identity = "agency, division_code, level, province_code, province, document_url"
    return (
        "CREATE VIEW year_over_year AS\nWITH yoy_cells AS (\n    SELECT report_id,\n"
        + pivot + ",\n" + shown
        + "\n    FROM cells\n    WHERE address IN (" + ", ".join(_quote(a) for a in addresses) + ")\n    GROUP BY report_id\n),\n"
        # report_index is joined once, here: PostgreSQL estimates one row for current_reports' window filter
        # and would loop over it if it were joined to the (larger) pairs or comparisons
        "yoy_reports AS (\n    SELECT r.report_id, r.agency_id, r.year, r.template, "
        + ", ".join(f"r.{c}" for c in identity.split(", "))
        + ",\n           "
        + ", ".join(f"y.v_{i}, y.s_{i}" for i in range(len(addresses)))
        + "\n    FROM report_index r\n"
        "    JOIN yoy_cells y ON y.report_id = r.report_id\n"
        "    WHERE r.status IN ('extracted', 'partial') AND r.agency_id IS NOT NULL\n),\n"
        "pairs AS (\n    SELECT cur.report_id, prev.report_id AS previous_report_id, cur.agency_id, cur.year,\n"
        "           cur.template, prev.template AS previous_template, "
        + ", ".join(f"cur.{c}" for c in identity.split(", "))
        + ",\n"
        + pair_columns
        + "\n    FROM yoy_reports cur\n    JOIN yoy_reports prev ON prev.agency_id = cur.agency_id AND prev.year = cur.year - 1\n),\n"
        "comparisons AS (\n" + comparison_sql + "\n)\n"
        "SELECT report_id, previous_report_id, agency_id, agency, division_code, level, province_code, province,\n"
        "       year, template, rule, target, previous_address, column_key, expected, actual,\n"
        "       actual - expected AS difference,\n"
        "       CASE WHEN expected IS NULL AND actual IS NULL THEN 'pass'\n"
        "            WHEN expected IS NULL OR actual IS NULL THEN 'incomplete'\n"
        f"            WHEN abs(actual - expected) <= {TOLERANCE} THEN 'pass'\n"
        "            ELSE 'fail' END AS status,\n"
        "       document_url\n"
        "FROM comparisons;\n"
    )


def _views_version_sql() -> str:
    return "CREATE VIEW views_version AS SELECT '' AS digest;\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "provinces": _provinces_sql,
    "templates": _templates_sql,
    "cell_dictionary": _cell_dictionary_sql,
    "report_cells_wide": _wide_sql,
    "requests_by_outcome": _requests_by_outcome_sql,
    "year_over_year": _year_over_year_sql,
    "derived_totals": derived_totals_sql,
    "concept_dictionary": concept_dictionary_sql,
    "concept_series": concept_series_sql,
    "proactive_harmonised": proactive_harmonised_sql,
    "views_version": _views_version_sql,
}


def digest(text: str) -> str:
    """The digest of views.sql, not counting the digest it records about itself."""
    return hashlib.sha256(DIGEST_LINE.sub("SELECT '' AS digest", text).encode("utf-8")).hexdigest()[:16]


def render(text: str) -> str:
    """views.sql with every generated block rewritten from schema/ and its digest recorded."""
    seen: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        seen.add(name)
        return match.group(1) + GENERATORS[name]() + match.group(4)

    out = BLOCK.sub(fill, text)
    missing = set(GENERATORS) - seen
    if missing:
        raise ValueError(f"views.sql lacks generated blocks {sorted(missing)}")
    return DIGEST_LINE.sub(f"SELECT '{digest(out)}' AS digest", out)


def recorded_digest(text: str) -> str | None:
    found = re.search(r"SELECT '([0-9a-f]*)' AS digest", text)
    return found.group(1) if found else None


def main() -> int:
    current = VIEWS_SQL.read_text(encoding="utf-8")
    fresh = render(current)
    if fresh != current:
        VIEWS_SQL.write_text(fresh, encoding="utf-8")
        print(f"rewrote {VIEWS_SQL}")
    else:
        print(f"{VIEWS_SQL} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
