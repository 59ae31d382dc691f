"""The PDF reader on the real corpus PDFs, and on bad input that must fail fast with a reason."""

from __future__ import annotations

import ctypes
import io
import time
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from conftest import DOCUMENTS
from PIL import Image

from gongkai.extractors import Document, GridCell, Table, UnreadableDocument, pdf_reader, read_document

DATA = Path(__file__).parent / "data" / "pdf"


@pytest.fixture(scope="module")
def hongze() -> Document:
    return pdf_reader.read((DOCUMENTS / "hongze-2023.pdf").read_bytes())


@pytest.fixture(scope="module")
def pingtan() -> Document:
    return pdf_reader.read((DOCUMENTS / "pingtan-2024-libreoffice.pdf").read_bytes())


def _table_with(doc: Document, label: str) -> Table:
    return next(t for t in doc.tables if any(c.text == label for row in t.rows for c in row))


def _row(table: Table, label: str) -> list[GridCell]:
    return next(row for row in table.rows if any(c.text == label for c in row))


def _numbers(row: list[GridCell]) -> list[str]:
    return [c.text for c in row if c.text.replace(".", "").isdigit()]


# --- hongze-2023.pdf: an original PDF (WPS, edited with Jisupdf) ---------------------------------


def test_hongze_title_joins_the_two_heading_lines(hongze: Document) -> None:
    assert hongze.title == "洪泽区人民政府2023年政府信息公开工作年度报告"
    assert hongze.format == "pdf"
    assert hongze.metadata["creator"].startswith("WPS")


def test_hongze_has_the_three_standard_tables_and_no_table_of_body_text(hongze: Document) -> None:
    # The editor paints a white box behind every text line of pages 1–2; those are not tables.
    assert [t.rows[0][0].text for t in hongze.tables] == [
        "第二十条第（一）项",
        "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）",
        "行政复议",
    ]
    assert [t.index for t in hongze.tables] == [1, 2, 3]
    assert [t.page for t in hongze.tables] == [2, 3, 4]


def test_hongze_requests_table_is_joined_across_pages_3_and_4(hongze: Document) -> None:
    table = _table_with(hongze, "一、本年新收政府信息公开申请数量")
    assert table.n_rows == 26 and table.n_cols == 10
    new = _row(table, "一、本年新收政府信息公开申请数量")
    assert _numbers(new) == ["21", "0", "0", "0", "0", "0", "21"]
    assert (new[3].page, new[3].row, new[3].col) == (3, 4, 4)
    carried_forward = _row(table, "四、结转下年度继续办理")
    assert carried_forward[3].page == 4 and _numbers(carried_forward) == ["0"] * 7
    assert _numbers(_row(table, "（七）总计")) == ["21", "0", "0", "0", "0", "0", "21"]
    assert _numbers(_row(table, "1.本机关不掌握相关政府信息")) == ["10", "0", "0", "0", "0", "0", "10"]
    last_of_page_3 = _row(table, "2.没有现成信息需要另行制作")  # a row with no bottom line
    assert _numbers(last_of_page_3) == ["3", "0", "0", "0", "0", "0", "3"]


def test_hongze_vertical_label_reads_whole_and_spans_both_pages(hongze: Document) -> None:
    table = _table_with(hongze, "一、本年新收政府信息公开申请数量")
    label_rows = [row for row in table.rows if row[0].text == "三、本年度办理结果"]
    assert label_rows[0][1].text == "（一）予以公开"
    assert label_rows[-1][1].text == "（七）总计"
    assert len(label_rows) == 20
    assert {row[0].origin for row in label_rows} == {label_rows[0][0].origin}
    assert label_rows[0][0].page == 3 and label_rows[-1][3].page == 4  # a copy keeps its anchor's page
    assert label_rows[1][0].merged_vertically and not label_rows[0][0].merged_vertically


def test_hongze_group_label_cut_by_the_page_break_is_carried_over(hongze: Document) -> None:
    table = _table_with(hongze, "一、本年新收政府信息公开申请数量")
    row = _row(table, "3.补正后申请内容仍不明确")
    assert row[1].text == "（四）无法提供" and row[1].merged_vertically
    assert row[2].page == 4
    assert _row(table, "1.本机关不掌握相关政府信息")[1].origin == row[1].origin


def test_hongze_irregular_rows_are_kept_as_printed(hongze: Document) -> None:
    table = _table_with(hongze, "一、本年新收政府信息公开申请数量")
    misspelt = _row(table, "2.其他法律行政止公开")
    assert misspelt[1].text == "（三）不予公开" and misspelt[3].text == "0"
    other = _row(table, "（六）其他处理")
    assert other[1].origin == other[2].origin  # one label over two label columns
    assert table.rows[2][4].text == "商业企业"  # third header row
    assert table.rows[1][4].text == "法人或其他组织" and table.rows[1][5].merged_horizontally


def test_hongze_proactive_table_continues_on_page_3(hongze: Document) -> None:
    table = hongze.tables[0]
    assert _numbers(_row(table, "行政规范性文件")) == ["0", "5", "5"]
    penalty = _row(table, "行政处罚")
    assert penalty[1].text == "4119" and penalty[1].page == 3
    assert _row(table, "行政事业性收费")[1].text == "7730.28"
    assert _row(table, "本年收费金额（单位：万元）")[0].text == "信息内容"


def test_hongze_appeals_table(hongze: Document) -> None:
    table = _table_with(hongze, "行政复议")
    assert table.rows[3][0].text == "10" and table.rows[3][10].text == "5"
    assert [c.text for c in table.rows[1][:5]] == ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计"]


def test_cells_carry_page_and_bbox(hongze: Document) -> None:
    cell = _row(_table_with(hongze, "行政复议"), "10")[0]
    assert cell.page == 4 and cell.bbox is not None
    x0, top, x1, bottom = cell.bbox
    assert 70 < x0 < x1 < 530 and 400 < top < bottom < 480


def test_hongze_blocks_are_the_text_outside_tables_in_reading_order(hongze: Document) -> None:
    texts = [b.text for b in hongze.blocks]
    assert texts[:2] == ["洪泽区人民政府", "2023年政府信息公开工作年度报告"]
    assert not any("本年新收政府信息公开申请数量" in t for t in texts)
    heading = next(b for b in hongze.blocks if b.text == "五、存在的主要问题及改进情况")
    assert heading.page == 4
    assert texts.index("三、收到和处理政府信息公开申请情况") < texts.index("四、政府信息公开行政复议、行政诉讼情况")
    assert "- 3 -" in texts


# --- pingtan-2024-libreoffice.pdf: LibreOffice, rows split across page breaks ---------------------------


def test_pingtan_row_split_by_the_page_break_is_one_row(pingtan: Document) -> None:
    table = _table_with(pingtan, "一、本年新收政府信息公开申请数量")
    new = _row(table, "一、本年新收政府信息公开申请数量")
    assert _numbers(new) == ["217", "1", "0", "0", "0", "0", "218"]
    assert not any(row[0].text == "量" for row in table.rows)
    following = table.rows[table.rows.index(new) + 1]
    assert following[0].text == "二、上年结转政府信息公开申请数量" and following[0].page == 3
    assert table.page == 2 and table.n_cols == 10  # page 2's part merged the three label columns


def test_pingtan_group_label_cut_by_the_page_break_reads_whole(pingtan: Document) -> None:
    table = _table_with(pingtan, "一、本年新收政府信息公开申请数量")
    repeat = _row(table, "2.重复申请")
    assert repeat[1].text == "（五）不予处理" and repeat[2].page == 4
    assert _numbers(repeat) == ["1", "0", "0", "0", "0", "0", "1"]
    assert repeat[0].text == "三、本年度办理结果"
    assert _numbers(_row(table, "3.其他")) == ["1", "1", "0", "0", "0", "0", "2"]
    assert _numbers(_row(table, "四、结转下年度继续办理")) == ["0"] * 7


def test_pingtan_tables(pingtan: Document) -> None:
    assert len(pingtan.tables) == 3
    assert _numbers(_row(pingtan.tables[0], "行政规范性文件")) == ["62", "33", "440"]
    assert _row(pingtan.tables[0], "行政事业性收费")[1].text == "18651.06"
    assert [c.text for c in pingtan.tables[2].rows[3]] == "2 1 3 1 7 0 0 0 0 0 13 2 4 0 19".split()
    assert pingtan.title is None  # the converted body has no heading set above the text size


def test_reading_costs_under_half_of_pdfplumber_extract_tables() -> None:
    """The speed target, measured side by side in CPU time (other processes do not skew it)."""
    data = (DOCUMENTS / "pingtan-2024-libreoffice.pdf").read_bytes()

    def cpu_ms(call: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            call()
            times.append(time.process_time() - start)
        return sorted(times)[1] * 1000

    def plumber() -> None:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            [page.extract_tables() for page in pdf.pages]

    ours, theirs = cpu_ms(lambda: pdf_reader.read(data)), cpu_ms(plumber)
    assert ours < 0.5 * theirs, f"{ours:.0f} ms vs pdfplumber {theirs:.0f} ms"


# --- made-up PDFs: repeated headers, rotated pages, fake bold, and input that must be refused ----------------------------------------


def test_reconverted_pingtan_breaks_elsewhere_and_reads_the_same() -> None:
    """The same DOCX through LibreOffice again (tests/data/pdf/README.md): other page breaks."""
    doc = pdf_reader.read((DATA / "pingtan-2024-reconverted.pdf").read_bytes())
    assert len(doc.tables) == 3 and doc.warnings == []  # a blank last page is not a scanned one
    proactive = doc.tables[0]
    header = _row(proactive, "第二十条第（六）项")
    penalty = proactive.rows[proactive.rows.index(header) + 2]  # a new row after the break, not a cut label
    assert [c.text for c in penalty[:2]] == ["行政处罚", "1100"] and penalty[1].page == 2
    assert proactive.rows[proactive.rows.index(header) + 1][0].text == "信息内容"
    requests = doc.tables[1]
    assert requests.n_rows == 28
    unclear = _row(requests, "3.补正后申请内容仍不明确")
    assert unclear[1].text == "（四）无法提供" and unclear[1].merged_vertically and unclear[3].page == 3
    assert _numbers(_row(requests, "1.本机关不掌握相关政府信息")) == ["75", "0", "0", "0", "0", "0", "75"]


def test_an_image_page_among_text_pages_is_a_warning() -> None:
    report = pdfium.PdfDocument((DOCUMENTS / "hongze-2023.pdf").read_bytes())
    report.import_pages(pdfium.PdfDocument(_image("PDF")))
    out = io.BytesIO()
    report.save(out)
    doc = pdf_reader.read(out.getvalue())
    assert doc.warnings == ["page 6: an image without a text layer (scanned?)"]
    assert len(doc.tables) == 3


def test_header_rows_repeated_on_the_next_page_are_kept_once() -> None:
    """A Word table over two pages (LibreOffice PDF, tests/data/pdf/make_repeated_header.py): its two
    header rows repeat on page 2, and a group label is merged down across the page break. Its labels are
    ASCII, so no page names a standard table and every page is searched."""
    doc = pdf_reader.read((DATA / "repeated-header.pdf").read_bytes())
    assert len(doc.tables) == 1
    table = doc.tables[0]
    assert table.n_rows == 2 + 60 and table.n_cols == 4
    assert [row[1].text for row in table.rows[2:]] == [f"Line {i}" for i in range(1, 61)]
    line_42 = _row(table, "Line 42")
    assert [c.text for c in line_42] == ["Group label", "Line 42", "41", "82"] and line_42[2].page == 2
    assert line_42[0].origin == _row(table, "Line 29")[0].origin == (31, 1)
    assert _row(table, "Line 60")[3].text == "118"  # digits set apart by their glyph boxes stay one number
    assert [b.text for b in doc.blocks][-1] == "End of report."


def _rotated_upright(data: bytes) -> bytes:
    """The same pages drawn turned a quarter and set /Rotate 90, so they display exactly as before."""
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    for page in writer.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        page.add_transformation(pypdf.Transformation().rotate(90).translate(height, 0))
        page.mediabox = pypdf.generic.RectangleObject([0, 0, height, width])
        page.rotate(90)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_rotated_pages_read_as_displayed(hongze: Document) -> None:
    doc = pdf_reader.read(_rotated_upright((DOCUMENTS / "hongze-2023.pdf").read_bytes()))
    assert [t.texts() for t in doc.tables] == [t.texts() for t in hongze.tables]
    assert [b.text for b in doc.blocks] == [b.text for b in hongze.blocks]
    assert doc.title == hongze.title


def _pdf_with_radicals() -> bytes:
    """Helvetica whose ToUnicode maps three codes to the Kangxi radicals ⼆ ⼗ ⼀, as some Word fonts do."""
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Radicals def "
        b"1 begincodespacerange <00> <FF> endcodespacerange "
        b"3 beginbfchar <80> <2F06> <81> <2F17> <82> <2F00> endbfchar endcmap end end"
    )
    content = b"BT /F1 12 Tf 72 760 Td (Article \\200\\201\\200 \\202) Tj 0 -20 Td (Annual report on open government information) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding /ToUnicode 6 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_kangxi_radicals_in_the_text_layer_fold_to_ideographs() -> None:
    doc = pdf_reader.read(_pdf_with_radicals())
    assert [b.text for b in doc.blocks] == ["Article 二十二一", "Annual report on open government information"]


def _add_text(doc: pdfium.PdfDocument, page: pdfium.PdfPage, text: str, x: float, y: float) -> None:
    obj = pdfium_c.FPDFPageObj_NewTextObj(doc.raw, b"Helvetica", ctypes.c_float(11))
    utf16 = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
    pdfium_c.FPDFText_SetText(obj, ctypes.cast(utf16, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
    pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, y)
    pdfium_c.FPDFPage_InsertObject(page.raw, obj)


def _pdf_with_text(lines: list[str], repeat_offset: float | None = None) -> bytes:
    """A one-page PDF with Helvetica text lines; each drawn twice when repeat_offset (fake bold)."""
    doc = pdfium.PdfDocument.new()
    page = doc.new_page(595, 842)
    for i, line in enumerate(lines):
        for dx in (0.0,) if repeat_offset is None else (0.0, repeat_offset):
            _add_text(doc, page, line, 72 + dx, 760 - 20 * i)
    page.gen_content()
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def test_fake_bold_text_reads_once() -> None:
    doc = pdf_reader.read(_pdf_with_text(["Annual report 2023", "Requests received: 21"], repeat_offset=0.4))
    assert [b.text for b in doc.blocks] == ["Annual report 2023", "Requests received: 21"]
    assert doc.tables == []


def _fake_bold_glyph_by_glyph(lines: list[str], offset: float) -> bytes:
    """The lines, then at the end of the page a second pass drawing each glyph alone, `offset` to the right
    (editors that embolden per glyph): PDFium does not recognise these copies as one text object's twin."""
    first = pdfium.PdfDocument(_pdf_with_text(lines))
    textpage = first[0].get_textpage()
    x, y = ctypes.c_double(), ctypes.c_double()
    glyphs = []
    for i, ch in enumerate(textpage.get_text_range()):
        if not ch.isspace() and pdfium_c.FPDFText_GetCharOrigin(textpage.raw, i, x, y):
            glyphs.append((ch, x.value, y.value))
    doc = pdfium.PdfDocument.new()
    page = doc.new_page(595, 842)
    for i, line in enumerate(lines):
        _add_text(doc, page, line, 72, 760 - 20 * i)
    for ch, gx, gy in reversed(glyphs):
        _add_text(doc, page, ch, gx + offset, gy)
    page.gen_content()
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def test_fake_bold_drawn_late_on_the_page_reads_once() -> None:
    """The second pass at the end of the page, far from the first in the content stream: 217, not 221177."""
    doc = pdf_reader.read(_fake_bold_glyph_by_glyph(["Annual report 2023", "Requests received: 217"], 0.4))
    assert [b.text for b in doc.blocks] == ["Annual report 2023", "Requests received: 217"]


def test_a_table_without_borders_is_found_by_its_cell_shading() -> None:
    doc = pdfium.PdfDocument.new()
    page = doc.new_page(595, 842)
    rows = [("Item", "Persons", "Total"), ("New", "21", "21"), ("Carried over", "0", "0")]
    for r, row in enumerate(rows):
        for k, value in enumerate(row):
            x, y = 72 + 120 * k, 700 - 24 * r
            cell = pdfium_c.FPDFPageObj_CreateNewRect(x, y, 120, 24)
            shade = 200 if r == 0 else 235 - 15 * (r % 2)
            pdfium_c.FPDFPageObj_SetFillColor(cell, shade, shade, shade, 255)
            pdfium_c.FPDFPath_SetDrawMode(cell, pdfium_c.FPDF_FILLMODE_ALTERNATE, False)
            pdfium_c.FPDFPage_InsertObject(page.raw, cell)
            _add_text(doc, page, value, x + 4, y + 8)
    _add_text(doc, page, "Requests received and handled in 2023, in shaded cells.", 72, 760)
    page.gen_content()
    out = io.BytesIO()
    doc.save(out)
    read = pdf_reader.read(out.getvalue())
    assert [t.texts() for t in read.tables] == [[list(row) for row in rows]]
    assert [b.text for b in read.blocks] == ["Requests received and handled in 2023, in shaded cells."]


def _encrypted(user_password: str) -> bytes:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=io.BytesIO((DOCUMENTS / "pingtan-2024-libreoffice.pdf").read_bytes()))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_with_only_an_owner_password_is_read() -> None:
    doc = pdf_reader.read(_encrypted(""))
    assert _numbers(_row(doc.tables[1], "一、本年新收政府信息公开申请数量")) == ["217", "1", "0", "0", "0", "0", "218"]


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (600, 800), "white").save(out, fmt)
    return out.getvalue()


BAD = {
    "encrypted": (lambda: _encrypted("secret"), "encrypted PDF"),
    "truncated": (lambda: (DOCUMENTS / "hongze-2023.pdf").read_bytes()[:150_000], "corrupt PDF: "),
    "tail cut": (lambda: (DOCUMENTS / "pingtan-2024-libreoffice.pdf").read_bytes()[:-40], "corrupt PDF: "),
    "garbage": (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 64, "corrupt PDF: "),
    "image only": (lambda: _image("PDF"), "scanned: no text layer"),
    "png": (lambda: _image("PNG"), "not a PDF"),
    "empty": (lambda: b"", "not a PDF"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_is_refused_quickly_with_the_reason(kind: str) -> None:
    make, reason = BAD[kind]
    data = make()
    start = time.perf_counter()
    with pytest.raises(UnreadableDocument) as raised:
        pdf_reader.read(data)
    assert time.perf_counter() - start < 2.0
    assert str(raised.value).startswith(reason)


def test_png_named_pdf_is_refused_by_read_document() -> None:
    with pytest.raises(UnreadableDocument, match="image"):
        read_document(_image("PNG"), "report.pdf")
