"""TRS WCM: index.html, index_1.html, … with the page count in createPageHTML(n, …) / countPage;
detail pages ./YYYYMM/tYYYYMMDD_ID.htm(l). The search-API variant (params `search_api`, `channel_id`,
`search_channel`, `page_size`) serves pages after the static first page from a POST search API."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup

from gongkai.crawler.adapters import Candidate, ListingPage, PageRequest, json_answer
from gongkai.crawler.adapters.links import candidates_from_anchors, iso_date, join_link
from gongkai.crawler.adapters.tree import parse_html
from gongkai.crawler.registry import Portal

DETAIL = re.compile(r"(?:^|/)\d{6}/t\d{8}_\d+\.s?html?$|\.(?:pdf|docx?|wps)$", re.I)
PAGE_COUNT = re.compile(r"createPageHTML\(\s*['\"]?(\d+)|countPage\s*=\s*['\"]?(\d+)")
RECORD_COUNT = re.compile(r"recordCount\s*:\s*['\"]?(\d+)")
PER_PAGE = re.compile(r"prepage\s*:\s*['\"]?(\d+)")


def _static_page(n: int, first_url: str) -> str:
    # index.html is page 1; page n is index_{n-1}.html beside it
    return urljoin(first_url, "index.html" if n == 1 else f"index_{n - 1}.html")


def _search_request(portal: Portal, request: PageRequest, number: int) -> PageRequest:
    """Page `number` of the search API; `request` is the listing's first page or an earlier search-API page."""
    data = {
        "channelid": str(portal.param("search_channel", "")),
        "classsql": f"chnlid={portal.param('channel_id', '')}",
        "sortfield": "-docorderpri,-docreltime",
        "page": str(number),
        "prepage": str(portal.param("page_size", 10)),
    }
    api = request.url if request.method == "POST" else urljoin(request.url, portal.param("search_api"))
    return PageRequest(api, "POST", data, number)


def _records(obj: Any) -> list[dict[str, Any]]:
    """Documents of a TRS search answer, wherever the list sits in the JSON."""
    if isinstance(obj, list):
        if obj and all(isinstance(x, dict) and "doctitle" in x for x in obj):
            return obj
        return [r for x in obj for r in _records(x)]
    if isinstance(obj, dict):
        return [r for v in obj.values() for r in _records(v)]
    return []


def markup_text(title: str) -> str:
    """A search record's title as text: BeautifulSoup's html.parser reading (highlight tags, entities), which a title
    with neither markup nor an entity (most of them) does not need."""
    if "<" not in title and "&" not in title:
        return title.strip()
    return BeautifulSoup(title, "html.parser").get_text().strip()


def parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    if request.method == "POST":
        answer = json_answer.load(text)
        found = [
            Candidate(
                markup_text(str(r["doctitle"])),
                join_link(url, str(r.get("chnldocurl") or r.get("docpuburl"))),
                iso_date(str(r.get("docreltime", ""))),
            )
            for r in _records(answer)
        ]
        pages = int(answer.get("pager", {}).get("pageCount", request.number)) if isinstance(answer, dict) else 0
        nxt = [_search_request(portal, request, request.number + 1)] if request.number < pages and found else []
        return ListingPage(found, nxt)

    found = candidates_from_anchors(parse_html(text), url, DETAIL)
    if portal.param("search_api"):
        records = RECORD_COUNT.search(text)
        per_page = PER_PAGE.search(text)
        size = int(per_page.group(1)) if per_page else int(portal.param("page_size", 10))
        pages = math.ceil(int(records.group(1)) / size) if records else 1
        return ListingPage(found, [_search_request(portal, request, 2)] if pages > 1 else [])
    m = PAGE_COUNT.search(text)
    pages = int(m.group(1) or m.group(2)) if m else 1
    if request.number < pages:
        # beside the page just read, not portal.listing[0]: a portal may have several listings
        return ListingPage(found, [PageRequest(_static_page(request.number + 1, request.url), number=request.number + 1)])
    return ListingPage(found, [])
