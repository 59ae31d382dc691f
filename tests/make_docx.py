"""Write grids (with merged cells) into a real DOCX with python-docx, for round-trip tests of the readers.

A grid is either a model `Table` (merges taken from each cell's `origin`) or rows of (text, rowspan, colspan)
anchors, the input of `extractors.model.build_grid`. Merges are made with python-docx's `cell.merge`, so the
file carries real gridSpan / vMerge markup as Word writes it.

    from make_docx import make_docx
    data = make_docx(["Title", [[("a", 2, 1), ("b", 1, 2)], [("c", 1, 1), ("d", 1, 1)]], "closing text"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from io import BytesIO
from pathlib import Path

import docx

from gongkai.extractors.model import Table, build_grid

SpanRows = Sequence[Sequence[tuple[str, int, int]]]
BodyItem = str | Table | SpanRows


def make_docx(body: Iterable[BodyItem]) -> bytes:
    """A DOCX holding `body` in order: a str is a paragraph, anything else a table."""
    document = docx.Document()
    for item in body:
        if isinstance(item, str):
            document.add_paragraph(item)
        else:
            _add_table(document, item if isinstance(item, Table) else build_grid(0, [list(row) for row in item]))
    buffer = BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def write_docx(path: Path, body: Iterable[BodyItem]) -> Path:
    path.write_bytes(make_docx(body))
    return path


def _add_table(document: docx.document.Document, grid: Table) -> None:
    table = document.add_table(rows=grid.n_rows, cols=grid.n_cols)
    table.style = "Table Grid"
    extents: dict[tuple[int, int], tuple[int, int]] = {}  # anchor -> (last row, last col) it covers
    for row in grid.rows:
        for cell in row:
            last_row, last_col = extents.get(cell.origin, cell.origin)
            extents[cell.origin] = (max(last_row, cell.row), max(last_col, cell.col))
    for (row, col), (last_row, last_col) in extents.items():
        target = table.cell(row - 1, col - 1)
        if (last_row, last_col) != (row, col):
            target = target.merge(table.cell(last_row - 1, last_col - 1))
        target.text = grid.rows[row - 1][col - 1].text
