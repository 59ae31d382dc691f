"""Tables pasted as pictures: images inside a document whose own text holds no standard table, read by OCR.

A picture has no page or resolution of its own: its resolution is estimated from its text (a report's body is
set at ~10.5 pt, its detected lines ~14 pt high), and it is scaled so that text stands ~29 px high (200 dpi), where the recogniser reads best.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import cv2
import numpy as np

from gongkai.extractors.model import Document
from gongkai.extractors.ocr import Limits
from gongkai.extractors.ocr.assemble import tables_of
from gongkai.extractors.ocr.engine import configure, locate
from gongkai.extractors.ocr.page import PageText, read_page
from gongkai.extractors.ocr.summary import summarise

# The height of a detected line of report text (10.5 pt, 五号) in points: the detector's boxes stand ~1.3 times the
# type size (measured on corpus scans of known dpi: 12.3-16.6 pt a page, ~14 on pages of tables).
BODY_POINTS = 14.0
TARGET_DPI = 200
MAX_PIXELS = 40_000_000  # a picture larger than this (decoded) is not read: ~6000 x 6600
MIN_SIDE = 200  # pixels: a logo or a stamp, not a table


def read_pictures(images: Iterable[tuple[bytes, int | None]], doc: Document, bounds: Limits) -> None:
    """OCR each picture (bytes and the page it sits on, if known) into `doc`'s tables, in place, within the
    document's picture cap and time budget; say what was done in its warnings."""
    configure(bounds.threads)
    started = time.process_time()
    read: list[PageText] = []
    for ordinal, (data, page) in enumerate(images, start=1):
        if ordinal > bounds.max_pages:
            doc.warnings.append(f"OCR: more than {bounds.max_pages} pictures, read the first {bounds.max_pages}")
            break
        if time.process_time() - started > bounds.budget:
            doc.warnings.append(f"OCR: time budget of {bounds.budget:.0f} s spent after {ordinal - 1} pictures")
            break
        gray = decode(data)
        if gray is None:
            continue
        text = read_picture(gray, page if page is not None else ordinal)
        if text.grids or text.tables:
            read.append(text)
    tables = tables_of(read, doc.warnings, "picture", len(doc.tables) + 1)
    doc.tables.extend(tables)
    if read:
        doc.ocr_pages = [p.number for p in read]
        doc.warnings.extend(summarise(read, "picture", len(tables)))


def decode(data: bytes) -> np.ndarray | None:
    """A grey image of the picture's bytes (PNG, JPEG, GIF, BMP, TIFF), or None for what cannot be one."""
    array = np.frombuffer(data, np.uint8)
    header = cv2.imdecode(array, cv2.IMREAD_REDUCED_GRAYSCALE_8)  # cheap look at the size first
    if header is None or header.size * 64 > MAX_PIXELS:
        return None
    gray = cv2.imdecode(array, cv2.IMREAD_GRAYSCALE)
    if gray is None or min(gray.shape) < MIN_SIDE:
        return None
    return gray


def read_picture(gray: np.ndarray, page: int) -> PageText:
    lines = locate(gray)
    heights = sorted(b[3] - b[1] for b in lines if b[2] - b[0] > 1.5 * (b[3] - b[1]))
    dpi = heights[len(heights) // 2] / BODY_POINTS * 72 if heights else TARGET_DPI
    if not TARGET_DPI * 0.8 <= dpi <= TARGET_DPI * 1.5:
        factor = TARGET_DPI / dpi
        gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)
        dpi = TARGET_DPI
    return read_page(gray, dpi, page)
