"""Generic CMS: a listing paged by 下一页 / 尾页 links; items are the links whose title names a year.
Params: `item_pattern` (regex an item href must match), `next_text` (default 下一页)."""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urlsplit

from bs4 import BeautifulSoup

from gongkai.crawler.adapters import ListingPage, PageRequest
from gongkai.crawler.adapters.links import candidates_from_anchors, join_link
from gongkai.crawler.registry import Portal


def parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    soup = BeautifulSoup(text, "lxml")
    pattern = portal.param("item_pattern")
    next_text = portal.param("next_text", "下一页")
    nav = {a for a in soup.find_all("a", href=True) if a.get_text(strip=True) in (next_text, "尾页", "末页", "上一页", "首页")}
    for a in nav:
        a.extract()
    found = candidates_from_anchors(soup, url, re.compile(pattern) if pattern else None)
    nxt = [a for a in nav if a.get_text(strip=True) == next_text]
    if nxt:
        target = join_link(url, str(nxt[0]["href"]))
        # the last page's 下一页 is often javascript:void(0) or "#": no next page, not a request to refuse
        try:
            follow = urlsplit(target).scheme in ("http", "https") and urldefrag(target).url != urldefrag(url).url
        except ValueError:  # a malformed next link: this listing ends here, its items are kept
            follow = False
        if follow:
            return ListingPage(found, [PageRequest(target, number=request.number + 1)])
    return ListingPage(found, [])
