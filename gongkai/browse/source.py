"""A cell's source: the archived file's page as a PNG (PDF), or its table re-read from the file (HTML, DOCX, …).

Everything reads the archive, nothing writes it. PDFium is not thread-safe and the pages are served from
several threads: one lock around every use. Rendered pages and re-read documents are kept in small caches.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from gongkai.warehouse.archive import Archive

MAX_PIXELS = 2000  # the longer side of a rendered page: a page of any size costs at most 2000 × 2000 × 4 bytes
DEFAULT_SCALE = 2.0  # pixels per point (144 dpi) unless the page is larger than MAX_PIXELS allows
CACHE_SIZE = 16

_LOCK = threading.Lock()


class SourceMissing(LookupError):
    """The file, page or table is not there; the message is one line for the reader."""


@dataclass(frozen=True)
class RenderedPage:
    png: bytes
    width_pt: float  # the page as displayed (after its /Rotate), in points: the bbox's coordinate space
    height_pt: float
    scale: float  # pixels per point of `png`


class _Cache(OrderedDict[Any, Any]):
    def get_or(self, key: Any, make: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        while len(self) > CACHE_SIZE:
            self.popitem(last=False)
        return value


_pages = _Cache()
_documents = _Cache()


def _bytes(archive: Archive, sha256: str) -> bytes:
    try:
        if sha256 not in archive:
            raise SourceMissing(f"the file {sha256[:12]}… is not in the archive at {archive.location}")
        return archive.get(sha256)
    except OSError as exc:  # unreadable, or no longer the bytes its digest names: the page says so, the rest shows
        raise SourceMissing(f"the archived file {sha256[:12]}… cannot be read: {exc}") from None


def render_page(archive: Archive, sha256: str, page: int) -> RenderedPage:
    """Page `page` (1-based) of an archived PDF as a PNG, as a reader sees it (the page's rotation applied)."""
    with _LOCK:
        rendered: RenderedPage = _pages.get_or((archive.location, sha256, page), lambda: _render(_bytes(archive, sha256), page))
        return rendered


def _render(data: bytes, page: int) -> RenderedPage:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise SourceMissing(f"the archived PDF cannot be opened: {exc}") from None
    try:
        if not 1 <= page <= len(pdf):
            raise SourceMissing(f"no page {page}: the PDF has {len(pdf)} pages")
        handle = pdf[page - 1]
        try:
            width, height = handle.get_size()
            if handle.get_rotation() % 180:
                width, height = height, width
            scale = min(DEFAULT_SCALE, MAX_PIXELS / max(width, height, 1.0))
            bitmap = handle.render(scale=scale)  # PDFium applies the page's /Rotate, as the extractor's View does
            image = bitmap.to_pil()
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=False)
            # the bitmap's own size tells the scale actually used (PDFium rounds to whole pixels)
            return RenderedPage(buffer.getvalue(), image.width / scale, image.height / scale, scale)
        finally:
            handle.close()
    finally:
        pdf.close()


@dataclass(frozen=True)
class GridSlot:
    text: str
    row: int
    col: int
    rowspan: int
    colspan: int

    def covers(self, row: int | None, col: int | None) -> bool:
        return row is not None and col is not None and self.row <= row < self.row + self.rowspan \
            and self.col <= col < self.col + self.colspan


def source_table(archive: Archive, sha256: str, name: str, table_no: int) -> list[list[GridSlot]]:
    """Table `table_no` of an archived document as the extractor read it, merged cells as spans, so it can be
    drawn as printed. Read with the extractors' own readers (the positions the provenance names)."""
    with _LOCK:
        document = _documents.get_or((archive.location, sha256), lambda: _read(_bytes(archive, sha256), name))
    table = next((t for t in document.tables if t.index == table_no), None)
    if table is None:
        raise SourceMissing(f"the document has no table {table_no} (it has {len(document.tables)})")
    lines: list[list[GridSlot]] = []
    for row in table.rows:
        line = []
        for cell in row:
            if not cell.is_anchor:
                continue
            # a span is a rectangle: walk only as far as it reaches (a sum over all later rows was rows × cells)
            below = (r[cell.col - 1] if len(r) >= cell.col else None for r in islice(table.rows, cell.row, None))
            rowspan = 1 + _run_length(below, cell.origin)
            colspan = 1 + _run_length(islice(row, cell.col, None), cell.origin)
            line.append(GridSlot(cell.text, cell.row, cell.col, rowspan, colspan))
        lines.append(line)
    return lines


def _run_length(cells: Iterable[Any], origin: Any) -> int:
    """How many of `cells`, from the first, belong to the merged cell at `origin` (None: no cell there)."""
    count = 0
    for cell in cells:
        if cell is None or cell.origin != origin:
            break
        count += 1
    return count


def _read(data: bytes, name: str) -> Any:
    from gongkai.extractors import read_document
    from gongkai.extractors.model import UnreadableDocument

    try:
        return read_document(data, name)
    except UnreadableDocument as exc:
        raise SourceMissing(f"the archived file cannot be read: {exc}") from None
