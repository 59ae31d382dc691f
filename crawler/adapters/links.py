"""Link and date helpers shared by the adapters."""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urljoin

from gongkai.crawler.adapters import Candidate
from gongkai.crawler.adapters.tree import NO_ELEMENTS, Element, extracted, get_text, is_element, links, string_text

DATE = re.compile(r"((?:19|20)\d{2})[-/.年](\d{1,2})[-/.月](\d{1,2})")
YEARISH = re.compile(r"(?:19|20)\d{2}|[〇零一二三四五六七八九]{4}|[０-９]{4}")


# the dates listings print, one string per date: a listing's items share a few dates, and each queued item of a crawl
# carried a copy of its own (~60 bytes, some 5,000 items at once at 1,000 hosts); emptied when full
_DATES: dict[str, str] = {}
MAX_DATES = 4096


def iso_date(text: str) -> str | None:
    m = DATE.search(text or "")
    if not m:
        return None
    date = f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    if len(_DATES) >= MAX_DATES:  # (threads: a clear racing a put loses some sharing, never a date)
        _DATES.clear()
    return _DATES.setdefault(date, date)


ROW_TAGS = frozenset({"li", "dl", "tr"})
BLOCK_TAGS = frozenset({"div", "p"})
# a sibling that ends the text after a link: the next item or line (or a tag holding a link)
ITEM_ENDS = frozenset({"a", "br", "li", "tr", "dl", "div", "p"})


def anchor_title(a: Element, removed: Collection[Element] = NO_ELEMENTS) -> str:
    title = a.get("title")
    return (title if isinstance(title, str) and title.strip() else get_text(a, " ", removed)).strip()


def _text_after(a: Element, removed: Collection[Element]) -> str:
    """The strings after the link up to the next item or line (its tail, then its siblings' text and tails)."""
    after = [a.tail] if a.tail else []
    for sibling in a.itersiblings():
        if removed and sibling in removed:
            pass  # extracted: gone, its tail (a string of its own) stays
        elif not is_element(sibling):
            after.append(string_text(sibling))
        elif sibling.tag in ITEM_ENDS or any(not extracted(x, removed) for x in sibling.iterdescendants("a")):
            break
        else:
            after.append(get_text(sibling, " ", removed))
        if sibling.tail:
            after.append(sibling.tail)
    return " ".join(after)


def _several_links(block: Element, removed: Collection[Element]) -> bool:
    """Whether the block holds more than one link (counted only up to two: a page's wrapper holds them all)."""
    count = 0
    for a in block.iter("a"):
        if a.get("href") is not None and not extracted(a, removed):
            count += 1
            if count > 1:
                return True
    return False


def date_near(a: Element, removed: Collection[Element] = NO_ELEMENTS) -> str | None:
    """The publication date printed next to a listing link: right after it (`<a>…</a> 2025-01-15<br>`), else in
    its row (same <li>/<dl>/<tr>, or a <div>/<p> holding no other link)."""
    if found := iso_date(_text_after(a, removed)):
        return found
    for parent in a.iterancestors():
        name = parent.tag
        if name in BLOCK_TAGS:
            if _several_links(parent, removed):
                return None  # a block of several links: another link's date is not this one's
        elif name not in ROW_TAGS:
            continue
        found = iso_date(get_text(parent, " ", removed))
        if found or name in ROW_TAGS:
            return found
    return None


def join_link(base_url: str, href: str) -> str:
    """An href made absolute. One that cannot be joined (`http://[::1`) is kept as written: the fetcher refuses
    it with its reason for that item alone, where a ValueError here would fail the whole listing."""
    try:
        return urljoin(base_url, href)
    except ValueError:
        return href


def candidates_from_anchors(root: Element | None, base_url: str, href: re.Pattern[str] | None = None,
                            removed: Collection[Element] = NO_ELEMENTS) -> list[Candidate]:
    """Listing items: links whose href matches `href` (or, without one, whose title names a year). `root`: the page's
    tree (tree.parse_html); `removed`: links taken out of it (with what they hold), as BeautifulSoup's extract() did."""
    seen: set[str] = set()
    out: list[Candidate] = []
    for a in links(root, removed):
        target = str(a.get("href")).strip()
        if target.startswith(("javascript:", "#", "mailto:")):
            continue
        if href is not None and not href.search(target):
            continue  # (before the title: a link the pattern refuses is never read)
        title = anchor_title(a, removed)
        if href is None and not (YEARISH.search(title) and len(title) >= 8):
            continue
        url = join_link(base_url, target)
        if url in seen:
            continue
        seen.add(url)
        out.append(Candidate(title, url, date_near(a, removed)))
    return out
