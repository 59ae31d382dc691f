"""Listing noise, named and counted per portal for the run summary.

Report columns are not clean (shared/portals/README.md, "Traps seen"): news and 解读 pages sit beside the reports,
reports of other agencies are listed in a column (the 鄂尔多斯 page lists 鄂尔多斯市's and 内蒙古自治区's), year
folders name another year than the report's, and mirrors re-serve report pages. The walk decides as before
(reports by their title, the agency and year a title names, hosts by the registry); this module names each case
so a run summary says how much of each it met.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from gongkai.extractors.report_meta import TitleVerdict

# a path segment naming a year: 2022n, 2024_nd, 2024n78, 2023nb, xxgknb2020, n2017, 2020_504392 (not 202501, a month)
YEAR_FOLDER = re.compile(r"^[a-z]*_?((?:19|20)\d{2})(?:_?(?:n|nb|nd|ndbg)[a-z\d]*|_\d+)?$", re.I)
_AGENCY_TAIL = re.compile(r"(人民政府办公厅|人民政府办公室|人民政府|管理委员会|管委会|办公厅|办公室)$")

KINDS = {
    "interpretation": "a 解读 of a report, not the report",
    "news": "news or another page, not a report",
    "notice": "a letter or notice about reports",
    "no_year": "a report title without a year",
    "other_agency": "another agency's report, attributed by its own title",
    "year_folder_differs": "URL folder names another year; the title's year is kept",
    "refused_host": "off the registry's hosts (mirror or redirect), not fetched",
    "refused_robots": "disallowed by robots.txt",
}


def rejection(title: str, verdict: TitleVerdict) -> tuple[str, str]:
    """(kind, reason) of a listing item the title classifier did not accept."""
    if "解读" in title:
        return "interpretation", KINDS["interpretation"]
    if verdict.reason == "a letter or notice, not a report":
        return "notice", verdict.reason
    if verdict.reason == "no year in title":
        return "no_year", verdict.reason
    return "news", verdict.reason


def folder_years(url: str) -> set[int]:
    try:
        segments = urlsplit(url).path.split("/")[:-1]  # the folders, not the file
    except ValueError:
        return set()
    return {int(m.group(1)) for s in segments if (m := YEAR_FOLDER.match(s)) is not None}


def same_agency(a: str, b: str) -> bool:
    """淮安市洪泽区人民政府 / 洪泽区人民政府 / 洪泽区: one agency; 鄂尔多斯市 / 恩格贝生态示范区: two."""
    x, y = _AGENCY_TAIL.sub("", a), _AGENCY_TAIL.sub("", b)
    return bool(x and y) and (x == y or x.endswith(y) or y.endswith(x))


def accepted(portal_agency: str, url: str, verdict: TitleVerdict) -> list[str]:
    """The noise a report the walk will fetch carries: another agency's, a misleading year folder."""
    kinds = []
    if verdict.agency and not same_agency(verdict.agency, portal_agency):
        kinds.append("other_agency")
    years = folder_years(url)
    if verdict.year is not None and years and verdict.year not in years:
        kinds.append("year_folder_differs")
    return kinds


def refused(reason: str | None) -> str | None:
    if not reason:
        return None
    if "robots.txt" in reason:
        return "refused_robots"
    if "not one of the agency's hosts" in reason or "redirect refused" in reason:
        return "refused_host"
    return None


def summarise(noted: Iterable[tuple[str, str]], documents: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per portal: how many items of each kind of noise the run met (kinds in KINDS)."""
    counts: dict[str, Counter[str]] = {}
    for portal, kind in noted:
        counts.setdefault(portal, Counter())[kind] += 1
    for doc in documents:
        refusal = refused(doc.get("reason")) if doc.get("outcome") == "refused" else None
        if refusal and doc.get("portal"):
            counts.setdefault(str(doc["portal"]), Counter())[refusal] += 1
    return {portal: dict(sorted(c.items())) for portal, c in sorted(counts.items())}
