"""The one document model every format is read into: text blocks and table grids with provenance.

Positions are 1-based (page, table, row, col), as they appear in the extract JSON's provenance.
A grid is rectangular: a merged cell is repeated into every position it covers, and each copy
points at the position of the cell that was written (`origin`), so a vertical merge (origin in an
earlier row) is distinguishable from a horizontal one (origin in an earlier column).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

BBox = tuple[float, float, float, float]  # (x0, top, x1, bottom) in points from the page's top-left, as displayed
SpanRows = list[list[tuple[str, int, int]]]  # rows of (text, rowspan, colspan): build_grid's input
# Grid cells are Python objects (~100 bytes): bound what one document may allocate, per table and in all.
MAX_TABLE_CELLS = 1_000_000
MAX_DOCUMENT_CELLS = 4_000_000


@dataclass(frozen=True, slots=True)
class GridCell:
    text: str
    row: int
    col: int
    origin: tuple[int, int]
    page: int | None = None
    bbox: BBox | None = None
    source: str | None = None  # "ocr" for a cell read from an image; None for text the document carries
    confidence: float | None = None  # the recogniser's, 0..1, for OCR'd cells

    @property
    def is_anchor(self) -> bool:
        return self.origin == (self.row, self.col)

    @property
    def merged_vertically(self) -> bool:
        return self.origin[0] < self.row

    @property
    def merged_horizontally(self) -> bool:
        return self.origin[1] < self.col


@dataclass(slots=True)
class Table:
    index: int
    rows: list[list[GridCell]]
    page: int | None = None
    # False where the source kept cell order but not column positions (a table flattened to lines):
    # rows are then ragged and a cell's column says only its place in its row.
    aligned: bool = True
    # True where the rows were rebuilt from glyph positions (a PDF table drawn without rules): which row a
    # line of numbers without a label belongs to is then a guess, and mapping never places one by position.
    rebuilt: bool = False

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_cols(self) -> int:
        return max((len(r) for r in self.rows), default=0)

    def texts(self) -> list[list[str]]:
        return [[c.text for c in row] for row in self.rows]


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str
    page: int | None = None


@dataclass(slots=True)
class Document:
    format: str
    blocks: list[TextBlock] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    title: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Pictures in the body (images in a DOCX, <img> in an HTML article): where a report without table cells
    # shows some, its tables were likely pasted as pictures (extract.py says so).
    pictures: int = 0
    ocr_pages: list[int] = field(default_factory=list)  # pages (or pictures, numbered from 1) read by OCR

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks)


class UnreadableDocument(Exception):
    """The bytes cannot be read as a document: corrupt, encrypted, scanned, unsupported, too large."""


def build_grid(
    index: int,
    spans: list[list[tuple[str, int, int]]],
    page: int | None = None,
    pages: list[int | None] | None = None,
    bboxes: list[list[BBox | None]] | None = None,
) -> Table:
    """Resolve rows of (text, rowspan, colspan) anchors into a rectangular grid.

    `pages` gives each source row's page (tables joined across pages); `bboxes` each anchor's box.
    """
    occupied: dict[tuple[int, int], GridCell] = {}
    n_rows = len(spans)
    for r, row in enumerate(spans, start=1):
        c = 1
        row_page = pages[r - 1] if pages else page
        for k, (text, rowspan, colspan) in enumerate(row):
            while (r, c) in occupied:
                c += 1
            rowspan = max(1, min(rowspan, n_rows - r + 1))
            colspan = max(1, colspan)
            box = bboxes[r - 1][k] if bboxes and k < len(bboxes[r - 1]) else None
            for dr in range(rowspan):
                for dc in range(colspan):
                    occupied[(r + dr, c + dc)] = GridCell(text, r + dr, c + dc, (r, c), row_page, box)
            c += colspan
    width = max((col for (_, col) in occupied), default=0)
    rows: list[list[GridCell]] = []
    for r in range(1, n_rows + 1):
        row_page = pages[r - 1] if pages else page
        rows.append([occupied.get((r, c)) or GridCell("", r, c, (r, c), row_page) for c in range(1, width + 1)])
    return Table(index=index, rows=rows, page=page)


def grids_within_budget(tables: Iterable[SpanRows], warnings: list[str]) -> list[Table]:
    """Build the grids of a document's tables, numbered 1..n, leaving out tables without a cell and (with a
    warning) tables whose grid would exceed MAX_TABLE_CELLS or the document's MAX_DOCUMENT_CELLS."""
    grids: list[Table] = []
    budget = MAX_DOCUMENT_CELLS
    for ordinal, spans in enumerate(tables, start=1):
        if not any(spans):
            continue
        area = _grid_bound(spans)
        if area > min(MAX_TABLE_CELLS, budget):
            warnings.append(f"table {ordinal} left out: its grid would hold up to {area} cells")
            continue
        budget -= area
        grids.append(build_grid(len(grids) + 1, spans))
    return grids


def _grid_bound(spans: SpanRows) -> int:
    """An upper bound of the cells build_grid would make: rows x (widest row + what row spans push right)."""
    widest = max(sum(colspan for _, _, colspan in row) for row in spans)
    last = len(spans) - 1
    pushed = sum(colspan for r, row in enumerate(spans) for _, rowspan, colspan in row if rowspan > 1 and r < last)
    return len(spans) * (widest + pushed)
