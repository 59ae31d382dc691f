"""Generic CMS: any listing whose report links are plain anchors, crawled without a family.

Items: with `item_pattern`, the links whose URL matches it; otherwise the links whose title names a year (the
walk's title classifier then accepts the reports and rejects, with its reason, the rest). Pagination: the usual
patterns (crawler.adapters.paging: 下一页/尾页, createPageHTML/countPage, page=N/cur_page=N, index_N, a page
number as the file name). Params: `item_pattern`, `next_text` (the next link's text when it is not 下一页 & co)."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from gongkai.crawler.adapters import ListingPage, PageRequest
from gongkai.crawler.adapters.links import candidates_from_anchors
from gongkai.crawler.adapters.paging import NAV_TEXTS, next_page
from gongkai.crawler.registry import Portal


def parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    soup = BeautifulSoup(text, "lxml")
    next_text = portal.param("next_text")
    nxt = next_page(soup, text, url, request, next_text)
    pattern = portal.param("item_pattern")
    nav = (next_text, *NAV_TEXTS) if next_text else NAV_TEXTS
    for a in [a for a in soup.find_all("a", href=True) if a.get_text(strip=True) in nav]:
        a.extract()  # 首页/尾页 are never items
    found = candidates_from_anchors(soup, url, re.compile(pattern) if pattern else None)
    return ListingPage(found, [nxt] if nxt else [])
