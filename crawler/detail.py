"""A detail (article) page: its title, whether its body is the report itself, and its attachments."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bs4 import BeautifulSoup

from gongkai.crawler.adapters.links import anchor_title, join_link

DOCUMENT_LINK = re.compile(r"\.(?:pdf|docx?|wps|txt)(?:$|\?)|downfile\.jsp|/download\b", re.I)
DOCUMENT_PATH = re.compile(r"\.(?:pdf|docx?|wps|txt)$|downfile\.jsp", re.I)
# where the article body sits, per CMS family: TRS, Hanweb, and common generic layouts
CONTENT_SELECTORS = (".TRS_Editor", "#zoom", "#Zoom", ".bt_content", ".article-content", ".article", "#content", "article")
MIN_REPORT_TEXT = 300  # a notice that only points at an attachment is shorter than this


@dataclass
class Detail:
    title: str | None
    published: str | None
    body_is_report: bool
    attachments: list[tuple[str, str]] = field(default_factory=list)  # (url, link text)

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "published": self.published, "body_is_report": self.body_is_report,
                "attachments": [list(a) for a in self.attachments]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Detail:
        attachments = [(str(url), str(text)) for url, text in d.get("attachments") or []]
        return cls(d.get("title"), d.get("published"), bool(d.get("body_is_report")), attachments)


def looks_like_document(url: str) -> bool:
    """A listing item that is itself a file rather than an article page."""
    return bool(DOCUMENT_PATH.search(url.split("?")[0]) or "downfile.jsp" in url)


def _meta(soup: BeautifulSoup, name: str) -> str | None:
    tag = soup.find("meta", attrs={"name": name})
    content = tag.get("content") if tag else None
    return content.strip() if isinstance(content, str) and content.strip() else None


def parse_detail(text: str, url: str) -> Detail:
    soup = BeautifulSoup(text, "lxml")
    title = _meta(soup, "ArticleTitle") or (soup.title.get_text(strip=True).split("_")[0] if soup.title else None)
    published = _meta(soup, "PubDate")
    body = next((found for sel in CONTENT_SELECTORS if (found := soup.select_one(sel)) is not None), None)
    scope = body if body is not None else soup.body or soup
    body_text = scope.get_text("", strip=True)
    is_report = scope.find("table") is not None or len(body_text) >= MIN_REPORT_TEXT
    attachments: list[tuple[str, str]] = []
    seen: set[str] = set()
    for a in soup.find_all("a", href=True):
        href = str(a["href"]).strip()
        if not DOCUMENT_LINK.search(href) or href.startswith("javascript:"):
            continue
        target = join_link(url, href)
        if target not in seen:
            seen.add(target)
            attachments.append((target, anchor_title(a)))
    return Detail(title, published, is_report, attachments)
