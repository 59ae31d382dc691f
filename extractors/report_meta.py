"""Agency, year and kind of a document from its title and text.

The year is the year reported on (the title's 2023年…年度报告, or the statistics period), never the
publication date. A letter or notice posted in the report column (关于…的函) is not a report.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gongkai import schema
from gongkai.extractors.model import Document
from gongkai.extractors.textnorm import clean_text, fold


class _TitleRules:
    """schema's title rules, read where a title is judged and not at this module's import: the crawler's processes
    import it before their first request, and are handed the schema by their parent (crawler/processes.py)."""

    @property
    def report(self) -> re.Pattern[str]:
        return schema.TITLES.report

    @property
    def not_report(self) -> re.Pattern[str]:
        return schema.TITLES.not_report


TITLES = _TitleRules()


_YEAR = r"((?:19|20)\d{2})"
_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")
_CN_YEAR = re.compile(r"([〇零一二三四五六七八九]{4})(?=\s*年)")
# 2023年…; else a bare year beside the report's name or in brackets: …2023政府信息公开…, …年度报告（2023）
_TITLE_YEAR = (
    re.compile(rf"{_YEAR}\s*年"),
    re.compile(rf"{_YEAR}(?=政府信息|信息公开|政务公开)|[(（]{_YEAR}[)）]"),
)
_AGENCY_BEFORE_YEAR = re.compile(rf"^(.{{2,40}}?){_YEAR}(?:年|(?=政府信息|信息公开|政务公开))")
_AGENCY_AFTER_YEAR = re.compile(rf"^{_YEAR}年度?(.{{2,40}}?)(?:政府信息|信息公开|政务公开)")
_AGENCY_SUFFIX = (
    r"(?:人民政府办公厅|人民政府办公室|人民政府|办公厅|办公室|委员会|管理委员会|管委会|局|厅|委|院|署|部|中心|"
    r"综合实验区|实验区|新区|开发区|高新区|街道办事处|街道|镇|乡|区|县|市|州|盟|旗|省)"
)
_AGENCY_NAME = rf"(?P<agency>[\u4e00-\u9fff()]{{2,30}}?{_AGENCY_SUFFIX})"
# Where report bodies name their agency, most telling first: "2024年，平潭综合实验区坚持…",
# "本报告由淮安市洪泽区人民政府办公室根据…编制", "请与淄博市统计局联系".
_AGENCY_IN_TEXT = (
    re.compile(rf"{_YEAR}\s*年(?:度)?[,，]\s*{_AGENCY_NAME}(?=坚持|严格|认真|深入|全面|按照|在|围绕|以|进一步|持续|紧紧|始终|聚焦|立足)"),
    re.compile(rf"本(?:年度)?报告由{_AGENCY_NAME}(?:办公室)?(?=根据|依据|按照|编制)"),
    re.compile(rf"请与{_AGENCY_NAME}(?:办公室)?联系"),
)
_PERIOD = re.compile(rf"(?:统计期限|统计时限|统计期间|数据统计)[^。]{{0,12}}?{_YEAR}\s*年\s*1\s*月\s*1\s*日")
_LEADING_NOISE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\S*\s*)+")
_WHITESPACE = re.compile(r"\s+")
_AGENCY_END = re.compile(rf"{_AGENCY_SUFFIX}$")


@dataclass(frozen=True, slots=True)
class TitleVerdict:
    is_report: bool
    year: int | None
    agency: str | None
    reason: str


def normalise_title(title: str) -> str:
    """NFKC (full-width digits → ASCII), no white space, 二〇二三年 → 2023年."""
    title = _WHITESPACE.sub("", fold(title))
    return _CN_YEAR.sub(lambda m: m.group(1).translate(_CN_DIGITS), title)


def _normalised_again(norm: str) -> str:
    """normalise_title(norm) for a title normalise_title returned, without the work where it is a no-op: NFKC-normal
    text is its own fold, holds no white space any more and no 二〇二三年 (each replaced by ASCII digits before a 年).
    Removing white space can make NFKC text unnormal (a combining mark then follows a letter): normalised again."""
    return norm if unicodedata.is_normalized("NFKC", norm) else normalise_title(norm)


def report_year(title: str) -> int | None:
    """The first four-digit year the title names (the year reported on, not the publication date)."""
    return _year_in(normalise_title(title))


# one int object per year (CPython caches only -5..256): a crawl's queued items each carry their verdict's year, a new
# 28-byte int each (some 5,000 items wait at once at 1,000 hosts)
_YEARS = {year: year for year in range(1900, 2100)}
# the agencies named by titles, one string per name (a portal's items name the same agency, each title a copy of its
# own: ~90 bytes an item waiting in the crawl's queues); emptied when full, so a hostile listing cannot grow it for good
_AGENCIES: dict[str, str] = {}
MAX_AGENCIES = 4096


def _year_in(title: str) -> int | None:
    """report_year of a normalised title."""
    for pattern in _TITLE_YEAR:
        match = pattern.search(title)
        if match:
            year = int(next(g for g in match.groups() if g))
            return _YEARS.get(year, year)
    return None


def _shared_agency(agency: str | None) -> str | None:
    if agency is None:
        return None
    if len(_AGENCIES) >= MAX_AGENCIES:  # (threads: a clear racing a put loses some sharing, never a name)
        _AGENCIES.clear()
    return _AGENCIES.setdefault(agency, agency)


def agency_from_title(title: str) -> str | None:
    """The agency before the year (淄博市统计局2023年…) or between year and 政府信息公开 (2019年上海市人民政府办公厅政府…)."""
    return _agency_in(normalise_title(title))


def _agency_in(title: str) -> str | None:
    """agency_from_title of a normalised title."""
    before = _AGENCY_BEFORE_YEAR.match(title)
    if before:
        return _clean_agency(before.group(1))
    after = _AGENCY_AFTER_YEAR.match(title)
    return _clean_agency(after.group(2)) if after else None


def classify_title(title: str) -> TitleVerdict:
    """Does a title (of a listing item or a document) name an annual report? By schema/data/titles.toml."""
    norm = normalise_title(title)
    # report_year(norm) and agency_from_title(norm) as they were called, normalising the title once more each
    again = _normalised_again(norm)
    year = _year_in(again)
    if TITLES.not_report.search(norm):
        return TitleVerdict(False, year, None, "a letter or notice, not a report")
    if not TITLES.report.search(norm):
        return TitleVerdict(False, year, None, "title does not name an annual report")
    if year is None:
        return TitleVerdict(False, None, None, "no year in title")
    return TitleVerdict(True, year, _shared_agency(_agency_in(again)), "annual report")


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
        verdict = classify_title(title)
        if verdict.is_report:
            agency = _qualified(verdict.agency, fold(doc.text)) if verdict.agency else _agency_from_text(doc.text)
            return ReportMeta(title, agency, verdict.year, True, False)
    first_title: str | None = next((t for t in titles if t), None)
    if first_title and not classify_title(first_title).is_report and TITLES.not_report.search(normalise_title(first_title)):
        return ReportMeta(first_title, None, None, False, True)
    text = fold(doc.text)
    period = _PERIOD.search(text)
    year = int(period.group(1)) if period else None
    return ReportMeta(first_title, _agency_from_text(text), year, False, False)


def _clean_agency(text: str) -> str | None:
    text = _LEADING_NOISE.sub("", text).strip(" ：:，,-—_").removesuffix("关于")  # XX局关于2023年…报告
    if len(text) < 2 or not _AGENCY_END.search(text):
        return None
    return text


_PLACE_END = ("省", "自治区", "市", "州", "盟", "地区")
_NOT_IN_PLACE = set("由与和及的在对是为本向请经据按据于将把被从自至即")


def _qualified(agency: str, text: str) -> str:
    """The fuller name the body gives a title's agency: 洪泽区人民政府 → 淮安市洪泽区人民政府.

    Walks back from an occurrence of the agency over CJK characters until a function word
    (本报告由淮安市… stops at 由) and keeps the run if it ends as a place name does."""
    if agency.startswith(("国家", "中华人民共和国")):
        return agency
    for match in re.finditer(re.escape(agency), text):
        start = match.start()
        while start > 0 and start > match.start() - 10 and "\u4e00" <= text[start - 1] <= "\u9fff" and text[start - 1] not in _NOT_IN_PLACE:
            start -= 1
        prefix = text[start : match.start()]
        if len(prefix) >= 3 and prefix.endswith(_PLACE_END) and not agency.startswith(prefix):
            return prefix + agency
    return agency


def _agency_from_text(text: str) -> str | None:
    folded = fold(text)
    for pattern in _AGENCY_IN_TEXT:
        match = pattern.search(folded)
        if match:
            agency = match.group("agency")
            # the government's office compiles the government's report
            return agency.removesuffix("办公室") if agency.endswith("人民政府办公室") and pattern is not _AGENCY_IN_TEXT[0] else agency
    return None
