"""Generic CMS: any listing whose report links are plain anchors, crawled without a family.

Items: with `item_pattern`, the links whose URL matches it; otherwise the links whose title names a year (the
walk's title classifier then accepts the reports and rejects, with its reason, the rest). Pagination: the usual
patterns (crawler.adapters.paging: 下一页/尾页, createPageHTML/countPage, page=N/cur_page=N, index_N, a page
number as the file name). Params: `item_pattern`, `next_text` (the next link's text when it is not 下一页 & co)."""

from __future__ import annotations

import re

from gongkai.crawler.adapters import ListingPage, PageRequest
from gongkai.crawler.adapters.links import candidates_from_anchors
from gongkai.crawler.adapters.paging import NAV_TEXTS, link_texts, next_page
from gongkai.crawler.adapters.tree import links, parse_html
from gongkai.crawler.registry import Portal


def parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    root = parse_html(text)
    anchors = link_texts(links(root))
    next_text = portal.param("next_text")
    nxt = next_page(root, text, url, request, next_text, anchors=anchors)
    pattern = portal.param("item_pattern")
    nav = (next_text, *NAV_TEXTS) if next_text else NAV_TEXTS
    # 首页/尾页 are never items: taken out of the page (with what they hold; the text after them stays)
    removed = {a for a, a_text in anchors if a_text in nav}
    found = candidates_from_anchors(root, url, re.compile(pattern) if pattern else None, removed)
    return ListingPage(found, [nxt] if nxt else [])
