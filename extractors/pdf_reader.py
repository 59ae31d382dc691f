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
from typing import TYPE_CHECKING, Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges

from gongkai.extractors.model import BBox, Document, Table, TextBlock, UnreadableDocument, build_grid
from gongkai.extractors.pdf_join import join_across_pages
from gongkai.extractors.pdf_layout import SHORT_LINE, TOLERANCE, Cell, Char, Grid, Line, View, cell_layout, inside
from gongkai.extractors.pdf_rules import edge, ruling_edges
from gongkai.extractors.pdf_textgrid import Columns, NoTable, Refused, continued, rebuild, to_table
from gongkai.extractors.textnorm import clean_text

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits

MAX_PAGES = 500  # reports run to 10–30 pages; beyond this we read the first MAX_PAGES and warn
MAX_TABLE_PAGES = 40  # pages searched for ruled tables, in page order
OVERPRINT = 1.5  # points: a glyph drawn again this close over the same glyph is a fake-bold copy
MIN_TABLE_ANCHORS = 2  # distinct anchor labels a page must show to be searched for tables

_NOT_LABEL_TEXT = re.compile(r"[\s\W_]+")
_PDFIUM_LOCK = threading.Lock()
# Fonts in WPS/Word exports often map common ideographs to Kangxi radicals (⼀ ⼆ ⽇ for 一 二 日), so
# the text layer says 第⼆⼗条; fold them one for one (positions stay aligned with PDFium's indexes).
_RADICALS = {
    cp: folded
    for cp in (*range(0x2E80, 0x2EF4), *range(0x2F00, 0x2FD6))
    if len(folded := unicodedata.normalize("NFKC", chr(cp))) == 1 and folded != chr(cp)
}


@dataclass(slots=True)
class _Page:
    number: int  # 1-based
    stream: list[tuple[str, Char | None]]  # PDFium's text stream; None for spaces and breaks
    chars: list[Char] = field(default_factory=list)  # the drawn glyphs
    grids: list[Grid] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)  # outside the grids
    searched: bool = False  # for tables
    names_tables: bool = False  # its text shows the labels of standard tables
    text_rows: list[list[str]] = field(default_factory=list)  # a rule-less table rebuilt from glyph positions

    @property
    def opens_with_table(self) -> bool:
        """Its first table comes before any text but a page number or running header."""
        if not self.grids:
            return False
        top = self.grids[0].bbox[1]
        return all(len(line.text) <= SHORT_LINE for line in self.lines if line.top < top)

    @property
    def table_runs_on(self) -> bool:
        """Its last table reaches the page break (nothing but a page number below it)."""
        if not self.grids:
            return False
        bottom = self.grids[-1].bbox[3]
        return all(len(line.text) <= SHORT_LINE for line in self.lines if line.top > bottom)


def read(data: bytes, ocr_limits: Limits | None = None) -> Document:
    """Read a PDF into the document model; raise UnreadableDocument saying why it cannot be read. `ocr_limits`:
    the caller's bounds for OCR of scanned pages and pictures (the settings'; the defaults when None)."""
    if b"%PDF" not in data[:1024]:  # readers accept junk before the header, as PDFium does
        raise UnreadableDocument(f"not a PDF: starts with {data[:8]!r}")
    try:
        with _PDFIUM_LOCK:
            doc = _read(data)
        from gongkai.extractors import ocr  # tables drawn as pictures on pages with text (none: no cost)

        ocr.read_pdf_pictures(data, _PDFIUM_LOCK, doc, ocr_limits or ocr.Limits())
        return doc
    except _Scanned as exc:
        from gongkai.extractors import ocr  # the optional extra: only a scan needs it

        ocr.require(str(exc))
        from gongkai.extractors.ocr.pdf import read_scanned

        return read_scanned(data, _PDFIUM_LOCK, str(exc), ocr_limits or ocr.Limits())


class _Scanned(UnreadableDocument):
    """No page has a text layer: read by OCR when the extra is installed."""


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
    grids = join_across_pages([g for p in pages for g in p.grids], {p.number: p.lines for p in pages})
    # Ruled grids and rebuilt rule-less tables, in page order (a page holds one or the other).
    parts: list[tuple[int, Grid | list[list[str]]]] = [(g.row_pages[0], g) for g in grids]
    parts += [(p.number, p.text_rows) for p in pages if p.text_rows]
    parts.sort(key=lambda part: part[0])
    tables = [
        _to_table(i, part) if isinstance(part, Grid) else to_table(i, page, part)
        for i, (page, part) in enumerate(parts, start=1)
    ]
    return Document(
        format="pdf",
        blocks=[TextBlock(line.text, p.number) for p in pages for line in p.lines],
        tables=tables,
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
            is_table_page = page.names_tables = _is_table_page(page)
            anchored += is_table_page
            if handle is not None and (is_table_page or (pages and pages[-1].table_runs_on)):
                if searched < MAX_TABLE_PAGES:
                    page.grids = _page_grids(handle, page, warnings)
                    page.searched = True
                searched += 1
        page.lines = _lines(page, [g.bbox for g in page.grids])
        pages.append(page)
    if not any(len(p.chars) >= 20 for p in pages):
        raise _Scanned("scanned: no text layer")
    for before, page in zip(pages, pages[1:], strict=False):
        # A table's first rows alone at the foot of a page that names no table (its heading on the page before).
        if not before.searched and before.chars and page.opens_with_table and searched < MAX_TABLE_PAGES:
            with _page(pdf, before.number - 1, warnings) as handle:
                before.grids = _page_grids(handle, before, warnings) if handle is not None else []
            before.lines = _lines(before, [g.bbox for g in before.grids])
            before.searched = True
            searched += 1
    if searched > MAX_TABLE_PAGES:
        warnings.append(f"{searched} pages hold tables: searched the first {MAX_TABLE_PAGES}")
    carried: Columns | None = None  # the columns of a rule-less table running on from the page before
    held: list[Char] = []  # its text after the last row (a header cut by the page break), for this page
    unread: list[tuple[int, str, bool]] = []  # pages naming tables, none read there: (page, why, words form none)
    for page, after in zip(pages, [*pages[1:], None], strict=True):
        unruled = page.names_tables and page.searched and not page.grids and not (after and after.grids)
        refused, no_table = "", True
        if unruled or ((carried or held) and not page.grids):
            hold = after is not None and not after.grids and bool(after.chars)
            try:
                rebuilt = rebuild(continued(held, page.chars), carried, hold)
                page.text_rows, carried, held = rebuilt.rows, rebuilt.columns, rebuilt.tail
            except Refused as exc:
                refused, carried, held, no_table = str(exc), None, [], isinstance(exc, NoTable)
        else:
            carried, held = None, []
        if unruled and not page.text_rows:
            # right after a table refused on the page before, numbers under no header are its rest, not prose
            after_refusal = bool(unread) and unread[-1][0] == page.number - 1 and not unread[-1][2]
            unread.append((page.number, refused or "no table", no_table and not after_refusal))
    read_on = {p.number for p in pages if p.grids or p.text_rows}
    for number, why, no_table in unread:
        if no_table and read_on - {number}:
            continue  # prose naming the tables, which are read on other pages: nothing of them is lost here
        warnings.append(  # the prefix is extract.UNREADABLE_TABLE: extract tells such a report by it
            f"unreadable table: page {number} shows the labels of a standard table but no ruled table"
            f" (drawn without rules, or as a picture); its cells are not read ({why})"
        )
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
        stream = _without_overprints(_text_stream(textpage, View.of(handle)))
    finally:
        textpage.close()
    return _Page(number=number, stream=stream, chars=[c for _, c in stream if c is not None])


def _without_overprints(stream: list[tuple[str, Char | None]]) -> list[tuple[str, Char | None]]:
    """Drop a glyph drawn again over itself: fake bold (the text drawn twice, a fraction of a point apart).
    PDFium drops such a copy when it follows the original; editors also draw the second pass at the end of
    the page, and 217 then reads 221177. Told by position: same character, boxes within OVERPRINT points."""
    seen: dict[tuple[str, int, int], Char] = {}
    kept: list[tuple[str, Char | None]] = []
    for ch, box in stream:
        if box is not None:
            fx, fy = box.cx / OVERPRINT, box.cy / OVERPRINT
            gx, gy = int(fx), int(fy)
            # the copy lies within one cell of the original: look in this cell and the three nearest
            sx, sy = (1 if fx - gx >= 0.5 else -1), (1 if fy - gy >= 0.5 else -1)
            if any(
                (other := seen.get((ch, x, y))) is not None
                and abs(other.cx - box.cx) <= OVERPRINT
                and abs(other.cy - box.cy) <= OVERPRINT
                for x, y in ((gx, gy), (gx + sx, gy), (gx, gy + sy), (gx + sx, gy + sy))
            ):
                continue
            seen.setdefault((ch, gx, gy), box)
        kept.append((ch, box))
    return kept


def _text_stream(textpage: pdfium.PdfTextPage, view: View) -> list[tuple[str, Char | None]]:
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
    stream: list[tuple[str, Char | None]] = []
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
        stream.append((ch, Char(ch, left, top, right, bottom, max(right - left, bottom - top), gap)))
        gap = False
    return stream


def _lines(page: _Page, exclude: list[BBox]) -> list[Line]:
    """The page's text lines outside the given boxes (tables), top to bottom."""
    lines: list[Line] = []
    current: list[str] = []
    boxes: list[Char] = []

    def flush() -> None:
        text = clean_text("".join(current))
        if text and boxes:
            top = min(c.top for c in boxes)
            lines.append(Line(text, top, max(c.bottom for c in boxes) - top, max(c.size for c in boxes)))
        current.clear()
        boxes.clear()

    for ch, box in page.stream:
        if box is None:  # a space, or a break PDFium guessed: it also breaks at font changes in rotated text
            if boxes:
                current.append(" ")
        elif not any(inside(box, b) for b in exclude):
            if boxes and abs(box.cy - boxes[-1].cy) > 0.6 * max(box.size, boxes[-1].size):
                flush()  # the next glyph sits on another line
            current.append(ch)
            boxes.append(box)
    flush()
    lines.sort(key=lambda line: line.top)  # page numbers and headers are often written last or first
    return lines


def _title(lines: list[Line]) -> str | None:
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


@functools.cache
def _anchors() -> tuple[str, ...]:
    """Labels that name a standard table (schema/data/tables.toml), long enough not to be prose."""
    from gongkai.schema import TABLES

    return tuple(sorted({a for t in TABLES.values() for a in t.anchors if len(a) >= 4}))


def _is_table_page(page: _Page) -> bool:
    text = _NOT_LABEL_TEXT.sub("", unicodedata.normalize("NFKC", "".join(c.text for c in page.chars)))
    return sum(1 for a in _anchors() if a in text) >= MIN_TABLE_ANCHORS


def _page_grids(handle: pdfium.PdfPage, page: _Page, warnings: list[str]) -> list[Grid]:
    grids = _grids(ruling_edges(handle, page.number, warnings, shading=False), page)
    if not grids:  # no drawn borders: cells told apart by their shading alone (a web page printed to PDF)
        grids = _grids(ruling_edges(handle, page.number, [], shading=True), page)
    return grids


def _grids(edges: list[dict[str, Any]], page: _Page) -> list[Grid]:
    if len(edges) < 4:
        return []
    edges = merge_edges(edges, TOLERANCE, TOLERANCE, TOLERANCE, TOLERANCE)
    edges = [e for e in edges if (e["width"] if e["orientation"] == "h" else e["height"]) >= TOLERANCE]
    edges = merge_edges(edges + _closing_edges(edges), TOLERANCE, TOLERANCE, TOLERANCE, TOLERANCE)
    cells = intersections_to_cells(edges_to_intersections(edges, TOLERANCE, TOLERANCE))
    grids = [_grid(table_cells, page) for table_cells in cells_to_tables(cells)]
    return grids  # a lone row may be a table's last row on a new page: kept until the join


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
            added.append(edge("h", min(g[1] for g in group), y, max(g[1] for g in group), y))
    return added


def _grid(boxes: list[tuple[float, float, float, float]], page: _Page) -> Grid:
    """Cell boxes of one table → cells with row/col spans read off the shared boundaries."""
    xs = _boundaries([b[0] for b in boxes] + [b[2] for b in boxes])
    ys = _boundaries([b[1] for b in boxes] + [b[3] for b in boxes])
    cells: list[Cell] = []
    at: dict[tuple[int, int], int] = {}  # grid position → index of the cell covering it
    for x0, top, x1, bottom in sorted(boxes, key=lambda b: (b[1], b[0])):
        row, col = _index(ys, top), _index(xs, x0)
        rowspan, colspan = max(1, _index(ys, bottom) - row), max(1, _index(xs, x1) - col)
        at.update(((r, k), len(cells)) for r in range(row, row + rowspan) for k in range(col, col + colspan))
        cells.append(Cell(row, col, rowspan, colspan, "", (x0, top, x1, bottom), page.number))
    chars: dict[int, list[Char]] = {}
    for c in page.chars:
        # Placed by its upper half: the line under a row cut by a page break may cross its last glyphs.
        r, k = bisect.bisect(ys, c.cy - c.size / 4) - 1, bisect.bisect(xs, c.cx) - 1
        if not (0 <= r < len(ys) - 1 and 0 <= k < len(xs) - 1):
            continue
        if (r, k) not in at:  # text where a border is missing (e.g. the top line at a page break)
            at[(r, k)] = len(cells)
            cells.append(Cell(r, k, 1, 1, "", (xs[k], ys[r], xs[k + 1], ys[r + 1]), page.number))
        chars.setdefault(at[(r, k)], []).append(c)
    for i, cell_chars in chars.items():
        cell = cells[i]
        cell.text, cell.line_width, cell.lead = cell_layout(cell_chars)
    return Grid((xs[0], ys[0], xs[-1], ys[-1]), xs, cells, [page.number] * (len(ys) - 1))


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


def _to_table(index: int, grid: Grid) -> Table:
    """Fill holes (a cell whose borders were not found) with empty anchors, then resolve spans."""
    width = len(grid.xs) - 1
    occupied: set[tuple[int, int]] = set()
    by_row: dict[int, list[Cell]] = {}
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
