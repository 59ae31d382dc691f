"""gongkai browse against hostile archived documents: the source page's cost stays bounded by the table's size."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gongkai.browse.source import SourceMissing, source_table
from gongkai.extractors import read_document
from gongkai.warehouse.archive import LocalArchive, open_archive


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


def test_a_corrupt_archive_file_is_said_on_the_source_page_not_a_server_error(duck_corpus: str, tmp_path: Path) -> None:
    """An archived file whose bytes no longer match their digest (a disk error, a hand edit): the source page
    still shows the stored raw text and says why the original is not shown; the page image is a one-line 404."""
    from fastapi.testclient import TestClient

    from gongkai.browse.app import create_app
    from gongkai.warehouse.query import open_read_only

    with open_read_only(duck_corpus, allow_writable_role=True) as reader:
        report_id, sha = reader.run("SELECT report_id, r.sha256 FROM report_index r "
                                    "WHERE r.agency = '淮安市洪泽区人民政府' AND r.year = 2023").rows[0]
    archive = LocalArchive(tmp_path / "archive")
    target = archive.path_for(sha)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"%PDF-1.7 not the bytes the digest names")
    with TestClient(create_app(duck_corpus, archive), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        page = client.get(f"/source/{report_id}/requests.new.natural_person")
        assert page.status_code == 200, page.text
        assert "corrupt" in page.text and "21" in page.text  # the stored raw text is still shown
        image = client.get(f"/page/{report_id}/3.png")
        assert image.status_code == 404 and "corrupt" in image.text and image.text.count("\n") == 1


@pytest.mark.parametrize(("listen", "answered", "refused"), [
    ("127.0.0.2", ["127.0.0.2:8765", "127.0.0.1:8765", "localhost:8765"], ["evil.example:8765", "127.0.0.2.evil.example"]),
    ("127.0.0.1", ["127.0.0.1:8765", "[::1]:8765", "localhost"], ["127.0.0.1.evil.example", "evil.example", "::1"]),
])
def test_host_headers_answered_are_the_address_listened_on_and_loopback_names(
        tmp_path: Path, listen: str, answered: list[str], refused: list[str]) -> None:
    """`--host 127.0.0.2` (loopback, not one of the usual names) prints http://127.0.0.2:…/: that Host must be
    answered; a rebinding name never is."""
    from fastapi.testclient import TestClient

    from gongkai.browse.app import create_app
    from gongkai.commands.browse import _hosts
    from gongkai.warehouse import open_warehouse

    url = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    open_warehouse(url).close()
    client = TestClient(create_app(url, open_archive(tmp_path / "archive"), allowed_hosts=_hosts(listen)))
    for host in answered:
        assert client.get("/", headers={"host": host}).status_code == 200, host
    for host in refused:
        assert client.get("/", headers={"host": host}).status_code == 400, host
