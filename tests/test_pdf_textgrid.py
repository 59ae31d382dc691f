"""The rule-less grid rebuild (extractors/pdf_textgrid.py) on glyph layouts built here: exact where rows and
columns can be told apart, refused (with the reason) where a number could belong to two places."""

from __future__ import annotations

import unicodedata

import pytest

from gongkai.extractors.pdf_layout import Char
from gongkai.extractors.pdf_textgrid import Refused, continued, rebuild

EM = 10.0


def _text(text: str, x: float, top: float) -> list[Char]:
    """Glyphs of one cell line from x: ideographs an em wide and high, digits 5.5 wide and 7 high."""
    chars: list[Char] = []
    for k, ch in enumerate(text):
        wide = unicodedata.east_asian_width(ch) in "FW"
        width, height = (EM, EM) if wide else (5.5, 7.0)
        chars.append(Char(ch, x, top + (EM - height), x + width, top + EM, max(width, height), k == 0))
        x += width + (0.5 if wide else 0.2)
    return chars


def _page(*cells: tuple[str, float, float]) -> list[Char]:
    return [c for text, x, top in cells for c in _text(text, x, top)]


HEADER = (("信息内容", 100, 100), ("本年制发件数", 200, 100), ("本年废止件数", 300, 100), ("现行有效件数", 400, 100))


def test_rows_and_columns_are_rebuilt_from_positions() -> None:
    chars = _page(
        *HEADER,
        ("规章", 110, 125), ("5", 230, 125), ("13", 330, 125), ("7", 430, 125),
        ("行政规范性文件", 100, 150), ("12", 230, 150), ("0", 330, 150), ("440", 430, 150),
    )  # fmt: skip
    rows = rebuild(chars, None).rows
    assert ["规章", "5", "13", "7"] in rows
    assert ["行政规范性文件", "12", "0", "440"] in rows


def test_a_blank_cell_stays_blank_in_its_column() -> None:
    chars = _page(*HEADER, ("规章", 110, 125), ("5", 230, 125), ("7", 430, 125), ("行政许可", 100, 150), ("1", 230, 150), ("2", 330, 150), ("3", 430, 150))  # fmt: skip
    assert ["规章", "5", "", "7"] in rebuild(chars, None).rows


def test_numbers_without_a_header_naming_their_columns_are_refused() -> None:
    chars = _page(("规章", 110, 125), ("5", 230, 125), ("13", 330, 125), ("7", 430, 125))
    with pytest.raises(Refused, match="no header"):
        rebuild(chars, None)


def test_a_number_under_a_header_that_names_no_column_is_refused() -> None:
    chars = _page(*HEADER, ("备注", 500, 100), ("规章", 110, 125), ("5", 230, 125), ("1", 330, 125), ("7", 430, 125), ("9", 505, 125))  # fmt: skip
    with pytest.raises(Refused, match="names no column"):
        rebuild(chars, None)


def test_a_wrapped_number_beside_two_labels_is_refused() -> None:
    """703 / 15 one under the other in a narrow column: one number 70315, or 703 and 15 of two rows? The
    second line is level with no label and nearest the next row's: refused rather than guessed."""
    chars = _page(
        *HEADER,
        ("规章", 110, 122), ("703", 230, 119), ("1", 330, 122), ("7", 430, 122),
        ("15", 230, 131),
        ("行政规范性文件", 100, 141), ("2", 330, 141), ("3", 430, 141),
    )  # fmt: skip
    with pytest.raises(Refused, match="703 / 15"):
        rebuild(chars, None)


def test_a_number_wrapped_beside_its_own_label_is_joined() -> None:
    chars = _page(
        *HEADER,
        ("规章", 110, 122), ("703", 230, 119), ("1", 330, 122), ("7", 430, 122),
        ("15", 230, 131),
        ("行政规范性文件", 100, 150), ("2", 330, 150), ("3", 430, 150),
    )  # fmt: skip
    rows = rebuild(chars, None).rows
    assert ["规章", "70315", "1", "7"] in rows
    assert ["行政规范性文件", "", "2", "3"] in rows


def test_a_table_continued_on_the_next_page_keeps_the_header_columns() -> None:
    first = rebuild(_page(*HEADER, ("规章", 110, 125), ("5", 230, 125), ("13", 330, 125), ("7", 430, 125)), None)
    rows = rebuild(
        _page(("行政规范性文件", 100, 50), ("12", 230, 50), ("0", 330, 50), ("440", 430, 50)), first.columns
    ).rows
    assert rows == [["行政规范性文件", "12", "0", "440"]]


def test_a_header_cut_by_a_page_break_joins_its_rest_on_the_next_page() -> None:
    """本年制发 / 件数: the page ends inside the header; its first lines are held and set above the next
    page's, so the header names its columns there (without them the next page's numbers name none)."""
    first = _page(("信息内容", 100, 700), ("本年制发", 200, 700), ("本年废止", 300, 700), ("现行有效", 400, 700))
    second = _page(
        ("件数", 200, 50), ("件数", 300, 50), ("件数", 400, 50),
        ("规章", 110, 75), ("5", 230, 75), ("13", 330, 75), ("7", 430, 75),
    )  # fmt: skip
    held = rebuild(first, None, hold_tail=True)
    assert held.rows == [] and held.tail
    assert ["规章", "5", "13", "7"] in rebuild(continued(held.tail, second), held.columns).rows
    with pytest.raises(Refused, match="no header"):
        rebuild(second, None)


def _vertical(text: str, x: float, top: float) -> list[tuple[str, float, float]]:
    return [(ch, x, top + 12 * k) for k, ch in enumerate(text)]


def test_a_label_and_a_number_wrapped_together_are_one_row() -> None:
    """…规范性文 / 件 beside 12 / 0 in a column one digit pair wide: one row whose number is 120, not two
    rows (12 and 0) — the label's line and the number's were both full."""
    chars = _page(
        *_vertical("本年制发件数", 200, 100), *_vertical("本年废止件数", 300, 100), *_vertical("现行有效件数", 400, 100),
        ("信息内容", 100, 130),
        ("规章", 110, 180), ("5", 200, 180), ("13", 300, 180), ("7", 400, 180),
        ("行政规范性文", 100, 200), ("12", 200, 200), ("1", 300, 206), ("3", 400, 206),
        ("件", 100, 212), ("0", 200, 212),
    )  # fmt: skip
    rows = rebuild(chars, None).rows
    assert ["规章", "5", "13", "7"] in rows
    assert ["行政规范性文件", "120", "1", "3"] in rows


def test_a_numbered_row_beside_no_number_is_a_blank_row() -> None:
    chars = _page(
        *HEADER,
        ("1.规章", 100, 125), ("5", 230, 125), ("13", 330, 125), ("7", 430, 125),
        ("2.行政规范性文件", 100, 150),
        ("3.其他", 100, 175), ("1", 230, 175), ("2", 330, 175), ("3", 430, 175),
    )  # fmt: skip
    rows = rebuild(chars, None).rows
    assert ["2.行政规范性文件", "", "", ""] in rows
    assert ["3.其他", "1", "2", "3"] in rows


def test_numbers_set_right_between_two_headers_go_by_how_the_table_sets_them() -> None:
    """12 and 123 end together (set right in their cells) nearer the second header than the first; with
    the second column blank throughout, only how the table sets its numbers tells their column."""
    chars = _page(
        *HEADER,
        ("规章", 110, 125), ("12", 279.8, 125), ("7", 485.5, 125),
        ("行政规范性文件", 100, 150), ("123", 274.1, 150), ("8", 485.5, 150),
    )  # fmt: skip
    rows = rebuild(chars, None).rows
    assert ["规章", "12", "", "7"] in rows
    assert ["行政规范性文件", "123", "", "8"] in rows


def test_a_unit_set_apart_after_its_number_is_part_of_the_value() -> None:
    chars = _page(*HEADER, ("规章", 110, 125), ("5", 230, 125), ("13", 330, 125), ("7", 430, 125), ("件", 439, 125))
    assert ["规章", "5", "13", "7件"] in rebuild(chars, None).rows


def test_a_list_marker_set_apart_by_justified_spacing_is_part_of_the_label() -> None:
    chars = _page(*HEADER, ("1.", 100, 125), ("规章", 118, 125), ("5", 230, 125), ("13", 330, 125), ("7", 430, 125))
    assert ["1.规章", "5", "13", "7"] in rebuild(chars, None).rows


def test_a_number_at_the_top_of_a_page_beside_its_row_is_no_page_number() -> None:
    """A total set at the top of its cell, first on a page that continues a table: read, not dropped."""
    first = rebuild(_page(*HEADER, ("规章", 110, 125), ("5", 230, 125), ("13", 330, 125), ("7", 430, 125)), None)
    page = _page(("64", 430, 50), ("行政规范性文件", 100, 56), ("12", 230, 56), ("0", 330, 56))
    assert rebuild(page, first.columns).rows == [["行政规范性文件", "12", "0", "64"]]


def test_a_rebuilt_row_of_numbers_without_a_label_is_never_placed_by_position() -> None:
    """In a grid rebuilt from text positions, numbers with no label may be a wrapped number's rest or a row
    set apart from its label: mapping names them and places none (a flattened text table still places such
    a row as the next one, with a warning: tests/test_mapping.py)."""
    from gongkai.extractors.extract import PARTIAL, extract_from_document
    from gongkai.extractors.model import Document, TextBlock
    from gongkai.extractors.pdf_textgrid import to_table

    title = "某某市某某局2023年政府信息公开工作年度报告"
    header = [["申请人情况"], ["自然人", "法人或其他组织", "总计"]]
    header += [["商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他"]]
    rows = [
        *header,
        ["一、本年新收政府信息公开申请数量", "3", "0", "0", "0", "0", "0", "3"],
        ["2", "0", "0", "0", "0", "0", "2"],  # no label beside these numbers
    ]
    table = to_table(1, 1, rows)
    assert table.rebuilt
    doc = Document(format="pdf", blocks=[TextBlock(title)], tables=[table], title=title)
    out = extract_from_document(doc, b"test", "test.pdf")
    assert out["cells"]["requests.new.total"] == 3
    assert not [a for a in out["cells"] if a.startswith("requests.carried_over")]
    assert any("numbers without a label (2 0 0 0 0 0 2)" in w and "not placed" in w for w in out["warnings"])
    assert out["status"] == PARTIAL


def test_words_that_form_no_table_are_told_from_a_table_refused() -> None:
    """Prose naming the tables (no row of numbers) is NoTable, which the reader keeps quiet about where the
    tables are read on other pages; a table refused for its layout is not."""
    from gongkai.extractors.pdf_textgrid import NoTable

    with pytest.raises(NoTable, match="no row of numbers"):
        rebuild(_page(("本年新收政府信息公开申请数量较上年有所增加", 100, 100)), None)
    with pytest.raises(Refused, match="names no column") as refused:
        rebuild(_page(*HEADER, ("备注", 500, 100), ("规章", 110, 125), ("5", 230, 125), ("1", 330, 125), ("7", 430, 125), ("9", 505, 125)), None)  # fmt: skip
    assert not isinstance(refused.value, NoTable)
