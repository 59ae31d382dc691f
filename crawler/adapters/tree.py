"""A listing page's tree, read from lxml directly as the adapters read it through BeautifulSoup(text, "lxml").

BeautifulSoup over lxml builds a second tree of Python objects on top of lxml's parse: ten times the CPU of the
parse alone, for adapters that only look at the page's links and the text around them. Here the same reading from
lxml's tree: the same elements (BeautifulSoup's lxml builder is driven by the same libxml2 parse), and the text as
BeautifulSoup's `get_text` gives it (comments and the text of script/style/template/rt/rp are not a tag's text).
tests/test_adapters_lxml.py compares every adapter with the BeautifulSoup reading it replaced, on every saved page.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from typing import Any

from lxml import etree

Element = Any  # an lxml element; lxml ships no type stubs here
# BeautifulSoup's string containers: strings inside them are not their ancestors' text (get_text skips them)
STRING_CONTAINERS = frozenset({"script", "style", "template", "rt", "rp"})
NO_ELEMENTS: frozenset[Element] = frozenset()
LIBXML_MAX_TEXT = 10_000_000  # bytes: libxml2's longest text node or attribute without huge_tree (XML_MAX_TEXT_LENGTH)


_parsers = threading.local()  # per thread: lxml locks a parser while it parses, a shared one would serialise threads


def _whole_page_parser(huge_tree: bool) -> Any:
    """This thread's parser of whole pages (made once: a new one per page cost ~2 us, a twentieth of a small page)."""
    made: dict[bool, Any] | None = getattr(_parsers, "made", None)
    if made is None:
        made = _parsers.made = {}
    if huge_tree not in made:
        made[huge_tree] = etree.HTMLParser(recover=True, encoding="utf-8", huge_tree=huge_tree)
    return made[huge_tree]


def parse_html(text: str, *, huge_tree: bool = True, utf8: bytes | None = None) -> Element | None:
    """The page's root element, parsed as BeautifulSoup(text, "lxml") parses it (a leading BOM dropped, the text fed
    whole to a recovering HTML parser, UTF-8 bytes when lxml refuses the text), or None when nothing could be read.
    The page is handed to libxml2 in one call, which gives the fed parser's tree (below the 10 MB limit) without
    holding the GIL; fed only when that call reads nothing or the limit is in reach.

    huge_tree: BeautifulSoup builds its tree from libxml2's parse events, past the limits libxml2's own tree building
    keeps without it (256 levels of nesting, which a page of unclosed tags reaches, and 10 MB of text in one node):
    the rest of such a page was read, and is. Where it still differs (nesting deeper than 2,048, where libxml2 stops;
    an attribute value over 10 MB, which it kept out of BeautifulSoup's tree and keeps in this one) is a page no
    listing is; the fetcher's size cap bounds what a page can hold.

    utf8: `text` encoded as UTF-8, when the caller holds it (the bytes the text was decoded from): taken as they are."""
    if text.startswith("\N{BYTE ORDER MARK}"):
        text, utf8 = text[1:], None
    # (a lone surrogate raises in encoding, as it did in feeding the text)
    data = text.encode("utf-8") if utf8 is None else utf8
    if huge_tree or len(data) <= LIBXML_MAX_TEXT:
        # the whole page in one call, as UTF-8 bytes: libxml2 then parses without the GIL (a fed parser holds it
        # throughout: half of reading a large page), into the tree feeding it gave (tests/test_parse_outputs.py). Past
        # libxml2's limit a fed parser cut a node where this one drops it: such a page is fed as before.
        try:
            root = etree.fromstring(data, _whole_page_parser(huge_tree))
        except (etree.ParserError, etree.XMLSyntaxError, LookupError):
            root = None
        if root is not None:
            return root
    for encoding in (None, "utf-8"):  # (the bytes only when the text fails)
        parser = etree.HTMLParser(recover=True, encoding=encoding, huge_tree=huge_tree)
        try:
            parser.feed(text if encoding is None else data)
            root = parser.close()
        except (etree.ParserError, etree.XMLSyntaxError, UnicodeDecodeError, LookupError):
            continue
        if root is not None:
            return root
    return None


def is_element(node: Element) -> bool:
    return isinstance(node.tag, str)  # comments and processing instructions have a function as their tag


def links(root: Element | None, removed: Collection[Element] = NO_ELEMENTS) -> list[Element]:
    """find_all("a", href=True): every <a> with an href (an empty one too), in document order, without those in
    `removed` or inside one of them (BeautifulSoup's extract() took them out of the tree)."""
    if root is None:
        return []
    found = [a for a in root.iter("a") if a.get("href") is not None]
    return [a for a in found if not extracted(a, removed)] if removed else found


def extracted(el: Element, removed: Collection[Element]) -> bool:
    """Whether `el` is out of the tree: in `removed` itself or inside an element that is."""
    if not removed:
        return False
    node = el
    while node is not None:
        if node in removed:
            return True
        node = node.getparent()
    return False


def container_around(el: Element) -> str | None:
    """The innermost string container around `el` (itself included), or None."""
    node = el
    while node is not None:
        if node.tag in STRING_CONTAINERS:
            return str(node.tag)
        node = node.getparent()
    return None


def text_pieces(el: Element, kind: str | None = None, removed: Collection[Element] = NO_ELEMENTS) -> Iterator[str]:
    """The text pieces inside `el` whose innermost string container is `kind` (None: no container), in document
    order, skipping the subtrees in `removed` (their tails stay: BeautifulSoup's extract() leaves the string after
    a tag in place). Iterative: a hostile page's depth is no recursion limit."""
    stack: list[tuple[Element, str | None, bool]] = [(el, container_around(el.getparent()) if el.getparent() is not None
                                                      else None, False)]
    while stack:
        node, around, done = stack.pop()
        if done:  # the subtree is out: its tail belongs to the parent's container
            if node is not el and node.tail and around == kind:
                yield node.tail
            continue
        stack.append((node, around, True))
        if not is_element(node) or (removed and node in removed):
            continue  # a comment's own text is not text; an extracted tag is gone, its tail is not
        inside = node.tag if node.tag in STRING_CONTAINERS else around
        if node.text and inside == kind:
            yield node.text
        stack.extend((child, inside, False) for child in reversed(node))


def get_text(el: Element, separator: str = "", removed: Collection[Element] = NO_ELEMENTS) -> str:
    """BeautifulSoup's el.get_text(separator, strip=True)."""
    kind = str(el.tag) if el.tag in STRING_CONTAINERS else None
    if kind is None and not removed and next(el.iter(*STRING_CONTAINERS), None) is None and container_around(el) is None:
        # no script, style or template in or around: lxml's own walk (it skips comments' text, keeps their tails)
        return separator.join(piece for text in el.itertext() if (piece := text.strip()))
    return separator.join(piece for text in text_pieces(el, kind, removed) if (piece := text.strip()))


def string_text(node: Element) -> str:
    """str() of a BeautifulSoup string that is not a tag: a comment's (or a processing instruction's, which libxml2's
    HTML parser reads as a comment) own text."""
    return str(node.text or "")
