"""Which CMS family a column page belongs to, and the adapter parameters the page itself gives.

Each rule names what it saw (the evidence `portals check` prints) and what the page does not say (`missing`), so
an entry written from a detection is honest about what still needs a person: a TRS search API's path is never in
the page, a gkmlpt site page names its SID but not always its 年报 category.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gongkai.crawler.adapters import gkmlpt, hanweb, trs, ucap
from gongkai.crawler.adapters.tree import links, parse_html


@dataclass
class Detection:
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, re.I)
    return m.group(1) if m else None


def _links(text: str) -> list[str]:
    return [str(a.get("href")) for a in links(parse_html(text))]


def detect(url: str, text: str) -> Detection:
    path = urlsplit(url).path
    if "/gkmlpt/" in path or ("gkmlpt" in text and gkmlpt.SID.search(text)):
        found = Detection("gkmlpt", evidence=["gkmlpt in the " + ("URL" if "/gkmlpt/" in path else "page")])
        sid = _first(r"[?&]sid=(\d+)", url) or (m.group(1) if (m := gkmlpt.SID.search(text)) else None)
        category = _first(r"/gkmlpt/api/all/(\d+)", url) or (urlsplit(url).fragment if urlsplit(url).fragment.isdigit() else None)
        if sid:
            found.params["sid"] = sid
            found.evidence.append(f"SID {sid}")
        else:
            found.missing.append("sid: the site id (SID: '…' in the site's pages)")
        if category:
            found.params["category"] = category
        else:
            found.missing.append("category: the 年报 category id (/gkmlpt/annualreport#<id>)")
        return found
    column = hanweb.COLUMN.search(path)
    if column or "<datastore>" in text or "dataproxy.jsp" in text:
        found = Detection("hanweb", evidence=["Hanweb " + ("/col/col<id>/ URL" if column else "datastore/dataproxy in the page")])
        if column:
            found.params["column_id"] = column.group(1)
        for key, pattern in (("unit_id", r"unitid['\"]?\s*[:=]\s*['\"]?(\d+)"), ("web_id", r"webid['\"]?\s*[:=]\s*['\"]?(\d+)")):
            if value := _first(pattern, text):
                found.params[key] = value
        if "unit_id" not in found.params:
            found.missing.append("unit_id: the unitid of the page's dataproxy call (needed past the first 15 records)")
        return found
    if "classsql" in text and "searchId" in text:
        found = Detection("trs", evidence=["TRS search-API listing (classsql, searchId)"])
        for key, pattern in (("channel_id", r"chnlid=(\d+)"), ("search_channel", r"searchId\s*:\s*['\"]?(\d+)"),
                             ("page_size", r"prepage\s*:\s*['\"]?(\d+)")):
            if value := _first(pattern, text):
                found.params[key] = int(value) if key == "page_size" else value
        found.missing.append("search_api: the search API's path (not in the page; the browser's network tab)")
        return found
    links = _links(text)
    ucap_links = sum(bool(ucap.DETAIL.search(h)) for h in links)
    trs_links = sum(bool(trs.DETAIL.search(h)) and "/t" in h for h in links)
    if "<ucapcontent" in text or "<ucaptitle" in text or (ucap_links and ucap_links > trs_links):
        return Detection("ucap", evidence=[f"UCAP: {ucap_links} links to YYYYMM/<32 hex>.shtml details" if ucap_links
                                           else "UCAP markup (ucaptitle/ucapcontent)"])
    if trs_links:
        pager = "createPageHTML/countPage pager" if trs.PAGE_COUNT.search(text) else "no pager (one page)"
        return Detection("trs", evidence=[f"TRS WCM: {trs_links} links to YYYYMM/tYYYYMMDD_N details, {pager}"])
    return Detection("generic", evidence=["no known family: links whose title names a year, the usual pagination patterns"])
