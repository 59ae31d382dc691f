"""DOCX (Office Open XML) into the document model: body paragraphs and table grids with real merge origins.

python-docx opens the package; the body is then walked as XML, because `table.rows[i].cells` repeats a merged
cell without telling where it started: the grid is rebuilt from each row's `w:tc` with its gridSpan, vMerge
and gridBefore, so a vertical merge (vMerge continue) points at the row that holds the text.
"""

from __future__ import annotations

import bisect
import struct
import zipfile
import zlib
from collections.abc import Iterator
from io import BytesIO
from typing import TYPE_CHECKING, Any

import docx
from docx.opc.exceptions import PackageNotFoundError

from gongkai.extractors.model import Document, SpanRows, TextBlock, UnreadableDocument, grids_within_budget
from gongkai.extractors.textnorm import clean_text, first_title_line

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
P, TBL, TR, TC, T, TAB, BR, CR, SDT, SDT_CONTENT = (
    f"{W}{name}" for name in ("p", "tbl", "tr", "tc", "t", "tab", "br", "cr", "sdt", "sdtContent")
)
# Wrappers that may stand between a table/row and its rows/cells, or between the body and its paragraphs.
DRAWING, PICT = f"{W}drawing", f"{W}pict"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
TRANSPARENT = frozenset({SDT, SDT_CONTENT, f"{W}customXml", f"{W}smartTag"})

# A real report's document.xml is a few hundred KB that deflates 10-30 times; a bomb deflates ~1000 times.
MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
MAX_DOCUMENT_XML_BYTES = 64 * 1024 * 1024  # the body of a long report is a few MB; images live in other members
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_ABOVE_BYTES = 1024 * 1024
SLIVER_TWIPS = 30  # 1.5 pt: narrower than any character, so no real column
MAX_GRID_SPAN = 64  # Word allows 63 grid columns; more is garbage
INFLATE_CHUNK = 1 << 16  # inflate this much at a time, so a member never takes more memory than that


def read(data: bytes, ocr_limits: Limits | None = None) -> Document:
    """Read a .docx; raise UnreadableDocument for a zip bomb, a corrupt zip or a package without a Word body."""
    refuse_unsafe_zip(data)
    try:
        document = docx.Document(BytesIO(data))
        body = document.element.body
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableDocument(f"not a readable DOCX: {exc}") from exc
    except Exception as exc:  # lxml XMLSyntaxError, CRC errors, …: the package is corrupt
        raise UnreadableDocument(f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc
    for fallback in list(body.iter(MC_FALLBACK)):  # alternate renderings of the same text box
        fallback.getparent().remove(fallback)
    blocks = [text for text in (clean_text(_text(p)) for p in _body_paragraphs(body)) if text]
    warnings: list[str] = []
    tables = grids_within_budget((_table_spans(tbl) for tbl in body.iter(TBL)), warnings)
    doc = Document(
        format="docx",
        blocks=[TextBlock(b) for b in blocks],
        tables=tables,
        title=first_title_line(blocks),
        warnings=warnings,
        pictures=_pictures(body),
    )
    from gongkai.extractors import ocr  # tables pasted as pictures: read by OCR when no table holds them

    ocr.read_document_pictures(doc, lambda: _images(document), ocr_limits or ocr.Limits())
    return doc


def _images(document: Any) -> Iterator[bytes]:
    """The bytes of the body's pictures, in body order (each embedded image once)."""
    seen: set[str] = set()
    for blip in document.element.body.iter(f"{{{A_NS}}}blip"):
        rid = blip.get(f"{{{R_NS}}}embed")
        if not rid or rid in seen or rid not in document.part.related_parts:
            continue
        seen.add(rid)
        yield document.part.related_parts[rid].blob


def refuse_unsafe_zip(data: bytes, body_name: str = "word/document.xml", kind: str = "DOCX") -> None:
    """Refuse a zip bomb from the central directory, then by inflating each member in chunks up to what the
    directory declares. `body_name` is the member holding the document's body (content.xml in an ODT)."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableDocument(f"corrupt zip container: {exc}") from exc
    with archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise UnreadableDocument(f"zip bomb: members would uncompress to {total} bytes")
        for member in members:
            ratio = member.file_size / max(member.compress_size, 1)
            if member.file_size > RATIO_CHECK_ABOVE_BYTES and ratio > MAX_COMPRESSION_RATIO:
                raise UnreadableDocument(f"zip bomb: {member.filename} compressed {ratio:.0f} to 1")
        body = next((m for m in members if m.filename == body_name), None)
        if body is not None and body.file_size > MAX_DOCUMENT_XML_BYTES:
            raise UnreadableDocument(f"too large: {body_name} would uncompress to {body.file_size} bytes")
        if body is None:
            raise UnreadableDocument(f"not a {kind}: no {body_name} in the zip")
        # The directory may lie: inflate every member in chunks, without keeping it, and stop at what it declares.
        # python-docx then reads only members whose data is no longer than their declared (checked) size.
        budget = MAX_UNCOMPRESSED_BYTES
        for member in members:
            budget -= _inflate_within(data, member, min(member.file_size, budget))


def _inflate_within(data: bytes, member: zipfile.ZipInfo, cap: int) -> int:
    """The size a member really inflates to, read INFLATE_CHUNK bytes at a time; UnreadableDocument past `cap`."""
    if member.flag_bits & 0x1:
        raise UnreadableDocument(f"encrypted DOCX: {member.filename} is encrypted")
    start = member.header_offset
    header = data[start : start + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise UnreadableDocument(f"corrupt zip container: no local header for {member.filename}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    offset = start + 30 + name_length + extra_length
    raw = memoryview(data)[offset : offset + member.compress_size]
    if member.compress_type == zipfile.ZIP_STORED:
        size = len(raw)
    elif member.compress_type == zipfile.ZIP_DEFLATED:
        size = _inflated_size(raw, cap, member.filename)
    else:  # Word writes deflate; bzip2 and lzma would inflate without a per-call bound
        raise UnreadableDocument(f"unsupported zip compression {member.compress_type} for {member.filename}")
    if size > cap:
        raise UnreadableDocument(
            f"zip bomb: {member.filename} inflates past {cap} bytes (its directory entry says {member.file_size})"
        )
    return size


def _inflated_size(raw: memoryview, cap: int, name: str) -> int:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # a zip member is raw deflate
    size = 0
    position = 0
    try:
        while not inflater.eof and size <= cap:
            chunk: bytes | memoryview
            if inflater.unconsumed_tail:
                chunk = inflater.unconsumed_tail
            elif position < len(raw):
                chunk = raw[position : position + INFLATE_CHUNK]
                position += INFLATE_CHUNK
            else:
                break
            size += len(inflater.decompress(chunk, INFLATE_CHUNK))
        if size <= cap:
            size += len(inflater.flush(INFLATE_CHUNK))
    except zlib.error as exc:
        raise UnreadableDocument(f"corrupt DOCX: {name}: {exc}") from exc
    return size


def _children(element: Any, tag: str) -> Iterator[Any]:
    """Children with `tag`, looking through content-control and custom-XML wrappers."""
    for child in element:
        if child.tag == tag:
            yield child
        elif child.tag in TRANSPARENT:
            yield from _children(child, tag)


def _body_paragraphs(container: Any) -> Iterator[Any]:
    """The running text's paragraphs in order, looking into layout tables: a table that frames the page (a single
    cell, or one holding other tables) carries the report's title and body in its cells."""
    for child in container:
        if child.tag == P:
            yield child
        elif child.tag in TRANSPARENT:
            yield from _body_paragraphs(child)
        elif child.tag == TBL and _is_layout_table(child):
            for tr in _children(child, TR):
                for tc in _children(tr, TC):
                    yield from _body_paragraphs(tc)


def _is_layout_table(tbl: Any) -> bool:
    """Holds other tables, or is one cell of several paragraphs (a one-cell box with a label is a data table)."""
    cells = [tc for tr in _children(tbl, TR) for tc in _children(tr, TC)]
    if any(next(tc.iter(TBL), None) is not None for tc in cells):
        return True
    return len(cells) == 1 and sum(1 for p in _children(cells[0], P) if clean_text(_text(p))) >= 2


def _pictures(body: Any) -> int:
    """Images drawn in the body (DrawingML and VML): where a report has no table cells, its tables' pictures."""
    return sum(1 for _ in body.iter(DRAWING, PICT))


def _text(element: Any) -> str:
    """The text under a paragraph or cell in document order: a paragraph or line break becomes a newline.

    clean_text then drops that newline between two CJK characters, so a label wrapped over lines reads whole.
    """
    pieces: list[str] = []
    for node in element.iter(P, T, TAB, BR, CR):
        if node.tag == T:
            pieces.append(node.text or "")
        elif node.tag == TAB:
            pieces.append("\t")
        else:
            pieces.append("\n")
    return "".join(pieces)


def _table_spans(tbl: Any) -> SpanRows:
    """Rows of (text, rowspan, colspan) anchors; a vMerge continuation lengthens the anchor above it instead."""
    spans: SpanRows = []
    starts: list[list[int]] = []  # the grid column each anchor starts in
    # Grid column where a vertical merge is open -> [row index, position in that row] of its anchor.
    open_merges: dict[int, tuple[int, int]] = {}
    for tr in _children(tbl, TR):
        row: list[tuple[str, int, int]] = []
        row_starts: list[int] = []
        col = 0
        for _ in range(_row_property(tr, "gridBefore")):
            row.append(("", 1, 1))
            row_starts.append(col)
            col += 1
        continuing: dict[int, tuple[int, int]] = {}
        for tc in _children(tr, TC):
            colspan = _grid_span(tc)
            merge = _v_merge(tc)
            anchor = open_merges.get(col) if merge == "continue" else None
            if anchor is not None:
                r, k = anchor
                text, rowspan, anchor_colspan = spans[r][k]
                spans[r][k] = (text, rowspan + 1, anchor_colspan)
                continuing[col] = anchor
            else:
                if merge == "restart":
                    continuing[col] = (len(spans), len(row))
                row.append((clean_text(_text(tc)), 1, colspan))
                row_starts.append(col)
            col += colspan
        open_merges = continuing
        spans.append(row)
        starts.append(row_starts)
    return _without_sliver_columns(spans, starts, _grid_widths(tbl))


def _without_sliver_columns(spans: SpanRows, starts: list[list[int]], widths: list[int | None]) -> SpanRows:
    """Drop layout-grid columns that carry no cell of their own: columns no cell starts in, and slivers a few
    twips wide (Word and LibreOffice leave them after edits; they would show as a spurious copy of a cell).

    A column stays when some cell lies wholly within dropped columns, so no text is ever lost.
    """
    anchors = [
        (col, col + colspan)
        for row, cols in zip(spans, starts, strict=True)
        for (_, _, colspan), col in zip(row, cols, strict=True)
    ]
    started = {low for low, _ in anchors}
    width = max((high for _, high in anchors), default=0)
    dropped = {
        c for c in range(width) if c not in started or (c < len(widths) and (widths[c] or SLIVER_TWIPS) < SLIVER_TWIPS)
    }
    for low, high in anchors:
        if all(c in dropped for c in range(low, high)):
            dropped.discard(low)
    if not dropped:
        return spans
    kept = [c for c in range(width) if c not in dropped]
    return [
        [
            (text, rowspan, _count_between(kept, col, col + colspan))
            for (text, rowspan, colspan), col in zip(row, cols, strict=True)
        ]
        for row, cols in zip(spans, starts, strict=True)
    ]


def _grid_widths(tbl: Any) -> list[int | None]:
    """The widths (twips) of the table's layout grid columns, None where not given."""
    grid = tbl.find(f"{W}tblGrid")
    if grid is None:
        return []
    widths: list[int | None] = []
    for column in grid.iterfind(f"{W}gridCol"):
        try:
            widths.append(int(column.get(f"{W}w", "")))
        except ValueError:
            widths.append(None)
    return widths


def _count_between(columns: list[int], low: int, high: int) -> int:
    """How many of the sorted `columns` lie in [low, high)."""
    return bisect.bisect_left(columns, high) - bisect.bisect_left(columns, low)


def _tc_property(tc: Any, name: str) -> Any:
    tc_pr = tc.find(f"{W}tcPr")
    return None if tc_pr is None else tc_pr.find(f"{W}{name}")


def _grid_span(tc: Any) -> int:
    element = _tc_property(tc, "gridSpan")
    return _int_value(element, default=1)


def _v_merge(tc: Any) -> str | None:
    """'restart', 'continue' (a vMerge without a value continues), or None."""
    element = _tc_property(tc, "vMerge")
    if element is None:
        return None
    return "restart" if element.get(f"{W}val") == "restart" else "continue"


def _row_property(tr: Any, name: str) -> int:
    tr_pr = tr.find(f"{W}trPr")
    return 0 if tr_pr is None else _int_value(tr_pr.find(f"{W}{name}"), default=0)


def _int_value(element: Any, default: int) -> int:
    if element is None:
        return default
    try:
        return min(max(int(element.get(f"{W}val", default)), default), MAX_GRID_SPAN)
    except ValueError:
        return default
