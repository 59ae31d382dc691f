"""The listing adapters as they read pages through BeautifulSoup before crawler/adapters/tree.py (commit 9c0652f):
the reference tests/test_adapters_lxml.py compares the lxml reading with. Kept verbatim but for names and imports."""

from __future__ import annotations

import json
import math
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

from gongkai.crawler.adapters import Candidate, ListingPage, PageRequest, hanweb, trs, ucap
from gongkai.crawler.adapters.links import YEARISH, iso_date, join_link
from gongkai.crawler.adapters.paging import (
    NAV_TEXTS,
    NEXT_TEXTS,
    NUMBERED,
    PAGE_COUNT,
    PAGE_PARAMS,
    SERIES,
    _folder_and_file,
    _followable,
)
from gongkai.crawler.registry import Portal


def anchor_title(a: Tag) -> str:
    title = a.get("title")
    return (title if isinstance(title, str) and title.strip() else a.get_text(" ", strip=True)).strip()


def date_near(a: Tag) -> str | None:
    """The publication date printed next to a listing link: right after it (`<a>…</a> 2025-01-15<br>`), else in
    its row (same <li>/<dl>/<tr>, or a <div>/<p> holding no other link)."""
    after = []
    for sibling in a.next_siblings:
        if isinstance(sibling, Tag) and (sibling.name in ("a", "br", "li", "tr", "dl", "div", "p") or sibling.find("a")):
            break
        after.append(sibling.get_text(" ", strip=True) if isinstance(sibling, Tag) else str(sibling))
    if found := iso_date(" ".join(after)):
        return found
    for parent in a.parents:
        if parent.name in ("li", "dl", "tr", "div", "p"):
            if parent.name in ("div", "p") and len(parent.find_all("a", href=True)) > 1:
                return None  # a block of several links: another link's date is not this one's
            found = iso_date(parent.get_text(" ", strip=True))
            if found or parent.name in ("li", "dl", "tr"):
                return found
    return None


def candidates_from_anchors(soup: BeautifulSoup | Tag, base_url: str, href: re.Pattern[str] | None = None) -> list[Candidate]:
    """Listing items: links whose href matches `href` (or, without one, whose title names a year)."""
    seen: set[str] = set()
    out: list[Candidate] = []
    for a in soup.find_all("a", href=True):
        target = str(a["href"]).strip()
        if target.startswith(("javascript:", "#", "mailto:")):
            continue
        title = anchor_title(a)
        if href is not None and not href.search(target):
            continue
        if href is None and not (YEARISH.search(title) and len(title) >= 8):
            continue
        url = join_link(base_url, target)
        if url in seen:
            continue
        seen.add(url)
        out.append(Candidate(title, url, date_near(a)))
    return out


def _links(soup: BeautifulSoup | Tag, url: str) -> list[tuple[str, str]]:
    """(text, absolute URL) of the page's links; a link that does not parse (`http://[::1`) is no page of the listing
    (its item, if it is one, is refused by the fetcher with its reason)."""
    out = []
    for a in soup.find_all("a", href=True):
        href = str(a["href"]).strip()
        if href and not href.startswith(("javascript:", "#", "mailto:")):
            target = join_link(url, href)
            try:
                urlsplit(target)
            except ValueError:
                continue
            out.append((a.get_text(strip=True), target))
    return out


def next_page(soup: BeautifulSoup | Tag, text: str, url: str, request: PageRequest, next_text: str | None = None) -> PageRequest | None:
    """The listing's next page after `request` (read from `url`, the page as fetched), or None on the last page."""
    number = request.number + 1
    links = _links(soup, url)
    texts = (next_text,) if next_text else NEXT_TEXTS
    named = [a for a in soup.find_all("a", href=True) if a.get_text(strip=True) in texts]
    if named:  # a 下一页 link decides alone: javascript:void(0) or "#" on the last page means there is none
        target = join_link(url, str(named[0]["href"]).strip())
        return PageRequest(target, number=number) if _followable(target, url) else None
    folder, name = _folder_and_file(url)
    m = PAGE_COUNT.search(text)
    if m:
        count = int(m.group(1) or m.group(4))
        if request.number >= count:
            return None
        series = SERIES.match(name)
        stem = m.group(2) or (series.group("stem") if series else "index")
        ext = m.group(3) or (series.group("ext") if series else "html")
        return PageRequest(join_link(url, f"{stem}_{request.number}.{ext}"), number=number)
    ours, path = dict(parse_qsl(urlsplit(url).query)), urlsplit(url).path
    for param in PAGE_PARAMS:
        mine = ours.get(param, "")
        current = int(mine) if mine.isdigit() else 1
        # links to later pages of the same path (a pager may show only 尾页): the next is one more than ours
        later = [(int(v), target) for _text, target in links if urlsplit(target).path == path
                 and (v := dict(parse_qsl(urlsplit(target).query)).get(param, "")).isdigit() and int(v) > current]
        if later:
            _n, model = min(later)
            query = urlencode([(k, str(current + 1) if k == param else v) for k, v in parse_qsl(urlsplit(model).query)])
            target = urlunsplit(urlsplit(model)._replace(query=query))
            return PageRequest(target, number=number) if _followable(target, url) else None
    series = SERIES.match(name)
    if series:  # TRS numbers index.html, index_1, index_2 …; others list.html, list_2 …
        ours_n = int(series.group("n") or 0)
        later = sorted(
            int(o.group("n")) for _t, target in links
            if _folder_and_file(target)[0] == folder and (o := SERIES.match(_folder_and_file(target)[1])) is not None
            and o.group("stem") == series.group("stem") and o.group("n") and int(o.group("n")) > ours_n
        )
        if not later:
            return None
        if ours_n:
            n = ours_n + 1  # never the 尾页's number: the pages between are not skipped
        else:  # from the first page: _1 or _2, whichever the pager shows; only a 尾页: TRS's index_1, others' _2
            n = later[0] if later[0] <= 2 else 1 if series.group("stem").lower() == "index" else 2
        return PageRequest(join_link(url, f"{series.group('stem')}_{n}.{series.group('ext')}"), number=number)
    numbered = NUMBERED.match(name)
    if numbered:
        n = int(numbered.group("n"))
        later = [int(o.group("n")) for _t, target in links
                 if _folder_and_file(target)[0] == folder and (o := NUMBERED.match(_folder_and_file(target)[1])) is not None
                 and int(o.group("n")) > n]
        if later:
            return PageRequest(join_link(url, f"{n + 1}.{numbered.group('ext')}"), number=number)
    return None


def generic_parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    soup = BeautifulSoup(text, "lxml")
    next_text = portal.param("next_text")
    nxt = next_page(soup, text, url, request, next_text)
    pattern = portal.param("item_pattern")
    nav = (next_text, *NAV_TEXTS) if next_text else NAV_TEXTS
    for a in [a for a in soup.find_all("a", href=True) if a.get_text(strip=True) in nav]:
        a.extract()  # 首页/尾页 are never items
    found = candidates_from_anchors(soup, url, re.compile(pattern) if pattern else None)
    return ListingPage(found, [nxt] if nxt else [])


def trs_parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    if request.method == "POST":
        answer = json.loads(text)
        found = [
            Candidate(
                BeautifulSoup(str(r["doctitle"]), "html.parser").get_text().strip(),
                join_link(url, str(r.get("chnldocurl") or r.get("docpuburl"))),
                iso_date(str(r.get("docreltime", ""))),
            )
            for r in trs._records(answer)
        ]
        pages = int(answer.get("pager", {}).get("pageCount", request.number)) if isinstance(answer, dict) else 0
        nxt = [trs._search_request(portal, request, request.number + 1)] if request.number < pages and found else []
        return ListingPage(found, nxt)

    soup = BeautifulSoup(text, "lxml")
    found = candidates_from_anchors(soup, url, trs.DETAIL)
    if portal.param("search_api"):
        records = trs.RECORD_COUNT.search(text)
        per_page = trs.PER_PAGE.search(text)
        size = int(per_page.group(1)) if per_page else int(portal.param("page_size", 10))
        pages = math.ceil(int(records.group(1)) / size) if records else 1
        return ListingPage(found, [trs._search_request(portal, request, 2)] if pages > 1 else [])
    m = trs.PAGE_COUNT.search(text)
    pages = int(m.group(1) or m.group(2)) if m else 1
    if request.number < pages:
        # beside the page just read, not portal.listing[0]: a portal may have several listings
        return ListingPage(found, [PageRequest(trs._static_page(request.number + 1, request.url), number=request.number + 1)])
    return ListingPage(found, [])


def ucap_parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    soup = BeautifulSoup(text, "lxml")
    found = candidates_from_anchors(soup, url, ucap.DETAIL)
    m = ucap.PAGER.search(text)
    if m is None or request.number >= int(m.group(1)):
        return ListingPage(found, [])
    nxt = ucap.page_url(request, request.number + 1, m.group(2), m.group(3), int(portal.param("page_offset", 1)))
    return ListingPage(found, [PageRequest(nxt, number=request.number + 1)])


def detect_links(text: str) -> list[str]:
    return [str(a["href"]) for a in BeautifulSoup(text, "lxml").find_all("a", href=True)]


def hanweb_records(text: str, base_url: str) -> list[Candidate]:
    out = []
    for fragment in hanweb.RECORD.findall(text):
        soup = BeautifulSoup(fragment, "html.parser")
        a = soup.find("a", href=True)
        if a is None:
            continue
        out.append(Candidate(anchor_title(a), join_link(base_url, str(a["href"])), iso_date(soup.get_text(" "))))
    return out


def hanweb_parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    found = hanweb_records(text, url)
    m = hanweb.TOTAL.search(text)
    total = int(m.group(1)) if m else len(found)
    group = int(portal.param("group", 45))
    start = 1 if request.method == "GET" else request.record + group
    if request.method == "GET" and total <= len(found):
        return ListingPage(found, [])
    return ListingPage(found, [hanweb._group_request(portal, request, start, total)] if start <= total else [])
