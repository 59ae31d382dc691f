"""The HTML reader on the real corpus pages, on re-encoded copies of them, and on hostile input."""

from __future__ import annotations

import time

import pytest
from conftest import DOCUMENTS, load_gold

from gongkai.extractors import read_document
from gongkai.extractors.html_reader import decode_html, read
from gongkai.extractors.model import Document, Table, UnreadableDocument

REQUEST_COLUMNS = (
    "natural_person",
    "commercial",
    "research",
    "public_interest",
    "legal_services",
    "other_org",
    "total",
)
APPEAL_COLUMNS = ("upheld", "corrected", "other", "pending", "total")


def corpus(name: str) -> bytes:
    return (DOCUMENTS / name).read_bytes()


@pytest.fixture(scope="module")
def shanghai() -> Document:
    return read(corpus("shanghai-szfbgt-2019.html"))


@pytest.fixture(scope="module")
def pingtan() -> Document:
    return read(corpus("pingtan-2024.html"))


def row_starting(table: Table, label: str) -> list[str]:
    """The texts of the first grid row whose first cell starts with `label`."""
    for row in table.texts():
        if row[0].startswith(label):
            return row
    raise AssertionError(f"no row starting with {label}")


def gold_values(document: str, row: str, columns: tuple[str, ...]) -> list[str]:
    """Gold cells of one row as the text a grid shows: blank for null."""
    cells = load_gold(document)["cells"]
    return ["" if cells[f"{row}.{c}"] is None else str(cells[f"{row}.{c}"]) for c in columns]


def assert_rectangular(document: Document) -> None:
    for table in document.tables:
        assert table.n_rows > 0
        assert all(len(row) == table.n_cols for row in table.rows)
        for r, row in enumerate(table.rows, start=1):
            assert [(c.row, c.col) for c in row] == [(r, k) for k in range(1, table.n_cols + 1)]


# --- the Shanghai fragment: header and data rows with different colspans -----------------------------------


def test_shanghai_fragment_has_the_three_tables_as_rectangular_grids(shanghai: Document) -> None:
    assert [(t.index, t.n_rows, t.n_cols) for t in shanghai.tables] == [(1, 18, 5), (2, 26, 10), (3, 4, 15)]
    assert_rectangular(shanghai)


def test_shanghai_new_requests_row_lands_in_the_applicant_columns(shanghai: Document) -> None:
    row = shanghai.tables[1].rows[3]
    assert row[0].text == "一、本年新收政府信息公开申请数量"
    # The label spans three grid columns; the seven applicant columns follow.
    assert [c.origin for c in row[:3]] == [(4, 1), (4, 1), (4, 1)]
    assert [c.text for c in row[3:]] == ["821", "35", "", "", "2", "1", "859"]
    assert [c.text for c in row[3:]] == gold_values("shanghai-szfbgt-2019.html", "requests.new", REQUEST_COLUMNS)


def test_shanghai_vertical_and_horizontal_merges_keep_their_origin(shanghai: Document) -> None:
    requests = shanghai.tables[1]
    outcome = requests.rows[6][0]  # 三、本年度办理结果 spans rows 6-25 of column 1
    assert outcome.text == "三、本年度办理结果"
    assert outcome.origin == (6, 1) and outcome.merged_vertically and not outcome.merged_horizontally
    total_label = requests.rows[24][2]  # （七）总计 spans columns 2-3
    assert total_label.text == "（七）总计"
    assert total_label.origin == (25, 2) and total_label.merged_horizontally and not total_label.merged_vertically
    procurement = row_starting(shanghai.tables[0], "政府集中采购")
    assert procurement == ["政府集中采购", "6", "6", "251000元", "251000元"]


def test_shanghai_appeals_row_and_text(shanghai: Document) -> None:
    assert shanghai.tables[2].texts()[3][:10] == ["5", "", "", "2", "7", "8", "", "", "1", "9"]
    assert shanghai.title == "2019年上海市人民政府办公厅政府信息公开工作年度报告"
    assert shanghai.metadata == {}
    texts = [b.text for b in shanghai.blocks]
    assert texts[:2] == ["2019年上海市人民政府办公厅政府信息公开工作年度报告", "发布日期：2020-01-31"]
    assert "二、主动公开政府信息情况" in texts
    # Text inside tables is not running text.
    assert not any(t.startswith(("第二十条", "一、本年新收")) for t in texts)
    # &lt; inside the page is text, not markup.
    assert any("《上海市贯彻<长江三角洲区域一体化发展规划纲要>实施方案》" in t for t in texts)


# --- the Pingtan TRS page: site chrome, Word-pasted styles, labels over several <p> --------------------------


def test_pingtan_reads_only_the_trs_article(pingtan: Document) -> None:
    assert [(t.n_rows, t.n_cols) for t in pingtan.tables] == [(14, 4), (28, 10), (4, 15)]
    assert_rectangular(pingtan)
    texts = [b.text for b in pingtan.blocks]
    assert texts[0].startswith("本报告根据《中华人民共和国政府信息公开条例》")
    assert texts[1] == "一、总体情况"
    assert texts[-1] == "2024年，无收取信息处理费情况。"
    chrome = ("版权所有", "主办单位", "关于我们", "无障碍")
    assert not any(word in pingtan.text for word in chrome)


def test_pingtan_labels_split_over_paragraphs_read_whole(pingtan: Document) -> None:
    requests = pingtan.tables[1]
    assert requests.rows[6][1].text == "（二）部分公开（区分处理的，只计这一情形，不计其他情形）"
    assert [c.text for c in requests.rows[2][4:9]] == ["商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他"]
    assert row_starting(pingtan.tables[0], "行政事业性收费") == ["行政事业性收费", "18651.06", "18651.06", "18651.06"]


def test_pingtan_rows_match_gold(pingtan: Document) -> None:
    gold = "pingtan-2024.html"
    assert pingtan.tables[1].texts()[3][3:] == gold_values(gold, "requests.new", REQUEST_COLUMNS)
    assert pingtan.tables[1].texts()[3][3:] == ["217", "1", "0", "0", "0", "0", "218"]
    appeals = pingtan.tables[2].texts()[3]
    assert appeals[:5] == gold_values(gold, "appeals.review", APPEAL_COLUMNS)
    assert appeals[10:] == gold_values(gold, "appeals.litigation_after_review", APPEAL_COLUMNS)


def test_pingtan_title_and_metadata(pingtan: Document) -> None:
    assert pingtan.title == "平潭综合实验区2024年度政府信息公开工作年度报告"
    assert pingtan.metadata == {
        "ArticleTitle": "平潭综合实验区2024年度政府信息公开工作年度报告",
        "PubDate": "2025-03-10 15:35",
        "ContentSource": "平潭综合实验区管委会办公室",
    }


def test_article_container_names_match_without_case() -> None:
    page = """<html><body><div class="nav"><p>首页 > 政务公开</p><table><tr><td>导航</td><td>菜单</td></tr></table></div>
      <div id="Zoom"><p>2023年度报告正文。</p><table><tr><td>行政复议</td><td>3</td></tr></table></div>
      <div class="footer"><p>版权所有</p></div></body></html>""".encode()
    document = read(page)
    assert [b.text for b in document.blocks] == ["2023年度报告正文。"]
    assert [t.texts() for t in document.tables] == [[["行政复议", "3"]]]


def test_empty_article_container_falls_back_to_the_body() -> None:
    page = b"<html><body><div class=TRS_Editor> </div><p>body text</p><table><tr><td>a</td><td>b</td></tr></table></body></html>"
    document = read(page)
    assert [b.text for b in document.blocks] == ["body text"]
    assert len(document.tables) == 1


def test_pre_2019_county_report_reads_its_statistics_table() -> None:
    document = read_document(corpus("pingtan-county-2011.html"), "pingtan-county-2011.html")
    assert document.format == "html"
    assert [(t.n_rows, t.n_cols) for t in document.tables] == [(18, 4)]
    assert document.tables[0].texts()[:2] == [
        ["指标名称", "计量单位", "2011年度", "历年累计"],
        ["主动公开信息数", "条", "425", "1516"],
    ]
    # An empty ContentSource meta is left out.
    assert document.metadata == {
        "ArticleTitle": "平潭县人民政府2011年政府信息公开工作年度报告",
        "PubDate": "2012-04-18 00:00",
    }
    assert document.blocks[0].text == "平潭县人民政府2011年政府信息公开工作年度报告"


# --- decoding --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declaration",
    [
        '<meta charset="gbk">',
        "<meta charset=gb2312>",
        '<meta http-equiv="Content-Type" content="text/html; charset=GB2312">',
    ],
)
def test_gbk_reencoded_page_reads_identically(shanghai: Document, declaration: str) -> None:
    text = corpus("shanghai-szfbgt-2019.html").decode("utf-8")
    gbk = (f"<html><head>{declaration}</head><body>" + text + "</body></html>").encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    document = read(gbk)
    assert [t.rows for t in document.tables] == [t.rows for t in shanghai.tables]
    assert [b.text for b in document.blocks] == [b.text for b in shanghai.blocks]


def test_undeclared_gbk_falls_back_to_gb18030() -> None:
    page = "<p>三、收到和处理政府信息公开申请情况</p><p>€</p>"
    assert decode_html(page.encode("gb18030")) == page


def test_utf8_page_declared_gb2312_is_read_as_utf8() -> None:
    page = '<meta charset="gb2312"><p>政府信息公开工作年度报告</p>'
    assert decode_html(page.encode("utf-8")) == page


def test_http_charset_is_honoured_unless_it_is_a_default() -> None:
    page = "<p>行政复议</p>"
    assert decode_html(page.encode("gbk"), http_charset="GBK") == page
    # requests reports ISO-8859-1 when the server names no charset: that is not a statement about the page.
    assert decode_html(page.encode("utf-8"), http_charset="ISO-8859-1") == page
    assert decode_html(page.encode("gbk"), http_charset="iso-8859-1") == page
    assert decode_html(page.encode("utf-8"), http_charset="no-such-charset") == page


def test_byte_order_marks() -> None:
    page = "<p>行政诉讼</p>"
    assert decode_html(b"\xef\xbb\xbf" + page.encode("utf-8")) == page
    assert decode_html(b"\xff\xfe" + page.encode("utf-16-le"), http_charset="gbk") == page


# --- spans, nesting, layout ------------------------------------------------------------------------------------


def test_garbage_spans_and_short_rows_still_make_a_rectangle() -> None:
    page = b"""<table>
      <tr><td rowspan="2;">A</td><td colspan="0">B</td><td colspan=" 2px">C</td></tr>
      <tr><td rowspan="x">D</td></tr>
      <tr><td>E</td><td colspan=-3>F</td></tr>
    </table>"""
    (table,) = read(page).tables
    assert table.texts() == [["A", "B", "C", "C"], ["A", "D", "", ""], ["E", "F", "", ""]]
    assert table.rows[1][0].origin == (1, 1)
    assert table.rows[0][3].origin == (1, 3)
    assert table.rows[2][2].is_anchor and table.rows[2][2].text == ""


def test_cell_text_joins_block_pieces_without_space_only_between_cjk() -> None:
    page = """<table><tr>
      <td><p>社会</p><p><span>公益</span></p><p>组织</p></td>
      <td><p>本年收费金额</p><p>（单位：万元）</p></td>
      <td><div>Total</div><div>2024</div></td>
      <td><span>1</span><span>2</span>&nbsp;&nbsp;<br>3</td>
      <td>\u3000—\u3000</td>
    </tr></table>""".encode()
    assert read(page).tables[0].texts() == [["社会公益组织", "本年收费金额（单位：万元）", "Total 2024", "12 3", "—"]]


def test_nested_table_is_flattened_into_its_cell_and_kept_as_its_own_table() -> None:
    page = """<table>
      <tr><td>行政诉讼</td><td><table><tr><td>未经复议</td><td>复议后</td></tr><tr><td>8</td><td>0</td></tr></table></td></tr>
      <tr><td>行政复议</td><td>7</td></tr>
    </table><table><tr><td>after</td></tr></table>""".encode()
    document = read(page)
    assert [t.index for t in document.tables] == [1, 2, 3]
    outer, inner, after = document.tables
    assert outer.texts() == [["行政诉讼", "未经复议复议后8 0"], ["行政复议", "7"]]
    assert inner.texts() == [["未经复议", "复议后"], ["8", "0"]]
    assert after.texts() == [["after"]]


def test_layout_table_text_is_running_text() -> None:
    page = """<html><body><table><tr><td>
      <p>平潭县2011年政府信息公开工作年度报告</p><p>一、概述</p>
      <table border=1><tr><td>指标名称</td><td>2011年度</td></tr><tr><td>主动公开信息数</td><td>425</td></tr></table>
      <p>二、其他</p></td></tr></table></body></html>""".encode()
    document = read(page)
    assert [b.text for b in document.blocks] == ["平潭县2011年政府信息公开工作年度报告", "一、概述", "二、其他"]
    assert document.tables[1].texts() == [["指标名称", "2011年度"], ["主动公开信息数", "425"]]
    assert document.title == "平潭县2011年政府信息公开工作年度报告"


def test_page_without_tables_is_a_document_without_tables() -> None:
    page = """<html><head><title>关于印发某某办法的通知 - 某某市人民政府</title><style>p{color:red}</style>
      <script>var report = "年度报告";</script></head>
      <body><p>各区县人民政府：</p><p>现将办法印发给你们。</p></body></html>""".encode()
    document = read(page)
    assert document.tables == []
    assert [b.text for b in document.blocks] == ["各区县人民政府：", "现将办法印发给你们。"]
    assert document.title == "关于印发某某办法的通知"


def test_h1_heading_is_the_title_when_there_is_no_article_title_meta() -> None:
    page = "<html><head><title>x_y</title></head><body><h1>2020年度 政府信息公开 工作年度报告</h1><p>正文。</p></body></html>"
    assert read(page.encode()).title == "2020年度政府信息公开工作年度报告"
    # A section heading is not a title: the page title, without its site suffix, is.
    page = "<html><head><title>某局2020年年报_某市</title></head><body><h2>一、总体情况</h2><p>正文。</p></body></html>"
    assert read(page.encode()).title == "某局2020年年报"


def test_word_exported_page_with_a_title_broken_over_two_lines() -> None:
    page = """<html><head><meta http-equiv=Content-Type content="text/html; charset=gb2312">
      <!--[if gte mso 9]><xml><w:WordDocument>年度报告</w:WordDocument></xml><![endif]--></head>
      <body lang=ZH-CN><div class=WordSection1>
      <p class=MsoNormal align=center><b><span>某某局2022年政府信息公开<br>工作年度报告<o:p></o:p></span></b></p>
      <table class=MsoNormalTable border=1>
        <tr><td rowspan=2><p class=MsoNormal><span>三、本年度</span></p><p><span>办理结果</span></p></td>
            <td><p class=MsoNormal><span lang=EN-US>12<o:p></o:p></span></p></td></tr>
        <tr><td><p class=MsoNormal><span lang=EN-US>&nbsp;<o:p></o:p></span></p></td></tr>
      </table></div></body></html>""".encode("gbk")
    document = read(page)
    assert document.title == "某某局2022年政府信息公开工作年度报告"
    assert [b.text for b in document.blocks] == ["某某局2022年政府信息公开", "工作年度报告"]
    assert document.tables[0].texts() == [["三、本年度办理结果", "12"], ["三、本年度办理结果", ""]]


@pytest.mark.parametrize("data", [b"", b"   \n\t ", b"\xef\xbb\xbf"])
def test_empty_input_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableDocument, match="empty"):
        read(data)


# --- bounded time and memory ----------------------------------------------------------------------------------


def test_fifty_megabyte_page_reads_in_seconds() -> None:
    page = corpus("pingtan-2024.html")
    start = page.index(b"<div class=TRS_Editor>") + len(b"<div class=TRS_Editor>")
    end = page.rindex(b"</table>") + len(b"</table>")
    article = page[start:end]
    copies = 50_000_000 // len(article) + 1
    big = page[:start] + article * copies + page[end:]
    assert len(big) > 50_000_000
    began = time.perf_counter()
    document = read(big)
    elapsed = time.perf_counter() - began
    assert len(document.tables) == 3 * copies
    assert document.tables[-2].rows[6][1].text == "（二）部分公开（区分处理的，只计这一情形，不计其他情形）"
    assert elapsed < 30, f"{elapsed:.1f} s for a 50 MB page"


def test_a_span_bomb_is_left_out_with_a_warning() -> None:
    page = (
        b"<table><tr>" + b"<td colspan=1000 rowspan=1000>1" * 50_000 + b"</table><table><tr><td>kept</td></tr></table>"
    )
    began = time.perf_counter()
    document = read(page)
    assert time.perf_counter() - began < 10
    assert [t.texts() for t in document.tables] == [[["kept"]]]
    assert document.warnings == ["table 1 left out: its grid would hold up to 50000000 cells"]


def test_deeply_nested_tables_stay_bounded() -> None:
    page = b"<html><body>" + b"<table><tr><td>x" * 2_000
    began = time.perf_counter()
    document = read(page)
    assert time.perf_counter() - began < 10
    assert len(document.tables) == 8
    assert any("nested more than 8 deep" in w for w in document.warnings)


def test_a_table_with_too_many_cells_is_counted_not_read() -> None:
    page = b"<table><tr>" + b"<td>1" * 1_000_001 + b"</table><table><tr><td>kept</td></tr></table>"
    document = read(page)
    assert [t.texts() for t in document.tables] == [[["kept"]]]
    assert document.warnings == ["table 1 left out: it has 1000001 cells"]


def test_a_page_over_a_hundred_megabytes_is_refused_unparsed() -> None:
    began = time.perf_counter()
    with pytest.raises(UnreadableDocument, match="^too large: an HTML page of 100000001 bytes"):
        read(b" " * 100_000_001)
    assert time.perf_counter() - began < 1
