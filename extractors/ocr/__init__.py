"""OCR of scanned pages and of tables pasted as pictures: an optional extra (`pip install gongkai[ocr]`).

Only images are read: a PDF page with a text layer never goes through OCR, a picture only where the document's own
text holds no table. Bounded per document by a page cap and a time budget; the model is loaded once per process.
Nothing here downloads: RapidOCR's models ship inside its wheel.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from gongkai.extractors.model import UnreadableDocument

EXTRA_HINT = "pip install gongkai[ocr]"
_MODULES = ("rapidocr_onnxruntime", "cv2", "numpy")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per document: pages (and pictures) read, seconds spent, rendering resolution."""

    max_pages: int = 20  # reports run to 10-30 pages, their tables on 2-5 of them
    budget: float = 300.0  # seconds; under GONGKAI_EXTRACT_TIMEOUT (600) so the worker is not killed first
    dpi: int = 200  # rendering of scanned PDF pages: every gold cell at 200 dpi, ~4 s a page on one core
    threads: int = 2  # ONNX threads per worker process


def limits() -> Limits:
    """The limits in force: GONGKAI_OCR_MAX_PAGES, GONGKAI_OCR_BUDGET, GONGKAI_OCR_DPI and GONGKAI_OCR_THREADS (validated by
    gongkai/settings.py on the command line; read here because extraction runs in worker processes)."""
    default = Limits()
    try:
        return Limits(
            max_pages=max(1, int(os.environ.get("GONGKAI_OCR_MAX_PAGES", default.max_pages))),
            budget=max(1.0, float(os.environ.get("GONGKAI_OCR_BUDGET", default.budget))),
            dpi=min(600, max(72, int(os.environ.get("GONGKAI_OCR_DPI", default.dpi)))),
            threads=min(64, max(1, int(os.environ.get("GONGKAI_OCR_THREADS", default.threads)))),
        )
    except ValueError:
        return default


def available() -> bool:
    """Whether the extra is installed (without importing it: the import costs half a second)."""
    return all(importlib.util.find_spec(name) is not None for name in _MODULES)


def require(what: str) -> None:
    """Raise UnreadableDocument naming the extra when it is not installed; `what` says what needed it."""
    if not available():
        raise UnreadableDocument(f"{what}; reading it needs OCR, an optional extra: {EXTRA_HINT}")
