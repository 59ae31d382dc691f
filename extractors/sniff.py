"""Tell a document's format from its bytes (and its name only as a tie-breaker)."""

from __future__ import annotations

import zipfile
from io import BytesIO

FORMATS = ("pdf", "docx", "html", "text", "doc", "wps")


def sniff_format(data: bytes, name: str = "") -> str:
    """Return one of FORMATS, or raise ValueError naming what the bytes look like instead."""
    head = data[:2048].lstrip()
    lower_name = name.lower()
    if not data:
        raise ValueError("empty file (0 bytes)")
    if head.startswith(b"%PDF"):
        return "pdf"
    if data[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(BytesIO(data)).namelist()
        except zipfile.BadZipFile as exc:
            raise ValueError(f"corrupt zip container: {exc}") from exc
        if "word/document.xml" in names:
            return "docx"
        raise ValueError("a zip archive that is not a DOCX")
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # OLE2: Word 97-2003 or WPS
        return "wps" if lower_name.endswith(".wps") else "doc"
    if data[:8] == b"\x89PNG\r\n\x1a\n" or data[:3] == b"\xff\xd8\xff" or data[:4] in (b"GIF8", b"II*\x00", b"MM\x00*"):
        raise ValueError("an image, not a document")
    probe = head[:1024].lower()
    if b"<html" in probe or b"<!doctype" in probe or b"<table" in probe or b"<div" in probe or b"<p" in probe:
        return "html"
    if lower_name.endswith((".htm", ".html", ".shtml", ".jhtml")):
        return "html"
    if b"\x00" in data[:4096]:
        raise ValueError("binary data of an unknown type")
    return "text"
