"""One adapter per CMS family. An adapter turns a listing page into candidates and the next page(s).

Adapters are pure: text in, records out. The fetching is done by the caller (crawler.crawl).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gongkai.crawler.registry import Portal


@dataclass(frozen=True, slots=True)
class Candidate:
    """One item of a listing: a detail page or a document, with its listing title."""

    title: str
    url: str
    published: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PageRequest:
    url: str
    method: str = "GET"
    data: dict[str, str] | None = field(default=None, hash=False)
    number: int = 1  # 1 = the column's first page
    record: int = 0  # first record asked for, by APIs that page by record (Hanweb)

    @property
    def is_first(self) -> bool:
        return self.number == 1 and self.method == "GET"


@dataclass
class ListingPage:
    candidates: list[Candidate]
    next: list[PageRequest]


Parser = Callable[[Portal, PageRequest, str, str], ListingPage]


def parser_for(cms: str) -> Parser:
    from gongkai.crawler.adapters import generic, gkmlpt, hanweb, trs, ucap

    return {"trs": trs.parse_listing, "hanweb": hanweb.parse_listing, "ucap": ucap.parse_listing, "gkmlpt": gkmlpt.parse_listing,
            "generic": generic.parse_listing}[cms]


def first_requests(portal: Portal) -> list[PageRequest]:
    return [PageRequest(url) for url in portal.listing]
