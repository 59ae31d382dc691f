"""OCR of scanned pages and of tables pasted as pictures: an optional extra (`pip install gongkai[ocr]`).

Only images are read: a PDF page with a text layer never goes through OCR, a picture only where the document's own
text holds no table. Bounded per document by a page cap and a time budget; the model is loaded once per process.
Nothing here downloads: RapidOCR's models ship inside its wheel.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gongkai.extractors.model import Document, UnreadableDocument

EXTRA_HINT = "pip install gongkai[ocr]"
_MODULES = ("rapidocr_onnxruntime", "cv2", "numpy")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per document: pages (and pictures) read, seconds spent, rendering resolution."""

    max_pages: int = 20  # reports run to 10-30 pages, their tables on 2-5 of them
    # CPU seconds of the worker process (all its threads), not wall time: a loaded machine must not cut a
    # document short that a quiet one reads whole. A 5-page report at 200 dpi takes ~50.
    budget: float = 300.0
    dpi: int = 200  # rendering of scanned PDF pages: every gold cell at 200 dpi, ~4 s a page on one core
    threads: int = 2  # ONNX threads per worker process (the model is loaded once, with the first document's)




def available() -> bool:
    """Whether the extra is installed and imports (asked only when an image needs reading)."""
    try:
        for name in _MODULES:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def require(what: str) -> None:
    """Raise UnreadableDocument naming the extra when it is not installed; `what` says what needed it."""
    if not available():
        raise UnreadableDocument(f"{what}; reading it needs OCR, an optional extra: {EXTRA_HINT}")


# What the PDF reader says of a page whose tables may be pictures: a page that names a table but shows no grid,
# or a page that is one image (a scanned page in a document with text, a table pasted as a page-wide picture).
_PICTURE_TABLE = re.compile(r"^(?:unreadable table: page (\d+) shows the labels of a standard table"
                            r"|page (\d+): an image without a text layer)")


def read_pdf_pictures(data: bytes, lock: threading.Lock, doc: Document, bounds: Limits) -> None:
    """A PDF with a text layer whose tables the reader saw named but found no grid for: read the pictures on
    those pages (only them) by OCR, into `doc`. Without the extra, the reader's warning says how to get it."""
    pages = sorted({int(m.group(1) or m.group(2)) for w in doc.warnings if (m := _PICTURE_TABLE.match(w))})
    if not pages:
        return
    if not available():
        doc.warnings.append(f"OCR: tables drawn as pictures on page(s) {', '.join(map(str, pages))} are not read; "
                            f"reading them needs the optional extra: {EXTRA_HINT}")
        return
    from gongkai.extractors.ocr.pdf import read_page_pictures

    # The tables' pictures may sit on other pages than those the reader named (a heading on page 2, the picture
    # on page 3): every page's pictures are candidates, the pages' own text is never OCR'd.
    read_page_pictures(data, lock, pages, doc, bounds)


def read_document_pictures(doc: Document, images: Callable[[], Iterable[bytes]], bounds: Limits) -> None:
    """A DOCX or an HTML page with pictures and no standard table in its own tables: read the pictures by OCR,
    into `doc`. `images`: the pictures' bytes in body order (called only when they are to be read)."""
    if not doc.pictures:
        return
    from gongkai.extractors.mapping import detect_template

    if detect_template(doc) is not None:
        return  # its tables are text; a picture is a logo, a seal, a chart
    if not available():
        doc.warnings.append(f"OCR: {doc.pictures} picture(s) not read (tables pasted as pictures?); "
                            f"reading them needs the optional extra: {EXTRA_HINT}")
        return
    from gongkai.extractors.ocr.pictures import read_pictures

    read_pictures(((data, None) for data in images()), doc, bounds)
