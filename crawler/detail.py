"""A detail (article) page: its title, agency and date, whether its body is the report itself, and its attachments.

Title, agency and date come from the page's metadata where it has one: TRS meta tags (ArticleTitle, PubDate,
ContentSource), the metadata table of UCAP and Hanweb pages (名称 / 发布机构 / 公开日期 / 分类), `<ucaptitle>`.
The body is the first known content container (TRS, UCAP, Hanweb, common layouts) or, failing those, the page's
largest block of text. Attachments: links to document files by extension, and links whose text says 附件 or 下载."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bs4 import BeautifulSoup, Tag

from gongkai.crawler.adapters.links import anchor_title, join_link

DOCUMENT_LINK = re.compile(r"\.(?:pdf|docx?|wps|txt|xlsx?|ofd|rtf|odt)(?:$|\?)|downfile\.jsp|/download\b|/attachment/", re.I)
DOCUMENT_PATH = re.compile(r"\.(?:pdf|docx?|wps|txt|xlsx?|ofd|rtf|odt)$|downfile\.jsp", re.I)
# a link whose text says it is the attachment, to a URL that is not another page or a folder
ATTACHMENT_TEXT = re.compile(r"附件|下载|附：")
PAGE_LINK = re.compile(r"(?:\.s?html?|/)$", re.I)
# where the article body sits, per CMS family: TRS, UCAP, Hanweb, gkmlpt, and common generic layouts
CONTENT_SELECTORS = (".TRS_Editor", ".trs_editor_view", "ucapcontent", "#zoom", "#Zoom", ".bt_content", ".article-content",
                     ".article_content", ".article", "#content", ".content", "article")
# metadata tables (UCAP, Hanweb, gkmlpt): label → field
META_LABELS = {"名称": "title", "标题": "title", "发布机构": "agency", "发文机关": "agency", "公开日期": "published",
               "发布日期": "published", "成文日期": "written", "分类": "category", "组配分类": "category", "主题分类": "category"}
BLOCKS = ("div", "td", "article", "section", "main")
MIN_REPORT_TEXT = 300  # a notice that only points at an attachment is shorter than this


@dataclass
class Detail:
    title: str | None
    published: str | None
    body_is_report: bool
    attachments: list[tuple[str, str]] = field(default_factory=list)  # (url, link text)
    agency: str | None = None  # 发布机构 / ContentSource, when the page names it
    category: str | None = None  # 分类 of the metadata table (信息公开年报)

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "published": self.published, "body_is_report": self.body_is_report,
                "attachments": [list(a) for a in self.attachments], "agency": self.agency, "category": self.category}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Detail:
        attachments = [(str(url), str(text)) for url, text in d.get("attachments") or []]
        return cls(d.get("title"), d.get("published"), bool(d.get("body_is_report")), attachments, d.get("agency"),
                   d.get("category"))


def looks_like_document(url: str) -> bool:
    """A listing item that is itself a file rather than an article page."""
    return bool(DOCUMENT_PATH.search(url.split("?")[0]) or "downfile.jsp" in url)


def _meta(soup: BeautifulSoup, name: str) -> str | None:
    tag = soup.find("meta", attrs={"name": name})
    content = tag.get("content") if tag else None
    return content.strip() if isinstance(content, str) and content.strip() else None


def metadata_table(soup: BeautifulSoup) -> dict[str, str]:
    """名称 / 发布机构 / 公开日期 / 分类 … of a metadata table: each label cell's next cell (labels may be split over
    <span>s and end in a colon)."""
    found: dict[str, str] = {}
    for cell in soup.find_all(["td", "th", "dt", "span", "label", "b", "strong"]):
        label = re.sub(r"\s+", "", cell.get_text("", strip=True)).rstrip("：:")
        key = META_LABELS.get(label)
        if key is None or key in found:
            continue
        value = cell.find_next_sibling(["td", "dd", "span"]) or cell.find_next(["td", "dd"])
        text = value.get_text(" ", strip=True) if value is not None else ""
        if text and text.rstrip("：:") not in META_LABELS:
            found[key] = text
    return found


def largest_text_block(soup: BeautifulSoup) -> Tag | None:
    """The block holding most text of its own (its paragraphs and tables, not its nested blocks): the body of a page
    whose CMS is unknown. Navigation and footers are many short blocks, each smaller than the article."""
    best, best_size = None, 0
    for block in soup.find_all(BLOCKS):
        own = sum(len(child.get_text("", strip=True)) if isinstance(child, Tag) else len(str(child).strip())
                  for child in block.children if not (isinstance(child, Tag) and child.name in BLOCKS))
        if own > best_size:
            best, best_size = block, own
    return best


def _attachment(href: str, text: str) -> bool:
    if href.startswith(("javascript:", "#", "mailto:")):
        return False
    if DOCUMENT_LINK.search(href):
        return True
    return bool(ATTACHMENT_TEXT.search(text)) and not PAGE_LINK.search(href.split("?")[0] or "/")


def parse_detail(text: str, url: str) -> Detail:
    soup = BeautifulSoup(text, "lxml")
    table = metadata_table(soup)
    ucap_title = soup.find("ucaptitle")
    title = (_meta(soup, "ArticleTitle") or table.get("title")
             or (ucap_title.get_text(" ", strip=True) if ucap_title is not None else None)
             or (soup.title.get_text(strip=True).split("_")[0] if soup.title else None))
    published = _meta(soup, "PubDate") or table.get("published")
    agency = _meta(soup, "ContentSource") or table.get("agency")
    body = next((found for sel in CONTENT_SELECTORS if (found := soup.select_one(sel)) is not None), None)
    scope = body if body is not None else largest_text_block(soup) or soup.body or soup
    body_text = scope.get_text("", strip=True)
    is_report = scope.find("table") is not None or len(body_text) >= MIN_REPORT_TEXT
    attachments: list[tuple[str, str]] = []
    seen: set[str] = set()
    for a in soup.find_all("a", href=True):
        href = str(a["href"]).strip()
        if not _attachment(href, a.get_text(" ", strip=True)):
            continue
        target = join_link(url, href)
        if target not in seen and target != url:
            seen.add(target)
            attachments.append((target, anchor_title(a)))
    return Detail(title, published, is_report, attachments, agency, table.get("category"))
