"""The pictures a report page links in its body (`<img src="/images/2023/table1.png">`): tables pasted as pictures.

A detail page whose body is the report may carry its tables as pictures on the same host rather than inline
`data:` URIs. They are fetched with the page through the same Fetcher (host allow-list, robots.txt, politeness,
size cap), bounded per page, kept only when the bytes are a picture, and handed to ingest keyed by the `src` as
written in the page: the HTML reader reads them as it reads inline pictures. A picture not fetched (another host,
over the cap, a failed download, not a picture) is left out, and the reader names it in a warning."""

from __future__ import annotations

import io
import logging
from collections.abc import Generator, Iterable
from typing import Any

from gongkai.crawler.adapters.links import join_link
from gongkai.crawler.fetcher import FetchError, Refused, Response
from gongkai.extractors.html_reader import TINY_PICTURE_PX, declared_tiny
from gongkai.extractors.sniff import is_picture

log = logging.getLogger(__name__)

MAX_PAGE_PICTURES = 20  # a report has three tables; a page linking more pictures than this is not read past them
# the pictures of one page are held until the page is ingested: their bytes together are bounded (each one is by the
# Fetcher's size cap); a table at 300 dpi is a few hundred KB as PNG
MAX_PAGE_PICTURE_BYTES = 60 * 1024 * 1024


def body_pictures(imgs: Iterable[Any], page_url: str) -> list[tuple[str, str]]:
    """(src as written, URL resolved against the page) of the linked pictures among a page body's `<img>` elements,
    once each, in body order; inline `data:` pictures (already in the page) and declared icons are left out."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for img in imgs:
        src = str(img.get("src") or "").strip()
        if not src or src in seen or src.lower().startswith(("data:", "javascript:")) or declared_tiny(img):
            continue
        seen.add(src)
        found.append((src, join_link(page_url, src)))
    return found


def too_small(data: bytes) -> bool:
    """Decoded smaller than TINY_PICTURE_PX on a side (an icon, a spacer); a header Pillow cannot read is not small."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False
    return width < TINY_PICTURE_PX or height < TINY_PICTURE_PX


def picture_steps(pictures: list[tuple[str, str]]) -> Generator[Any, Any, dict[str, bytes | None]]:
    """Fetch a page's linked pictures (each a Fetch step): src → bytes, None for an icon skipped by its size. The
    first MAX_PAGE_PICTURES only; a refusal, failure or non-picture is logged and left out (the reader warns)."""
    from gongkai.crawler.crawl import Fetch  # crawl.py imports this module

    got: dict[str, bytes | None] = {}
    held = 0
    for src, url in pictures[:MAX_PAGE_PICTURES]:
        if held >= MAX_PAGE_PICTURE_BYTES:
            log.info("picture %s not fetched: the page's pictures already hold %d bytes", url, held)
            break
        try:
            resp: Response = yield Fetch(url, parses=False)
        except FetchError as exc:
            log.info("picture %s not fetched (%s): %s", url, "refused" if isinstance(exc, Refused) else "failed", exc.reason)
            continue
        if not is_picture(resp.content):
            log.info("picture %s not read: %s is not a picture", url, resp.headers.get("content-type") or "its content")
            continue
        got[src] = None if too_small(resp.content) else resp.content
        held += len(got[src] or b"")
    if len(pictures) > MAX_PAGE_PICTURES:
        log.info("%d linked pictures of a page not fetched: over the cap of %d", len(pictures) - MAX_PAGE_PICTURES,
                 MAX_PAGE_PICTURES)
    return got
