"""Formats told by content and read whole: .odt and .rtf through LibreOffice, an RTF named .doc, UTF-16 text and
pages without a byte-order mark, and a DOCX whose body sits in one layout table.

The variants are made here from corpus reports (LibreOffice conversions, re-encodings, python-docx edits) and
must give the gold cells. Tests needing LibreOffice skip without it, unless GONGKAI_REQUIRE_LIBREOFFICE=1 (CI).
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import docx
import pytest
from conftest import DOCUMENTS, load_gold
from test_convert import require_office

from gongkai.extractors import read_document, sniff_format
from gongkai.extractors.extract import EXTRACTED, extract_report
from gongkai.extractors.model import UnreadableDocument

SOURCES = ["shanghai-szfbgt-2019-libreoffice.docx", "pingtan-2024-libreoffice.docx"]


def convert_with_office(tmp: Path, name: str, target: str) -> bytes:
    office = require_office()
    source = tmp / name
    source.write_bytes((DOCUMENTS / name).read_bytes())
    subprocess.run(
        [office, f"-env:UserInstallation={(tmp / 'profile').as_uri()}", "--headless", "--convert-to", target,
         "--outdir", str(tmp / "out"), str(source)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    return (tmp / "out" / f"{source.stem}.{target.split(':')[0]}").read_bytes()


def assert_gold(result: dict, name: str) -> None:
    gold = load_gold(name)
    assert result["status"] == EXTRACTED
    assert result["cells"] == gold["cells"]
    assert (result["year"], result["template"]) == (gold["year"], gold["template"])
    assert gold["agency"] in result["agency"] or result["agency"] in gold["agency"]


@pytest.fixture(scope="module", params=SOURCES)
def converted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("formats")
    return {"name": request.param.encode(), "odt": convert_with_office(tmp, request.param, "odt"),
            "rtf": convert_with_office(tmp, request.param, "rtf")}  # fmt: skip


@pytest.mark.libreoffice
def test_odt_is_read_through_libreoffice(converted: dict[str, bytes]) -> None:
    name = converted["name"].decode()
    assert sniff_format(converted["odt"], "report.odt") == "odt"
    result = extract_report(converted["odt"], "report.odt")
    assert result["source"]["format"] == "odt"
    assert_gold(result, name)


@pytest.mark.libreoffice
@pytest.mark.parametrize("file_name", ["report.rtf", "report.doc", "report.txt"])
def test_rtf_is_read_through_libreoffice_whatever_its_name(converted: dict[str, bytes], file_name: str) -> None:
    """RTF named .doc (portals do this) is RTF by its content, not text and not Word."""
    name = converted["name"].decode()
    assert sniff_format(converted["rtf"], file_name) == "rtf"
    result = extract_report(converted["rtf"], file_name)
    assert result["source"]["format"] == "rtf"
    assert_gold(result, name)


def test_an_opendocument_spreadsheet_is_refused_by_name() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(ValueError, match="OpenDocument file that is not a text document"):
        sniff_format(buffer.getvalue(), "x.odt")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("name", ["zibo-stats-2023.txt", "shanghai-szfbgt-2019.html", "pingtan-2024.html"])
def test_utf16_without_a_byte_order_mark_is_read_by_content(name: str, encoding: str) -> None:
    text = (DOCUMENTS / name).read_text(encoding="utf-8")
    data = text.encode(encoding)
    assert not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    result = extract_report(data, name)
    assert result["source"]["format"] == ("text" if name.endswith(".txt") else "html")
    assert_gold(result, name)


def test_gbk_and_utf8_are_not_taken_for_utf16() -> None:
    for name in ("zibo-stats-2023.txt", "pingtan-dishuiju-2013.txt", "pingtan-han-2014-notreport.txt"):
        text = (DOCUMENTS / name).read_text(encoding="utf-8")
        for encoding in ("utf-8", "gb18030"):
            document = read_document(text.encode(encoding), name)
            assert document.format == "text"
            assert document.text == read_document((DOCUMENTS / name).read_bytes(), name).text
            assert "政府信息公开" in document.text


@pytest.mark.parametrize("name", SOURCES)
def test_a_docx_whose_body_sits_in_one_layout_table_keeps_agency_and_year(name: str) -> None:
    """Every paragraph and table of the body moved into the single cell of a framing table."""
    document = docx.Document(io.BytesIO((DOCUMENTS / name).read_bytes()))
    body = document.element.body
    content = [child for child in body if not child.tag.endswith("}sectPr")]
    frame = document.add_table(rows=1, cols=1)
    closing = frame.cell(0, 0).paragraphs[-1]._p  # a cell ends with a paragraph: the content goes before it
    for child in content:
        closing.addprevious(child)  # moves it out of the body
    out = io.BytesIO()
    document.save(out)
    result = extract_report(out.getvalue(), name)
    assert len(list(docx.Document(io.BytesIO(out.getvalue())).element.body.iterchildren())) == 2  # the frame, sectPr
    assert_gold(result, name)


def test_an_odt_zip_bomb_is_refused_before_libreoffice_sees_it(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", "<office:document-content/>")
        archive.writestr("Pictures/bomb.png", bytes(300_000_000))
    data = buffer.getvalue()
    assert sniff_format(data, "x.odt") == "odt"
    with pytest.raises(UnreadableDocument, match=r"^zip bomb: "):
        read_document(data, "x.odt")
