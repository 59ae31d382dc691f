"""Scans made from real reports, as office scanners make them: each page rendered to a grey image at a given dpi,
turned by a small angle, with sensor noise and JPEG compression, and wrapped back into an image-only PDF.

Cached by content (the source's bytes and the parameters) in pytest's cache folder, as tests/pdf_sweep.py caches
its LibreOffice renderings: generating a 300-dpi scan takes a few seconds; reading it by OCR far longer.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image

GENERATOR_VERSION = "1"  # part of the cache key: bump when the scans change


def degrade(gray: np.ndarray, angle: float, seed: int) -> Image.Image:
    """What a scanner does to a page: a slight turn, noise, a grey cast; JPEG comes at saving."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(gray).rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=255)
    pixels = np.asarray(image, dtype=np.float32) * 0.92 + 12  # paper is never white, ink never black
    pixels += rng.normal(0, 9, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def scan_pages(pdf_bytes: bytes, dpi: int, angle: float, seed: int = 7, only: tuple[int, ...] = ()) -> list[Image.Image]:
    """`only`: the pages scanned (1-based; all when empty)."""
    pdf = pdfium.PdfDocument(pdf_bytes)
    try:
        pages = []
        for i in range(len(pdf)):
            if only and i + 1 not in only:
                continue
            page = pdf[i]
            gray = page.render(scale=dpi / 72, grayscale=True).to_numpy().copy()
            page.close()
            # alternate the turn's sense page by page, as sheets go through a feeder
            pages.append(degrade(gray, angle if i % 2 == 0 else -angle, seed + i))
        return pages
    finally:
        pdf.close()


def images_to_pdf(pages: list[Image.Image], dpi: int, quality: int = 75) -> bytes:
    """An image-only PDF, each page one JPEG at `dpi` (Pillow writes a page per image, no text layer)."""
    jpegs = []
    for page in pages:
        buffer = io.BytesIO()
        page.save(buffer, "JPEG", quality=quality)
        jpegs.append(Image.open(io.BytesIO(buffer.getvalue())))
    out = io.BytesIO()
    jpegs[0].save(out, "PDF", save_all=True, append_images=jpegs[1:], resolution=float(dpi))
    return out.getvalue()


def scanned_pdf(source: bytes, dpi: int, cache: Path, angle: float = 1.2, only: tuple[int, ...] = ()) -> bytes:
    """An image-only scan of a PDF's pages (`only` those, when given), cached."""
    pages = f"{','.join(map(str, only))}|" if only else ""
    key = hashlib.sha256(f"{GENERATOR_VERSION}|{dpi}|{angle}|{pages}".encode() + source).hexdigest()[:24]
    path = cache / f"scan-{key}.pdf"
    if path.exists():
        return path.read_bytes()
    data = images_to_pdf(scan_pages(source, dpi, angle, only=only), dpi)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def table_pictures(pdf_bytes: bytes, dpi: int, only: tuple[int, ...] = ()) -> list[Image.Image]:
    """Each page's tables as one picture (the area their cells cover, as read from the text layer), scanned;
    `only`: those of these pages."""
    from gongkai.extractors import pdf_reader

    doc = pdf_reader.read(pdf_bytes)
    areas: dict[int, list[float]] = {}
    for table in doc.tables:
        for row in table.rows:
            for cell in row:
                if cell.bbox is None or cell.page is None:
                    continue
                box = areas.setdefault(cell.page, [*cell.bbox])
                box[:] = [min(box[0], cell.bbox[0]), min(box[1], cell.bbox[1]), max(box[2], cell.bbox[2]), max(box[3], cell.bbox[3])]
    pdf = pdfium.PdfDocument(pdf_bytes)
    try:
        pictures = []
        for number, (x0, top, x1, bottom) in sorted(areas.items()):
            if only and number not in only:
                continue
            page = pdf[number - 1]
            gray = page.render(scale=dpi / 72, grayscale=True).to_numpy().copy()
            page.close()
            f, margin = dpi / 72, 6
            part = gray[int((top - margin) * f): int((bottom + margin) * f), int((x0 - margin) * f): int((x1 + margin) * f)]
            pictures.append(degrade(part, 0.0, number))
        return pictures
    finally:
        pdf.close()


def pictures_docx(pdf_bytes: bytes, dpi: int) -> bytes:
    """A DOCX of the report's text with its tables pasted as pictures (JPEG, as screenshots are pasted)."""
    import docx
    from docx.shared import Inches

    from gongkai.extractors import pdf_reader

    text = pdf_reader.read(pdf_bytes)
    document = docx.Document()
    for block in text.blocks:
        document.add_paragraph(block.text)
    for picture in table_pictures(pdf_bytes, dpi):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=80)
        buffer.seek(0)
        # as wide as the text, but never taller than a page holds (a picture cut at the page foot loses rows)
        width, height = picture.size
        document.add_picture(buffer, width=Inches(min(6.0, 8.0 * width / height)))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pictures_html(pdf_bytes: bytes, dpi: int, only: tuple[int, ...] = ()) -> bytes:
    """An HTML report page of the report's text with its tables pasted into the body as PNG pictures, inline
    (`data:image/png;base64,…`, as web editors store a pasted screenshot)."""
    import base64
    import html

    from gongkai.extractors import pdf_reader

    text = pdf_reader.read(pdf_bytes)
    body = [f"<p>{html.escape(block.text)}</p>" for block in text.blocks]
    for picture in table_pictures(pdf_bytes, dpi, only):
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        body.append(f'<p><img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"></p>')
    title = html.escape(text.title or "")
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>'
            f'<div class="TRS_Editor">{"".join(body)}</div></body></html>')
    return page.encode("utf-8")


def framed_prose_pdf(pdf_bytes: bytes, page: int, dpi: int) -> bytes:
    """A scan of a page of prose with text boxes drawn around its paragraphs: one frame, and one split in two
    side by side (as a text box with two columns), with the noise and turn of a scan."""
    from PIL import ImageDraw

    pdf = pdfium.PdfDocument(pdf_bytes)
    try:
        gray = pdf[page - 1].render(scale=dpi / 72, grayscale=True).to_numpy().copy()
    finally:
        pdf.close()
    image = Image.fromarray(gray)
    draw = ImageDraw.Draw(image)
    width, height = image.size
    f = dpi / 72
    left, right = int(50 * f), width - int(50 * f)
    draw.rectangle((left, int(60 * f), right, int(300 * f)), outline=0, width=max(1, int(f)))
    draw.rectangle((left, int(320 * f), right, int(560 * f)), outline=0, width=max(1, int(f)))
    draw.line((width // 2, int(320 * f), width // 2, int(560 * f)), fill=0, width=max(1, int(f)))
    draw.line((left, int(440 * f), right, int(440 * f)), fill=0, width=max(1, int(f)))  # and in two rows
    return images_to_pdf([degrade(np.asarray(image), 0.8, seed=3)], dpi)
