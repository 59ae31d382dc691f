"""Bytes in, document model out: one reader per format, all pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gongkai.extractors.model import Document, GridCell, Table, TextBlock, UnreadableDocument
from gongkai.extractors.sniff import sniff_format

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits

__all__ = ["Document", "GridCell", "Table", "TextBlock", "UnreadableDocument", "read_document", "sniff_format"]


def read_document(data: bytes, name: str = "", fmt: str | None = None, ocr_limits: Limits | None = None,
                  pictures: Mapping[str, bytes] | None = None) -> Document:
    """Read any supported format into the document model; raise UnreadableDocument with the reason.

    `fmt`: the format the caller already sniffed (one of sniff.FORMATS); anything else is sniffed again.
    `pictures`: an HTML page's linked pictures, by `src` as written in the page (html_reader.read)."""
    from gongkai.extractors.sniff import FORMATS

    if fmt not in FORMATS:
        try:
            fmt = sniff_format(data, name)
        except ValueError as exc:
            raise UnreadableDocument(str(exc)) from exc
    if fmt == "pdf":
        from gongkai.extractors import pdf_reader

        return pdf_reader.read(data, ocr_limits)
    if fmt == "docx":
        from gongkai.extractors import docx_reader

        return docx_reader.read(data, ocr_limits)
    if fmt == "html":
        from gongkai.extractors import html_reader

        return html_reader.read(data, ocr_limits=ocr_limits, pictures=pictures)
    if fmt in ("doc", "wps", "odt", "rtf"):
        from gongkai.extractors import convert

        return convert.read(data, fmt, ocr_limits=ocr_limits)
    from gongkai.extractors import text_reader

    return text_reader.read(data)
