"""Which listing titles are annual reports, and on which year they report.

The year is the year reported on, read from the title (a 2024 report is published in 2025);
letters and notices posted in the same column (函, 通知 about 工作要点, 报告格式 …) are not reports.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
_CN_YEAR = re.compile(r"([〇零一二三四五六七八九]{4})\s*年")
_RULES = tomllib.loads(Path(__file__).with_name("discovery.toml").read_text("utf-8"))
_REPORT = re.compile("|".join(f"(?:{p})" for p in _RULES["report"]))
_NOT_REPORT = re.compile("|".join(f"(?:{p})" for p in _RULES["not_report"]))


@dataclass(frozen=True)
class TitleVerdict:
    is_report: bool
    year: int | None
    agency: str | None
    reason: str


def normalise_title(title: str) -> str:
    title = unicodedata.normalize("NFKC", title)
    return re.sub(r"\s+", "", title).strip()


def report_year(title: str) -> int | None:
    """The first four-digit year of the title (Arabic, full-width or 二〇二三), else None."""
    title = normalise_title(title)
    m = _YEAR.search(title)
    if m:
        return int(m.group(1))
    m = _CN_YEAR.search(title)
    return int(m.group(1).translate(_CN_DIGITS)) if m else None


def agency_from_title(title: str) -> str | None:
    """The agency named before the year ("淄博市统计局2023年…") or between year and 政府信息公开 ("2019年上海市人民政府办公厅政府…")."""
    title = normalise_title(title)
    m = re.match(r"^(.{2,40}?)(?:(?:19|20)\d{2}|[〇零一二三四五六七八九]{4})年", title)
    if m:
        return m.group(1)
    m = re.match(r"^(?:(?:19|20)\d{2})年度?(.{2,40}?)(?:政府信息|信息公开|政务公开)", title)
    return m.group(1) if m and not m.group(1).startswith(("政府", "政务", "信息")) else None


def classify_title(title: str) -> TitleVerdict:
    """Is a listing title an annual report? Returns the reported-on year and agency too."""
    norm = normalise_title(title)
    year = report_year(norm)
    if _NOT_REPORT.search(norm):
        return TitleVerdict(False, year, None, "a letter or notice, not a report")
    if not _REPORT.search(norm):
        return TitleVerdict(False, year, None, "title does not name an annual report")
    if year is None:
        return TitleVerdict(False, None, None, "no year in title")
    return TitleVerdict(True, year, agency_from_title(norm), "annual report")
