"""The views.sql blocks that span templates, written from schema/data/concepts.toml (see warehouse/views.py).

- derived_totals: each total a report left blank (or did not print) whose parts it shows, derived as the sum of
  the parts of a row_sum rule named in `derive_totals` (table 三's row totals from the six applicant columns).
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


def derived_totals_sql() -> str:
    pairs: list[tuple[str | int | None, ...]] = [
        (rule, target, part) for target, (rule, parts) in derivations().items() for part in parts
    ]
    return (
        "CREATE VIEW derived_totals AS\n"
        "WITH derivations (rule, address, part) AS (\n    VALUES\n" + _values(pairs, "        ") + "\n),\n"
        "sums AS (\n"
        "    SELECT c.report_id, k.rule, k.address, sum(c.value) AS value,\n"
        "           CAST(count(c.value) AS INTEGER) AS parts_printed, CAST(count(*) AS INTEGER) AS parts_shown\n"
        "    FROM cells c\n    JOIN derivations k ON k.part = c.address\n"
        "    GROUP BY c.report_id, k.rule, k.address\n)\n"
        f"SELECT {REPORT_COLUMNS}, s.rule, s.address,\n"
        "       split_part(s.address, '.', 1) AS table_name, split_part(s.address, '.', 2) AS row_key,\n"
        "       split_part(s.address, '.', 3) AS column_key, s.value, TRUE AS derived, s.parts_printed, s.parts_shown,\n"
        "       t.raw, t.page, t.table_no, t.row_no, t.col_no, r.sha256, r.document_url\n"
        "FROM sums s\n"
        "JOIN report_index r ON r.report_id = s.report_id\n"
        "LEFT JOIN cells t ON t.report_id = s.report_id AND t.address = s.address\n"
        f"WHERE s.value IS NOT NULL AND t.value IS NULL AND {CURRENT};\n"
    )


def _source_rows(concepts: tuple[Concept, ...]) -> list[tuple[str | int | None, ...]]:
    """(concept, source_rank, label, en, match, note, cells declared) per concept and source."""
    return [
        (c.key, rank, c.label, c.en, s.match, s.note, len(s.cells))
        for c in concepts for rank, s in enumerate(c.sources, 1)
    ]


def _cell_rows(concepts: tuple[Concept, ...]) -> list[tuple[str | int | None, ...]]:
    """(concept, source_rank, template, part_no, cell, address read, is_part): each source cell of each template,
    and for a cell with a derivation, each of its parts (read when the cell is blank)."""
    derived = derivations()
    out: list[tuple[str | int | None, ...]] = []
    for c in concepts:
        for rank, source in enumerate(c.sources, 1):
            for key in source.templates:
                for part_no, cell in enumerate(source.cells, 1):
                    out.append((c.key, rank, key, part_no, cell, cell, 0))
                    out.extend((c.key, rank, key, part_no, cell, part, 1) for part in derived.get(cell, ("", ()))[1])
    return out


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
    return (
        f"CREATE VIEW {name} AS\n"
        "WITH concept_sources (concept, source_rank, concept_label, concept_en, match, match_note, cells_declared) AS (\n"
        "    VALUES\n" + _values(_source_rows(concepts), "        ") + "\n),\n"
        "concept_cells (concept, source_rank, template, part_no, cell, address, is_part) AS (\n"
        "    VALUES\n" + _values(_cell_rows(concepts), "        ") + "\n),\n"
        # each source cell of each report: as printed, or (blank) the sum of its parts
        "parts AS (\n"
        "    SELECT " + ",\n           ".join([
            "r.report_id, k.concept, k.source_rank, k.part_no, k.cell",
            "max(CASE WHEN k.is_part = 0 THEN c.value END) AS printed",
            "max(CASE WHEN k.is_part = 0 THEN 1 ELSE 0 END) AS shown",
            "sum(CASE WHEN k.is_part = 1 THEN c.value END) AS parts_sum",
            *(f"max(CASE WHEN k.is_part = 0 THEN c.{p} END) AS {p}" for p in ("raw", *provenance)),
        ]) + "\n"
        "    FROM report_index r\n"
        "    JOIN concept_cells k ON k.template = r.template\n"
        "    JOIN cells c ON c.report_id = r.report_id AND c.address = k.address\n"
        f"    WHERE {CURRENT}\n"
        "    GROUP BY r.report_id, k.concept, k.source_rank, k.part_no, k.cell\n),\n"
        # the first source (in the order declared) of which the report shows a cell
        "available AS (\n"
        "    SELECT p.*, min(p.source_rank) OVER (PARTITION BY p.report_id, p.concept) AS best_rank,\n"
        "           CASE WHEN p.printed IS NULL AND p.parts_sum IS NOT NULL THEN 1 ELSE 0 END AS part_derived\n"
        "    FROM parts p\n    WHERE p.shown = 1 OR p.parts_sum IS NOT NULL\n),\n"
        "picked AS (\n"
        "    SELECT a.*, min(a.part_no) OVER (PARTITION BY a.report_id, a.concept) AS first_part\n"
        "    FROM available a\n    WHERE a.source_rank = a.best_rank\n),\n"
        "per_concept AS (\n"
        "    SELECT " + ",\n           ".join([
            "report_id, concept, source_rank",
            "sum(CASE WHEN part_derived = 1 THEN parts_sum ELSE printed END) AS value",
            "max(part_derived) AS derived",
            "string_agg(cell, ' + ' ORDER BY part_no) AS source_cells",
            "string_agg(coalesce(raw, ''), ' + ' ORDER BY part_no) AS raw",
            "CAST(count(*) AS INTEGER) AS cells_shown",
            *(f"max(CASE WHEN part_no = first_part THEN {p} END) AS {p}" for p in provenance),
        ]) + "\n"
        "    FROM picked\n    GROUP BY report_id, concept, source_rank\n)\n"
        f"SELECT {REPORT_COLUMNS},\n"
        "       s.concept, s.concept_label, s.concept_en, v.value, s.match, s.match_note,\n"
        "       CASE WHEN v.derived = 1 THEN TRUE ELSE FALSE END AS derived,\n"
        "       v.source_cells, v.raw, v.cells_shown, s.cells_declared,\n"
        "       " + ", ".join(f"v.{p}" for p in provenance) + ", r.sha256, r.document_url\n"
        "FROM per_concept v\n"
        "JOIN concept_sources s ON s.concept = v.concept AND s.source_rank = v.source_rank\n"
        "JOIN report_index r ON r.report_id = v.report_id;\n"
    )


def concept_series_sql() -> str:
    return _concept_view_sql("concept_series", CONCEPTS.series)


def proactive_harmonised_sql() -> str:
    return _concept_view_sql("proactive_harmonised", CONCEPTS.proactive)
