"""Agency, year and kind of a document from its title and text.

The year is the year reported on (the title's 2023年…年度报告, or the statistics period), never the
publication date. A letter or notice posted in the report column (关于…的函) is not a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from extractors.model import Document
from extractors.textnorm import clean_text, fold

_YEAR = r"((?:19|20)\d{2})"
_REPORT_TITLE = re.compile(
    rf"^(?P<before>.*?){_YEAR}\s*年度?(?P<after>.*?)(?:政府)?(?:信息公开|政务公开)(?:工作)?(?:年度|年)?(?:报告|年报)"
)
_NOT_REPORT = re.compile(r"(?:函|通知|要点|意见|方案|计划|公告|批复|决定)$")
_AGENCY_SUFFIX = (
    r"(?:人民政府办公厅|人民政府办公室|人民政府|办公厅|办公室|委员会|管理委员会|管委会|局|厅|委|院|署|部|中心|"
    r"综合实验区|实验区|新区|开发区|高新区|街道办事处|街道|镇|乡|区|县|市|州|盟|旗|省)"
)
_AGENCY_IN_TEXT = re.compile(rf"{_YEAR}\s*年(?:度)?[，,]\s*(?P<agency>[\u4e00-\u9fff（）()]{{2,30}}?{_AGENCY_SUFFIX})(?=坚持|严格|认真|深入|全面|按照|在|围绕|以|进一步|持续|紧紧|始终|聚焦|立足)")
_PERIOD = re.compile(rf"(?:统计期限|统计时限|统计期间|数据统计)[^。]{{0,12}}?{_YEAR}\s*年\s*1\s*月\s*1\s*日")
_LEADING_NOISE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\S*\s*)+")


@dataclass(frozen=True)
class ReportMeta:
    title: str | None
    agency: str | None
    year: int | None
    looks_like_report: bool
    not_a_report: bool  # its title names another kind of document (a 函, a 通知)


def _title_candidates(doc: Document) -> list[str]:
    candidates = [doc.metadata.get("ArticleTitle", ""), doc.title or ""]
    first = [b.text for b in doc.blocks[:6] if b.text.strip()]
    for i, text in enumerate(first):
        candidates.append(text)
        if i + 1 < len(first):
            candidates.append(text + first[i + 1])  # agency on one line, 2023年…报告 on the next
    return [clean_text(fold(c)) for c in candidates if c and len(c) <= 80]


def detect_meta(doc: Document) -> ReportMeta:
    titles = _title_candidates(doc)
    for title in titles:
        match = _REPORT_TITLE.search(title)
        if match and not _NOT_REPORT.search(title):
            agency = _clean_agency(match.group("before")) or _clean_agency(match.group("after"))
            return ReportMeta(title, agency or _agency_from_text(doc.text), int(match.group(2)), True, False)
    first_title: str | None = next((t for t in titles if t), None)
    if first_title and _NOT_REPORT.search(first_title):
        return ReportMeta(first_title, None, None, False, True)
    text = fold(doc.text)
    period = _PERIOD.search(text)
    year = int(period.group(1)) if period else None
    return ReportMeta(first_title, _agency_from_text(text), year, False, False)


def _clean_agency(text: str) -> str | None:
    text = _LEADING_NOISE.sub("", text).strip(" ：:，,-—_")
    if len(text) < 2 or not re.search(rf"{_AGENCY_SUFFIX}$", text):
        return None
    return text


def _agency_from_text(text: str) -> str | None:
    match = _AGENCY_IN_TEXT.search(fold(text))
    return match.group("agency") if match else None
