"""Tell a document's format from its bytes (and its name only as a tie-breaker).

Content decides over the name: an RTF file named .doc is RTF, a UTF-16 page without a byte-order mark is
text (or HTML), whatever its extension says.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from io import BytesIO

FORMATS = ("pdf", "docx", "odt", "html", "text", "doc", "wps", "rtf")
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
_UTF16_SAMPLE = 8192
# Share of a sample's characters that must read as text (CJK, ASCII, CJK and full-width punctuation) for bytes
# without a byte-order mark to be taken for UTF-16. GBK or UTF-8 bytes read as UTF-16 give Hangul, private-use
# and surrogate code points instead, far below this.
_UTF16_TEXT_SHARE = 0.9


# pictures by their first bytes: PNG, JPEG, GIF, TIFF (both byte orders); BMP and WebP are told by is_picture only
# (a text file may well begin "BM")
PICTURE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*")
_WEBP = re.compile(rb"RIFF....WEBP", re.S)


def is_picture(data: bytes) -> bool:
    """Bytes the OCR can decode as a picture (a linked <img>'s download is checked by this before it is kept)."""
    return data.startswith((*PICTURE_MAGIC, b"BM")) or bool(_WEBP.match(data[:12]))


def sniff_format(data: bytes, name: str = "") -> str:
    """Return one of FORMATS, or raise ValueError naming what the bytes look like instead."""
    head = data[:2048].lstrip()
    lower_name = name.lower()
    if not data:
        raise ValueError("empty file (0 bytes)")
    if head.startswith(b"%PDF"):
        return "pdf"
    if data[:4] == b"PK\x03\x04":
        return _zip_format(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # OLE2: Word 97-2003 or WPS
        return "wps" if lower_name.endswith(".wps") else "doc"
    if head.removeprefix(codecs.BOM_UTF8).startswith(b"{\\rtf"):
        return "rtf"
    if data.startswith(PICTURE_MAGIC):
        raise ValueError("an image, not a document")
    utf16 = utf16_without_bom(data)
    if utf16 is not None:
        probe = data[:_UTF16_SAMPLE].decode(utf16, errors="replace").lower().encode("utf-8")
    else:
        probe = head[:1024].lower()
    if b"<html" in probe or b"<!doctype" in probe or b"<table" in probe or b"<div" in probe or b"<p" in probe:
        return "html"
    if lower_name.endswith((".htm", ".html", ".shtml", ".jhtml")):
        return "html"
    if utf16 is None and b"\x00" in data[:4096]:
        raise ValueError("binary data of an unknown type")
    return "text"


def _zip_format(data: bytes) -> str:
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        names = archive.namelist()
        if "word/document.xml" in names:
            return "docx"
        if "mimetype" in names and "content.xml" in names:
            with archive.open("mimetype") as member:
                mimetype = member.read(200).strip()  # a few dozen bytes; read no more whatever the zip claims
            if mimetype == ODT_MIMETYPE:
                return "odt"
            raise ValueError(f"an OpenDocument file that is not a text document ({mimetype.decode('ascii', 'replace')})")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # EOFError: a member cut short
        raise ValueError(f"corrupt zip container: {exc}") from exc
    raise ValueError("a zip archive that is not a DOCX or ODT")


def utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when bytes without a byte-order mark are UTF-16 text, else None.

    Only bytes that are not valid UTF-8, or that hold NULs, are tried: ASCII read as UTF-16 looks like CJK.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF8)) or len(data) < 8:
        return None
    sample = data[: _UTF16_SAMPLE - _UTF16_SAMPLE % 2]
    if b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            return None
        except UnicodeDecodeError as exc:
            if exc.start >= len(sample) - 3:  # only a character cut at the end of the sample
                return None
    best: tuple[float, str | None] = (_UTF16_TEXT_SHARE, None)
    for encoding in ("utf-16-le", "utf-16-be"):
        text = sample.decode(encoding, errors="replace")
        share = len(_TEXTY.findall(text)) / max(len(text), 1)  # (a character class: a Python loop was 2 ms a page)
        if share >= best[0]:
            best = (share, encoding)
    return best[1]


# the characters _texty accepts, as one class for the regex engine
_TEXTY = re.compile("[\x20-\x7e\t\r\n\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2000-\u206f]")


def _texty(ch: str) -> bool:
    code = ord(ch)
    return (
        0x20 <= code < 0x7F
        or ch in "\t\r\n"
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x2000 <= code <= 0x206F  # general punctuation: “ ” — …
    )
