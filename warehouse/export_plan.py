"""What `gongkai export` writes for each relation: typed columns, natural keys, primary and foreign keys.

One plan serves DuckDB and PostgreSQL, so that both give the same Arrow types and the same keys:
- counts are int64 and money decimal(20, 6) (万元 to the fen), whatever the engine stored them as (cells keep
  every value as DOUBLE): the cast is checked, a count with a fraction stops the export instead of being rounded;
- surrogate ids (agency_id, report_id, run_id …) differ between engines and rebuilds: natural keys are added in
  front of them, built in the export query from what the reports say (agency by division code and name,
  report by agency, year and version), and the package's keys use those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

MONEY = ("decimal", 20, 6)  # 万元 with six decimals: exact to the fen
# Columns holding a count or an amount of money, depending on the cell (long tables): decimal, exact for both.
MIXED_COLUMNS = frozenset({"value", "expected", "actual", "difference"})
# Relations whose every floating-point column is a count.
COUNT_RELATIONS = frozenset({"requests_by_outcome"})
# Columns of the warehouse that mean nothing outside it (a digest that includes a surrogate id): not exported.
DROPPED = {"reports": frozenset({"fingerprint"})}
# Columns whose values are local to one warehouse: surrogate ids and the times of its own loading. The
# comparison of two exports of the same corpus (another engine, a rebuild) leaves them out; nothing else.
LOCAL_COLUMNS = frozenset({
    "agency_id", "report_id", "previous_report_id", "run_id", "claimed_by", "report_key", "created_at", "loaded_at",
    "first_seen", "last_seen", "found_at", "extracted_at", "started_at", "finished_at", "duration_s", "params",
})

# Surrogate ids (and keys built from them): their descriptions say to join on the natural keys instead.
LOCAL_IDS = frozenset({"agency_id", "report_id", "previous_report_id", "run_id", "claimed_by", "report_key"})

# The natural key that stands beside a surrogate id: (id column, added column, kind of key).
NATURAL_KEYS = (
    ("agency_id", "agency_key", "agency"),
    ("claimed_by", "claimed_by_agency_key", "agency"),
    ("report_id", "report_ref", "report"),
    ("previous_report_id", "previous_report_ref", "report"),
)
NATURAL_DESCRIPTIONS = {
    "agency_key": "Agency key, the same in every export of the same reports: '<division code>:<name>' (':<name>' without a code)",
    "claimed_by_agency_key": "agency_key of the agency the supplier of the file named (registry portal or ingest --agency)",
    "report_ref": "Report key, the same in every export of the same reports: '<agency_key>/<year>/v<version>', or "
                  "'doc:<sha256>/v<version>' for a document that is no agency-year report",
    "previous_report_ref": "report_ref of the year Y-1 report",
    "revision": "Re-extraction of the report's document whose result changed (gongkai reprocess)",
}
LOCAL_NOTE = " Local to this warehouse (differs between engines and rebuilds): join exports on the *_key/_ref columns."

PRIMARY_KEYS: dict[str, list[str]] = {
    "agencies": ["agency_key"],
    "documents": ["sha256"],
    "reports": ["report_ref", "revision"],
    "cells": ["report_ref", "revision", "address"],
    "extractions": ["sha256", "extractor_version"],
    "agency_aliases": ["name_key", "agency_key"],
    "report_index": ["report_ref"],
    "cells_long": ["report_ref", "address"],
    "report_cells_wide": ["agency_key", "year"],
    "requests_by_outcome": ["report_ref", "applicant"],
    "year_over_year": ["report_ref", "rule", "target"],
    "cell_dictionary": ["address"],
    "templates": ["template"],
    "provinces": ["province_code"],
}
# (fields, referenced relation, referenced fields); written only when the referenced relation is exported too.
FOREIGN_KEYS: dict[str, list[tuple[list[str], str, list[str]]]] = {
    "documents": [(["agency_key"], "agencies", ["agency_key"])],
    "reports": [(["agency_key"], "agencies", ["agency_key"]), (["sha256"], "documents", ["sha256"])],
    "cells": [(["report_ref", "revision"], "reports", ["report_ref", "revision"]),
              (["address"], "cell_dictionary", ["address"])],
    "checks": [(["report_ref", "revision"], "reports", ["report_ref", "revision"])],
    "extractions": [(["sha256"], "documents", ["sha256"]), (["report_ref", "revision"], "reports", ["report_ref", "revision"])],
    "agency_aliases": [(["agency_key"], "agencies", ["agency_key"])],
    "report_index": [(["agency_key"], "agencies", ["agency_key"])],
    "cells_long": [(["report_ref"], "report_index", ["report_ref"]), (["address"], "cell_dictionary", ["address"])],
    "report_cells_wide": [(["report_ref"], "report_index", ["report_ref"])],
    "requests_by_outcome": [(["report_ref"], "report_index", ["report_ref"])],
    "year_over_year": [(["report_ref"], "report_index", ["report_ref"]),
                       (["previous_report_ref"], "report_index", ["report_ref"])],
    "check_results": [(["report_ref"], "report_index", ["report_ref"])],
    "coverage": [(["agency_key"], "agencies", ["agency_key"])],
}


@dataclass
class Column:
    name: str
    arrow: Any  # pyarrow DataType
    ftype: str  # Table Schema type
    kind: str = ""  # count | money | mixed | '' (not a number of the reports)
    added: bool = False  # a natural key added by the export


@dataclass
class RelationPlan:
    name: str
    sql: str
    columns: list[Column]
    primary_key: list[str] = field(default_factory=list)

    @property
    def schema(self) -> Any:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.arrow) for c in self.columns])


@cache
def _cell_kinds() -> dict[str, str]:
    from gongkai.warehouse.views import cell_catalog

    return {c.wide_column: c.kind for c in cell_catalog()}


def column_kind(relation: str, column: str, catalog_entry: dict[str, Any]) -> str:
    """count, money or mixed for a number of the reports; '' for other numbers (rates, coordinates, seconds)."""
    declared = catalog_entry.get("kinds", {}).get(column)
    if declared:
        return str(declared)
    if column in _cell_kinds():
        return _cell_kinds()[column]
    if column in MIXED_COLUMNS:
        return "mixed"
    return "count" if relation in COUNT_RELATIONS else ""


def arrow_type(source: str, kind: str) -> tuple[Any, str]:
    """(Arrow type, Table Schema type) of a column from the engine's type family and the column's kind."""
    import pyarrow as pa

    if source == "integer" or (source == "number" and kind == "count"):
        return pa.int64(), "integer"
    if source == "number" and kind in ("money", "mixed"):
        return pa.decimal128(MONEY[1], MONEY[2]), "number"
    return {
        "number": (pa.float64(), "number"), "boolean": (pa.bool_(), "boolean"), "date": (pa.date32(), "date"),
        "datetime": (pa.timestamp("us"), "datetime"),
    }.get(source, (pa.string(), "string"))


def duckdb_family(sql_type: str) -> str:
    t = sql_type.upper()
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"):
        return "integer"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "number"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    return {"BOOLEAN": "boolean", "DATE": "date"}.get(t, "string")


# PostgreSQL type OIDs → type family (anything else is a string).
PG_FAMILIES = {16: "boolean", 20: "integer", 21: "integer", 23: "integer", 700: "number", 701: "number",
               1700: "number", 1082: "date", 1114: "datetime", 1184: "datetime"}


def _agency_key(alias: str) -> str:
    return f"CASE WHEN {alias}.agency_id IS NULL THEN NULL ELSE coalesce({alias}.division_code, '') || ':' || {alias}.name END"


def _report_ref(report: str, agency: str) -> str:
    return (
        f"CASE WHEN {report}.report_id IS NULL THEN NULL WHEN {report}.report_key LIKE 'doc:%' THEN {report}.report_key "
        f"ELSE coalesce({agency}.division_code, '') || ':' || {agency}.name || '/' || CAST({report}.year AS VARCHAR) END "
        f"|| '/v' || CAST({report}.version AS VARCHAR)"
    )


def plan_relation(name: str, source_columns: list[tuple[str, str]], catalog_entry: dict[str, Any]) -> RelationPlan:
    """The export query and typed columns of one relation, from its columns as (name, type family)."""
    import pyarrow as pa

    dropped = DROPPED.get(name, frozenset())
    present = [(col, fam) for col, fam in source_columns if col not in dropped]
    names = {col for col, _ in present}
    added: list[Column] = []
    selects: list[str] = []
    joins: list[str] = []
    for n, (id_column, key_column, key_kind) in enumerate(NATURAL_KEYS):
        if id_column not in names or key_column in names:
            continue
        alias = f"k{n}"
        if key_kind == "agency":
            joins.append(f"LEFT JOIN agencies {alias} ON {alias}.agency_id = t.{id_column}")
            selects.append(f"{_agency_key(alias)} AS {key_column}")
            added.append(Column(key_column, pa.string(), "string", added=True))
            continue
        joins.append(f"LEFT JOIN reports {alias} ON {alias}.report_id = t.{id_column}")
        joins.append(f"LEFT JOIN agencies {alias}a ON {alias}a.agency_id = {alias}.agency_id")
        selects.append(f"{_report_ref(alias, alias + 'a')} AS {key_column}")
        added.append(Column(key_column, pa.string(), "string", added=True))
        if id_column == "report_id" and "revision" not in names:  # base tables point at any revision of a report
            selects.append(f"{alias}.revision AS revision")
            added.append(Column("revision", pa.int64(), "integer", added=True))
    columns = list(added)
    for col, fam in present:
        kind = column_kind(name, col, catalog_entry)
        arrow, ftype = arrow_type(fam, kind)
        columns.append(Column(col, arrow, ftype, kind if fam in ("number", "integer") else ""))
        selects.append(f"t.{col}")
    positions = {c.name: i + 1 for i, c in enumerate(columns)}
    primary = PRIMARY_KEYS.get(name, [])
    if not all(c in positions for c in primary):
        primary = []
    # by position: a name could also be a column of a joined table
    order = ", ".join(str(positions[c]) for c in primary) if primary else ", ".join(map(str, range(1, len(columns) + 1)))
    sql = f"SELECT {', '.join(selects)} FROM {name} t {' '.join(joins)} ORDER BY {order}"
    return RelationPlan(name, sql, columns, primary)
