"""schema/: the data loads and validates, labels match as real reports print them, values parse, rules reconcile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import gongkai.schema as schema
from gongkai.schema import SchemaError, load_schema
from gongkai.schema.labels import best_score, normalize_label
from gongkai.schema.reconcile import reconcile, year_over_year
from gongkai.schema.values import parse_value


def test_every_reference_address_is_declared() -> None:
    addresses = set(schema.all_addresses("2021")) | set(schema.all_addresses("2019"))
    for address in [
        "proactive.fees.amount_wan_yuan",
        "proactive.procurement.amount_wan_yuan",
        "requests.new.natural_person",
        "requests.denied_security_stability.total",
        "requests.other_handling.total",
        "requests.other_other.research",
        "appeals.litigation_after_review.pending",
    ]:
        assert address in addresses
    assert "proactive.regulations.decisions" not in addresses  # rows carry only their own columns


def _copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(schema.DATA, target)
    return target


def test_a_rule_naming_an_unknown_row_is_refused(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    checks = data / "checks.toml"
    checks.write_text(checks.read_text(encoding="utf-8").replace('"carried_over"]', '"carried_ovr"]'), encoding="utf-8")
    with pytest.raises(SchemaError, match="carried_ovr"):
        load_schema(data)


def test_a_template_naming_an_unknown_table_is_refused(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    templates = data / "templates.toml"
    templates.write_text(templates.read_text(encoding="utf-8").replace('"proactive_2019"', '"proactive_2018"'), encoding="utf-8")
    with pytest.raises(SchemaError, match="proactive_2018"):
        load_schema(data)


def test_a_label_variant_is_a_data_change(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    tables = data / "tables.toml"
    tables.write_text(tables.read_text(encoding="utf-8").replace('labels = ["重复申请"]', 'labels = ["重复申请", "反复重复提出的申请"]'), encoding="utf-8")
    loaded = load_schema(data)
    row = loaded.tables["requests"].row("rejected_duplicate")
    assert best_score(normalize_label("2．反复重复提出的申请"), row.labels) == 1.0


@pytest.mark.parametrize(
    ("printed", "normalized"),
    [
        ("（三）不予公开 1．属于国家秘密", "不予公开1属于国家秘密"),
        ("1．属于国家秘密", "属于国家秘密"),
        ("三、本年度办理结果", "本年度办理结果"),
        ("（七）总计", "总计"),
        ("3.危及“三安全一稳定”", "危及三安全一稳定"),
        ("本年收费金额（万元）", "本年收费金额万元"),
        ("２．重复申请", "重复申请"),
    ],
)
def test_normalize_label(printed: str, normalized: str) -> None:
    assert normalize_label(printed) == normalized


def test_misspelt_label_still_matches_its_row_and_not_another() -> None:
    rows = schema.TABLES["requests"].rows
    text = normalize_label("2.其他法律行政止公开")
    scores = {r.key: best_score(text, r.labels) for r in rows}
    assert max(scores, key=lambda k: scores[k]) == "denied_law_prohibited"
    assert scores["other_other"] == 0.0 and scores["other_handling"] == 0.0


@pytest.mark.parametrize(
    ("raw", "kind", "header", "value", "readable"),
    [
        ("21", "count", None, 21, True),
        ("２１件", "count", None, 21, True),
        ("1,234", "count", None, 1234, True),
        ("", "count", None, None, True),
        ("—", "count", None, None, True),
        ("无", "count", None, None, True),
        ("/", "count", None, None, True),
        ("见附件", "count", None, None, False),
        ("251000元", "money", "采购总金额", 25.1, True),
        ("7730.28", "money", "本年收费金额（万元）", 7730.28, True),
        ("12000", "money", "采购总金额（元）", 1.2, True),
        ("-3", "count", None, -3, True),
        ("12（件）", "count", None, 12, True),
        ("3.5（万元）", "money", "采购总金额（元）", 3.5, True),
    ],
)
def test_parse_value(raw: str, kind: str, header: str | None, value: object, readable: bool) -> None:
    parsed = parse_value(raw, kind, header)
    assert (parsed.value, parsed.readable) == (value, readable)


def _requests(rows: dict[str, list[int | None]]) -> dict[str, int | None]:
    columns = ["natural_person", "commercial", "research", "public_interest", "legal_services", "other_org", "total"]
    return {f"requests.{r}.{c}": v for r, values in rows.items() for c, v in zip(columns, values, strict=True)}


def test_reconcile_pass_fail_incomplete() -> None:
    cells = _requests(
        {
            "new": [5, 1, None, None, None, None, 6],
            "carried_over": [1, 0, 0, 0, 0, 0, 1],
            "granted": [3, 1, None, None, None, None, None],
            "unavailable_not_held": [2, 0, 0, 0, 0, 0, 2],
            "total_handled": [5, 1, 0, 0, 0, 0, 7],
            "carried_forward": [1, 0, 0, 0, 0, 0, 1],
        }
    )
    checks = {(c.rule, c.target): c for c in reconcile(cells, "2021")}
    assert checks[("requests.row_total", "requests.new.total")].status == "pass"
    assert checks[("requests.row_total", "requests.granted.total")].status == "incomplete"
    assert checks[("requests.row_total", "requests.total_handled.total")].status == "fail"
    outcome = checks[("requests.outcome_total", "requests.total_handled.total")]
    # granted.total is a blank subtotal whose own parts are not: the reference's blank-subtotal clause makes the
    # column total incomplete, not fail (it was "fail" before that clause; see test_blank_subtotal_* below).
    assert (outcome.expected, outcome.actual, outcome.status) == (2, 7, "incomplete")
    outcome_natural = checks[("requests.outcome_total", "requests.total_handled.natural_person")]
    assert (outcome_natural.expected, outcome_natural.actual, outcome_natural.status) == (5, 5, "pass")
    balance = checks[("requests.balance", "requests.total_handled.natural_person")]
    assert (balance.expected, balance.actual, balance.status) == (5, 5, "pass")
    assert cells["requests.granted.total"] is None  # a check never changes a value


def test_blank_subtotal_makes_the_column_total_incomplete_not_fail() -> None:
    """上海市人民政府办公厅 2019 leaves its row totals blank: the 总计 column's outcome total cannot be said to fail."""
    rows = {
        "granted": [3, 1, None, None, None, None, None],  # row total left blank, its parts are not
        "unavailable_not_held": [2, 0, 0, 0, 0, 0, 2],
        "total_handled": [5, 1, 0, 0, 0, 0, 6],
    }
    checks = {(c.rule, c.target): c for c in reconcile(_requests(rows), "2021")}
    assert checks[("requests.outcome_total", "requests.total_handled.total")].status == "incomplete"
    # Printed everywhere and still wrong: a real failure stays a failure.
    rows["granted"][-1] = 1
    checks = {(c.rule, c.target): c for c in reconcile(_requests(rows), "2021")}
    assert checks[("requests.row_total", "requests.granted.total")].status == "fail"
    outcome = checks[("requests.outcome_total", "requests.total_handled.total")]
    assert (outcome.expected, outcome.actual, outcome.status) == (3, 6, "fail")
    # A blank subtotal whose parts are blank too is a zero, not an unknown: the column total can fail.
    rows["granted"] = [None] * 7
    checks = {(c.rule, c.target): c for c in reconcile(_requests(rows), "2021")}
    assert checks[("requests.outcome_total", "requests.total_handled.total")].status == "fail"


def test_unreadable_part_makes_a_check_incomplete() -> None:
    cells = {"appeals.review.upheld": None, "appeals.review.corrected": 1, "appeals.review.other": 0, "appeals.review.pending": 0, "appeals.review.total": 1}
    (check,) = [c for c in reconcile(cells, "2021", unreadable={"appeals.review.upheld"}) if c.target == "appeals.review.total"]
    assert check.status == "incomplete"


def test_year_over_year() -> None:
    before = {"requests.carried_forward.total": 3, "requests.carried_forward.natural_person": 3}
    after = {"requests.carried_over.total": 2, "requests.carried_over.natural_person": 3}
    statuses = {c.target: c.status for c in year_over_year(before, after, "2021")}
    assert statuses == {"requests.carried_over.total": "fail", "requests.carried_over.natural_person": "pass"}


def test_titles_are_classified_by_the_shared_rules() -> None:
    from gongkai.extractors.report_meta import classify_title

    assert classify_title("淄博市统计局二〇二三年政府信息公开工作年度报告") == classify_title("淄博市统计局2023年政府信息公开工作年度报告")
    report = classify_title("2019年上海市人民政府办公厅政府信息公开工作年度报告")
    assert (report.is_report, report.year, report.agency) == (True, 2019, "上海市人民政府办公厅")
    assert not classify_title("关于2014年政府信息公开工作要点落实情况的函").is_report
    assert classify_title("关于2023年度政府信息公开工作年度报告").is_report
    assert not classify_title("关于做好2019年政府信息公开工作年度报告编制工作的通知").is_report
