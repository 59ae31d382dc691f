"""The common schema as data: templates, tables, labels, value rules and reconciliation rules.

Everything is declared in schema/data/*.toml, validated once, on first use, by the models of schema/models.py
(an unknown key, a misspelt row or a check naming a missing column is a SchemaError naming file, entry and
key); code reads these objects and never spells a label itself. Adding a template version or a label
variant is a data change.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

DATA = Path(__file__).parent / "data"


class SchemaError(ValueError):
    """schema/data is inconsistent; raised at import so a bad data change cannot ship. One line: file, entry, key."""


@dataclass(frozen=True)
class Key:
    """A row or column of a standard table with the labels that name it."""

    key: str
    labels: tuple[str, ...]  # normalised
    printed: tuple[str, ...]  # as declared, for dictionaries and display
    group: str | None = None  # normalised
    kind: str = "count"
    columns: tuple[str, ...] | None = None  # a row's own columns, when it has fewer than the table
    en: str | None = None  # English label, for data dictionaries
    optional: bool = False  # a report may leave it out (schema/expected.py)
    sole_labels: tuple[str, ...] = ()  # normalised; name it only when no other header names it
    templates: tuple[str, ...] | None = None  # the templates whose form prints it, when fewer than the table's


@dataclass(frozen=True)
class TableDef:
    name: str
    address: str
    title: str
    anchors: tuple[str, ...]
    header_markers: tuple[str, ...]
    orientation: str
    rows: tuple[Key, ...]
    columns: tuple[Key, ...]
    alternatives: tuple[tuple[str, ...], ...] = ()  # sets of rows that stand in for one another
    units: tuple[str, ...] = ()  # normalised label cells that are units, not labels (条, 件, 人次)

    def columns_of(self, row: Key) -> tuple[Key, ...]:
        if row.columns is None:
            return self.columns
        return tuple(c for c in self.columns if c.key in row.columns)

    def row(self, key: str) -> Key:
        return next(r for r in self.rows if r.key == key)

    def column(self, key: str) -> Key:
        return next(c for c in self.columns if c.key == key)


@dataclass(frozen=True)
class Template:
    key: str
    notice: str
    first_year: int | None
    last_year: int | None
    tables: tuple[TableDef, ...]
    markers: tuple[str, ...]
    tables_optional: bool = False  # a report of its years may carry none of its tables


@dataclass(frozen=True)
class Rule:
    name: str
    table: str
    kind: str
    target_row: str | None
    target_column: str | None
    plus: tuple[str, ...]
    minus: tuple[str, ...]
    previous_row: str | None = None
    current_row: str | None = None
    min_parts: int = 1  # sums: checked only when the document prints at least this many parts
    year_column: str | None = None  # cumulative_chain
    cumulative_column: str | None = None


@dataclass(frozen=True)
class ValueRules:
    blank: frozenset[str]
    count_units: tuple[str, ...]
    money_units: tuple[tuple[str, float], ...]  # longest unit first


def _matches(keys: list[str], part: str) -> list[str]:
    return [k for k in keys if k.startswith(part[:-1])] if part.endswith("*") else [k for k in keys if k == part]


def expand_parts(table: TableDef, parts: tuple[str, ...], axis: str) -> tuple[str, ...]:
    """Resolve `denied_*` style prefixes into the keys of the table's rows or columns, in schema order."""
    keys = [k.key for k in (table.rows if axis == "rows" else table.columns)]
    out: list[str] = []
    for part in parts:
        matched = _matches(keys, part)
        if not matched:
            raise SchemaError(f"{table.name}: rule part {part!r} matches no {axis}")
        out.extend(m for m in matched if m not in out)
    return tuple(out)


@dataclass(frozen=True)
class TitleRules:
    """Which titles name an annual report (`report`) unless they name a letter or notice (`not_report`)."""

    report: re.Pattern[str]
    not_report: re.Pattern[str]


@dataclass(frozen=True)
class ConceptSource:
    """The cells whose sum is a concept in reports of `templates`, and how that value stands to it (`match`)."""

    templates: tuple[str, ...]
    cells: tuple[str, ...]
    match: str  # same | sum | approximate | none
    note: str | None = None


@dataclass(frozen=True)
class Concept:
    """One quantity that templates print in different cells (schema/data/concepts.toml); sources in order of use."""

    key: str
    label: str
    en: str
    sources: tuple[ConceptSource, ...]


@dataclass(frozen=True)
class Concepts:
    derive_totals: tuple[Rule, ...]  # row_sum rules whose blank target the views derive from its parts
    series: tuple[Concept, ...]  # concept_series: 2008–2025
    proactive: tuple[Concept, ...]  # proactive_harmonised: table 二, 2019 ↔ 2021


@dataclass(frozen=True)
class Schema:
    tables: dict[str, TableDef]
    templates: tuple[Template, ...]
    rules: tuple[Rule, ...]
    values: ValueRules
    titles: TitleRules
    concepts: Concepts


def load_schema(data: Path = DATA) -> Schema:
    """Load and validate every file of schema/data; SchemaError names the file, entry and key of the first slip."""
    from gongkai.schema.loading import load  # pydantic, imported only when data is validated

    return load(data)


# Validated once, on first use (a module reading TABLES, TEMPLATES, … at its import loads it then): a slip in
# schema/data stops every command that uses it with one line. Not at this module's import: loading costs ~110 ms
# (pydantic and the TOML files), which a crawler process, started per crawl, would pay before its first request
# though it reads only the title rules, and its parent hands it the schema it loaded (adopt_schema).
_SCHEMA: Schema | None = None
_LOADING = threading.Lock()  # one load, when several threads read the schema first at once
_FIELDS = {"TABLES": "tables", "TEMPLATES": "templates", "RULES": "rules", "VALUES": "values", "TITLES": "titles",
           "CONCEPTS": "concepts"}

if TYPE_CHECKING:  # module attributes, loaded by __getattr__ on first read
    TABLES: dict[str, TableDef]
    TEMPLATES: tuple[Template, ...]
    RULES: tuple[Rule, ...]
    VALUES: ValueRules
    TITLES: TitleRules
    CONCEPTS: Concepts


def current_schema() -> Schema:
    """schema/data as validated objects: loaded on the first call, then kept."""
    global _SCHEMA
    if _SCHEMA is None:
        with _LOADING:
            if _SCHEMA is None:
                _SCHEMA = load_schema()
    return _SCHEMA


def loaded_schema() -> Schema | None:
    """The schema if this process has loaded it (or was given it), else None: nothing is loaded."""
    return _SCHEMA


def adopt_schema(schema: Schema) -> None:
    """Use a schema this process was given (a crawler process, by the parent that validated it from the same files)
    instead of loading its own; no effect once one is loaded."""
    global _SCHEMA
    with _LOADING:
        if _SCHEMA is None:
            _SCHEMA = schema


def __getattr__(name: str) -> object:
    """TABLES, TEMPLATES, RULES, VALUES, TITLES, CONCEPTS: read from the schema, loaded on the first read."""
    field = _FIELDS.get(name)
    if field is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(current_schema(), field)
    globals()[name] = value  # later reads find it without this call
    return value


def template(key: str) -> Template:
    return next(t for t in current_schema().templates if t.key == key)


def table_for_address(address: str, template_key: str) -> TableDef:
    return next(t for t in template(template_key).tables if t.address == address)


def all_addresses(template_key: str) -> list[str]:
    """Every cell address of a template, in schema order (for dictionaries and wide views)."""
    out = []
    for table in template(template_key).tables:
        for row in table.rows:
            for col in table.columns_of(row):
                out.append(f"{table.address}.{row.key}.{col.key}")
    return out
