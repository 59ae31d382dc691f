"""PDF bytes → Document: PDFium reads text and ruling lines, pdfplumber's geometry turns lines into cells.

Why not pdfplumber end to end: ~85% of its `extract_tables()` time is pdfminer interpreting every
page's content stream. PDFium reads the same page an order of magnitude faster, so we take the
characters and the vector paths from PDFium, and hand only the ruling lines to pdfplumber's pure
table geometry (merge_edges → edges_to_intersections → intersections_to_cells → cells_to_tables),
and only on the pages whose text names a standard table (anchors in schema/data/tables.toml).

Coordinates are points, (x0, top, x1, bottom) from the page's top-left corner, as pdfplumber
reports them. PDFium is not thread-safe, so one lock serialises every call into it.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import functools
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges

from gongkai.extractors.model import BBox, Document, Table, TextBlock, UnreadableDocument, build_grid
from gongkai.extractors.textnorm import clean_text

MAX_PAGES = 500  # reports run to 10–30 pages; beyond this we read the first MAX_PAGES and warn
MAX_TABLE_PAGES = 40  # pages searched for ruled tables, in page order
MAX_PATHS_PER_PAGE = 20_000  # a map or chart drawn in vectors: not a statistics table
TOLERANCE = 3.0  # pdfplumber's default snap/join/intersection tolerance, in points
THIN = 2.5  # a filled rectangle thinner than this is a drawn line (Word draws borders so)
MIN_TABLE_ANCHORS = 2  # distinct anchor labels a page must show to be searched for tables
SHORT_LINE = 12  # a line this short next to a page break is a page number or running header

_NOT_LABEL_TEXT = re.compile(r"[\s\W_]+")
_ENUMERATION = re.compile(r"^[（(]?[一二三四五六七八九十\d]{1,3}[)）、.．]")
_PDFIUM_LOCK = threading.Lock()
# Fonts in WPS/Word exports often map common ideographs to Kangxi radicals (⼀ ⼆ ⽇ for 一 二 日), so
# the text layer says 第⼆⼗条; fold them one for one (positions stay aligned with PDFium's indexes).
_RADICALS = {
    cp: folded
    for cp in (*range(0x2E80, 0x2EF4), *range(0x2F00, 0x2FD6))
    if len(folded := unicodedata.normalize("NFKC", chr(cp))) == 1 and folded != chr(cp)
}


@dataclass(slots=True)
class _Char:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float  # the glyph's larger extent: tracks the font size, whatever the font's metrics
    space_before: bool = False  # PDFium saw a space or a word break just before it

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass(slots=True)
class _Line:
    text: str
    top: float
    height: float
    size: float


@dataclass(frozen=True, slots=True)
class _View:
    """Maps PDF user space (y up, any /Rotate) to the displayed page: points from its top-left corner."""

    left: float
    bottom: float
    right: float
    top: float
    rotation: int  # clockwise degrees: 0, 90, 180, 270

    @classmethod
    def of(cls, page: pdfium.PdfPage) -> _View:
        left, bottom, right, top = page.get_bbox()
        return cls(left, bottom, right, top, page.get_rotation() % 360)

    def point(self, x: float, y: float) -> tuple[float, float]:
        if self.rotation == 90:
            return y - self.bottom, x - self.left
        if self.rotation == 180:
            return self.right - x, y - self.bottom
        if self.rotation == 270:
            return self.top - y, self.right - x
        return x - self.left, self.top - y

    def box(self, x0: float, y0: float, x1: float, y1: float) -> BBox:
        (ax, ay), (bx, by) = self.point(x0, y0), self.point(x1, y1)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


@dataclass(slots=True)
class _Page:
    number: int  # 1-based
    stream: list[tuple[str, _Char | None]]  # PDFium's text stream; None for spaces and breaks
    chars: list[_Char] = field(default_factory=list)  # the drawn glyphs
    grids: list[_Grid] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)  # outside the grids

    @property
    def table_runs_on(self) -> bool:
        """Its last table reaches the page break (nothing but a page number below it)."""
        if not self.grids:
            return False
        bottom = self.grids[-1].bbox[3]
        return all(len(line.text) <= SHORT_LINE for line in self.lines if line.top > bottom)


@dataclass(slots=True)
class _Cell:
    row: int  # 0-based within its grid
    col: int
    rowspan: int
    colspan: int
    text: str
    bbox: BBox
    page: int


@dataclass(slots=True)
class _Grid:
    """A ruled table on one page, or several pages' parts joined into one."""

    bbox: BBox  # of the part on the last page it covers
    xs: list[float]  # column boundaries
    cells: list[_Cell]
    row_pages: list[int]

    @property
    def n_rows(self) -> int:
        return len(self.row_pages)

    @property
    def last_page(self) -> int:
        return self.row_pages[-1]

    def covering(self, row: int, col: int) -> _Cell | None:
        for cell in self.cells:
            if cell.row <= row < cell.row + cell.rowspan and cell.col <= col < cell.col + cell.colspan:
                return cell
        return None


def read(data: bytes) -> Document:
    """Read a PDF into the document model; raise UnreadableDocument saying why it cannot be read."""
    if b"%PDF" not in data[:1024]:  # readers accept junk before the header, as PDFium does
        raise UnreadableDocument(f"not a PDF: starts with {data[:8]!r}")
    with _PDFIUM_LOCK:
        return _read(data)


def _read(data: bytes) -> Document:
    pdf = _open(data)
    try:
        warnings: list[str] = []
        n_pages = len(pdf)
        if n_pages > MAX_PAGES:
            warnings.append(f"{n_pages} pages: read the first {MAX_PAGES}")
        pages = _read_pages(pdf, min(n_pages, MAX_PAGES), warnings)
        metadata = {k.lower(): v.strip() for k, v in pdf.get_metadata_dict().items() if v and v.strip()}
    finally:
        pdf.close()
    grids = _join_across_pages([g for p in pages for g in p.grids], {p.number: p.lines for p in pages})
    return Document(
        format="pdf",
        blocks=[TextBlock(line.text, p.number) for p in pages for line in p.lines],
        tables=[_to_table(i, g) for i, g in enumerate(grids, start=1)],
        title=_title(pages[0].lines) if pages else None,
        metadata=metadata,
        warnings=warnings,
    )


def _read_pages(pdf: pdfium.PdfDocument, count: int, warnings: list[str]) -> list[_Page]:
    """One pass, each page loaded once: its text, and its ruled tables when it names a standard table
    or continues one from the page before (a continuation may carry no label)."""
    pages: list[_Page] = []
    anchored = searched = 0
    for index in range(count):
        with _page(pdf, index, warnings) as handle:
            page = _page_text(handle, index + 1)
            if handle is not None and not page.chars and _has_image(handle):
                warnings.append(f"page {page.number}: an image without a text layer (scanned?)")
            is_table_page = _is_table_page(page)
            anchored += is_table_page
            if handle is not None and (is_table_page or (pages and pages[-1].table_runs_on)):
                if searched < MAX_TABLE_PAGES:
                    page.grids = _page_grids(handle, page, warnings)
                searched += 1
        page.lines = _lines(page, [g.bbox for g in page.grids])
        pages.append(page)
    if not any(len(p.chars) >= 20 for p in pages):
        raise UnreadableDocument("scanned: no text layer")
    if searched > MAX_TABLE_PAGES:
        warnings.append(f"{searched} pages hold tables: searched the first {MAX_TABLE_PAGES}")
    if not anchored:  # other wording or an unknown layout: search every page
        for page in [p for p in pages if p.chars][:MAX_TABLE_PAGES]:
            with _page(pdf, page.number - 1, warnings) as handle:
                page.grids = _page_grids(handle, page, warnings) if handle is not None else []
            page.lines = _lines(page, [g.bbox for g in page.grids])
    return pages


def _has_image(handle: pdfium.PdfPage) -> bool:
    return any(True for _ in handle.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3))


@contextlib.contextmanager
def _page(pdf: pdfium.PdfDocument, index: int, warnings: list[str]) -> Iterator[pdfium.PdfPage | None]:
    try:
        handle = pdf[index]
    except pdfium.PdfiumError as exc:  # one broken page object: keep the others
        warnings.append(f"page {index + 1}: unreadable ({exc})")
        yield None
        return
    try:
        yield handle
    finally:
        handle.close()


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise UnreadableDocument("encrypted PDF: a password is needed to open it") from exc
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_SECURITY:
            raise UnreadableDocument("encrypted PDF: unsupported security handler") from exc
        raise UnreadableDocument(f"corrupt PDF: {exc}") from exc


# --- text ------------------------------------------------------------------------------------


def _page_text(handle: pdfium.PdfPage | None, number: int) -> _Page:
    if handle is None:
        return _Page(number=number, stream=[])
    textpage = handle.get_textpage()
    try:
        stream = _text_stream(textpage, _View.of(handle))
    finally:
        textpage.close()
    return _Page(number=number, stream=stream, chars=[c for _, c in stream if c is not None])


def _text_stream(textpage: pdfium.PdfTextPage, view: _View) -> list[tuple[str, _Char | None]]:
    """Every character PDFium reports, in its order, with its glyph box when it is drawn.

    One call per glyph: the loose (font-height) box would align a line's glyphs better, but it is
    nonsense for vertical text and doubles the cost; lines are told apart by glyph size instead.
    """
    text = textpage.get_text_range()
    count = textpage.count_chars()
    if len(text) != count:  # characters beyond the BMP: ask one by one so indexes stay aligned
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(count))
    text = text.translate(_RADICALS)
    x0, x1, y0, y1 = (ctypes.c_double() for _ in range(4))
    get_box = pdfium_c.FPDFText_GetCharBox
    handle = textpage.raw
    stream: list[tuple[str, _Char | None]] = []
    gap = False
    upright = view.rotation == 0
    for i, ch in enumerate(text):
        if ch.isspace():  # a space in the text, or one PDFium generated at a word or line break
            stream.append((ch, None))
            gap = True
            continue
        get_box(handle, i, x0, x1, y0, y1)
        if upright:
            left, top, right, bottom = (
                x0.value - view.left,
                view.top - y1.value,
                x1.value - view.left,
                view.top - y0.value,
            )
        else:
            left, top, right, bottom = view.box(x0.value, y0.value, x1.value, y1.value)
        stream.append((ch, _Char(ch, left, top, right, bottom, max(right - left, bottom - top), gap)))
        gap = False
    return stream


def _lines(page: _Page, exclude: list[BBox]) -> list[_Line]:
    """The page's text lines outside the given boxes (tables), top to bottom."""
    lines: list[_Line] = []
    current: list[str] = []
    boxes: list[_Char] = []

    def flush() -> None:
        text = clean_text("".join(current))
        if text and boxes:
            top = min(c.top for c in boxes)
            lines.append(_Line(text, top, max(c.bottom for c in boxes) - top, max(c.size for c in boxes)))
        current.clear()
        boxes.clear()

    for ch, box in page.stream:
        if box is None:  # a space, or a break PDFium guessed: it also breaks at font changes in rotated text
            if boxes:
                current.append(" ")
        elif not any(_inside(box, b) for b in exclude):
            if boxes and abs(box.cy - boxes[-1].cy) > 0.6 * max(box.size, boxes[-1].size):
                flush()  # the next glyph sits on another line
            current.append(ch)
            boxes.append(box)
    flush()
    lines.sort(key=lambda line: line.top)  # page numbers and headers are often written last or first
    return lines


def _title(lines: list[_Line]) -> str | None:
    """The first lines of page 1 set larger than its body text, e.g. 洪泽区人民政府 / 2023年…年度报告."""
    if not lines:
        return None
    sizes = sorted(line.size for line in lines)
    body = sizes[len(sizes) // 2]
    title: list[str] = []
    for line in lines[:8]:
        if len(line.text) < 4 and not title:
            continue  # a page number above the heading
        if line.size >= body * 1.15 and len(line.text) <= 40:
            title.append(line.text)
        elif title or len(line.text) > 40:
            break
    return clean_text("".join(title)) or None


def _inside(c: _Char, bbox: BBox) -> bool:
    return bbox[0] <= c.cx <= bbox[2] and bbox[1] <= c.cy <= bbox[3]


def _cell_text(chars: list[_Char]) -> str:
    """Chars of one cell → text, line by line; clean_text then drops the breaks inside CJK runs,
    so a vertical label written one character per line reads as one word."""
    if not chars:
        return ""
    rows: list[list[_Char]] = []
    for c in sorted(chars, key=lambda c: c.cy):
        if rows and c.cy - rows[-1][-1].cy < 0.6 * max(c.size, rows[-1][-1].size):
            rows[-1].append(c)
        else:
            rows.append([c])
    lines = []
    for row in rows:
        row.sort(key=lambda c: c.x0)
        parts = [row[0].text]
        for prev, c in zip(row, row[1:], strict=False):  # PDFium's word breaks know the font's advances
            parts.append((" " if c.space_before and c.x0 > prev.x1 else "") + c.text)
        lines.append("".join(parts))
    return clean_text("\n".join(lines))


# --- ruled tables on one page ----------------------------------------------------------------


@functools.cache
def _anchors() -> tuple[str, ...]:
    """Labels that name a standard table (schema/data/tables.toml), long enough not to be prose."""
    from gongkai.schema import TABLES

    return tuple(sorted({a for t in TABLES.values() for a in t.anchors if len(a) >= 4}))


def _is_table_page(page: _Page) -> bool:
    text = _NOT_LABEL_TEXT.sub("", unicodedata.normalize("NFKC", "".join(c.text for c in page.chars)))
    return sum(1 for a in _anchors() if a in text) >= MIN_TABLE_ANCHORS


def _page_grids(handle: pdfium.PdfPage, page: _Page, warnings: list[str]) -> list[_Grid]:
    grids = _grids(_ruling_edges(handle, page.number, warnings, shading=False), page)
    if not grids:  # no drawn borders: cells told apart by their shading alone (a web page printed to PDF)
        grids = _grids(_ruling_edges(handle, page.number, [], shading=True), page)
    return grids


def _grids(edges: list[dict[str, Any]], page: _Page) -> list[_Grid]:
    if len(edges) < 4:
        return []
    edges = merge_edges(edges, TOLERANCE, TOLERANCE, TOLERANCE, TOLERANCE)
    edges = [e for e in edges if (e["width"] if e["orientation"] == "h" else e["height"]) >= TOLERANCE]
    edges = merge_edges(edges + _closing_edges(edges), TOLERANCE, TOLERANCE, TOLERANCE, TOLERANCE)
    cells = intersections_to_cells(edges_to_intersections(edges, TOLERANCE, TOLERANCE))
    grids = [_grid(table_cells, page) for table_cells in cells_to_tables(cells)]
    return [g for g in grids if g.n_rows >= 2]


def _closing_edges(edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A table cut by a page break may lack its last (or first) horizontal line: its vertical lines
    run past every horizontal one. Draw the missing line where two or more of them end together."""
    horizontal = [e for e in edges if e["orientation"] == "h"]

    def on_a_line(x: float, y: float) -> bool:
        return any(
            abs(h["top"] - y) <= TOLERANCE and h["x0"] - TOLERANCE <= x <= h["x1"] + TOLERANCE for h in horizontal
        )

    added: list[dict[str, Any]] = []
    for end in ("top", "bottom"):
        ends = sorted((e[end], e["x0"], not on_a_line(e["x0"], e[end])) for e in edges if e["orientation"] == "v")
        groups: list[list[tuple[float, float, bool]]] = []
        for point in ends:
            if groups and point[0] - groups[-1][-1][0] <= TOLERANCE:
                groups[-1].append(point)
            else:
                groups.append([point])
        for group in groups:
            if sum(dangling for _, _, dangling in group) < 2:
                continue
            y = min(g[0] for g in group) if end == "top" else max(g[0] for g in group)
            added.append(_edge("h", min(g[1] for g in group), y, max(g[1] for g in group), y))
    return added


def _edge(orientation: str, x0: float, top: float, x1: float, bottom: float) -> dict[str, Any]:
    return {
        "object_type": "line",
        "orientation": orientation,
        "x0": x0,
        "x1": x1,
        "top": top,
        "bottom": bottom,
        "doctop": top,
        "width": x1 - x0,
        "height": bottom - top,
    }


def _grid(boxes: list[tuple[float, float, float, float]], page: _Page) -> _Grid:
    """Cell boxes of one table → cells with row/col spans read off the shared boundaries."""
    xs = _boundaries([b[0] for b in boxes] + [b[2] for b in boxes])
    ys = _boundaries([b[1] for b in boxes] + [b[3] for b in boxes])
    cells: list[_Cell] = []
    at: dict[tuple[int, int], int] = {}  # grid position → index of the cell covering it
    for x0, top, x1, bottom in sorted(boxes, key=lambda b: (b[1], b[0])):
        row, col = _index(ys, top), _index(xs, x0)
        rowspan, colspan = max(1, _index(ys, bottom) - row), max(1, _index(xs, x1) - col)
        at.update(((r, k), len(cells)) for r in range(row, row + rowspan) for k in range(col, col + colspan))
        cells.append(_Cell(row, col, rowspan, colspan, "", (x0, top, x1, bottom), page.number))
    chars: dict[int, list[_Char]] = {}
    for c in page.chars:
        r, k = bisect.bisect(ys, c.cy) - 1, bisect.bisect(xs, c.cx) - 1
        if not (0 <= r < len(ys) - 1 and 0 <= k < len(xs) - 1):
            continue
        if (r, k) not in at:  # text where a border is missing (e.g. the top line at a page break)
            at[(r, k)] = len(cells)
            cells.append(_Cell(r, k, 1, 1, "", (xs[k], ys[r], xs[k + 1], ys[r + 1]), page.number))
        chars.setdefault(at[(r, k)], []).append(c)
    for i, cell_chars in chars.items():
        cells[i].text = _cell_text(cell_chars)
    return _Grid(bbox=(xs[0], ys[0], xs[-1], ys[-1]), xs=xs, cells=cells, row_pages=[page.number] * (len(ys) - 1))


def _boundaries(values: list[float]) -> list[float]:
    merged: list[float] = []
    for v in sorted(values):
        if not merged or v - merged[-1] > 1.0:
            merged.append(v)
    return merged


def _index(boundaries: list[float], value: float) -> int:
    """The boundary nearest to value."""
    i = bisect.bisect(boundaries, value)
    return i - 1 if i == len(boundaries) or (i > 0 and value - boundaries[i - 1] < boundaries[i] - value) else i


def _ruling_edges(page: pdfium.PdfPage, number: int, warnings: list[str], shading: bool) -> list[dict[str, Any]]:
    """Visible straight lines of the page as pdfplumber edges: stroked segments and thin filled bars,
    and with `shading` the outlines of wider filled shapes too.

    White or unpainted shapes are left out: an editor that paints a white box behind every line of
    text would otherwise turn the whole page into a table.
    """
    view = _View.of(page)
    segments: list[tuple[float, float, float, float]] = []
    for n_paths, (obj, matrix) in enumerate(_path_objects(page.raw), start=1):
        if n_paths > MAX_PATHS_PER_PAGE:
            warnings.append(f"page {number}: over {MAX_PATHS_PER_PAGE} vector paths, tables not searched")
            return []
        segments += _visible_segments(obj, matrix, shading)
    edges = []
    for x0, y0, x1, y1 in segments:
        ax0, atop, ax1, abottom = view.box(x0, y0, x1, y1)
        orientation = "h" if abottom - atop < 1.0 else "v" if ax1 - ax0 < 1.0 else None
        if orientation == "h":
            atop = abottom = (atop + abottom) / 2
        elif orientation == "v":
            ax0 = ax1 = (ax0 + ax1) / 2
        else:
            continue
        edges.append(_edge(orientation, ax0, atop, ax1, abottom))
    return edges


_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _path_objects(page_handle: Any) -> Iterator[tuple[Any, _Matrix]]:
    """Path objects of a page, also inside form XObjects, with the matrix to page space."""

    def walk(count: int, get: Any, outer: _Matrix, depth: int) -> Iterator[tuple[Any, _Matrix]]:
        for i in range(count):
            obj = get(i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
                yield obj, outer
            elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 4:
                m = pdfium_c.FS_MATRIX()
                pdfium_c.FPDFPageObj_GetMatrix(obj, m)
                inner = _compose((m.a, m.b, m.c, m.d, m.e, m.f), outer)
                yield from walk(
                    pdfium_c.FPDFFormObj_CountObjects(obj),
                    lambda k, o=obj: pdfium_c.FPDFFormObj_GetObject(o, k),
                    inner,
                    depth + 1,
                )

    yield from walk(
        pdfium_c.FPDFPage_CountObjects(page_handle), lambda k: pdfium_c.FPDFPage_GetObject(page_handle, k), _IDENTITY, 0
    )


def _compose(inner: _Matrix, outer: _Matrix) -> _Matrix:
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def _visible_segments(obj: Any, outer: _Matrix, shading: bool) -> list[tuple[float, float, float, float]]:
    fill_mode, stroked = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDFPath_GetDrawMode(obj, fill_mode, stroked)
    stroke_visible = bool(stroked.value) and not _is_white(obj, pdfium_c.FPDFPageObj_GetStrokeColor)
    fill_visible = fill_mode.value != 0 and not _is_white(obj, pdfium_c.FPDFPageObj_GetFillColor)
    if not (stroke_visible or fill_visible):
        return []
    m = pdfium_c.FS_MATRIX()
    pdfium_c.FPDFPageObj_GetMatrix(obj, m)
    a, b, c, d, e, f = _compose((m.a, m.b, m.c, m.d, m.e, m.f), outer)
    x, y = ctypes.c_float(), ctypes.c_float()
    points: list[tuple[float, float]] = []
    segments: list[tuple[float, float, float, float]] = []
    start: tuple[float, float] | None = None
    for i in range(pdfium_c.FPDFPath_CountSegments(obj)):
        seg = pdfium_c.FPDFPath_GetPathSegment(obj, i)
        pdfium_c.FPDFPathSegment_GetPoint(seg, x, y)
        point = (a * x.value + c * y.value + e, b * x.value + d * y.value + f)
        kind = pdfium_c.FPDFPathSegment_GetType(seg)
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO or not points:
            start = point
        elif kind == pdfium_c.FPDF_SEGMENT_LINETO:
            segments.append((*points[-1], *point))
        if pdfium_c.FPDFPathSegment_GetClose(seg) and start is not None:
            segments.append((*point, *start))
        points.append(point)
    if stroke_visible or shading:
        return segments
    # Filled only: a thin bar is a drawn line; a wider fill is cell shading, not a border.
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if not points:
        return []
    w, h = max(xs) - min(xs), max(ys) - min(ys)
    if h <= THIN < w:
        return [(min(xs), (min(ys) + max(ys)) / 2, max(xs), (min(ys) + max(ys)) / 2)]
    if w <= THIN < h:
        return [((min(xs) + max(xs)) / 2, min(ys), (min(xs) + max(xs)) / 2, max(ys))]
    return []


def _is_white(obj: Any, get_color: Any) -> bool:
    r, g, b, alpha = (ctypes.c_uint() for _ in range(4))
    if not get_color(obj, r, g, b, alpha):
        return False
    return alpha.value == 0 or min(r.value, g.value, b.value) >= 250


# --- tables continued on the next page ----------------------------------------------------------


def _join_across_pages(grids: list[_Grid], lines: dict[int, list[_Line]]) -> list[_Grid]:
    joined: list[_Grid] = []
    for grid in grids:
        previous = joined[-1] if joined else None
        if previous is not None and _continues(previous, grid, lines):
            _append(previous, grid)
        else:
            joined.append(grid)
    return joined


def _continues(a: _Grid, b: _Grid, lines: dict[int, list[_Line]]) -> bool:
    """b is a headerless continuation of a: a ends its page, b opens the next, same column lines."""
    page = b.row_pages[0]
    if page != a.last_page + 1:
        return False
    if abs(a.xs[0] - b.xs[0]) > TOLERANCE or abs(a.xs[-1] - b.xs[-1]) > TOLERANCE:
        return False
    if not (_within(b.xs, a.xs) or _within(a.xs, b.xs)):  # one part may merge columns the other splits
        return False
    after_a = [line for line in lines.get(a.last_page, []) if line.top > a.bbox[3]]
    before_b = [line for line in lines.get(page, []) if line.top + line.height < b.bbox[1]]
    return all(len(line.text) <= SHORT_LINE for line in after_a + before_b)


def _append(a: _Grid, b: _Grid) -> None:
    """Join b's rows under a's. Labels cut by the page break (a vertical merge such as
    三、本年度办理结果, or a row split mid-label such as …申请数 / 量) continue a's cell."""
    xs = a.xs if _within(b.xs, a.xs) else b.xs
    a.cells = _remap_columns(a.cells, a.xs, xs)
    a.xs = xs
    b.cells, b.xs = _remap_columns(b.cells, b.xs, xs), xs
    _drop_repeated_header(a, b)
    cells = b.cells
    last = a.n_rows - 1
    first_row = [c for c in cells if c.row == 0]
    split = _split_row(a, last, first_row)
    continued = {id(c): above for c in first_row if (above := _continued_cell(a, last, c, split)) is not None}
    fragment = split and all(id(c) in continued or not c.text for c in first_row)
    shift = a.n_rows - (1 if fragment else 0)
    for c in cells:
        above = continued.get(id(c))
        if above is not None:
            above.text = clean_text(above.text + c.text)
            above.rowspan += c.rowspan - (1 if fragment else 0)
        elif fragment and c.row == 0:
            if c.rowspan > 1:  # an empty cell reaching below the split row
                a.cells.append(_Cell(shift + 1, c.col, c.rowspan - 1, c.colspan, c.text, c.bbox, c.page))
        else:
            a.cells.append(_Cell(c.row + shift, c.col, c.rowspan, c.colspan, c.text, c.bbox, c.page))
    a.row_pages += b.row_pages[1:] if fragment else b.row_pages
    a.bbox = b.bbox


def _drop_repeated_header(a: _Grid, b: _Grid) -> None:
    """Word repeats a table's header rows on every page it spans; keep them once."""
    width = len(a.xs) - 1

    def texts(grid: _Grid, row: int) -> list[str]:
        return [cell.text if (cell := grid.covering(row, k)) else "" for k in range(width)]

    k = 0
    while k < min(a.n_rows, b.n_rows - 1) and any(texts(b, k)) and texts(a, k) == texts(b, k):
        k += 1
    if k:
        b.cells = [
            _Cell(max(c.row, k) - k, c.col, c.row + c.rowspan - max(c.row, k), c.colspan, c.text, c.bbox, c.page)
            for c in b.cells
            if c.row + c.rowspan > k
        ]
        b.row_pages = b.row_pages[k:]


def _within(xs: list[float], others: list[float]) -> bool:
    return all(min(abs(x - o) for o in others) <= TOLERANCE for x in xs)


def _remap_columns(cells: list[_Cell], xs: list[float], new_xs: list[float]) -> list[_Cell]:
    to_new = {i: min(range(len(new_xs)), key=lambda k: abs(new_xs[k] - x)) for i, x in enumerate(xs)}
    return [
        _Cell(c.row, to_new[c.col], c.rowspan, to_new[c.col + c.colspan] - to_new[c.col], c.text, c.bbox, c.page)
        for c in cells
    ]


def _split_row(a: _Grid, last: int, first_row: list[_Cell]) -> bool:
    """b's first row is the rest of a's last row, cut by the page break: it shows no number, and is
    blank where a's last row has one."""
    if any(_is_number(c.text) for c in first_row):
        return False
    return any(
        not c.text and (above := a.covering(last, c.col)) is not None and _is_number(above.text) for c in first_row
    )


def _continued_cell(a: _Grid, last: int, c: _Cell, split: bool) -> _Cell | None:
    """The cell of a's last row that c (in b's first row) continues, if any: a blank under a label is
    the rest of a merged label; a text is the rest of a label when its row or the label itself
    was cut (a new row's label such as 行政强制 under 行政处罚 is not)."""
    above = a.covering(last, c.col)
    if above is None or above.col != c.col or above.colspan != c.colspan:
        return None
    if not above.text or _is_number(above.text) or _is_number(c.text):
        return None
    if not c.text:
        return above
    if _ENUMERATION.match(c.text):
        return None
    return above if split or above.rowspan > 1 or c.rowspan > 1 else None


def _is_number(text: str) -> bool:
    """A printed value (by the schema's value rules, as mapping reads it), not a label."""
    from gongkai.schema.values import is_number  # imported late: see extractors/__init__.py on import order

    return is_number(text)


def _to_table(index: int, grid: _Grid) -> Table:
    """Fill holes (a cell whose borders were not found) with empty anchors, then resolve spans."""
    width = len(grid.xs) - 1
    occupied: set[tuple[int, int]] = set()
    by_row: dict[int, list[_Cell]] = {}
    for c in sorted(grid.cells, key=lambda c: (c.row, c.col)):
        if any((r, k) in occupied for r in range(c.row, c.row + c.rowspan) for k in range(c.col, c.col + c.colspan)):
            continue  # overlapping boxes from odd borders: keep the first
        occupied.update((r, k) for r in range(c.row, c.row + c.rowspan) for k in range(c.col, c.col + c.colspan))
        by_row.setdefault(c.row, []).append(c)
    spans: list[list[tuple[str, int, int]]] = []
    bboxes: list[list[BBox | None]] = []
    for r in range(grid.n_rows):
        row_cells = {c.col: c for c in by_row.get(r, [])}
        spans.append([])
        bboxes.append([])
        for k in range(width):
            if k in row_cells:
                c = row_cells[k]
                spans[-1].append((c.text, c.rowspan, c.colspan))
                bboxes[-1].append(c.bbox)
            elif (r, k) not in occupied:
                spans[-1].append(("", 1, 1))
                bboxes[-1].append(None)
    pages: list[int | None] = list(grid.row_pages)
    return build_grid(index, spans, page=grid.row_pages[0], pages=pages, bboxes=bboxes)
