"""Pages read by OCR → the document's tables: ruled grids joined across page breaks by the PDF reader's own join
(extractors/pdf_join.py: a row cut by the break, a label merged down across it, a repeated header), then each
cell flagged `source: ocr` with its confidence and its labels snapped to the schema's."""

from __future__ import annotations

import dataclasses

from gongkai.extractors.model import BBox, Table
from gongkai.extractors.ocr.labels import snap_table
from gongkai.extractors.ocr.page import SOURCE, PageText
from gongkai.extractors.pdf_join import join_across_pages
from gongkai.extractors.pdf_layout import TOLERANCE, Grid, Line
from gongkai.extractors.pdf_reader import _to_table

# points: a sheet fed through a scanner lands a few millimetres off where the sheet before it did
MAX_FEED_SHIFT = 36.0
MAX_SCALE = 0.1  # and its resolution (or a picture's, estimated from its text height) off by up to 10 %


def tables_of(pages: list[PageText], warnings: list[str], unit: str, first_index: int = 1) -> list[Table]:
    """The tables of pages read by OCR, in page order, numbered from `first_index`; `unit` names where a table
    was read in warnings ("page", "picture")."""
    grids = [g for p in pages for g in p.grids]
    _undo_feed_shifts(grids)
    lines: dict[int, list[Line]] = {}
    for p in pages:  # several pictures on one page: the lines outside their grids, together
        lines.setdefault(p.number, []).extend(p.lines)
    joined = join_across_pages(grids, lines)
    parts: list[tuple[int, Table]] = [(g.row_pages[0], _flagged(g)) for g in joined]
    parts += [(p.number, t) for p in pages for t in p.tables]
    parts.sort(key=lambda part: part[0])
    tables: list[Table] = []
    for number, table in parts:
        table.index = first_index + len(tables)
        snap_table(table, warnings, f"{unit} {number}")
        tables.append(table)
    return tables


def _flagged(grid: Grid) -> Table:
    table = _to_table(0, grid)
    confidence: dict[tuple[int | None, BBox | None], float | None] = {(c.page, c.bbox): c.confidence for c in grid.cells}
    by_origin = {c.origin: confidence.get((c.page, c.bbox)) for row in table.rows for c in row if c.is_anchor}
    table.rows = [[dataclasses.replace(c, source=SOURCE, confidence=by_origin.get(c.origin)) for c in row]
                  for row in table.rows]
    return table


def _undo_feed_shifts(grids: list[Grid]) -> None:
    """A table that opens a page where a table closed the page before, shifted sideways (a scanner's feed) or
    scaled a little (a picture's resolution is estimated from its text, a scanner's is not exact), is mapped
    onto the table above so that the join compares column lines as it does on a PDF's own pages. Only the
    column lines move: each cell keeps the box where it was read."""
    for a, b in zip(grids, grids[1:], strict=False):
        if b.row_pages[0] != a.last_page + 1:
            continue
        width_a, width_b = a.xs[-1] - a.xs[0], b.xs[-1] - b.xs[0]
        shift = a.xs[0] - b.xs[0]
        if width_b <= 0 or abs(shift) > MAX_FEED_SHIFT or abs(width_a / width_b - 1) > MAX_SCALE:
            continue
        if abs(shift) <= TOLERANCE and abs(width_a - width_b) <= TOLERANCE:
            continue  # as a PDF's pages: left to the join as it is
        scale = width_a / width_b
        b.xs = [a.xs[0] + (x - b.xs[0]) * scale for x in b.xs]
        b.bbox = (b.xs[0], b.bbox[1], b.xs[-1], b.bbox[3])
