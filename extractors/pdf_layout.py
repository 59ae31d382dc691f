"""The PDF reader's page model: glyphs, text lines, ruled or rebuilt cells and grids, shared by its modules.

Coordinates are points, (x0, top, x1, bottom) from the displayed page's top-left corner.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pypdfium2 as pdfium

from gongkai.extractors.model import BBox
from gongkai.extractors.textnorm import clean_text

TOLERANCE = 3.0  # pdfplumber's default snap/join/intersection tolerance, in points
SHORT_LINE = 12  # a line this short next to a page break is a page number or running header
_DIGITS = re.compile(r"^[\d.,]+$")
ENUMERATION = re.compile(r"^[（(]?[一二三四五六七八九十\d]{1,3}[)）、.．]")


@dataclass(slots=True)
class Char:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float  # the glyph's larger extent: tracks the font size, whatever the font's metrics
    space_before: bool = False  # PDFium saw a space or a word break just before it

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass(slots=True)
class Line:
    text: str
    top: float
    height: float
    size: float


@dataclass(frozen=True, slots=True)
class View:
    """Maps PDF user space (y up, any /Rotate) to the displayed page: points from its top-left corner."""

    left: float
    bottom: float
    right: float
    top: float
    rotation: int  # clockwise degrees: 0, 90, 180, 270

    @classmethod
    def of(cls, page: pdfium.PdfPage) -> View:
        left, bottom, right, top = page.get_bbox()
        return cls(left, bottom, right, top, page.get_rotation() % 360)

    def point(self, x: float, y: float) -> tuple[float, float]:
        if self.rotation == 90:
            return y - self.bottom, x - self.left
        if self.rotation == 180:
            return self.right - x, y - self.bottom
        if self.rotation == 270:
            return self.top - y, self.right - x
        return x - self.left, self.top - y

    def box(self, x0: float, y0: float, x1: float, y1: float) -> BBox:
        (ax, ay), (bx, by) = self.point(x0, y0), self.point(x1, y1)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


@dataclass(slots=True)
class Cell:
    row: int  # 0-based within its grid
    col: int
    rowspan: int
    colspan: int
    text: str
    bbox: BBox
    page: int
    line_width: float = 0.0  # of its last line of text: a full line was wrapped, its rest may be on the next page
    lead: float = 0.0  # width of its first glyph: would it have fitted at the end of the line above?
    confidence: float | None = None  # the recogniser's, for a cell read by OCR (kept through the page join)


@dataclass(slots=True)
class Grid:
    """A ruled table on one page, or several pages' parts joined into one."""

    bbox: BBox  # of the part on the last page it covers
    xs: list[float]  # column boundaries
    cells: list[Cell]
    row_pages: list[int]

    @property
    def n_rows(self) -> int:
        return len(self.row_pages)

    @property
    def last_page(self) -> int:
        return self.row_pages[-1]

    def covering(self, row: int, col: int) -> Cell | None:
        for cell in self.cells:
            if cell.row <= row < cell.row + cell.rowspan and cell.col <= col < cell.col + cell.colspan:
                return cell
        return None


def inside(c: Char, bbox: BBox) -> bool:
    return bbox[0] <= c.cx <= bbox[2] and bbox[1] <= c.cy <= bbox[3]


def cell_text(chars: list[Char]) -> str:
    """Chars of one cell → text, line by line; clean_text then drops the breaks inside CJK runs,
    so a vertical label written one character per line reads as one word."""
    return cell_layout(chars)[0]


def cell_layout(chars: list[Char]) -> tuple[str, float, float]:
    """A cell's text, the width of its last line and of its first glyph."""
    if not chars:
        return "", 0.0, 0.0
    rows: list[list[Char]] = []
    for c in sorted(chars, key=lambda c: c.cy):
        if rows and c.cy - rows[-1][-1].cy < 0.6 * max(c.size, rows[-1][-1].size):
            rows[-1].append(c)
        else:
            rows.append([c])
    lines: list[str] = []
    for row in rows:
        row.sort(key=lambda c: c.x0)
        parts = [row[0].text]
        for prev, c in zip(row, row[1:], strict=False):  # PDFium's word breaks know the font's advances
            parts.append((" " if c.space_before and c.x0 > prev.x1 else "") + c.text)
        line = "".join(parts)
        if lines and _DIGITS.match(lines[-1]) and _DIGITS.match(line):
            lines[-1] += line  # a number wrapped in a narrow column: 98 / 011 is 98011
        else:
            lines.append(line)
    last = rows[-1]
    width = max(last[-1].x1 - last[0].x0, sum(_advance(c) for c in last))
    return clean_text("\n".join(lines)), width, _advance(rows[0][0])


def _advance(c: Char) -> float:
    """About how far the line breaker advanced for a glyph: a full-width character (（ ） 、 as well as
    ideographs) takes its whole em whatever its ink; others their ink."""
    return c.size if unicodedata.east_asian_width(c.text) in "FW" else c.x1 - c.x0


def is_number(text: str) -> bool:
    """A printed value (by the schema's value rules, as mapping reads it), not a label."""
    from gongkai.schema.values import is_number  # imported late: see extractors/__init__.py on import order

    return is_number(text)
