"""The DOCX reader on the corpus (the national template, LibreOffice conversions), on files written with
python-docx (merges, nested tables, gridBefore), and on hostile zips."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import zipfile
import zlib
from io import BytesIO
from pathlib import Path

import docx
import pytest
from conftest import DOCUMENTS, load_gold
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from make_docx import make_docx

from gongkai.extractors import html_reader, read_document
from gongkai.extractors.docx_reader import read
from gongkai.extractors.model import Document, UnreadableDocument, build_grid


def corpus(name: str) -> bytes:
    return (DOCUMENTS / name).read_bytes()


@pytest.fixture(scope="module")
def template() -> Document:
    return read(corpus("template-blank-2021.docx"))


# --- the blank national template ------------------------------------------------------------------------------


def test_template_has_the_three_tables(template: Document) -> None:
    assert [(t.index, t.n_rows, t.n_cols) for t in template.tables] == [(1, 14, 4), (2, 28, 10), (3, 4, 15)]
    for table in template.tables:
        assert all(len(row) == table.n_cols for row in table.rows)


def test_template_value_cells_are_empty_and_labels_are_read(template: Document) -> None:
    proactive, requests, appeals = template.tables
    assert proactive.texts()[:3] == [
        ["第二十条第（一）项"] * 4,
        ["信息内容", "本年制发件数", "本年废止件数", "现行有效件数"],
        ["规章", "", "", ""],
    ]
    assert proactive.texts()[12][1] == "本年收费金额（单位：万元）"
    assert [c.text for c in requests.rows[2][4:9]] == ["商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他"]
    assert requests.rows[6][1].text == "（二）部分公开（区分处理的，只计这一情形，不计其他情形）"
    assert requests.rows[23][2].text.startswith("1.申请人无正当理由逾期不补正")
    # Every data cell of the blank template is empty, as its gold says (every cell null).
    assert all(c.text == "" for row in requests.rows[3:] for c in row[3:])
    assert all(c.text == "" for c in appeals.rows[3])
    assert set(load_gold("template-blank-2021.docx")["cells"].values()) == {None}


def test_template_vmerge_origins_tell_vertical_from_horizontal(template: Document) -> None:
    requests = template.tables[1]
    outcome = requests.rows[9][0]  # 三、本年度办理结果: vMerge restart in row 6, continued down to row 27
    assert (outcome.text, outcome.origin) == ("三、本年度办理结果", (6, 1))
    assert outcome.merged_vertically and not outcome.merged_horizontally
    assert requests.rows[26][0].origin == (6, 1) and requests.rows[27][0].origin == (28, 1)
    new_label = requests.rows[3][2]  # 一、本年新收…: gridSpan 3 in one row
    assert (new_label.text, new_label.origin) == ("一、本年新收政府信息公开申请数量", (4, 1))
    assert new_label.merged_horizontally and not new_label.merged_vertically
    corner = requests.rows[2][1]  # the 勾稽关系 note: 3 columns x 3 rows
    assert corner.origin == (1, 1) and corner.merged_vertically and corner.merged_horizontally
    natural_person = requests.rows[2][3]
    assert (natural_person.text, natural_person.origin) == ("自然人", (2, 4))
    total = requests.rows[2][9]
    assert (total.text, total.origin) == ("总计", (2, 10))


def test_template_blocks_and_title(template: Document) -> None:
    texts = [b.text for b in template.blocks]
    assert template.title == "政府信息公开工作年度报告格式模板"
    assert texts[:3] == ["政府信息公开工作年度报告格式模板", "一、总体情况", "（文字描述）"]
    assert "四、政府信息公开行政复议、行政诉讼情况" in texts
    assert not any(t.startswith(("第二十条", "信息内容", "行政复议")) for t in texts)


# --- LibreOffice conversions read the same as the HTML they came from ----------------------------------------


@pytest.mark.parametrize(
    ("docx_name", "html_name"),
    [
        ("shanghai-szfbgt-2019-libreoffice.docx", "shanghai-szfbgt-2019.html"),
        ("pingtan-2024-libreoffice.docx", "pingtan-2024.html"),
    ],
)
def test_libreoffice_docx_reads_as_its_html(docx_name: str, html_name: str) -> None:
    from_docx = read_document(corpus(docx_name), docx_name)
    from_html = html_reader.read(corpus(html_name))
    assert from_docx.format == "docx"
    assert len(from_docx.tables) == 3
    assert [t.rows for t in from_docx.tables] == [t.rows for t in from_html.tables]
    assert [b.text for b in from_docx.blocks] == [b.text for b in from_html.blocks]


def test_shanghai_docx_values() -> None:
    document = read(corpus("shanghai-szfbgt-2019-libreoffice.docx"))
    assert document.title == "2019年上海市人民政府办公厅政府信息公开工作年度报告"
    assert document.tables[1].texts()[3][3:] == ["821", "35", "", "", "2", "1", "859"]
    assert document.tables[0].texts()[17] == ["政府集中采购", "6", "6", "251000元", "251000元"]


def test_pingtan_docx_has_no_title_line() -> None:
    # Its first paragraph is the body's opening sentence: no title rather than a wrong one.
    assert read(corpus("pingtan-2024-libreoffice.docx")).title is None


# --- files written with python-docx -------------------------------------------------------------------------


def test_round_trip_of_grids_with_merges() -> None:
    spans = [
        [("项目", 2, 1), ("申请人情况", 1, 3)],
        [("自然人", 1, 1), ("法人", 1, 1), ("总计", 1, 1)],
        [("一、本年新收", 1, 1), ("21", 1, 1), ("", 1, 1), ("21", 1, 1)],
        [("三、办理结果", 2, 2), ("5件", 1, 1), ("5", 1, 1)],
        [("6", 1, 1), ("6", 1, 1)],
    ]
    grid = build_grid(1, spans)
    document = read(make_docx(["2023年度政府信息公开工作年度报告", grid, "结束。"]))
    (table,) = document.tables
    assert table.rows == grid.rows
    assert table.rows[4][1].origin == (4, 1)  # a 2x2 merge: vertical and horizontal at once
    assert document.title == "2023年度政府信息公开工作年度报告"
    assert [b.text for b in document.blocks] == ["2023年度政府信息公开工作年度报告", "结束。"]


def test_title_over_two_paragraphs_is_joined() -> None:
    document = read(
        make_docx(["某某市人民政府办公室", "2022年政府信息公开工作年度报告", "一、总体情况", [[("x", 1, 1)]]])
    )
    assert document.title == "某某市人民政府办公室2022年政府信息公开工作年度报告"
    assert [b.text for b in document.blocks] == [
        "某某市人民政府办公室",
        "2022年政府信息公开工作年度报告",
        "一、总体情况",
    ]


def test_nested_table_is_flattened_and_emitted_after_its_parent() -> None:
    word = docx.Document()
    outer = word.add_table(rows=2, cols=2)
    outer.cell(0, 0).text = "行政诉讼"
    outer.cell(1, 0).text = "行政复议"
    outer.cell(1, 1).text = "7"
    host = outer.cell(0, 1)
    host.text = "诉讼情况"
    inner = host.add_table(rows=1, cols=2)
    inner.cell(0, 0).text = "未经复议"
    inner.cell(0, 1).text = "9"
    word.add_table(rows=1, cols=1).cell(0, 0).text = "after"
    buffer = BytesIO()
    word.save(buffer)
    document = read(buffer.getvalue())
    assert [t.index for t in document.tables] == [1, 2, 3]
    assert document.tables[0].texts() == [["行政诉讼", "诉讼情况未经复议9"], ["行政复议", "7"]]
    assert document.tables[1].texts() == [["未经复议", "9"]]
    assert document.tables[2].texts() == [["after"]]


def test_grid_before_shifts_a_row_right() -> None:
    word = docx.Document()
    table = word.add_table(rows=2, cols=3)
    for col, text in enumerate(["自然人", "法人", "总计"]):
        table.cell(0, col).text = text
    table.cell(1, 1).text = "3"
    table.cell(1, 2).text = "3"
    # Word writes a row that starts one grid column in as w:gridBefore and one w:tc fewer.
    tr = table.rows[1]._tr
    tr.remove(tr.tc_lst[0])
    grid_before = OxmlElement("w:gridBefore")
    grid_before.set(qn("w:val"), "1")
    tr.get_or_add_trPr().insert(0, grid_before)
    buffer = BytesIO()
    word.save(buffer)
    (grid,) = read(buffer.getvalue()).tables
    assert grid.texts() == [["自然人", "法人", "总计"], ["", "3", "3"]]
    assert grid.rows[1][1].is_anchor


def test_sliver_grid_column_is_dropped_and_no_text_is_lost() -> None:
    word = docx.Document()
    table = word.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "总计"
    table.cell(0, 2).text = "行政诉讼"
    table.cell(1, 0).text = "7"
    table.cell(1, 1).merge(table.cell(1, 2)).text = "8"
    # The middle grid column is 1 twip wide, as LibreOffice leaves it after a .doc round trip.
    for column, width in zip(table._tbl.tblGrid.gridCol_lst, (2000, 1, 2000), strict=True):
        column.set(qn("w:w"), str(width))
    buffer = BytesIO()
    word.save(buffer)
    (grid,) = read(buffer.getvalue()).tables
    assert grid.texts() == [["总计", "行政诉讼"], ["7", "8"]]
    assert all(cell.is_anchor for row in grid.rows for cell in row)
    # A sliver that holds a cell of its own stays.
    narrow = docx.Document()
    lone = narrow.add_table(rows=1, cols=3)
    for col, text in enumerate(["a", "b", "c"]):
        lone.cell(0, col).text = text
    for column, width in zip(lone._tbl.tblGrid.gridCol_lst, (2000, 1, 2000), strict=True):
        column.set(qn("w:w"), str(width))
    buffer = BytesIO()
    narrow.save(buffer)
    assert read(buffer.getvalue()).tables[0].texts() == [["a", "b", "c"]]


# --- hostile and broken files -------------------------------------------------------------------------------


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    """A 300 KB .docx whose document.xml inflates to 272 MB (a gigabyte one is as quick to refuse, slower to make)."""
    template = zipfile.ZipFile(BytesIO(corpus("template-blank-2021.docx")))
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in template.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info.filename, template.read(info))
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b" " * (1 << 24)
            for _ in range(17):
                member.write(chunk)
    return buffer.getvalue()


def test_zip_bomb_is_refused_before_inflating(gigabyte_bomb: bytes) -> None:
    assert len(gigabyte_bomb) < 1_000_000
    began = time.perf_counter()
    with pytest.raises(UnreadableDocument, match=r"^zip bomb: members would uncompress to 2852\d{5} bytes"):
        read(gigabyte_bomb)
    assert time.perf_counter() - began < 0.5


LIE_PADDING = 512 * 1024 * 1024  # inflated by today's zipfile in one call before it truncates to the declared size


def lying_docx(tmp_path: Path) -> Path:
    """The blank template whose document.xml is followed, inside the same deflate stream, by 512 MB of spaces,
    while its local header and directory entry keep the real size and CRC: nothing but inflating tells."""
    template = zipfile.ZipFile(BytesIO(corpus("template-blank-2021.docx")))
    real = template.read("word/document.xml")
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for info in template.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info.filename, template.read(info))
        with archive.open("word/document.xml", "w") as member:
            member.write(real)
            chunk = b" " * (1 << 24)
            for _ in range(LIE_PADDING // len(chunk)):
                member.write(chunk)
    data = bytearray(buffer.getvalue())
    name = b"word/document.xml"
    local = _header_of(data, b"PK\x03\x04", 30, 26, name)
    central = _header_of(data, b"PK\x01\x02", 46, 28, name)
    for at, crc_at, size_at in ((local, 14, 22), (central, 16, 24)):
        struct.pack_into("<I", data, at + crc_at, zlib.crc32(real))
        struct.pack_into("<I", data, at + size_at, len(real))
    path = tmp_path / "lying.docx"
    path.write_bytes(bytes(data))
    return path


def _header_of(data: bytearray, signature: bytes, fixed: int, name_length_at: int, name: bytes) -> int:
    """The offset of the zip header (local or central) that names `name`."""
    at = data.find(signature)
    while at >= 0:
        (length,) = struct.unpack_from("<H", data, at + name_length_at)
        if bytes(data[at + fixed : at + fixed + length]) == name:
            return at
        at = data.find(signature, at + 4)
    raise AssertionError(f"no {signature!r} header for {name!r}")


def test_a_zip_directory_that_lies_about_sizes_is_refused_without_inflating_it(tmp_path: Path) -> None:
    """Today's zipfile inflates the whole stream in one call (memory grows by the hidden 512 MB), then truncates it
    to the declared size and reads the report as if nothing happened. It must be refused, in bounded memory."""
    path = lying_docx(tmp_path)
    assert zipfile.ZipFile(path).getinfo("word/document.xml").file_size < 1_000_000
    probe = (
        "import resource, sys\n"
        "from gongkai.extractors.docx_reader import read\n"
        "from gongkai.extractors.model import UnreadableDocument\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    read(data)\n"
        "    print('read')\n"
        "except UnreadableDocument as exc:\n"
        "    print(exc)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    began = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120, check=True)
    message, grown_mb = run.stdout.strip().splitlines()
    assert message.startswith("zip bomb: word/document.xml inflates past"), message
    assert int(grown_mb) < 64
    assert time.perf_counter() - began < 30


def test_a_member_compressed_a_thousand_to_one_is_refused() -> None:
    original = zipfile.ZipFile(BytesIO(corpus("template-blank-2021.docx")))
    members = {info.filename: original.read(info) for info in original.infolist()}
    members["word/media/image1.emf"] = bytes(20_000_000)
    with pytest.raises(UnreadableDocument, match=r"^zip bomb: word/media/image1.emf compressed \d+ to 1"):
        read(zip_of(members))


def test_truncated_docx_is_unreadable() -> None:
    data = corpus("template-blank-2021.docx")
    with pytest.raises(UnreadableDocument, match="corrupt zip"):
        read(data[: len(data) // 2])


def test_zip_without_word_document_is_unreadable() -> None:
    with pytest.raises(UnreadableDocument, match="no word/document.xml"):
        read(zip_of({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}))


def test_broken_document_xml_is_unreadable() -> None:
    original = zipfile.ZipFile(BytesIO(corpus("template-blank-2021.docx")))
    members = {info.filename: original.read(info) for info in original.infolist()}
    members["word/document.xml"] = members["word/document.xml"][:5000]
    with pytest.raises(UnreadableDocument, match="corrupt DOCX"):
        read(zip_of(members))


def test_bytes_that_are_no_zip_are_unreadable() -> None:
    with pytest.raises(UnreadableDocument, match="corrupt zip"):
        read(corpus("shanghai-szfbgt-2019.html"))
