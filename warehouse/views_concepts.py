"""The views.sql blocks that span templates, written from schema/data/concepts.toml (see warehouse/views.py).

- derived_totals: each total a report printed blank while its parts hold numbers, derived as the sum of the
  parts of a row_sum rule named in `derive_totals` (table 三's row totals from the six applicant columns).
- concept_dictionary: the concepts and their sources, per template, with how each matches.
- concept_series / proactive_harmonised: one row per current report and concept, the value read from the
  source of the report's template (blank totals derived and flagged), with the cells it came from and where
  the first of them was printed.

Every mapping is a VALUES list joined to `cells`: adding a concept or a source is a data change.
"""

from __future__ import annotations

from gongkai.schema import CONCEPTS, TABLES, Concept, expand_parts

# The report columns each concept view starts with.
REPORT_COLUMNS = "r.report_id, r.agency_id, r.agency, r.division_code, r.level, r.province_code, r.province, r.year, r.template"
CURRENT = "r.status IN ('extracted', 'partial') AND r.report_key NOT LIKE 'doc:%'"


def _text(value: str | None) -> str:
    return "CAST(NULL AS TEXT)" if value is None else "'" + value.replace("'", "''") + "'"


def _literal(value: str | int | None) -> str:
    return str(value) if isinstance(value, int) else _text(value)


def _values(rows: list[tuple[str | int | None, ...]], indent: str = "    ") -> str:
    return ",\n".join(indent + "(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)


def derivations() -> dict[str, tuple[str, tuple[str, ...]]]:
    """target address → (rule, its part addresses), for every row of the tables the derive_totals rules check."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for rule in CONCEPTS.derive_totals:
        assert rule.target_column is not None
        for table in (t for t in TABLES.values() if t.address == rule.table):
            parts = expand_parts(table, rule.plus, "columns")
            for row in table.rows:
                columns = {c.key for c in table.columns_of(row)}
                if rule.target_column in columns and set(parts) <= columns:
                    target = f"{table.address}.{row.key}.{rule.target_column}"
                    out.setdefault(target, (rule.name, tuple(f"{table.address}.{row.key}.{p}" for p in parts)))
    return out


def _derived_sql(addresses: list[str] | None = None, indent: str = "") -> str:
    """The totals printed blank (of `addresses`, or all) whose parts hold a number, each the sum of its parts.

    Only cells printed without a number are derived, found through the cells index by address and value: a
    report prints its totals far more often than not, and summing every total's parts cost more than the query
    around it. (A total column the report does not print at all is not derived: its absence is in warnings.)"""
    found = {a: d for a, d in derivations().items() if addresses is None or a in addresses}
    pairs: list[tuple[str | int | None, ...]] = [(rule, target, part) for target, (rule, parts) in found.items() for part in parts]
    blank = ("b.raw", "b.page", "b.table_no", "b.row_no", "b.col_no")
    lines = [
        "SELECT b.report_id, k.rule, b.address, sum(p.value) AS value,",
        "       CAST(count(p.value) AS INTEGER) AS parts_printed, CAST(count(*) AS INTEGER) AS parts_shown,",
        f"       {', '.join(blank)}",
        "FROM cells b",
        "JOIN (VALUES",
        _values(pairs, indent + "    "),
        ") AS k (rule, address, part) ON k.address = b.address",
        "JOIN cells p ON p.report_id = b.report_id AND p.address = k.part",
        f"WHERE b.address IN ({', '.join(_text(a) for a in found)}) AND b.value IS NULL",
        f"GROUP BY b.report_id, k.rule, b.address, {', '.join(blank)}",
        "HAVING count(p.value) > 0",
    ]
    return lines[0] + "".join("\n" + (line if line.startswith(indent + "    (") else indent + line) for line in lines[1:])


def printed_or_derived(addresses: list[str], columns: str = "value") -> str:
    """The cells at `addresses` as printed (derived = 0), and those of them printed blank derived from their parts
    (derived = 1): a blank total appears twice, printed NULL and derived, so max(value) per cell is the derived one."""
    listed = ", ".join(_text(a) for a in addresses)
    printed = f"SELECT report_id, address, {columns}, 0 AS derived FROM cells WHERE address IN ({listed})"
    if not any(a in derivations() for a in addresses):
        return printed
    return (
        printed + "\n        UNION ALL\n"
        f"        SELECT report_id, address, {columns}, 1 AS derived FROM (\n            "
        + _derived_sql(addresses, "            ") + "\n        ) d"
    )


def derived_totals_sql() -> str:
    return (
        "CREATE VIEW derived_totals AS\n"
        f"SELECT {REPORT_COLUMNS}, d.rule, d.address,\n"
        "       split_part(d.address, '.', 1) AS table_name, split_part(d.address, '.', 2) AS row_key,\n"
        "       split_part(d.address, '.', 3) AS column_key, d.value, TRUE AS derived, d.parts_printed, d.parts_shown,\n"
        "       d.raw, d.page, d.table_no, d.row_no, d.col_no, r.sha256, r.document_url\n"
        "FROM (\n    " + _derived_sql(indent="    ") + "\n) d\n"
        "JOIN report_index r ON r.report_id = d.report_id\n"
        f"WHERE {CURRENT};\n"
    )


def _source_rows(concepts: tuple[Concept, ...]) -> list[tuple[str | int | None, ...]]:
    """(concept, source_rank, label, en, match, note, cells declared) per concept and source."""
    return [
        (c.key, rank, c.label, c.en, s.match, s.note, len(s.cells))
        for c in concepts for rank, s in enumerate(c.sources, 1)
    ]


def _cell_rows(concepts: tuple[Concept, ...]) -> list[tuple[str | int | None, ...]]:
    """(concept, source_rank, template, part_no, cell): each source cell, per template of its source."""
    return [
        (c.key, rank, key, part_no, cell)
        for c in concepts for rank, source in enumerate(c.sources, 1)
        for key in source.templates for part_no, cell in enumerate(source.cells, 1)
    ]


def concept_dictionary_sql() -> str:
    rows: list[tuple[str | int | None, ...]] = [
        (view, c.key, c.label, c.en, rank, ",".join(s.templates), " + ".join(s.cells), s.match, s.note)
        for view, concepts in (("concept_series", CONCEPTS.series), ("proactive_harmonised", CONCEPTS.proactive))
        for c in concepts for rank, s in enumerate(c.sources, 1)
    ]
    return (
        "CREATE VIEW concept_dictionary AS\nSELECT * FROM (VALUES\n" + _values(rows) + "\n) AS d (view_name, concept, "
        "concept_label, concept_en, source_rank, templates, cells, match, match_note);\n"
    )


def _concept_view_sql(name: str, concepts: tuple[Concept, ...]) -> str:
    provenance = ("page", "table_no", "row_no", "col_no")
    cells = list(dict.fromkeys(cell for c in concepts for s in c.sources for cell in s.cells))
    columns = [c.strip().removeprefix("r.") for c in REPORT_COLUMNS.split(",")] + ["sha256", "document_url"]
    report, carried = ", ".join("r." + c for c in columns), ", ".join(columns)
    return (
        f"CREATE VIEW {name} AS\n"
        "WITH concept_sources (concept, source_rank, concept_label, concept_en, match, match_note, cells_declared) AS (\n"
        "    VALUES\n" + _values(_source_rows(concepts), "        ") + "\n),\n"
        "concept_cells (concept, source_rank, template, part_no, cell) AS (\n"
        "    VALUES\n" + _values(_cell_rows(concepts), "        ") + "\n),\n"
        # each source cell of each report: as printed, or (a blank total) derived from its parts
        "parts AS (\n"
        "    SELECT " + ",\n           ".join([
            f"{report}, k.concept, k.source_rank, k.part_no, k.cell",
            "max(v.value) AS value, max(v.derived) AS derived",
            *(f"max(v.{p}) AS {p}" for p in ("raw", *provenance)),
        ]) + "\n"
        # report_index is joined once, here, its columns carried on: PostgreSQL estimates one row for
        # current_reports' window filter, and joined to the (as small estimated) result of the windows below
        # it would compute it again for every row
        "    FROM report_index r\n"
        "    JOIN concept_cells k ON k.template = r.template\n"
        "    JOIN (\n        " + printed_or_derived(cells, "value, raw, " + ", ".join(provenance)) + "\n"
        "    ) v ON v.report_id = r.report_id AND v.address = k.cell\n"
        f"    WHERE {CURRENT}\n"
        f"    GROUP BY {report}, k.concept, k.source_rank, k.part_no, k.cell\n),\n"
        # the first source (in the order declared) of which the report shows a cell
        "available AS (\n"
        "    SELECT p.*, min(p.source_rank) OVER (PARTITION BY p.report_id, p.concept) AS best_rank\n"
        "    FROM parts p\n),\n"
        "picked AS (\n"
        "    SELECT a.*, min(a.part_no) OVER (PARTITION BY a.report_id, a.concept) AS first_part\n"
        "    FROM available a\n    WHERE a.source_rank = a.best_rank\n),\n"
        "per_concept AS (\n"
        "    SELECT " + ",\n           ".join([
            f"{carried}, concept, source_rank",
            "sum(value) AS value",
            "max(derived) AS derived",
            "string_agg(cell, ' + ' ORDER BY part_no) AS source_cells",
            "string_agg(coalesce(raw, ''), ' + ' ORDER BY part_no) AS raw",
            "CAST(count(*) AS INTEGER) AS cells_shown",
            *(f"max(CASE WHEN part_no = first_part THEN {p} END) AS {p}" for p in provenance),
        ]) + "\n"
        f"    FROM picked\n    GROUP BY {carried}, concept, source_rank\n)\n"
        f"SELECT {', '.join('v.' + c for c in columns[:-2])},\n"
        "       s.concept, s.concept_label, s.concept_en, v.value, s.match, s.match_note,\n"
        "       CASE WHEN v.derived = 1 THEN TRUE ELSE FALSE END AS derived,\n"
        "       v.source_cells, v.raw, v.cells_shown, s.cells_declared,\n"
        "       " + ", ".join(f"v.{p}" for p in provenance) + ", v.sha256, v.document_url\n"
        "FROM per_concept v\n"
        "JOIN concept_sources s ON s.concept = v.concept AND s.source_rank = v.source_rank;\n"
    )


def concept_series_sql() -> str:
    return _concept_view_sql("concept_series", CONCEPTS.series)


def proactive_harmonised_sql() -> str:
    return _concept_view_sql("proactive_harmonised", CONCEPTS.proactive)
