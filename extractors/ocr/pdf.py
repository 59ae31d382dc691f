"""Scanned PDFs: every page an image, no text layer. Pages are rendered by PDFium (under the PDF reader's lock),
then read by OCR one at a time, within the document's page cap and time budget."""

from __future__ import annotations

import threading
import time

import numpy as np
import pypdfium2 as pdfium

from gongkai.extractors.model import Document, TextBlock, UnreadableDocument
from gongkai.extractors.ocr import Limits
from gongkai.extractors.ocr.assemble import tables_of
from gongkai.extractors.ocr.engine import Image, configure
from gongkai.extractors.ocr.page import PageText, read_page
from gongkai.extractors.ocr.summary import summarise

INK = 128  # grey level below which a pixel is ink
BLANK_SHARE = 0.0005  # a page with less ink than this share of its pixels is blank (a page number is ~0.001)
MAX_PAGES_SEARCHED = 500  # pages looked at for pictures (as the PDF reader reads at most 500)


def read_scanned(data: bytes, lock: threading.Lock, reason: str, bounds: Limits) -> Document:
    """The document model of an image-only PDF; `reason` is the error raised when OCR reads no text either."""
    configure(bounds.threads)
    started = time.process_time()
    warnings: list[str] = []
    pages: list[PageText] = []
    with lock:
        pdf = pdfium.PdfDocument(data)
        n_pages = len(pdf)
    try:
        if n_pages > bounds.max_pages:
            warnings.append(f"OCR: {n_pages} scanned pages, read the first {bounds.max_pages} (GONGKAI_OCR_MAX_PAGES)")
        for index in range(min(n_pages, bounds.max_pages)):
            if time.process_time() - started > bounds.budget:
                warnings.append(f"OCR: time budget of {bounds.budget:.0f} s spent after {index} pages; pages "
                                f"{index + 1}-{n_pages} not read (GONGKAI_OCR_BUDGET)")
                break
            with lock:
                page = pdf[index]
                try:
                    gray = page.render(scale=bounds.dpi / 72, grayscale=True).to_numpy()
                finally:
                    page.close()
            if np.count_nonzero(gray < INK) < BLANK_SHARE * gray.size:
                continue  # a blank sheet: nothing to read (and no model to load for it)
            pages.append(read_page(gray.copy(), bounds.dpi, index + 1))
    finally:
        with lock:
            pdf.close()
    if not any(p.lines or p.grids or p.tables for p in pages):
        raise UnreadableDocument(f"{reason}, and OCR read no text on it")
    tables = tables_of(pages, warnings, "page")
    blocks = [TextBlock(line.text, p.number) for p in pages for line in p.lines]
    warnings += summarise(pages, "page", len(tables))
    return Document(
        format="pdf",
        blocks=blocks,
        tables=tables,
        title=_title(blocks),
        warnings=warnings,
        ocr_pages=[p.number for p in pages if p.number is not None],
    )


def _title(blocks: list[TextBlock]) -> str | None:
    """The first lines of page 1 up to the one naming the report (…年度报告), as a printed heading runs."""
    head: list[str] = []
    for block in blocks[:6]:
        if block.page != 1:
            break
        head.append(block.text)
        if "报告" in block.text:
            return "".join(head)
    return blocks[0].text if blocks else None


def read_page_pictures(data: bytes, lock: threading.Lock, named: list[int], doc: Document, bounds: Limits) -> None:
    """A PDF with a text layer whose tables may be pictures (the reader `named` pages that show a table's labels
    but no grid, or only an image): the pictures on its pages are rendered and read, into `doc` in place, up to
    the page cap and the time budget. The pages' own text is never OCR'd."""
    configure(bounds.threads)
    started = time.process_time()
    read: list[PageText] = []
    with lock:
        pdf = pdfium.PdfDocument(data)
        count = min(len(pdf), MAX_PAGES_SEARCHED)
    searched = 0
    try:
        for number in range(min(named, default=1), count + 1):
            if searched >= bounds.max_pages:
                doc.warnings.append(f"OCR: pictures on more than {bounds.max_pages} pages; read the first (GONGKAI_OCR_MAX_PAGES)")
                break
            if time.process_time() - started > bounds.budget:
                doc.warnings.append(f"OCR: time budget of {bounds.budget:.0f} s spent; pictures on page {number} and after not read")
                break
            with lock:
                areas, gray = _picture_areas(pdf, number - 1, bounds.dpi)
            searched += bool(areas)
            scale = bounds.dpi / 72
            for x0, top, x1, bottom in areas:
                part = gray[int(top * scale): int(bottom * scale), int(x0 * scale): int(x1 * scale)]
                if min(part.shape) < 100:
                    continue  # a rule, a logo
                found = read_page(part.copy(), bounds.dpi, number, origin=(x0, top))
                if found.grids or found.tables:
                    read.append(found)
    finally:
        with lock:
            pdf.close()
    tables = tables_of(read, doc.warnings, "picture on page", len(doc.tables) + 1)
    doc.tables.extend(tables)
    pages_read = {p.number for p in read}
    # the pages whose tables OCR read no longer lack them
    if read:  # the reader's "no grid" and "image without text" on the pages named were these pictures
        doc.warnings = [w for w in doc.warnings
                        if not any(w.startswith((f"unreadable table: page {n} ", f"page {n}: an image")) for n in named)]
    doc.tables.sort(key=lambda t: t.page or 0)
    for index, table in enumerate(doc.tables, start=1):
        table.index = index
    if read:
        doc.ocr_pages = sorted(pages_read)
        doc.warnings.extend(summarise(read, "page", len(tables)))


def _picture_areas(pdf: pdfium.PdfDocument, index: int, dpi: int) -> tuple[list[tuple[float, float, float, float]], Image]:
    """The boxes (points from the top-left) of a page's images, and the page rendered grey at `dpi`."""
    import pypdfium2.raw as pdfium_c

    page = pdf[index]
    try:
        height = page.get_height()
        areas = []
        for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):
            left, bottom, right, top = obj.get_bounds()
            areas.append((max(0.0, left), max(0.0, height - top), right, height - bottom))
        gray = page.render(scale=dpi / 72, grayscale=True).to_numpy().copy() if areas else np.zeros((0, 0), np.uint8)
    finally:
        page.close()
    return areas, gray
