"""Link and date helpers shared by the adapters."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

from gongkai.crawler.adapters import Candidate

DATE = re.compile(r"((?:19|20)\d{2})[-/.年](\d{1,2})[-/.月](\d{1,2})")
YEARISH = re.compile(r"(?:19|20)\d{2}|[〇零一二三四五六七八九]{4}|[０-９]{4}")


def iso_date(text: str) -> str | None:
    m = DATE.search(text or "")
    return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else None


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


def join_link(base_url: str, href: str) -> str:
    """An href made absolute. One that cannot be joined (`http://[::1`) is kept as written: the fetcher refuses
    it with its reason for that item alone, where a ValueError here would fail the whole listing."""
    try:
        return urljoin(base_url, href)
    except ValueError:
        return href


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
