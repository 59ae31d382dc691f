"""Tables continued on the next page: a part of a grid that opens a page joins the grid that closed the page before."""

from __future__ import annotations

from gongkai.extractors.pdf_layout import ENUMERATION, SHORT_LINE, TOLERANCE, Cell, Grid, Line, is_number
from gongkai.extractors.textnorm import clean_text


def join_across_pages(grids: list[Grid], lines: dict[int, list[Line]]) -> list[Grid]:
    joined: list[Grid] = []
    for grid in grids:
        previous = joined[-1] if joined else None
        if previous is not None and _continues(previous, grid, lines):
            _append(previous, grid)
        else:
            joined.append(grid)
    return joined


def _continues(a: Grid, b: Grid, lines: dict[int, list[Line]]) -> bool:
    """b is a headerless continuation of a: a ends its page, b opens the next, same column lines."""
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
    cells = b.cells
    last = a.n_rows - 1
    first_row = [c for c in cells if c.row == 0]
    split = _split_row(a, last, first_row)
    continued = {id(c): above for c in first_row if (above := _continued_cell(a, last, c, split)) is not None}
    fragment = split and all(id(c) in continued or not c.text for c in first_row)
    shift = a.n_rows - (1 if fragment else 0)
    for c in cells:
        above = continued.get(id(c))
        if above is not None:
            above.text = clean_text(above.text + c.text)
            above.rowspan += c.rowspan - (1 if fragment else 0)
        elif fragment and c.row == 0:
            if c.rowspan > 1:  # an empty cell reaching below the split row
                a.cells.append(Cell(shift + 1, c.col, c.rowspan - 1, c.colspan, c.text, c.bbox, c.page))
        else:
            a.cells.append(Cell(c.row + shift, c.col, c.rowspan, c.colspan, c.text, c.bbox, c.page))
    a.row_pages += b.row_pages[1:] if fragment else b.row_pages
    a.bbox = b.bbox


def _drop_repeated_header(a: Grid, b: Grid) -> None:
    """Word repeats a table's header rows on every page it spans; keep them once."""
    width = len(a.xs) - 1

    def texts(grid: Grid, row: int) -> list[str]:
        return [cell.text if (cell := grid.covering(row, k)) else "" for k in range(width)]

    k = 0
    while k < min(a.n_rows, b.n_rows - 1) and any(texts(b, k)) and texts(a, k) == texts(b, k):
        k += 1
    if k:
        b.cells = [
            Cell(max(c.row, k) - k, c.col, c.row + c.rowspan - max(c.row, k), c.colspan, c.text, c.bbox, c.page)
            for c in b.cells
            if c.row + c.rowspan > k
        ]
        b.row_pages = b.row_pages[k:]


def _within(xs: list[float], others: list[float]) -> bool:
    return all(min(abs(x - o) for o in others) <= TOLERANCE for x in xs)


def _remap_columns(cells: list[Cell], xs: list[float], new_xs: list[float]) -> list[Cell]:
    to_new = {i: min(range(len(new_xs)), key=lambda k: abs(new_xs[k] - x)) for i, x in enumerate(xs)}
    return [
        Cell(c.row, to_new[c.col], c.rowspan, to_new[c.col + c.colspan] - to_new[c.col], c.text, c.bbox, c.page)
        for c in cells
    ]


def _split_row(a: Grid, last: int, first_row: list[Cell]) -> bool:
    """b's first row is the rest of a's last row, cut by the page break: it shows no number, and is
    blank where a's last row has one."""
    if any(is_number(c.text) for c in first_row):
        return False
    return any(
        not c.text and (above := a.covering(last, c.col)) is not None and is_number(above.text) for c in first_row
    )


def _continued_cell(a: Grid, last: int, c: Cell, split: bool) -> Cell | None:
    """The cell of a's last row that c (in b's first row) continues, if any: a blank under a label is
    the rest of a merged label; a text is the rest of a label when its row or the label itself
    was cut (a new row's label such as 行政强制 under 行政处罚 is not)."""
    above = a.covering(last, c.col)
    if above is None or above.col != c.col or above.colspan != c.colspan:
        return None
    if not above.text or is_number(above.text) or is_number(c.text):
        return None
    if not c.text:
        return above
    if ENUMERATION.match(c.text):
        return None
    return above if split or above.rowspan > 1 or c.rowspan > 1 else None
