"""Mapping grids onto the schema, on the variants real reports show (built as grids, no reader involved)."""

from __future__ import annotations

from gongkai.extractors.extract import extract_from_document
from gongkai.extractors.model import Document, Table, TextBlock, build_grid

HEADER = [
    [("（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）", 3, 3), ("申请人情况", 1, 7)],
    [("自然人", 2, 1), ("法人或其他组织", 1, 5), ("总计", 2, 1)],
    [("商业企业", 1, 1), ("科研机构", 1, 1), ("社会公益组织", 1, 1), ("法律服务机构", 1, 1), ("其他", 1, 1)],
]


def row(label: str, values: list[str], span: int = 3) -> list[tuple[str, int, int]]:
    return [(label, 1, span)] + [(v, 1, 1) for v in values]


def doc_of(*tables: Table, title: str = "某某市某某局2023年政府信息公开工作年度报告") -> Document:
    return Document(format="html", blocks=[TextBlock(title)], tables=list(tables), title=title)


def extract(doc: Document) -> dict:
    return extract_from_document(doc, b"test", "test.html")


def test_a_table_continued_in_a_second_grid_keeps_its_columns() -> None:
    first = build_grid(1, [*HEADER, row("一、本年新收政府信息公开申请数量", ["3", "1", "0", "0", "0", "0", "4"])])
    second = build_grid(2, [row("四、结转下年度继续办理", ["1", "0", "0", "0", "0", "0", "1"])])
    cells = extract(doc_of(first, second))["cells"]
    assert cells["requests.new.total"] == 4
    assert cells["requests.carried_forward.natural_person"] == 1
    assert cells["requests.carried_forward.total"] == 1


def test_a_missing_total_column_gives_no_total_cells_and_no_row_checks() -> None:
    header = [
        [("", 3, 3), ("申请人情况", 1, 6)],
        [("自然人", 2, 1), ("法人或其他组织", 1, 5)],
        HEADER[2],
    ]
    table = build_grid(1, [*header, row("一、本年新收政府信息公开申请数量", ["3", "1", "0", "0", "0", "0"])])
    out = extract(doc_of(table))
    assert out["cells"]["requests.new.other_org"] == 0
    assert not any(a.endswith(".total") for a in out["cells"])
    assert not [c for c in out["checks"] if c["rule"] == "requests.row_total"]


def test_misspelt_label_and_single_other_row_inside_a_2021_report() -> None:
    table = build_grid(
        1,
        [
            *HEADER,
            [("三、本年度办理结果", 3, 1), ("（三）不予公开", 1, 1), ("2.其他法律行政止公开", 1, 1)] + [("1", 1, 1)] * 7,
            [("（六）其他处理", 1, 2)] + [("2", 1, 1)] * 7,
            [("（七）总计", 1, 2)] + [("3", 1, 1)] * 7,
        ],
    )
    proactive = build_grid(2, [[("信息内容", 1, 1), ("本年制发件数", 1, 1), ("本年废止件数", 1, 1), ("现行有效件数", 1, 1)], row("规章", ["0", "0", "0"], 1)])
    out = extract(doc_of(proactive, table))
    assert out["template"] == "2021"
    assert out["cells"]["requests.denied_law_prohibited.commercial"] == 1
    assert out["cells"]["requests.other_handling.total"] == 2
    assert out["cells"]["requests.total_handled.total"] == 3


def test_an_unreadable_label_is_placed_by_position_with_a_warning() -> None:
    table = build_grid(
        1,
        [
            *HEADER,
            row("一、本年新收政府信息公开申请数量", ["3", "0", "0", "0", "0", "0", "3"]),
            row("", ["2", "0", "0", "0", "0", "0", "2"]),
        ],
    )
    out = extract(doc_of(table))
    assert out["cells"]["requests.carried_over.total"] == 2
    assert any("carried_over" in w and "position" in w for w in out["warnings"])


def test_headers_and_values_merged_differently_map_by_order() -> None:
    """The 2019 Shanghai report: header 本年增/减 spans columns 3–4, the first value spans 2–3."""
    table = build_grid(
        1,
        [
            [("第二十条第（五）项", 1, 5)],
            [("信息内容", 1, 1), ("上一年项目数量", 1, 1), ("本年增/减", 1, 2), ("处理决定数量", 1, 1)],
            [("行政许可", 1, 1), ("7", 1, 2), ("-1", 1, 1), ("30", 1, 1)],
        ],
    )
    out = extract(doc_of(table, title="某某区政府2019年政府信息公开工作年度报告"))
    assert out["template"] == "2019"
    assert out["cells"] == {"proactive.licensing.items_last_year": 7, "proactive.licensing.items_change": -1, "proactive.licensing.decisions": 30}


def test_text_in_a_value_cell_is_null_with_a_warning_and_the_check_is_incomplete() -> None:
    table = build_grid(
        1,
        [
            [("行政复议", 1, 5), ("行政诉讼", 1, 10)],
            [("结果维持", 2, 1), ("结果纠正", 2, 1), ("其他结果", 2, 1), ("尚未审结", 2, 1), ("总计", 2, 1), ("未经复议直接起诉", 1, 5), ("复议后起诉", 1, 5)],
            [(t, 1, 1) for t in ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计"] * 2],
            [(v, 1, 1) for v in ["见附件", "0", "0", "0", "1"] + ["0"] * 10],
        ],
    )
    out = extract(doc_of(table))
    assert out["cells"]["appeals.review.upheld"] is None
    assert any("appeals.review.upheld" in w for w in out["warnings"])
    status = {c["target"]: c["status"] for c in out["checks"]}
    assert status["appeals.review.total"] == "incomplete"
    assert status["appeals.litigation_direct.total"] == "pass"


def test_a_total_printed_as_heji_is_the_total() -> None:
    header = [HEADER[0], [("自然人", 2, 1), ("法人或其他组织", 1, 5), ("合计", 2, 1)], HEADER[2]]
    table = build_grid(1, [*header, row("一、本年新收政府信息公开申请数量", ["3", "1", "0", "0", "0", "0", "4"]), row("（七）合计", ["3"] * 7)])
    cells = extract(doc_of(table))["cells"]
    assert cells["requests.new.total"] == 4
    assert cells["requests.total_handled.total"] == 3


def test_agency_and_year_from_the_body_when_the_title_is_missing() -> None:
    from gongkai.extractors.report_meta import detect_meta

    doc = Document(
        format="pdf",
        blocks=[
            TextBlock("本报告由淮安市洪泽区人民政府办公室根据《中华人民共和国政府信息公开条例》要求编制。"),
            TextBlock("报告中所列数据统计期限自2023年1月1日起至2023年12月31日止。"),
        ],
    )
    meta = detect_meta(doc)
    assert (meta.agency, meta.year) == ("淮安市洪泽区人民政府", 2023)


APPEALS = [
    [("行政复议", 1, 5), ("行政诉讼", 1, 10)],
    [("结果维持", 2, 1), ("结果纠正", 2, 1), ("其它结果", 2, 1), ("尚未审结", 2, 1), ("总计", 2, 1), ("未经复议直接起诉", 1, 5), ("复议后起诉", 1, 5)],
    [(t, 1, 1) for t in ["结果维持", "结果纠正", "其它结果", "尚未审结", "总计"] * 2],
]


def test_qita_spelt_either_way_and_total_with_a_unit() -> None:
    header = [HEADER[0], [("自然人", 2, 1), ("法人或其他组织", 1, 5), ("总计（件）", 2, 1)], [*HEADER[2][:4], ("其它", 1, 1)]]
    table = build_grid(
        1,
        [
            *header,
            row("一、本年新收政府信息公开申请数量", ["3", "1", "0", "0", "0", "2", "6"]),
            [("三、本年度办理结果", 2, 1), ("（六）其他处理", 2, 1), ("3.其它", 1, 1)] + [("1", 1, 1)] * 7,
            [("9.说不清的情形", 1, 1)] + [("2", 1, 1)] * 7,
        ],
    )
    appeals = build_grid(2, [*APPEALS, [(v, 1, 1) for v in ["1", "0", "2", "0", "3"] + ["0"] * 10]])
    cells = extract(doc_of(table, appeals))["cells"]
    assert cells["requests.new.other_org"] == 2 and cells["requests.new.total"] == 6
    assert cells["requests.other_other.commercial"] == 1
    assert "requests.other_handling.total" not in cells  # an unknown sub-row is not its group's single row
    assert cells["appeals.review.other"] == 2


def test_a_words_inside_a_long_label_do_not_make_it_that_row() -> None:
    table = build_grid(1, [*HEADER, row("3.其他情形", ["2"] * 7), row("（二）部分公开（区分处理的，只计这一情形，不计其他情形）", ["1"] * 7)])
    cells = extract(doc_of(table))["cells"]
    assert cells["requests.partially_granted.total"] == 1
    assert sum(1 for a in cells if a.startswith("requests.partially_granted.")) == 7


def test_yuan_named_as_unit_of_the_header_converts_to_wan_yuan() -> None:
    table = build_grid(1, [[("信息内容", 1, 1), ("本年收费金额（单位：元）", 1, 1)], [("行政事业性收费", 1, 1), ("25100", 1, 1)]])
    assert extract(doc_of(table))["cells"]["proactive.fees.amount_wan_yuan"] == 2.51


def test_text_instead_of_a_number_is_null_with_a_warning() -> None:
    table = build_grid(1, [[("信息内容", 1, 1), ("本年处理决定数量", 1, 1)], [("行政许可", 1, 1), ("见附件", 1, 1)]])
    out = extract(doc_of(table))
    assert out["cells"] == {"proactive.licensing.decisions": None}
    assert any("proactive.licensing.decisions" in w for w in out["warnings"])


def test_an_unrelated_table_after_the_standard_ones_is_not_mapped() -> None:
    appeals = build_grid(1, APPEALS)  # header only: its data row is missing
    unrelated = build_grid(2, [[(t, 1, 1) for t in ["序号", "单位名称", "答复时间"]], [(t, 1, 1) for t in ["1", "某某局", "3"]]])
    out = extract(doc_of(appeals, unrelated))
    assert out["cells"] == {}


def test_template_follows_the_years_in_the_data_when_no_marker_shows() -> None:
    table = build_grid(1, [*HEADER, row("一、本年新收政府信息公开申请数量", ["1", "0", "0", "0", "0", "0", "1"])])
    assert extract(doc_of(table, title="某某局2020年政府信息公开工作年度报告"))["template"] == "2019"
    assert extract(doc_of(table, title="某某局2022年政府信息公开工作年度报告"))["template"] == "2021"


def test_a_renamed_row_on_the_page_after_a_break_is_named_and_the_report_is_partial() -> None:
    """The table continues in a second grid (the next page); its first row there carries a label we do not know."""
    first = build_grid(1, [*HEADER, row("一、本年新收政府信息公开申请数量", ["3", "1", "0", "0", "0", "0", "4"])])
    second = build_grid(2, [row("四、结转至下一年度处理", ["1", "0", "0", "0", "0", "0", "1"])])
    out = extract(doc_of(first, second))
    assert out["status"] == "partial"
    assert "requests.carried_forward: row not found" in out["warnings"]
    assert any("'四、结转至下一年度处理'" in w and "matches no row of requests" in w for w in out["warnings"])


def test_a_missing_column_is_named_cell_by_cell() -> None:
    header = [[("", 3, 3), ("申请人情况", 1, 6)], [("自然人", 2, 1), ("法人或其他组织", 1, 5)], HEADER[2]]
    table = build_grid(1, [*header, row("一、本年新收政府信息公开申请数量", ["3", "1", "0", "0", "0", "0"])])
    out = extract(doc_of(table))
    assert out["status"] == "partial"
    assert "requests.new.total: cell not found" in out["warnings"]
