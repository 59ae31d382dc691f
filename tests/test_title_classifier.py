"""classify_title normalises a title once (it normalised it three times: itself, then report_year and
agency_from_title again): the same verdicts as before (the reference below, the code as it was) on every listing
title of the saved and built pages, the demo portal's and the corpus's titles, and built hostile titles (white space
before combining marks, full-width and Chinese years, letters and notices)."""

from __future__ import annotations

import random
import re
import unicodedata

from listing_pages import hostile_pages, saved_pages

from gongkai.crawler.adapters import PageRequest, generic
from gongkai.crawler.fetcher import decode_html
from gongkai.crawler.registry import Portal
from gongkai.extractors import report_meta
from gongkai.extractors.report_meta import TitleVerdict, classify_title, normalise_title
from gongkai.extractors.textnorm import fold
from gongkai.schema import TITLES


def reference_normalise_title(title: str) -> str:
    title = re.sub(r"\s+", "", fold(title))
    return report_meta._CN_YEAR.sub(lambda m: m.group(1).translate(report_meta._CN_DIGITS), title)


def reference_report_year(title: str) -> int | None:
    title = reference_normalise_title(title)
    for pattern in report_meta._TITLE_YEAR:
        match = pattern.search(title)
        if match:
            return int(next(g for g in match.groups() if g))
    return None


def reference_clean_agency(text: str) -> str | None:
    text = report_meta._LEADING_NOISE.sub("", text).strip(" ：:，,-—_").removesuffix("关于")
    if len(text) < 2 or not re.search(rf"{report_meta._AGENCY_SUFFIX}$", text):
        return None
    return text


def reference_agency_from_title(title: str) -> str | None:
    title = reference_normalise_title(title)
    before = report_meta._AGENCY_BEFORE_YEAR.match(title)
    if before:
        return reference_clean_agency(before.group(1))
    after = report_meta._AGENCY_AFTER_YEAR.match(title)
    return reference_clean_agency(after.group(2)) if after else None


def reference_classify_title(title: str) -> TitleVerdict:
    """classify_title as it was (commit 9c0652f)."""
    norm = reference_normalise_title(title)
    year = reference_report_year(norm)
    if TITLES.not_report.search(norm):
        return TitleVerdict(False, year, None, "a letter or notice, not a report")
    if not TITLES.report.search(norm):
        return TitleVerdict(False, year, None, "title does not name an annual report")
    if year is None:
        return TitleVerdict(False, None, None, "no year in title")
    return TitleVerdict(True, year, reference_agency_from_title(norm), "annual report")


PIECES = ("2023", "年", "二〇二三", "一二三四五", "〇", "２０２３", "（２０２３）", "(2022)", "政府信息公开", "工作年度报告", "年报",
          "关于", "的函", "通知", "解读", "某市人民政府办公室", "统计局", " ", "\u3000", "\xa0", "\t\n", "\u0301", "\u0308", "e",
          "ﬁ", "㍻", "Ⅻ", "①", "年度", "信息公开", "报告", "办公厅", "2024-01-05 ", "_", "：", "—")


def titles() -> list[str]:
    found: list[str] = []
    entry = Portal("p", "某局", "0", "county", "generic", ("http://h/",), frozenset({"h"}))
    pages = [decode_html(body, ctype) for _name, body, ctype in saved_pages()] + [text for _name, text in hostile_pages()]
    for text in pages:
        found += [c.title for c in generic.parse_listing(entry, PageRequest("http://h/a/index.html"), text, "http://h/a/index.html").candidates]
    rng = random.Random(7)
    found += ["".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 14))) for _ in range(4000)]
    found += ["a \u0301 2023年政府信息公开工作年度报告", "Cafe \u0301统计局2023年政府信息公开工作年度报告", "某局 \u0308 二〇二三 年政府信息公开年报", "e\u3000\u0301二〇二三年年度信息公开报告",
              "二〇二三二〇二三年政府信息公开年报", "一二三四五年信息公开年报", "某县2023年政府信息公开工作年度报告的通知", ""]
    return found


def test_verdicts_as_before() -> None:
    all_titles = titles()
    assert len(all_titles) > 4500 and sum(classify_title(t).is_report for t in all_titles) > 100
    # titles where white space removal leaves text that is not NFKC-normal: normalised twice, as before
    assert sum(not unicodedata.is_normalized("NFKC", normalise_title(t)) for t in all_titles) > 10
    for title in all_titles:
        assert classify_title(title) == reference_classify_title(title), title
        assert report_meta.report_year(title) == reference_report_year(title), title
        assert report_meta.agency_from_title(title) == reference_agency_from_title(title), title
        assert normalise_title(title) == reference_normalise_title(title), title
