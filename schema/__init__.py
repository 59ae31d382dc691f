"""The common schema as data: templates, tables, labels, value rules and reconciliation rules.

Everything is declared in schema/data/*.toml, loaded and validated once at import; code reads these
objects and never spells a label itself. Adding a template version or a label variant is a data change.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gongkai.schema.labels import normalize_label

DATA = Path(__file__).parent / "data"
KINDS = ("count", "money")
ORIENTATIONS = ("rows", "columns")
RULE_KINDS = ("row_sum", "column_sum", "year_over_year")


class SchemaError(ValueError):
    """schema/data is inconsistent; raised at import so a bad data change cannot ship."""


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


@dataclass(frozen=True)
class ValueRules:
    blank: frozenset[str]
    count_units: tuple[str, ...]
    money_units: tuple[tuple[str, float], ...]  # longest unit first


def _load(name: str, data: Path) -> dict[str, Any]:
    with (data / name).open("rb") as fh:
        return tomllib.load(fh)


def _keys(items: list[dict[str, Any]], where: str) -> tuple[Key, ...]:
    keys = []
    for item in items:
        kind = item.get("kind", "count")
        if kind not in KINDS:
            raise SchemaError(f"{where}.{item['key']}: kind {kind!r} not in {KINDS}")
        printed = tuple(item["labels"])
        if not printed:
            raise SchemaError(f"{where}.{item['key']}: no labels")
        group = item.get("group")
        own = item.get("columns")
        keys.append(
            Key(
                item["key"],
                tuple(normalize_label(p) for p in printed),
                printed,
                normalize_label(group) if group else None,
                kind,
                tuple(own) if own is not None else None,
                item.get("en"),
            )
        )
    names = [k.key for k in keys]
    if len(set(names)) != len(names):
        raise SchemaError(f"{where}: duplicate keys")
    return tuple(keys)


def _load_tables(data: Path) -> dict[str, TableDef]:
    tables = {}
    for name, spec in _load("tables.toml", data).items():
        orientation = spec.get("orientation", "rows")
        if orientation not in ORIENTATIONS:
            raise SchemaError(f"{name}: orientation {orientation!r}")
        table = TableDef(
            name=name,
            address=spec["address"],
            title=spec["title"],
            anchors=tuple(normalize_label(a) for a in spec["anchors"]),
            header_markers=tuple(normalize_label(a) for a in spec.get("header_markers", [])),
            orientation=orientation,
            rows=_keys(spec["rows"], f"{name}.rows"),
            columns=_keys(spec["columns"], f"{name}.columns"),
        )
        column_keys = {c.key for c in table.columns}
        for row in table.rows:
            unknown = set(row.columns or ()) - column_keys
            if unknown:
                raise SchemaError(f"{name}.{row.key}: unknown columns {sorted(unknown)}")
        tables[name] = table
    return tables


def _load_templates(tables: dict[str, TableDef], data: Path) -> tuple[Template, ...]:
    templates = []
    for spec in _load("templates.toml", data)["template"]:
        missing = [t for t in spec["tables"] if t not in tables]
        if missing:
            raise SchemaError(f"template {spec['key']}: unknown tables {missing}")
        templates.append(
            Template(
                key=str(spec["key"]),
                notice=spec["notice"],
                first_year=spec.get("first_year"),
                last_year=spec.get("last_year"),
                tables=tuple(tables[t] for t in spec["tables"]),
                markers=tuple(normalize_label(m) for m in spec["markers"]),
            )
        )
    return tuple(templates)


def expand_parts(table: TableDef, parts: tuple[str, ...], axis: str) -> tuple[str, ...]:
    """Resolve `denied_*` style prefixes into the keys of the table's rows or columns, in schema order."""
    keys = [k.key for k in (table.rows if axis == "rows" else table.columns)]
    out: list[str] = []
    for part in parts:
        matched = [k for k in keys if k.startswith(part[:-1])] if part.endswith("*") else [k for k in keys if k == part]
        if not matched:
            raise SchemaError(f"{table.name}: rule part {part!r} matches no {axis}")
        out.extend(m for m in matched if m not in out)
    return tuple(out)


def _load_rules(tables: dict[str, TableDef], data: Path) -> tuple[Rule, ...]:
    rules = []
    by_address = {t.address: t for t in tables.values()}
    for spec in _load("checks.toml", data)["rule"]:
        if spec["kind"] not in RULE_KINDS:
            raise SchemaError(f"rule {spec['name']}: kind {spec['kind']!r}")
        table = by_address.get(spec["table"])
        if table is None:
            raise SchemaError(f"rule {spec['name']}: unknown table {spec['table']!r}")
        axis = "columns" if spec["kind"] == "row_sum" else "rows"
        rule = Rule(
            name=spec["name"],
            table=spec["table"],
            kind=spec["kind"],
            target_row=spec.get("target_row"),
            target_column=spec.get("target_column"),
            plus=tuple(spec.get("plus", [])),
            minus=tuple(spec.get("minus", [])),
            previous_row=spec.get("previous_row"),
            current_row=spec.get("current_row"),
        )
        if rule.kind != "year_over_year":
            expand_parts(table, rule.plus + rule.minus, axis)
        rules.append(rule)
    return tuple(rules)


def _load_values(data: Path) -> ValueRules:
    spec = _load("values.toml", data)
    units = sorted(spec["money_units"].items(), key=lambda kv: -len(kv[0]))
    return ValueRules(frozenset(spec["blank"]), tuple(spec["count_units"]), tuple((u, float(f)) for u, f in units))


@dataclass(frozen=True)
class TitleRules:
    """Which titles name an annual report (`report`) unless they name a letter or notice (`not_report`)."""

    report: re.Pattern[str]
    not_report: re.Pattern[str]


def _load_titles(data: Path) -> TitleRules:
    spec = _load("titles.toml", data)
    try:
        return TitleRules(*(re.compile("|".join(f"(?:{p})" for p in spec[k])) for k in ("report", "not_report")))
    except re.error as exc:
        raise SchemaError(f"titles.toml: {exc}") from exc


@dataclass(frozen=True)
class Schema:
    tables: dict[str, TableDef]
    templates: tuple[Template, ...]
    rules: tuple[Rule, ...]
    values: ValueRules
    titles: TitleRules


def load_schema(data: Path = DATA) -> Schema:
    """Load and validate every file of schema/data; SchemaError names the first inconsistency."""
    try:
        tables = _load_tables(data)
        return Schema(tables, _load_templates(tables, data), _load_rules(tables, data), _load_values(data), _load_titles(data))
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"{data}: missing or malformed field {exc}") from exc


_SCHEMA = load_schema()
TABLES: dict[str, TableDef] = _SCHEMA.tables
TEMPLATES: tuple[Template, ...] = _SCHEMA.templates
RULES: tuple[Rule, ...] = _SCHEMA.rules
VALUES: ValueRules = _SCHEMA.values
TITLES: TitleRules = _SCHEMA.titles


def template(key: str) -> Template:
    return next(t for t in TEMPLATES if t.key == key)


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
