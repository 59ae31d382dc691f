"""Reading .doc/.wps through LibreOffice (and antiword), with a real Word 97 file made from the corpus.

Tests that need LibreOffice skip when it is absent, unless GONGKAI_REQUIRE_LIBREOFFICE=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DOCUMENTS

from gongkai.extractors import convert, html_reader, read_document
from gongkai.extractors.model import Document, UnreadableDocument

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def require_office() -> str:
    office = convert.find_office()
    if office is None:
        if os.environ.get("GONGKAI_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("GONGKAI_REQUIRE_LIBREOFFICE=1 but neither soffice nor libreoffice is on PATH")
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-writer-nogui)")
    return office


@pytest.fixture(scope="module")
def shanghai_doc(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The Shanghai report as a Word 97 .doc, written by LibreOffice from the corpus DOCX."""
    office = require_office()
    workdir = tmp_path_factory.mktemp("doc")
    source = workdir / "shanghai.docx"
    source.write_bytes((DOCUMENTS / "shanghai-szfbgt-2019-libreoffice.docx").read_bytes())
    subprocess.run(
        [office, f"-env:UserInstallation={(workdir / 'profile').as_uri()}", "--headless", "--convert-to",
         "doc:MS Word 97", "--outdir", str(workdir), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    data = (workdir / "shanghai.doc").read_bytes()
    assert data.startswith(OLE2_MAGIC)
    return data


@pytest.fixture(scope="module")
def shanghai_html() -> Document:
    return html_reader.read((DOCUMENTS / "shanghai-szfbgt-2019.html").read_bytes())


@pytest.mark.libreoffice
def test_doc_reads_as_the_html_it_came_from(shanghai_doc: bytes, shanghai_html: Document) -> None:
    document = read_document(shanghai_doc, "2019年报.doc")
    assert document.format == "doc"
    assert [t.rows for t in document.tables] == [t.rows for t in shanghai_html.tables]
    assert [b.text for b in document.blocks] == [b.text for b in shanghai_html.blocks]
    assert document.tables[1].texts()[3][3:] == ["821", "35", "", "", "2", "1", "859"]
    assert document.title == "2019年上海市人民政府办公厅政府信息公开工作年度报告"
    assert document.warnings == ["read from a LibreOffice conversion of the .doc file to DOCX"]


@pytest.mark.libreoffice
def test_wps_in_word_format_is_read(shanghai_doc: bytes, shanghai_html: Document) -> None:
    document = convert.read(shanghai_doc, "wps")
    assert document.format == "wps"
    assert [t.rows for t in document.tables] == [t.rows for t in shanghai_html.tables]


@pytest.mark.libreoffice
def test_conversion_that_runs_too_long_is_stopped(shanghai_doc: bytes) -> None:
    with pytest.raises(UnreadableDocument, match=r"LibreOffice did not finish within 0.01 s"):
        convert.read(shanghai_doc, "doc", timeout=0.01)


@pytest.mark.libreoffice
def test_corrupt_doc_is_unreadable(shanghai_doc: bytes) -> None:
    # Header and directory intact, the streams overwritten: LibreOffice refuses to load it.
    body = b"\x00garbage" * ((len(shanghai_doc) - 1024) // 8)
    corrupt = shanghai_doc[:512] + body + shanghai_doc[512 + len(body) :]
    with pytest.raises(
        UnreadableDocument, match="^LibreOffice could not convert the .doc file: Error: source file could not be loaded"
    ):
        convert.read(corrupt, "doc")


def test_ole2_file_without_a_word_stream_is_not_a_doc() -> None:
    # Also what a truncated download looks like: the OLE2 directory sits at the end of the file.
    with pytest.raises(UnreadableDocument, match="^not a Word document: the OLE2 file holds no WordDocument stream"):
        convert.read(OLE2_MAGIC + b"\x00garbage" * 2000, "doc")


def test_without_a_converter_doc_and_wps_are_unsupported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no soffice, libreoffice or antiword
    for fmt in ("doc", "wps"):
        with pytest.raises(UnreadableDocument, match=r"^unsupported format: install LibreOffice to read \.doc/\.wps"):
            convert.read(OLE2_MAGIC + "WordDocument".encode("utf-16-le") + bytes(4096), fmt)


def test_other_formats_are_refused() -> None:
    with pytest.raises(UnreadableDocument, match="not pdf"):
        convert.read(b"%PDF-1.7", "pdf")


@pytest.mark.libreoffice
def test_antiword_reads_the_text_when_libreoffice_is_missing(
    shanghai_doc: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    antiword = shutil.which("antiword")
    if antiword is None:
        pytest.skip("antiword is not installed")
    (tmp_path / "antiword").symlink_to(antiword)
    monkeypatch.setenv("PATH", str(tmp_path))  # antiword and nothing else
    document = convert.read(shanghai_doc, "doc")
    assert document.format == "doc"
    assert "2019年上海市人民政府办公厅政府信息公开工作年度报告" in document.text
    assert "antiword" in document.warnings[-1]
