"""gongkai browse against hostile archived documents: the source page's cost stays bounded by the table's size."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gongkai.browse.source import SourceMissing, source_table
from gongkai.extractors import read_document
from gongkai.warehouse.archive import open_archive


def _table_html(rows: int, cols: int) -> bytes:
    body = "".join("<tr>" + "".join(f"<td>{r * cols + c}</td>" for c in range(cols)) + "</tr>" for r in range(rows))
    # one merged block, so the spans are still exercised: a 3×2 cell at the top left
    head = '<tr><td rowspan="3" colspan="2">合并</td>' + "".join(f"<td>h{c}</td>" for c in range(cols - 2)) + "</tr>"
    head += "".join("<tr>" + "".join(f"<td>s{r}{c}</td>" for c in range(cols - 2)) + "</tr>" for r in range(2))
    return f"<html><body><table>{head}{body}</table></body></html>".encode()


def test_a_long_table_is_redrawn_in_time_linear_in_its_cells(tmp_path: Path) -> None:
    """The extractor accepts tables up to a million cells; redrawing one for the source page must not cost
    rows × cells (a 1500-row table took ~15 s, a 50 000-row one hours, holding a server thread)."""
    data = _table_html(1500, 20)
    archive = open_archive(tmp_path / "archive")
    sha = archive.put(data)
    table_no = read_document(data, "long.html").tables[0].index
    with pytest.raises(SourceMissing):  # reads (and caches) the document: only the redrawing is timed below
        source_table(archive, sha, "long.html", 10_000)
    started = time.monotonic()
    grid = source_table(archive, sha, "long.html", table_no)
    elapsed = time.monotonic() - started
    assert len(grid) == 1503
    merged = grid[0][0]
    assert (merged.text, merged.rowspan, merged.colspan) == ("合并", 3, 2)
    assert [len(line) for line in grid[:4]] == [19, 18, 18, 20]  # rows 2 and 3 start after the merged block
    assert elapsed < 3.0, f"redrawing a 30 000-cell table took {elapsed:.1f} s"
