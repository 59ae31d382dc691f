"""A detail (article) page: its title, agency and date, whether its body is the report itself, and its attachments.

Title, agency and date come from the page's metadata where it has one: TRS meta tags (ArticleTitle, PubDate,
ContentSource), the metadata table of UCAP and Hanweb pages (名称 / 发布机构 / 公开日期 / 分类), `<ucaptitle>`.
The body is the first known content container (TRS, UCAP, Hanweb, common layouts) or, failing those, the page's
largest block of text. Attachments: links to document files by extension, and links whose text says 附件 or 下载."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lxml import etree

from gongkai.crawler.adapters.links import join_link
from gongkai.crawler.adapters.tree import (
    STRING_CONTAINERS,
    Element,
    container_around,
    is_element,
    parse_html,
    text_pieces,
)
from gongkai.crawler.pictures import body_pictures

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
META_KEYS = frozenset(META_LABELS.values())
# a label cell is read only as far as its text can still be a label (whitespace and trailing colons aside): _label
LABEL_PREFIXES = frozenset(label[:end] for label in META_LABELS for end in range(1, len(label) + 1))
LABEL_STARTS = frozenset(label[0] for label in META_LABELS)
FIRST_VISIBLE = re.compile(r"\s*(\S)")
FIRST_TEXT_DEPTH = 4  # how deep _starts_with_no_label looks for a cell's first text
LABEL_END = "：:"
WHITESPACE = re.compile(r"\s+")
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
    # the pictures the body links, (src as written, URL): tables pasted as pictures (crawler/pictures.py); only
    # fetched with a page that is ingested, so not remembered for a 304
    pictures: list[tuple[str, str]] = field(default_factory=list)

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


# STRING_CONTAINERS: strings inside these are not the page's text (BeautifulSoup's string containers, which this
# module used to read pages through: its get_text skips them, and comments); Element: an lxml element
_is_element = is_element


# the innermost string container around a node (itself included), and the text pieces inside an element as they stand
# (unstripped, maybe empty, in document order, lazily; iterative): the listing pages' reading (adapters/tree.py)
_container = container_around
_raw_strings = text_pieces


def _strings(el: Element, kind: str | None = None) -> list[str]:
    """The stripped, non-empty text pieces of _raw_strings."""
    return [piece for text in _raw_strings(el, kind) if (piece := text.strip())]


def _plain_text(el: Element, separator: str) -> str:
    """No script or style in or around `el`: lxml's own walk (it skips comments' text, keeps their tails)."""
    return separator.join(piece for text in el.itertext() if (piece := text.strip()))


class PageText:
    """BeautifulSoup's `get_text(separator, strip=True)` (a string container's own text when it is one) for many
    elements of one tree: where the string containers sit is found once per page instead of
    per call (a walk up to the root and one down the subtree for each: the metadata table and the largest block
    ask for the text of every cell).

    It holds the proxies of the elements it indexes, so lxml hands back these same objects for those nodes
    (identity is what the sets compare)."""

    def __init__(self, root: Element, containers: Iterable[Element] | None = None) -> None:
        """`containers`: the tree's string containers in document order, when a walk already found them."""
        self.holds: set[Element] = set()  # elements with a string container strictly below them
        self.inside: set[Element] = set()  # elements with a string container strictly above them
        self.containers: set[Element] = set()
        for found in root.iter(*STRING_CONTAINERS) if containers is None else containers:
            self.containers.add(found)
            if found not in self.inside:  # (a container within another: the outer one indexed it)
                self.inside.update(found.iterdescendants())
                self.holds.update(found.iterancestors())

    def get(self, el: Element, separator: str = "") -> str:
        if el.tag in STRING_CONTAINERS:
            return separator.join(_strings(el, str(el.tag)))
        if el not in self.holds and el not in self.inside:
            return _plain_text(el, separator)
        return separator.join(_strings(el))

    def raw(self, el: Element) -> Iterator[str]:
        """The pieces `get` joins, unstripped and lazily: for a caller that reads only the start of the text."""
        if el.tag in STRING_CONTAINERS:
            return _raw_strings(el, str(el.tag))
        if el not in self.holds and el not in self.inside:
            return iter(el.itertext())
        return _raw_strings(el)


def _first(root: Element, xpath: str) -> Element | None:
    found = root.xpath(xpath)
    return found[0] if found else None


PAGE_METAS = ("ArticleTitle", "PubDate", "ContentSource")  # the TRS meta tags parse_detail reads


def _metas(root: Element, names: tuple[str, ...] = PAGE_METAS, metas: Iterable[Element] | None = None) -> dict[str, str | None]:
    """Each name's first <meta name=…>: its content, stripped, or None when empty. One walk for all the names.
    `metas`: the page's <meta> elements in document order, when a walk already found them (_page_elements)."""
    found: dict[str, str | None] = {}
    for tag in root.iter("meta") if metas is None else metas:
        name = tag.get("name")
        if name in names and name not in found:
            content = tag.get("content")
            found[name] = content.strip() if isinstance(content, str) and content.strip() else None
            if len(found) == len(names):
                break
    return found


LABEL_CELLS = ("td", "th", "dt", "span", "label", "b", "strong")
CHUNK = 64  # a long text piece is read this many characters at a time


def _label(pieces: Iterable[str]) -> str | None:
    """A cell's text without whitespace and trailing colons, or None as soon as it cannot be a label any more.

    Reading every cell's whole text to compare it with a label of two to four characters was quadratic on nested
    tables (a cell's text holds all the cells inside it) and most of a large page's reading. The text read so far, up
    to its last character that is not a colon, is the start of the label: once that is no label's start, no more text
    can make it one. Past that point only whitespace and colons are read, which a label may end in."""
    head, colon = "", ""  # the text up to its last character that is not a colon; whether a colon followed
    for piece in pieces:
        for start in range(0, len(piece), CHUNK):  # (a long piece: only its start is looked at)
            chunk = WHITESPACE.sub("", piece[start:start + CHUNK])
            core = chunk.rstrip(LABEL_END)
            if not core:
                colon = colon or chunk[:1]
                continue
            head += colon + core
            if head not in LABEL_PREFIXES:
                return None
            colon = chunk[len(core):len(core) + 1]
    return head


def _starts_with_no_label(cell: Element) -> bool:
    """Whether the cell's text surely starts with a character no label starts with, from the text of the cell or of its
    first descendants (a Word table's <td><p><span>0</span></p></td>), without a walk: most cells of a report page.
    Also true of a cell surely without text (<td><p>&nbsp;</p></td>: each of those descendants its parent's only
    child, nothing after it). False when unsure (no text there, a comment or a script first): the cell is then read."""
    node, depth = cell, FIRST_TEXT_DEPTH
    while depth:  # (this is read for every cell of a page: written for speed)
        own = node.text
        if own:
            first = own[0]
            if not first.isspace():  # (most cells: no regex needed)
                return first not in LABEL_STARTS
            if visible := FIRST_VISIBLE.match(own):
                return visible.group(1) not in LABEL_STARTS
        if not len(node):
            return _alone(cell, node)  # no text at all when nothing follows on the way down: "" is no label
        node = node[0]
        tag = node.tag
        if tag.__class__ is not str or tag in STRING_CONTAINERS:  # (a comment's tag is a function)
            return False
        depth -= 1
    return False


def _alone(cell: Element, last: Element) -> bool:
    """Whether no text or element follows on the way from `cell` down to `last` (each node its parent's first child):
    each its parent's only child, with no visible tail. Asked only of a cell whose first descendants hold no text."""
    node = cell
    while node is not last:
        if len(node) != 1:
            return False
        node = node[0]
        tail = node.tail
        if tail and FIRST_VISIBLE.match(tail):
            return False
    return True


def metadata_table(root: Element, page: PageText | None = None) -> dict[str, str]:
    """名称 / 发布机构 / 公开日期 / 分类 … of a metadata table: each label cell's next cell (labels may be split over
    <span>s and end in a colon)."""
    page = page or PageText(root)
    text_of = page.get
    found: dict[str, str] = {}
    no_label = _starts_with_no_label
    for cell in root.iter(*LABEL_CELLS):
        if no_label(cell):
            continue
        label = _label(page.raw(cell))
        key = META_LABELS.get(label) if label is not None else None
        if key is None or key in found:
            continue
        value = _first(cell, "following-sibling::*[self::td or self::dd or self::span][1]")
        if value is None:  # (an lxml element without children is false: never `or` between elements)
            value = _first(cell, "(descendant::td|descendant::dd|following::td|following::dd)[1]")
        text = text_of(value, " ") if value is not None else ""
        if text and text.rstrip("：:") not in META_LABELS:
            found[key] = text
            if len(found) == len(META_KEYS):
                break  # every field found: no later label can change them
    return found


def text_sizes(root: Element, page: PageText, blocks: set[Element] | frozenset[Element] = frozenset(),
               own: dict[Element, int] | None = None, elements: list[Element] | None = None,
               others: Iterable[Element] | None = None, every: bool = True) -> dict[Element, int]:
    """len(page.get(el)) of every element that is neither a string container nor inside one, in one walk from the
    leaves up: each piece of text is measured once, not once per block around it (the text of a table nested in a
    cell was read again for every cell around it). With `blocks` and `own`: each such block's size less its child
    blocks' sizes, into `own`. `elements`: every element of the tree in document order, when a walk already made
    the list (content_container's); `others`: the tree's comments, processing instructions and entities, when a walk
    already found them (largest_text_block's). `every`: False when only `own` is wanted (no other size is kept)."""
    sizes: dict[Element, int] = {}
    own = {} if own is None else own
    containers, skip = page.containers, page.containers | page.inside
    # each element's text and tail read once, its size added to its parent's as the walk meets it (children before
    # parents): iterating each element's children was most of the walk. `below`: per element, what its children and
    # their tails hold so far; `nested`: per block, its child blocks' sizes
    below: dict[Element, int] = {}
    nested: dict[Element, int] = {}
    take, add = below.pop, below.get
    for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity) if others is None else others:
        # a comment's own text is not its parent's text, its tail is (a comment is not measured)
        tail, parent = node.tail, node.getparent()
        if tail and parent is not None:
            below[parent] = add(parent, 0) + len(tail.strip())
    for el in reversed(list(root.iter(etree.Element)) if elements is None else elements):  # children before parents
        if skip and el in skip:
            # a string container's own text is not its parent's text, its tail is; what is inside one is not measured
            if el in containers and (tail := el.tail) and (parent := el.getparent()) is not None:
                below[parent] = add(parent, 0) + len(tail.strip())
            continue
        text = el.text
        size = (len(text.strip()) if text else 0) + take(el, 0)
        if every:
            sizes[el] = size
        if el in blocks:
            own[el] = size - nested.pop(el, 0)
            if (parent := el.getparent()) is not None:
                nested[parent] = nested.get(parent, 0) + size
        else:
            parent = el.getparent()
        if parent is not None:
            tail = el.tail
            below[parent] = add(parent, 0) + size + (len(tail.strip()) if tail else 0)
    return sizes


def largest_text_block(root: Element, page: PageText | None = None, elements: list[Element] | None = None) -> Element | None:
    """The block holding most text of its own (its paragraphs and tables, not its nested blocks): the body of a page
    whose CMS is unknown. Navigation and footers are many short blocks, each smaller than the article.

    A block's own text is its whole text (text_sizes) less its nested blocks', plus what text_sizes does not measure
    of its children: a comment's or a string container's own text (as get_text read them). Worked out in text_sizes'
    one walk from the leaves up, so no block's children are read a second time. `elements`: as for text_sizes."""
    page = page or PageText(root)
    in_order = list(root.iter(*BLOCKS))
    blocks = set(in_order)
    if not blocks:
        return None
    unmeasured: dict[Element, int] = {}  # per block: its comments' and string containers' own text
    others: list[Element] = []  # the comments, processing instructions and entities, for text_sizes
    for child in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity, *STRING_CONTAINERS):
        is_element = _is_element(child)
        if not is_element:
            others.append(child)
        parent = child.getparent()
        if parent in blocks:
            size = len(page.get(child)) if is_element else len((child.text or "").strip())
            unmeasured[parent] = unmeasured.get(parent, 0) + size
    own: dict[Element, int] = {}
    text_sizes(root, page, blocks, own, elements, others, every=False)
    best, best_size = None, 0
    for block in in_order:
        size = own[block] + unmeasured.get(block, 0) if block in own else _own_text(block, page)
        if size > best_size:
            best, best_size = block, size
    return best


def _own_text(block: Element, page: PageText) -> int:
    """A block inside a string container (text_sizes does not measure it): its children's text one by one."""
    own = len((block.text or "").strip())
    for child in block:
        if not _is_element(child):
            own += len((child.text or "").strip())  # a comment between the block's strings counts as one
        elif child.tag not in BLOCKS:
            own += len(page.get(child))
        own += len((child.tail or "").strip())
    return own


SELECTOR_CLASSES = {sel[1:]: i for i, sel in enumerate(CONTENT_SELECTORS) if sel.startswith(".")}
SELECTOR_IDS = {sel[1:]: i for i, sel in enumerate(CONTENT_SELECTORS) if sel.startswith("#")}
SELECTOR_TAGS = {sel: i for i, sel in enumerate(CONTENT_SELECTORS) if sel[0] not in ".#"}


def content_container(root: Element, walked: list[Element] | None = None, source: str | None = None,
                      firsts: dict[str, Element] | None = None) -> Element | None:
    """The first element the earliest CONTENT_SELECTORS entry (.class, #id or a tag name) selects, in document order.
    The tags are lxml's own walks (no tag name made into a string per element). The classes and ids (an XPath scan
    per selector took half a large page's reading): given `source` (the page's text), from libxml2's walks of the
    class and id attributes, the first TRS_Editor (the first selector: nothing can come before it) looked for alone
    when the text names one (a Python walk of every element, two attribute reads each, was a fifth of reading a page
    without a content container); without it, a Python walk of the elements up to the first TRS_Editor. Both give
    the same element.
    `walked`: appended, every element of the tree in document order when none is selected (the largest block's
    measuring then walks this list, not the tree again: making lxml's element objects anew was most of a walk).
    `firsts`: the first element of each selected tag, when a walk already found them (_page_elements)."""
    walked = [] if walked is None else walked
    first: dict[int, Element] = {}
    for tag, i in SELECTOR_TAGS.items():
        found = next(root.iter(tag), None) if firsts is None else firsts.get(tag)
        if found is not None:
            first[i] = found
    if source is None:
        _select_by_walk(root, first, walked)
    else:
        if FIRST_SELECTOR in source and (editor := _first_editor(root)) is not None:
            return editor  # the first selector: nothing can come before it
        _select_by_attributes(root, first)
        if not first:
            walked.extend(root.iter(etree.Element))
    return first[min(first)] if first else None


FIRST_SELECTOR = CONTENT_SELECTORS[0][1:]  # TRS_Editor
# every id and every class attribute of a tree, in document order (each value knows its element: getparent)
ID_ATTRIBUTES = "descendant-or-self::*/@id"
CLASS_ATTRIBUTES = "descendant-or-self::*/@class"
EDITOR_CLASSES = f"descendant-or-self::*/@class[contains(., '{FIRST_SELECTOR}')]"  # (a superset: checked by token)
_compiled = threading.local()  # per thread: an XPath object evaluates under a lock of its own


def _compiled_xpath(path: str) -> Any:
    """This thread's compiled `path` (compiled once; libxml2 evaluates it without holding the GIL)."""
    made: dict[str, Any] | None = getattr(_compiled, "made", None)
    if made is None:
        made = _compiled.made = {}
    found = made.get(path)
    if found is None:
        found = made[path] = etree.XPath(path)
    return found


def _select_by_walk(root: Element, first: dict[int, Element], walked: list[Element]) -> None:
    """Into `first`: per class or id selector, the first element it selects; walking the tree in Python, each element
    appended to `walked`, until the first selector is found."""
    passed = walked.append
    for el in root.iter(etree.Element):
        passed(el)
        id_hit, class_attr = SELECTOR_IDS.get(el.get("id")), el.get("class")
        if id_hit is None and not class_attr:
            continue  # most elements: nothing here to select
        if id_hit is not None:
            first.setdefault(id_hit, el)
        if class_attr:
            for token in class_attr.split():  # split as bs4 does
                if (i := SELECTOR_CLASSES.get(token)) is not None:
                    first.setdefault(i, el)
        if 0 in first:
            break  # the first selector found: nothing can come before it


def _first_editor(root: Element) -> Element | None:
    """The first element of class TRS_Editor, from the class attributes that contain the name (libxml2's walk)."""
    for value in _compiled_xpath(EDITOR_CLASSES)(root):
        if FIRST_SELECTOR in value.split():  # split as bs4 does
            element: Element = value.getparent()
            return element
    return None


def _select_by_attributes(root: Element, first: dict[int, Element]) -> None:
    """_select_by_walk's selections from the id and class attributes libxml2 lists (most elements have neither)."""
    for value in _compiled_xpath(ID_ATTRIBUTES)(root):
        if (i := SELECTOR_IDS.get(value)) is not None and i not in first:
            first[i] = value.getparent()
    for value in _compiled_xpath(CLASS_ATTRIBUTES)(root):
        for token in value.split():  # split as bs4 does
            if (i := SELECTOR_CLASSES.get(token)) is not None and i not in first:
                first[i] = value.getparent()


LINK_MEMORY = 2048  # the verdicts on this many hrefs are kept: a site's pages repeat its navigation's links
LONGEST_REMEMBERED_LINK = 300  # (a longer href is judged afresh: what is kept stays small)


def _judge_link(href: str) -> bool | None:
    """What a link's URL alone says: an attachment (True), not one (False), or up to its text (None)."""
    if href.startswith(("javascript:", "#", "mailto:")):
        return False
    if DOCUMENT_LINK.search(href):
        return True
    return False if PAGE_LINK.search(href.split("?")[0] or "/") else None


_judge_remembered = lru_cache(maxsize=LINK_MEMORY)(_judge_link)


def _link_verdict(href: str) -> bool | None:
    """_judge_link, remembered for short hrefs (the two regexes were most of reading a page's links)."""
    return _judge_remembered(href) if len(href) <= LONGEST_REMEMBERED_LINK else _judge_link(href)


def _attachment(href: str, text: Callable[[], str]) -> bool:
    """Whether a link is an attachment; its text (a walk of the link) read only when the URL does not decide."""
    verdict = _link_verdict(href)
    return bool(ATTACHMENT_TEXT.search(text())) if verdict is None else verdict


def _text_reaches(pieces: Iterable[str], size: int) -> bool:
    """Whether the stripped pieces hold `size` characters together: read only until they do."""
    for text in pieces:
        if size <= 0:
            return True
        size -= len(text.strip())
    return size <= 0


def _parse(text: str, utf8: bytes | None = None) -> Element | None:
    """The page's tree, read as BeautifulSoup(text, "lxml") read it (lxml's HTML parser, recovering), without the
    BeautifulSoup tree over it (ten times the CPU, as much again in memory: a crawl parses thousands of pages).
    Within libxml2's own limits (256 levels, 10 MB of text in a node), as last round's reading, which the tests
    keep as the reference; listing pages read past them (crawler/adapters/tree.parse_html). `utf8`: as parse_html's."""
    return parse_html(text, huge_tree=False, utf8=utf8)


# the elements parse_detail reads only the first of (besides the <meta>s): found in one walk of the tree (each
# walk for a tag a page lacks went through the whole tree)
FIRST_ONLY = ("ucaptitle", "title", *SELECTOR_TAGS)


def _page_elements(root: Element) -> tuple[dict[str, Element], list[Element], list[Element]]:
    """The first element of each FIRST_ONLY tag, every <meta> and every string container, in one walk."""
    firsts: dict[str, Element] = {}
    metas: list[Element] = []
    containers: list[Element] = []
    for el in root.iter("meta", *STRING_CONTAINERS, *FIRST_ONLY):
        tag = el.tag
        if tag == "meta":
            metas.append(el)
        elif tag in STRING_CONTAINERS:  # (no FIRST_ONLY tag is one)
            containers.append(el)
        elif tag not in firsts:
            firsts[tag] = el
    return firsts, metas, containers


def parse_detail(text: str, url: str, utf8: bytes | None = None) -> Detail:
    """The page's Detail. `utf8`: the bytes `text` was decoded from, when they are its UTF-8 (Response.text_and_utf8):
    parsed as they are, not the text encoded again."""
    root = _parse(text, utf8)
    if root is None:  # nothing a parser could read: no title, no body, no links
        return Detail(None, None, False)
    firsts, meta_elements, containers = _page_elements(root)
    page = PageText(root, containers)  # where scripts and styles sit, found once
    text_of = page.get
    # the content container first: the elements its walk passes are kept, so the walks after it (the metadata table's
    # cells, the largest block) find lxml's element objects made, not make them again
    walked: list[Element] = []  # (the whole tree when no container is found)
    body = content_container(root, walked, text, firsts)
    table = metadata_table(root, page)
    ucap_title, page_title = firsts.get("ucaptitle"), firsts.get("title")
    metas = _metas(root, PAGE_METAS, meta_elements)
    title = (metas.get("ArticleTitle") or table.get("title")
             or (text_of(ucap_title, " ") if ucap_title is not None else None)
             or (text_of(page_title).split("_")[0] if page_title is not None else None))
    published = metas.get("PubDate") or table.get("published")
    agency = metas.get("ContentSource") or table.get("agency")
    # the fallbacks only when no content container is found (the largest block costs a walk of every block's children)
    scope = body if body is not None else largest_text_block(root, page, walked)
    if scope is None:
        scope = next(root.iter("body"), root)
    is_report = next(scope.iterdescendants("table"), None) is not None or _text_reaches(page.raw(scope), MIN_REPORT_TEXT)
    attachments: list[tuple[str, str]] = []
    seen: set[str] = set()
    for a in root.iter("a"):
        raw = a.get("href")
        if raw is None:
            continue
        href = raw.strip()
        verdict = _link_verdict(href)
        link_text = None  # (read once: for the verdict, then as the attachment's text)
        if verdict is None:
            link_text = text_of(a, " ")
            verdict = ATTACHMENT_TEXT.search(link_text) is not None
        if not verdict:
            continue
        target = join_link(url, href)
        if target not in seen and target != url:
            seen.add(target)
            title_attr = a.get("title")
            if not (title_attr and title_attr.strip()) and link_text is None:
                link_text = text_of(a, " ")
            attachments.append((target, (title_attr if title_attr and title_attr.strip() else link_text or "").strip()))
    return Detail(title, published, is_report, attachments, agency, table.get("category"),
                  pictures=body_pictures(scope.iter("img"), url))
