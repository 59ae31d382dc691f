"""HTML pages (whole CMS pages or fragments) into the document model: article blocks and table grids.

lxml's HTML parser is used directly (not through BeautifulSoup) so that a 50 MB page is read in seconds;
the tree is walked iteratively, so deep nesting cannot exhaust the Python stack.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from lxml import etree

from gongkai.extractors.model import (
    MAX_TABLE_CELLS,
    Document,
    SpanRows,
    TextBlock,
    UnreadableDocument,
    grids_within_budget,
)
from gongkai.extractors.sniff import utf16_without_bom
from gongkai.extractors.textnorm import clean_text, first_title_line, looks_like_title

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits

Element: TypeAlias = Any  # an lxml element; lxml ships no type stubs here

# Article containers of the CMSs that publish these reports, in order of preference: (attribute, value).
ARTICLE_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("class", "TRS_Editor"),
    ("class", "TRS_UEDITOR"),
    ("id", "UCAP-CONTENT"),
    ("id", "zoom"),
    ("class", "article-content"),
    ("class", "Custom_UnionStyle"),
)
# Elements whose boundaries separate pieces of text (a paragraph, a line, a cell).
BLOCK_TAGS = frozenset(
    "address article aside blockquote body br center dd div dl dt fieldset figcaption figure footer form h1 h2 h3 "
    "h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th thead tr ul caption".split()
)
SKIPPED_TAGS = frozenset("script style noscript template head title object iframe select textarea button".split())
HEADING_TAGS = frozenset("h1 h2 h3".split())
METADATA_NAMES = ("ArticleTitle", "PubDate", "ContentSource")

_BOM_ENCODINGS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
CHARSETS_FILE = Path(__file__).with_name("charsets.toml")  # the charset labels honoured: the WHATWG ones (see there)
_SPAN_NUMBER = re.compile(r"\s*\+?(\d+)")
_MAX_SPAN = 1000  # a colspan of 10**9 must not allocate a billion cells
MAX_TABLE_NESTING = 8
MAX_CELL_CHARS = 20_000
MAX_HTML_BYTES = 100_000_000  # a report page is well under 1 MB; a 50 MB page must still read  # a data cell holds a label or a number; longer text is a layout cell's whole article
# A table drawn with <div> boxes: at least this many boxes holding nothing but a number (the smallest standard
# table, 四, has 15 cells).
DIV_GRID_NUMBERS = 15
_NUMBER_ONLY = re.compile(r"^\s*[-+]?\d[\d,.]*\s*$")
_ATTACHMENT = re.compile(r"\.(?:pdf|docx?|wps|odt|rtf|xlsx?)(?:[?#].*)?$", re.IGNORECASE)
_SITE_SUFFIX = re.compile(r"\s*(?:[_|]|\s-\s|--).*$")


def decode_html(data: bytes, http_charset: str | None = None) -> str:
    """Decode a page: BOM, then the HTTP and <meta> charsets, then strict UTF-8, then GB18030."""
    return decode_html_utf8(data, http_charset)[0]


def decode_html_utf8(data: bytes, http_charset: str | None = None) -> tuple[str, bool]:
    """decode_html's text, and whether it is the bytes decoded as strict UTF-8 (so `data` is the text's UTF-8: a
    parser given the text may take the bytes instead of encoding it again)."""
    for bom, encoding in _BOM_ENCODINGS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace"), False
    utf16 = utf16_without_bom(data)  # by content: a <meta charset> inside UTF-16 bytes cannot be read anyway
    if utf16 is not None:
        return data.decode(utf16, errors="replace"), False
    # each encoding tried once, and only when needed: a page declared UTF-8 was decoded twice, the <meta> searched
    # even when the HTTP charset decided (the decoding was a twentieth of the crawler's CPU)
    tried: dict[str, str | None] = {}

    def strict(encoding: str) -> str | None:
        if encoding not in tried:
            tried[encoding] = _strict(data, encoding)
        return tried[encoding]

    for charset in _declared_charsets(data, http_charset):
        # CMS templates often declare gb2312 on pages that are really UTF-8; valid UTF-8 is a far stronger sign.
        if charset == "gb18030" and (utf8 := strict("utf-8")) is not None:
            return utf8, True
        text = strict(charset)
        if text is not None:
            return text, charset == "utf-8"
    if (utf8 := strict("utf-8")) is not None:
        return utf8, True
    return data.decode("gb18030", errors="replace"), False


def _declared_charsets(data: bytes, http_charset: str | None) -> Iterator[str]:
    """The HTTP charset, then the <meta> one (searched for only when the HTTP one did not decide), when usable."""
    if (from_http := _normalise_charset(http_charset)) is not None:
        yield from_http
    meta = _META_CHARSET.search(data[:65536])
    if meta and (from_meta := _normalise_charset(meta.group(1).decode("ascii"))) is not None:
        yield from_meta


def charset_codecs(path: Path = CHARSETS_FILE) -> dict[str, str | None]:
    """Each charset label a page may declare → the Python codec that reads it (None: the page is read as undeclared).
    A codec Python lacks or that is no text encoding is a slip in the file, refused here rather than met on a page."""
    with path.open("rb") as fh:
        entries = tomllib.load(fh)["encoding"]
    table: dict[str, str | None] = {}
    for entry in entries:
        codec: str | None = entry.get("codec")
        if codec is not None and not codecs.lookup(codec)._is_text_encoding:
            raise ValueError(f"{path.name}: {entry['name']}: {codec!r} is no text encoding")
        for label in entry["labels"]:
            if label in table or label != label.lower():
                raise ValueError(f"{path.name}: label {label!r} {'twice' if label in table else 'not in lower case'}")
            table[label] = codec
    return table


_CHARSET_CODECS = charset_codecs()


def _normalise_charset(label: str | None) -> str | None:
    """The codec of a declared charset when browsers know its label (charsets.toml), else None: a page declaring any
    other name Python has a codec for (unicode-escape, utf-7: `\\ud800`, `+2AA-` became lone surrogates) is read as a
    browser reads it, as undeclared."""
    if not label or not label.isascii():  # (ASCII case only: str.lower() makes "koi8-r" of "\u212aoi8-r")
        return None
    return _CHARSET_CODECS.get(label.strip().strip("\"'").strip().lower())


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    # UnicodeError: the `undefined` codec; LookupError: a codec that is no text encoding (charset=hex, rot13): such a
    # declaration is ignored like a wrong one (it raised out of the crawler's reading of the page)
    except (UnicodeError, LookupError):
        return None


def read(data: bytes, http_charset: str | None = None, ocr_limits: Limits | None = None,
         pictures: Mapping[str, bytes] | None = None) -> Document:
    """Read an HTML page or fragment; raise UnreadableDocument when it holds no markup or text at all.
    `ocr_limits`: the bounds of OCR for tables pasted into the body as pictures (the defaults when None).
    `pictures`: the bytes of pictures the page links (`<img src>`), keyed by the `src` as written in the page (the
    crawler fetched them); they are read as inline `data:` pictures are. Empty bytes: skipped on purpose (an icon)."""
    if len(data) > MAX_HTML_BYTES:
        raise UnreadableDocument(f"too large: an HTML page of {len(data)} bytes")
    text = decode_html(data, http_charset)
    if not text.strip():
        raise UnreadableDocument("empty HTML page")
    # The plain etree parser, not lxml.html's: its per-element Python class lookup costs a second per 50 MB.
    parser = etree.HTMLParser(encoding="utf-8", huge_tree=True, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(text.encode("utf-8", errors="replace"), parser=parser)
    except (etree.LxmlError, ValueError) as exc:
        raise UnreadableDocument(f"unparseable HTML: {exc}") from exc
    if root is None:
        raise UnreadableDocument("empty HTML page: no elements")
    warnings: list[str] = [_cut_short(error) for error in parser.error_log if _is_resource_limit(error)][:1]
    metadata = _metadata(root)
    page_title = _page_title(root)
    etree.strip_elements(root, *SKIPPED_TAGS, with_tail=False)
    containers = _article_containers(root, text)
    blocks: list[str] = []
    heading: str | None = None
    for container in containers:
        container_blocks, container_heading = _blocks(container)
        blocks.extend(container_blocks)
        heading = heading or container_heading
    elements = (element for container in containers for element in _data_tables(container, warnings))
    tables = grids_within_budget(_tables_spans(elements, warnings), warnings)
    sources = [str(img.get("src") or "").strip() for container in containers for img in container.iter("img")]
    linked = pictures or {}
    readable = [source for source in sources if _DATA_IMAGE.match(source) or linked.get(source)]
    if not tables:
        warnings.extend(_div_grid(containers))
        warnings.extend(_attachments(containers))
        warnings.extend(_unread_pictures(containers, linked))
    title = metadata.get("ArticleTitle") or heading or first_title_line(blocks) or page_title
    doc = Document(
        format="html",
        blocks=[TextBlock(b) for b in blocks],
        tables=tables,
        title=title,
        metadata=metadata,
        warnings=warnings,
        pictures=len(sources),
    )
    if readable:
        from gongkai.extractors import ocr  # tables pasted as pictures: read by OCR when no table holds them

        ocr.read_document_pictures(doc, lambda: page_images(readable, linked), ocr_limits or ocr.Limits())
    return doc


_DATA_IMAGE = re.compile(r"^data:image/(?:png|jpe?g|gif|bmp|tiff?|webp)(?:;[^,;]*)*;base64,", re.IGNORECASE)


def page_images(sources: list[str], linked: Mapping[str, bytes]) -> Iterator[bytes]:
    """The bytes of the page's pictures in body order: inline `data:` pictures and linked ones the crawler fetched."""
    for source in sources:
        if _DATA_IMAGE.match(source):
            yield from inline_images([source])
        elif linked.get(source):
            yield linked[source]


# pictures declared this small are icons, bullets, spacers: never a table (the crawler does not fetch them either)
TINY_PICTURE_PX = 48
MAX_UNREAD_NAMED = 5  # a warning names this many unread pictures, then counts the rest


def declared_tiny(img: Element) -> bool:
    """A picture whose width or height attribute says it is smaller than TINY_PICTURE_PX."""
    for attribute in ("width", "height"):
        found = re.match(r"\s*(\d+)\s*(?:px)?\s*$", str(img.get(attribute) or ""))
        if found and int(found.group(1)) < TINY_PICTURE_PX:
            return True
    return False


def _unread_pictures(containers: list[Element], linked: Mapping[str, bytes]) -> list[str]:
    """A page without tables that links pictures it was not given (another host, over the crawler's cap, a failed
    download, a page ingested from a file): the tables may be those pictures, so they are named, never dropped."""
    unread: list[str] = []
    for container in containers:
        for img in container.iter("img"):
            source = str(img.get("src") or "").strip()
            if source and not _DATA_IMAGE.match(source) and source not in linked and not declared_tiny(img):
                unread.append(source)
    if not unread:
        return []
    named = ", ".join(unread[:MAX_UNREAD_NAMED]) + (f" and {len(unread) - MAX_UNREAD_NAMED} more" if len(unread) > MAX_UNREAD_NAMED else "")
    return [f"unread pictures: the page has no table and links {len(unread)} picture(s) not fetched with it "
            f"(tables pasted as pictures?): {named}"]


def inline_images(sources: list[str]) -> Iterator[bytes]:
    """The bytes of the pictures the page carries inline (`data:image/…;base64,` URIs), in body order."""
    for source in sources:
        found = _DATA_IMAGE.match(source)
        if found is None:
            continue
        try:
            yield base64.b64decode(re.sub(r"\s+", "", source[found.end():]), validate=True)
        except binascii.Error:
            continue  # a damaged inline picture: nothing to read


def _is_resource_limit(error: Any) -> bool:
    return bool(error.type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in (error.message or ""))


def _cut_short(error: Any) -> str:
    """libxml2 stops at a resource limit (elements nested deeper than 2048 levels): what follows is never read."""
    return (
        f"unreadable table: the page could not be parsed past line {error.line} ({error.message.strip()}); "
        "the rest of the page, with any tables in it, is not read"
    )


def _attachments(containers: list[Element]) -> list[str]:
    """A page without tables that links documents: the report is likely the attachment, not this page."""
    links = [
        (a.get("href") or "").strip()
        for container in containers
        for a in container.iter("a")
        if _ATTACHMENT.search((a.get("href") or "").strip())
    ]
    if not links:
        return []
    shown = ", ".join(dict.fromkeys(links[:5]))
    return [f"the page has no tables but links {len(links)} attachment(s) ({shown}): the report may be there"]


def _div_grid(containers: list[Element]) -> list[str]:
    """A table laid out with <div>/<span>/<li> boxes instead of <table>: many leaf boxes holding only a number."""
    numbers = 0
    for container in containers:
        for element in container.iter("div", "span", "li", "p"):
            if len(element) == 0 and _NUMBER_ONLY.match(element.text or ""):
                numbers += 1
                if numbers >= DIV_GRID_NUMBERS:
                    return [
                        f"unreadable table: {DIV_GRID_NUMBERS} or more numbers in <div>/<span> boxes and no <table> "
                        "(a table built of <div>s; its cells have no rows and columns to read)"
                    ]
    return []


def _metadata(root: Element) -> dict[str, str]:
    wanted = {name.lower(): name for name in METADATA_NAMES}
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        name = wanted.get((meta.get("name") or "").strip().lower())
        content = clean_text(meta.get("content") or "")
        if name and content and name not in found:
            found[name] = content
    return found


def _article_containers(root: Element, page: str) -> list[Element]:
    """The outermost elements of the first known article container that holds any text; else the body.

    Names are matched without regard to case: CMS templates write both id="zoom" and id="Zoom".
    """
    lowered = page.lower()
    for attribute, value in ARTICLE_CONTAINERS:
        name = value.lower()
        if name not in lowered:  # a cheap test first: most pages carry one of these names or none
            continue
        if attribute == "class":
            matches = [e for e in root.iter() if name in (e.get("class") or "").lower().split()]
        else:
            matches = [e for e in root.iter() if (e.get(attribute) or "").lower() == name]
        matched = set(matches)
        outermost = [m for m in matches if not any(a in matched for a in m.iterancestors())]
        if any(_has_content(m) for m in outermost):
            return outermost
    body = root.find("body")
    return [body if body is not None else root]


def _has_content(element: Element) -> bool:
    return element.find(".//table") is not None or bool(clean_text("".join(element.itertext())))


def _blocks(container: Element) -> tuple[list[str], str | None]:
    """Paragraphs of running text in reading order, leaving out the text inside data tables; and the first h1-h3
    that reads like a title (section headings are h2/h3 on some sites)."""
    blocks: list[str] = []
    heading: str | None = None
    pieces: list[str] = []

    def flush() -> None:
        if pieces:
            raw = "".join(pieces)
            pieces.clear()
            text = "" if raw.isspace() else clean_text(raw)
            if text:
                blocks.append(text)

    walker = etree.iterwalk(container, events=("start", "end"))
    for event, element in walker:
        tag = element.tag
        if event == "start":
            if tag == "table" and not _is_layout_table(element):
                flush()
                walker.skip_subtree()
                continue
            if tag in BLOCK_TAGS:
                flush()
                if tag in HEADING_TAGS and heading is None:
                    title = clean_text("".join(element.itertext()))
                    heading = title if looks_like_title(title) else None
            if element.text:
                pieces.append(element.text)
        else:
            if tag in BLOCK_TAGS:
                flush()
            if element.tail and element is not container:
                pieces.append(element.tail)
    flush()
    return blocks, heading


def _is_layout_table(table: Element) -> bool:
    """A table that frames the page (one cell, or holding other tables): its loose text is running text."""
    if table.find(".//table") is not None:
        return True
    cells = sum(1 for _ in _own_cells(table))
    return cells == 1


def _own_cells(table: Element) -> Iterator[Element]:
    for row in _own_rows(table):
        yield from (cell for cell in row if cell.tag in ("td", "th"))


def _own_rows(table: Element) -> Iterator[Element]:
    """The rows of this table, not of tables nested in its cells (thead/tbody/tfoot are looked through)."""
    for child in table:
        if child.tag == "tr":
            yield child
        elif child.tag in ("thead", "tbody", "tfoot"):
            yield from (row for row in child if row.tag == "tr")


def _data_tables(container: Element, warnings: list[str]) -> Iterator[Element]:
    """Every table in document order (a nested table right after the table holding it), up to MAX_TABLE_NESTING deep.

    The depth cap bounds the work: each deeper level re-reads its text once more as part of its parents' cells.
    """
    depth = 0
    too_deep = 0
    for event, element in etree.iterwalk(container, events=("start", "end"), tag="table"):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        if depth <= MAX_TABLE_NESTING:
            yield element
        else:
            too_deep += 1
    if too_deep:
        warnings.append(f"{too_deep} tables nested more than {MAX_TABLE_NESTING} deep read only as their parents' text")


def _tables_spans(tables: Iterable[Element], warnings: list[str]) -> Iterator[SpanRows]:
    """Each table's span rows; a table with more cells than any grid may hold is counted before its text is read
    (and yields no rows, so that table ordinals stay those of the page)."""
    marked: set[Element] = set()
    for ordinal, table in enumerate(tables, start=1):
        cells = sum(1 for _ in _own_cells(table))
        if cells > MAX_TABLE_CELLS:
            warnings.append(f"table {ordinal} left out: it has {cells} cells")
            yield []
            continue
        if not any(ancestor in marked for ancestor in table.iterancestors("table")):
            _mark_block_boundaries(table)  # the table with the tables nested in it
            marked.add(table)
        yield _table_spans(table)


def _table_spans(table: Element) -> SpanRows:
    spans: SpanRows = []
    for row in _own_rows(table):
        cells = [cell for cell in row if cell.tag in ("td", "th")]
        spans.append([(clean_text(_cell_text(c)), _span(c.get("rowspan")), _span(c.get("colspan"))) for c in cells])
    while spans and not spans[-1]:
        spans.pop()
    return spans


def _span(value: str | None) -> int:
    """rowspan/colspan as browsers read them: leading digits ("2;" is 2); 0, negative or garbage is 1."""
    match = _SPAN_NUMBER.match(value or "")
    return min(max(int(match.group(1)), 1), _MAX_SPAN) if match else 1


def _mark_block_boundaries(container: Element) -> None:
    """Put a newline at the start and end of every block element, once per outermost table, so that a cell's
    text is then read in one C-level call; clean_text drops the newline between CJK, joining wrapped labels."""
    for element in container.iter(*BLOCK_TAGS):
        element.text = "\n" + (element.text or "")
        if element is not container:
            element.tail = "\n" + (element.tail or "")


def _cell_text(element: Element) -> str:
    """All text under an element (its block boundaries already marked by _mark_block_boundaries)."""
    if len(element) == 0:  # the common case, a cell holding only text
        return (element.text or "")[:MAX_CELL_CHARS]
    text: str = etree.tostring(element, method="text", encoding=str, with_tail=False)
    return text[:MAX_CELL_CHARS]


def _page_title(root: Element) -> str | None:
    element = root.find(".//title")
    if element is None:
        return None
    title = _SITE_SUFFIX.sub("", clean_text("".join(element.itertext())))
    return title or None
