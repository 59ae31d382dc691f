"""Tables continued on the next page: a grid that opens a page joins the grid that closed the page before.

A page break may fall anywhere in a table: between two rows (the last row alone on the next page, a
header row alone at the bottom of a page), or inside a row, which then splits in two: a label wrapped on
two lines loses its second line to the next page (`自然` / `人`, `结果维` / `持`), and so does a number
wrapped in a narrow column (`1` / `3` is 13). The second part is told from a new row by its text: each of
its texts continues a cell whose last line above was full (the next glyph would not have fitted), and it
leaves blank a cell the part above filled. Header rows repeated on the next page are kept once.
"""

from __future__ import annotations

import re

from gongkai.extractors.pdf_layout import ENUMERATION, SHORT_LINE, TOLERANCE, Cell, Grid, Line, is_number
from gongkai.extractors.textnorm import clean_text

FULL_SLACK = 1.5  # points: glyph boxes are narrower than the advances the line breaker used
COLUMN_SLACK = 2 * TOLERANCE  # a merged cell's width need not be the sum of its columns' to the point
MAX_PAD = 5.4  # points: Word's and LibreOffice's default left/right cell margin (0.19 cm), the most seen
_DIGITS = re.compile(r"^[\d.,]+$")


def join_across_pages(grids: list[Grid], lines: dict[int, list[Line]]) -> list[Grid]:
    joined: list[Grid] = []
    for grid in grids:
        previous = joined[-1] if joined else None
        if previous is not None and _continues(previous, grid, lines):
            _append(previous, grid)
        else:
            joined.append(grid)
    return [g for g in joined if g.n_rows >= 2]  # a lone row that continues nothing: a framed line, not a table


def _continues(a: Grid, b: Grid, lines: dict[int, list[Line]]) -> bool:
    """b continues a: a ends its page, b opens the next, same column lines."""
    page = b.row_pages[0]
    if page != a.last_page + 1:
        return False
    if abs(a.xs[0] - b.xs[0]) > TOLERANCE or abs(a.xs[-1] - b.xs[-1]) > TOLERANCE:
        return False
    if not (_within(b.xs, a.xs) or _within(a.xs, b.xs)):  # one part may merge columns the other splits
        return False
    after_a = [line for line in lines.get(a.last_page, []) if line.top > a.bbox[3]]
    before_b = [line for line in lines.get(page, []) if line.top + line.height < b.bbox[1]]
    return all(len(line.text) <= SHORT_LINE for line in after_a + before_b)


def _append(a: Grid, b: Grid) -> None:
    """Join b's rows under a's. Labels cut by the page break (a vertical merge such as
    三、本年度办理结果, or a row split mid-label such as …申请数 / 量) continue a's cell."""
    xs = a.xs if _within(b.xs, a.xs) else b.xs
    a.cells = _remap_columns(a.cells, a.xs, xs)
    a.xs = xs
    b.cells, b.xs = _remap_columns(b.cells, b.xs, xs), xs
    _drop_repeated_header(a, b)
    if not b.row_pages:
        return
    last = a.n_rows - 1
    first_row = [c for c in b.cells if c.row == 0]
    fragment = _split_row(a, last, first_row)
    head_row = not any(is_number(c.text) for c in first_row)  # a header row: its labels may continue a's
    shift = a.n_rows - (1 if fragment else 0)
    for c in b.cells:
        above = _aligned(a, last, c) if c.row == 0 else None
        if fragment and c.row == 0:
            if above is not None:  # the rest of a's cell: its text, and the rows its merge reaches below
                above.text = clean_text(above.text + c.text)
                above.confidence = _least(above.confidence, c.confidence)
                above.rowspan += c.rowspan - 1
                above.line_width = c.line_width or above.line_width
            elif c.rowspan > 1:  # an empty cell reaching below the split row
                a.cells.append(_moved(c, shift + 1, c.rowspan - 1))
        elif above is not None and _continued(above, c, head_row):
            above.text = clean_text(above.text + c.text)
            above.confidence = _least(above.confidence, c.confidence)
            above.rowspan += c.rowspan
            above.line_width = c.line_width or above.line_width
        else:
            a.cells.append(_moved(c, c.row + shift, c.rowspan))
    a.row_pages += b.row_pages[1:] if fragment else b.row_pages
    a.bbox = b.bbox


def _moved(c: Cell, row: int, rowspan: int) -> Cell:
    return Cell(row, c.col, rowspan, c.colspan, c.text, c.bbox, c.page, c.line_width, c.lead, c.confidence)


def _least(a: float | None, b: float | None) -> float | None:
    """An OCR'd cell joined from two parts is as sure as its less sure part (None: not OCR'd)."""
    return b if a is None else a if b is None else min(a, b)


def _drop_repeated_header(a: Grid, b: Grid) -> None:
    """Word repeats a table's header rows on every page it spans; keep them once."""
    width = len(a.xs) - 1

    def texts(grid: Grid, row: int) -> list[str]:
        return [cell.text if (cell := grid.covering(row, k)) else "" for k in range(width)]

    k = 0
    while k < min(a.n_rows, b.n_rows) and any(texts(b, k)) and texts(a, k) == texts(b, k):
        k += 1
    if k:
        b.cells = [
            _moved(c, max(c.row, k) - k, c.row + c.rowspan - max(c.row, k)) for c in b.cells if c.row + c.rowspan > k
        ]
        b.row_pages = b.row_pages[k:]


def _within(xs: list[float], others: list[float]) -> bool:
    return all(min(abs(x - o) for o in others) <= COLUMN_SLACK for x in xs)


def _remap_columns(cells: list[Cell], xs: list[float], new_xs: list[float]) -> list[Cell]:
    to_new = {i: min(range(len(new_xs)), key=lambda k: abs(new_xs[k] - x)) for i, x in enumerate(xs)}
    return [
        Cell(
            c.row,
            to_new[c.col],
            c.rowspan,
            to_new[c.col + c.colspan] - to_new[c.col],
            c.text,
            c.bbox,
            c.page,
            c.line_width,
            c.lead,
            c.confidence,
        )
        for c in cells
    ]


def _aligned(a: Grid, last: int, c: Cell) -> Cell | None:
    """The cell of a's last row standing over c with the same columns, if any."""
    above = a.covering(last, c.col)
    return above if above is not None and above.col == c.col and above.colspan == c.colspan else None


def _full(cell: Cell, lead: float) -> bool:
    """Its last line might not take a glyph `lead` wide more: the text may go on below (or on the next page).
    Generous (the margins may be narrower than MAX_PAD): the other tests tell a new row apart."""
    inner = cell.bbox[2] - cell.bbox[0] - 2 * MAX_PAD
    return cell.line_width + lead > inner - FULL_SLACK


def _split_row(a: Grid, last: int, first_row: list[Cell]) -> bool:
    """b's first row is the rest of a's last row, cut by the page break: each of its texts continues a full
    line of a's cell above it (a label, or digits wrapped in a narrow column), no text starts a new item,
    and a cell with text above is left blank (a new row fills its cells or shows them blank throughout)."""
    blank_under_text = False
    for c in first_row:
        above = _aligned(a, last, c)
        if not c.text:
            column_above = a.covering(last, c.col)
            blank_under_text |= column_above is not None and bool(column_above.text)
            continue
        if above is None or not above.text or ENUMERATION.match(c.text):
            return False
        if is_number(above.text) != is_number(c.text):
            return False
        if is_number(c.text):  # digits wrapped in a narrow column: 1 / 3 is 13 (glyph boxes are too loose to tell)
            if not (_DIGITS.match(above.text) and _DIGITS.match(c.text)):
                return False
        elif not _full(above, c.lead):
            return False
    return blank_under_text


def _continued(above: Cell, c: Cell, head_row: bool) -> bool:
    """After a break between rows, c continues the cell above it (a label merged down across the break):
    a blank under a label, or the rest of a label whose line above was full, merged down (in a row of
    labels, a cell merged over the next row shows as one row on each page: 自然 / 人 of 自然人)."""
    if not above.text or is_number(above.text) or is_number(c.text):
        return False
    if not c.text:
        return True
    if ENUMERATION.match(c.text):
        return False
    return (above.rowspan > 1 or c.rowspan > 1 or head_row) and _full(above, c.lead)
