"""Scanned PDFs: every page an image, no text layer. Pages are rendered by PDFium (under the PDF reader's lock),
then read by OCR one at a time, within the document's page cap and time budget."""

from __future__ import annotations

import threading
import time

import pypdfium2 as pdfium

from gongkai.extractors.model import Document, Table, TextBlock, UnreadableDocument
from gongkai.extractors.ocr import Limits, limits
from gongkai.extractors.ocr.page import PageText, read_page
from gongkai.extractors.ocr.summary import summarise


def read_scanned(data: bytes, lock: threading.Lock, reason: str, bounds: Limits | None = None) -> Document:
    """The document model of an image-only PDF; `reason` is the error raised when OCR reads no text either."""
    bounds = bounds or limits()
    started = time.monotonic()
    warnings: list[str] = []
    pages: list[PageText] = []
    with lock:
        pdf = pdfium.PdfDocument(data)
        n_pages = len(pdf)
    try:
        if n_pages > bounds.max_pages:
            warnings.append(f"OCR: {n_pages} scanned pages, read the first {bounds.max_pages} (GONGKAI_OCR_MAX_PAGES)")
        for index in range(min(n_pages, bounds.max_pages)):
            if time.monotonic() - started > bounds.budget:
                warnings.append(f"OCR: time budget of {bounds.budget:.0f} s spent after {index} pages; pages "
                                f"{index + 1}-{n_pages} not read (GONGKAI_OCR_BUDGET)")
                break
            with lock:
                page = pdf[index]
                try:
                    gray = page.render(scale=bounds.dpi / 72, grayscale=True).to_numpy()
                finally:
                    page.close()
            pages.append(read_page(gray.copy(), bounds.dpi, index + 1))
    finally:
        with lock:
            pdf.close()
    if not any(p.lines or p.tables for p in pages):
        raise UnreadableDocument(f"{reason}, and OCR read no text on it")
    tables: list[Table] = []
    for p in pages:
        for t in p.tables:
            t.index = len(tables) + 1
            tables.append(t)
    blocks = [TextBlock(line, p.number) for p in pages for line in p.lines]
    warnings += summarise(pages, "page")
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
