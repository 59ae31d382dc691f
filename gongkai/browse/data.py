"""What the browse pages read from the warehouse: fixed SELECTs with parameters, on a read-only connection.

The connection is warehouse/query.py's ReadOnlyWarehouse (DuckDB opened read_only with external access off;
PostgreSQL in READ ONLY transactions, rolled back after every read), so no statement here can write even
if one tried. One lock serialises the statements: the pages are served from several threads and neither
driver's connection may be used by two at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gongkai.warehouse.query import ReadOnlyWarehouse, open_read_only, plain

# The values of coverage.coverage (warehouse/views.sql, view coverage), in the order the filter lists them
COVERAGE = ("extracted", "extracted_failing_checks", "not_extractable", "not_a_report", "kept_without_cells", "not_found")


@dataclass(frozen=True)
class Cell:
    address: str
    value: Any
    raw: str | None
    page: int | None
    table_no: int | None
    row_no: int | None
    col_no: int | None
    bbox: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Check:
    rule: str
    target: str
    expected: Any
    actual: Any
    status: str


class BrowseData:
    """The warehouse as the browse pages see it."""

    def __init__(self, url: str) -> None:
        # allow_writable_role: our statements are fixed text in READ ONLY transactions; the role check guards
        # researchers' own SQL (gongkai query), which browse never runs
        self.reader: ReadOnlyWarehouse = open_read_only(url, allow_writable_role=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.reader.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of one fixed statement as dicts; `?` markers (none of these statements has a literal ? or %)."""
        conn = self.reader.connection
        with self._lock:
            if self.reader.dialect == "duckdb":
                cursor = conn.cursor()  # its own handle; closed below
                try:
                    cursor.execute(sql, list(params))
                    names = [d[0] for d in cursor.description or []]
                    found = cursor.fetchall()
                finally:
                    cursor.close()
            else:
                try:
                    cursor = conn.execute(sql.replace("?", "%s"), list(params))
                    names = [d.name for d in cursor.description or []]
                    found = cursor.fetchall()
                finally:
                    conn.rollback()  # never an open transaction between requests
        return [dict(zip(names, [plain(v) for v in row], strict=True)) for row in found]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    # --- agencies ----------------------------------------------------------------------------------------

    def agencies(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT a.agency_id, a.name, a.division_code, a.level, p.province, coalesce(n.n_reports, 0) AS n_reports "
            "FROM agencies a LEFT JOIN provinces p ON p.province_code = substr(a.division_code, 1, 2) || '0000' "
            "LEFT JOIN (SELECT agency_id, count(*) AS n_reports FROM current_reports WHERE n_cells > 0 GROUP BY agency_id) n "
            "       ON n.agency_id = a.agency_id "
            "ORDER BY a.division_code, a.name"
        )

    def agency(self, agency_id: int) -> dict[str, Any] | None:
        return self.one(
            "SELECT a.agency_id, a.name, a.division_code, a.level, p.province FROM agencies a "
            "LEFT JOIN provinces p ON p.province_code = substr(a.division_code, 1, 2) || '0000' WHERE a.agency_id = ?",
            [agency_id],
        )

    def agency_reports(self, agency_id: int) -> list[dict[str, Any]]:
        """The current report of each year, unreadable ones included (documents that are not reports left out)."""
        return self.rows(
            "SELECT report_id, year, template, status, reason, n_cells, checks_failing, checks_incomplete FROM report_index "
            "WHERE agency_id = ? AND year IS NOT NULL AND status <> 'not_a_report' ORDER BY year, report_id",
            [agency_id],
        )

    def agency_series(self, agency_id: int) -> list[dict[str, Any]]:
        """The agency's concepts per current report (view concept_series, schema/data/concepts.toml): the value,
        whether it was derived from the parts of a total the report printed blank, the cells it came from."""
        return self.rows(
            "SELECT report_id, year, concept, value, derived, match, source_cells FROM concept_series "
            "WHERE agency_id = ? AND year IS NOT NULL ORDER BY year, report_id",
            [agency_id],
        )

    def agency_failing_checks(self, agency_id: int) -> list[dict[str, Any]]:
        """Failing checks of the agency's current reports and across its years (year over year)."""
        return self.rows(
            "SELECT report_id, year, source, rule, target, expected, actual, status FROM check_results "
            "WHERE agency_id = ? AND status = 'fail' ORDER BY year, rule, target",
            [agency_id],
        )

    # --- reports -----------------------------------------------------------------------------------------

    def report(self, report_id: int) -> dict[str, Any] | None:
        """Any report row, current or not (an older version stays viewable; `is_current` says which)."""
        return self.one(
            "SELECT r.report_id, r.report_key, r.version, r.revision, r.sha256, r.agency_id, a.name AS agency, "
            "       r.year, r.template, r.status, r.reason, r.title, r.warnings, r.n_cells, r.checks_failing, "
            "       r.checks_incomplete, r.extractor_version, d.media_type, d.url AS document_url, d.original_name, "
            "       (SELECT count(*) FROM current_reports c WHERE c.report_id = r.report_id) AS is_current "
            "FROM reports r LEFT JOIN agencies a ON a.agency_id = r.agency_id LEFT JOIN documents d ON d.sha256 = r.sha256 "
            "WHERE r.report_id = ?",
            [report_id],
        )

    def cells(self, report_id: int) -> dict[str, Cell]:
        found = self.rows(
            "SELECT address, value, raw, page, table_no, row_no, col_no, bbox_x0, bbox_y0, bbox_x1, bbox_y1 "
            "FROM cells WHERE report_id = ? ORDER BY address",
            [report_id],
        )
        return {row["address"]: _cell(row) for row in found}

    def cell(self, report_id: int, address: str) -> Cell | None:
        row = self.one(
            "SELECT address, value, raw, page, table_no, row_no, col_no, bbox_x0, bbox_y0, bbox_x1, bbox_y1 "
            "FROM cells WHERE report_id = ? AND address = ?",
            [report_id, address],
        )
        return _cell(row) if row else None

    def checks(self, report_id: int) -> list[Check]:
        found = self.rows(
            "SELECT rule, target, expected, actual, status FROM checks WHERE report_id = ? "
            "ORDER BY CASE status WHEN 'fail' THEN 0 WHEN 'incomplete' THEN 1 ELSE 2 END, rule, target",
            [report_id],
        )
        return [Check(**row) for row in found]

    # --- coverage ----------------------------------------------------------------------------------------

    def coverage(self, province: str | None, level: str | None, status: str | None) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("province", province), ("level", level), ("coverage", status)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        return self.rows(
            "SELECT agency_id, agency, division_code, level, province, year, coverage, reason, report_id, "
            "       checks_failing, checks_incomplete FROM coverage "
            + (f"WHERE {' AND '.join(where)} " if where else "")
            + "ORDER BY province, division_code, agency, agency_id, year, report_id",
            params,
        )

    def coverage_choices(self) -> dict[str, list[str]]:
        """The values each coverage filter can take: the agencies' provinces and levels, the coverage statuses."""
        provinces = self.rows(
            "SELECT DISTINCT p.province AS v FROM agencies a "
            "JOIN provinces p ON p.province_code = substr(a.division_code, 1, 2) || '0000' ORDER BY v"
        )
        levels = self.rows("SELECT DISTINCT level AS v FROM agencies WHERE level IS NOT NULL ORDER BY v")
        return {"province": [r["v"] for r in provinces], "level": [r["v"] for r in levels], "coverage": list(COVERAGE)}


def _cell(row: dict[str, Any]) -> Cell:
    corners = (row["bbox_x0"], row["bbox_y0"], row["bbox_x1"], row["bbox_y1"])
    bbox = tuple(float(v) for v in corners) if all(v is not None for v in corners) else None
    return Cell(row["address"], row["value"], row["raw"], row["page"], row["table_no"], row["row_no"], row["col_no"],
                bbox)  # type: ignore[arg-type]
