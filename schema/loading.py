"""Loading schema/data: each file validated by its model (schema/models.py), then what refers to what across
files checked (a template's tables, a row's columns and group, a check's rows and columns), then the frozen
objects of gongkai.schema built. Imported only when the data must be validated (gongkai.schema.current_schema:
on first use)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gongkai.schema import (
    Concept,
    Concepts,
    ConceptSource,
    Key,
    Rule,
    Schema,
    SchemaError,
    TableDef,
    Template,
    TitleRules,
    ValueRules,
    _matches,
)
from gongkai.schema.datafile import did_you_mean, read_toml, shown, validate
from gongkai.schema.labels import normalize_label
from gongkai.schema.models import (
    ChecksFile,
    ColumnSum,
    ConceptsFile,
    ConceptSpec,
    CumulativeChain,
    KeySpec,
    RuleSpec,
    TableSpec,
    TemplatesFile,
    TitlesFile,
    ValuesFile,
    YearOverYear,
)


def _read(data: Path, name: str) -> tuple[dict[str, Any], str]:
    path = data / name
    return read_toml(path, SchemaError), shown(path)


def _unknown(field: str, value: str, known: Iterable[str], what: str) -> str:
    """A reference that does not resolve: `plus names 'carried_ovr', not a row of table requests (did you mean …)`."""
    return f"{field} names {value!r}, not {what}{did_you_mean(value, known)}"


def _unique(names: list[str], what: str, where: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaError(f"{where}: {what} {', '.join(map(repr, repeated))} declared twice")


def _keys(specs: list[KeySpec], groups: list[str], what: str, where: str) -> tuple[Key, ...]:
    _unique([s.key for s in specs], f"{what} key", where)
    for spec in specs:
        if spec.group is not None and spec.group not in groups:
            problem = _unknown("group", spec.group, groups, "one of the table's groups")
            raise SchemaError(f"{where} {what} {spec.key}: {problem}")
    return tuple(
        Key(
            spec.key,
            tuple(normalize_label(p) for p in spec.labels),
            tuple(spec.labels),
            normalize_label(spec.group) if spec.group else None,
            spec.kind,
            tuple(spec.columns) if spec.columns is not None else None,
            spec.en,
            spec.optional,
            tuple(normalize_label(p) for p in spec.sole_labels),
            tuple(spec.templates) if spec.templates is not None else None,
        )
        for spec in specs
    )


def _table(name: str, spec: TableSpec, where: str) -> TableDef:
    table = TableDef(
        name=name,
        address=spec.address,
        title=spec.title,
        anchors=tuple(normalize_label(a) for a in spec.anchors),
        header_markers=tuple(normalize_label(a) for a in spec.header_markers),
        orientation=spec.orientation,
        rows=_keys(spec.rows, spec.groups, "row", where),
        columns=_keys(spec.columns, spec.groups, "column", where),
        alternatives=tuple(tuple(rows) for rows in spec.alternatives),
        units=tuple(normalize_label(u) for u in spec.units),
    )
    row_keys = [r.key for r in table.rows]
    for row_key in (key for rows in table.alternatives for key in rows):
        if row_key not in row_keys:
            raise SchemaError(f"{where} alternatives: {_unknown('row', row_key, row_keys, 'a row of the table')}")
    column_keys = [c.key for c in table.columns]
    for row in table.rows:
        for column in row.columns or ():
            if column not in column_keys:
                raise SchemaError(f"{where} row {row.key}: {_unknown('columns', column, column_keys, 'a column of the table')}")
    return table


def _load_tables(data: Path) -> dict[str, TableDef]:
    raw, source = _read(data, "tables.toml")
    tables = {}
    for name, item in raw.items():
        entry = f"table {name}"
        spec = validate(TableSpec, item, source, SchemaError, {"rows": "row", "columns": "column"}, entry)
        tables[name] = _table(name, spec, f"{source}: {entry}")
    return tables


def _load_templates(tables: dict[str, TableDef], data: Path) -> tuple[Template, ...]:
    raw, source = _read(data, "templates.toml")
    specs = validate(TemplatesFile, raw, source, SchemaError, {"template": "template"}).template
    _unique([s.key for s in specs], "template", source)
    for spec in specs:
        for name in spec.tables:
            if name not in tables:
                raise SchemaError(f"{source}: template {spec.key}: {_unknown('tables', name, tables, 'a table of tables.toml')}")
    for table in tables.values():
        carrying = [s.key for s in specs if table.name in s.tables]
        for row in table.rows:
            for key in row.templates or ():
                if key not in carrying:
                    problem = _unknown("templates", key, carrying, f"a template carrying table {table.name}")
                    raise SchemaError(f"{shown(data / 'tables.toml')}: table {table.name} row {row.key}: {problem}")
    return tuple(
        Template(
            key=spec.key,
            notice=spec.notice,
            first_year=spec.first_year,
            last_year=spec.last_year,
            tables=tuple(tables[t] for t in spec.tables),
            markers=tuple(normalize_label(m) for m in spec.markers),
            tables_optional=spec.tables_optional,
        )
        for spec in specs
    )


def _rule(spec: RuleSpec) -> Rule:
    if isinstance(spec, CumulativeChain):
        return Rule(spec.name, spec.table, spec.kind, None, None, (), (),
                    year_column=spec.year_column, cumulative_column=spec.cumulative_column)
    if isinstance(spec, YearOverYear):
        return Rule(spec.name, spec.table, spec.kind, None, None, (), (), spec.previous_row, spec.current_row)
    row, column = (spec.target_row, None) if isinstance(spec, ColumnSum) else (None, spec.target_column)
    return Rule(spec.name, spec.table, spec.kind, row, column, tuple(spec.plus), tuple(spec.minus), min_parts=spec.min_parts)


def _resolve(rule: Rule, table: TableDef, where: str) -> None:
    """Every row and column a rule names is one of the table's (in each table printed at its address)."""
    rows, columns = [r.key for r in table.rows], [c.key for c in table.columns]
    parts_axis = columns if rule.kind == "row_sum" else rows
    named = [("target_row", rule.target_row, rows), ("target_column", rule.target_column, columns),
             ("previous_row", rule.previous_row, rows), ("current_row", rule.current_row, rows),
             ("year_column", rule.year_column, columns), ("cumulative_column", rule.cumulative_column, columns)]
    named += [("plus", part, parts_axis) for part in rule.plus] + [("minus", part, parts_axis) for part in rule.minus]
    for field, value, keys in named:
        if value is not None and not _matches(keys, value):
            axis = "row" if keys is rows else "column"
            raise SchemaError(f"{where}: {_unknown(field, value, keys, f'a {axis} of table {table.name}')}")


def _load_rules(tables: dict[str, TableDef], data: Path) -> tuple[Rule, ...]:
    raw, source = _read(data, "checks.toml")
    rules = tuple(_rule(s) for s in validate(ChecksFile, raw, source, SchemaError, {"rule": "check"}).rule)
    _unique([r.name for r in rules], "check", source)
    addresses = sorted({t.address for t in tables.values()})
    for rule in rules:
        where = f"{source}: check {rule.name}"
        if rule.table not in addresses:
            raise SchemaError(f"{where}: {_unknown('table', rule.table, addresses, 'the address of a table')}")
        for table in tables.values():
            if table.address == rule.table:
                _resolve(rule, table, where)
    return rules


def _load_values(data: Path) -> ValueRules:
    raw, source = _read(data, "values.toml")
    spec = validate(ValuesFile, raw, source, SchemaError, {})
    units = sorted(spec.money_units.items(), key=lambda kv: -len(kv[0]))
    return ValueRules(frozenset(spec.blank), tuple(spec.count_units), tuple(units))


def _pattern(patterns: list[str], what: str, source: str) -> re.Pattern[str]:
    for number, pattern in enumerate(patterns, 1):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SchemaError(f"{source}: {what} pattern {number} {pattern!r}: {exc}") from exc
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def _load_titles(data: Path) -> TitleRules:
    raw, source = _read(data, "titles.toml")
    spec = validate(TitlesFile, raw, source, SchemaError, {})
    return TitleRules(_pattern(spec.report, "report", source), _pattern(spec.not_report, "not_report", source))


MATCH_CELLS = {"same": (1, 1), "sum": (2, None)}  # how many cells a source of that match has (min, max)


def _concept(spec: ConceptSpec, addresses: dict[str, set[str]], where: str) -> Concept:
    for number, source in enumerate(spec.sources, 1):
        at = f"{where} source #{number}"
        for key in source.templates:
            if key not in addresses:
                raise SchemaError(f"{at}: {_unknown('templates', key, addresses, 'a template with tables')}")
        for cell in source.cells:
            for key in source.templates:
                if cell not in addresses[key]:
                    raise SchemaError(f"{at}: {_unknown('cells', cell, addresses[key], f'a cell of template {key}')}")
        _unique(source.cells, "cell", at)
        low, high = MATCH_CELLS.get(source.match, (1, None))
        if len(source.cells) < low or (high is not None and len(source.cells) > high):
            wanted = "one cell" if high == 1 else f"at least {low} cells"
            raise SchemaError(f"{at}: match {source.match!r} takes {wanted}, not {len(source.cells)}")
    return Concept(spec.key, spec.label, spec.en, tuple(
        ConceptSource(tuple(s.templates), tuple(s.cells), s.match, s.note) for s in spec.sources
    ))


def _load_concepts(templates: tuple[Template, ...], rules: tuple[Rule, ...], data: Path) -> Concepts:
    raw, source = _read(data, "concepts.toml")
    spec = validate(ConceptsFile, raw, source, SchemaError, {"series": "series concept", "proactive": "proactive concept", "sources": "source"})
    addresses = {
        t.key: {f"{table.address}.{row.key}.{col.key}" for table in t.tables for row in table.rows for col in table.columns_of(row)}
        for t in templates
        if t.tables
    }
    row_sums = {r.name: r for r in rules if r.kind == "row_sum"}
    for name in spec.derive_totals:
        if name not in row_sums:
            raise SchemaError(f"{source}: {_unknown('derive_totals', name, row_sums, 'a row_sum check of checks.toml')}")
    lists = []
    for field in ("series", "proactive"):
        specs: list[ConceptSpec] = getattr(spec, field)
        _unique([c.key for c in specs], f"{field} concept", source)
        lists.append(tuple(_concept(c, addresses, f"{source}: {field} concept {c.key}") for c in specs))
    return Concepts(tuple(row_sums[n] for n in spec.derive_totals), lists[0], lists[1])


def load(data: Path) -> Schema:
    tables = _load_tables(data)
    templates = _load_templates(tables, data)
    rules = _load_rules(tables, data)
    return Schema(tables, templates, rules, _load_values(data), _load_titles(data), _load_concepts(templates, rules, data))
