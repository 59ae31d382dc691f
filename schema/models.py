"""The shape of every file in schema/data, as pydantic models that refuse keys they do not declare.

These models are the loading layer: schema/__init__.py validates each file with them, checks what refers to
what across files (a template's tables, a row's columns and group, a check's rows and columns), and builds the
frozen objects the rest of gongkai reads (TableDef, Template, Rule, …). A comment in a data file that documents
a key documents a field here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat

from gongkai.schema.datafile import DataModel

Labels = Annotated[list[str], Field(min_length=1)]


class KeySpec(DataModel):
    """A row or column of tables.toml."""

    key: str
    labels: Labels
    group: str | None = None  # one of the table's `groups`
    kind: Literal["count", "money"] = "count"
    columns: list[str] | None = None  # a row's own columns, when it has fewer than the table
    en: str | None = None
    optional: bool = False  # a row or column a report may leave out without being partial (schema/expected.py)
    # Header labels that name this column only when no other header does (本期实际: the year's figure where it
    # is the only value column, the month's where 本年累计 stands beside it).
    sole_labels: list[str] = []
    # A row only some of the table's templates print (（六）1./2./3. of table 三: 2021), for the data dictionary;
    # extraction maps it in a report of any template. All the templates that carry the table when omitted.
    templates: list[str] | None = None


class TableSpec(DataModel):
    """One [table] of tables.toml."""

    address: str
    title: str
    anchors: Labels
    header_markers: list[str] = []
    orientation: Literal["rows", "columns"] = "rows"
    groups: list[str] = []  # the enclosing labels (（三）不予公开) its rows and columns may name as `group`
    rows: Annotated[list[KeySpec], Field(min_length=1)]
    columns: Annotated[list[KeySpec], Field(min_length=1)]
    alternatives: list[list[str]] = []  # sets of row keys of which a report prints one (schema/expected.py)
    # Label cells that are not the row's label: the units of an indicator table (条, 件, 人次). Row codes
    # (01…54) are never labels either.
    units: list[str] = []


class TemplateSpec(DataModel):
    key: str  # in quotes: key = "2021"
    notice: str
    first_year: int | None = None
    last_year: int | None = None
    tables: list[str]
    markers: list[str]
    # A report of its years may have no table at all (the provincial formats before 2019): then it has no cells
    # and is not taken for one whose tables could not be read.
    tables_optional: bool = False


class TemplatesFile(DataModel):
    template: list[TemplateSpec]


class _Sum(DataModel):
    name: str
    table: str  # a table's address
    plus: Annotated[list[str], Field(min_length=1)]  # row or column keys; "denied_*" takes every key so prefixed
    minus: list[str] = []
    min_parts: int = Field(default=1, ge=1)  # checked only when the document prints at least this many parts


class RowSum(_Sum):
    """Per row: <row>.<target_column> = sum of <row>.<plus> - sum of <row>.<minus>."""

    kind: Literal["row_sum"]
    target_column: str


class ColumnSum(_Sum):
    """Per column: <target_row>.<column> = sum of <plus>.<column> - sum of <minus>.<column>."""

    kind: Literal["column_sum"]
    target_row: str


class YearOverYear(DataModel):
    """Across years of one agency: <previous_row> of year Y-1 = <current_row> of year Y, per column."""

    name: str
    table: str
    kind: Literal["year_over_year"]
    previous_row: str
    current_row: str


class CumulativeChain(DataModel):
    """Across years of one agency, per row: <cumulative_column> of Y = <cumulative_column> of Y-1 + <year_column> of Y."""

    name: str
    table: str
    kind: Literal["cumulative_chain"]
    year_column: str
    cumulative_column: str


RuleSpec = Annotated[RowSum | ColumnSum | YearOverYear | CumulativeChain, Field(discriminator="kind")]


class ChecksFile(DataModel):
    rule: list[RuleSpec]


class ValuesFile(DataModel):
    blank: list[str]
    count_units: list[str]
    money_units: dict[str, PositiveFloat]  # unit → factor into 万元


class TitlesFile(DataModel):
    report: Annotated[list[str], Field(min_length=1)]  # regular expressions
    not_report: list[str]


class ConceptSource(DataModel):
    """Where the templates named print a concept: the sum of `cells`, standing to the concept as `match` says."""

    templates: Annotated[list[str], Field(min_length=1)]
    cells: Annotated[list[str], Field(min_length=1)]  # common-schema addresses of those templates
    match: Literal["same", "sum", "approximate", "none"]
    note: str | None = None


class ConceptSpec(DataModel):
    """One [[series]] or [[proactive]] entry of concepts.toml."""

    key: str
    label: str
    en: str
    sources: Annotated[list[ConceptSource], Field(min_length=1)]


class ConceptsFile(DataModel):
    derive_totals: list[str] = []  # row_sum rules of checks.toml whose blank target the views derive
    series: list[ConceptSpec] = []
    proactive: list[ConceptSpec] = []
