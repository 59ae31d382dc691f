"""Plain text: a report flattened to lines, one table cell per tab-indented line, rows split by blank lines.

An optional header of `key: value` lines closed by a `=== 正文 ===` rule (how crawled pages are saved as
text) becomes metadata; `标题` is the title.
"""

from __future__ import annotations

import re

from gongkai.extractors.model import Document, GridCell, Table, TextBlock, UnreadableDocument
from gongkai.extractors.sniff import utf16_without_bom
from gongkai.extractors.textnorm import clean_text

_BODY_RULE = re.compile(r"^=+\s*正文\s*=+$")
_META_LINE = re.compile(r"^([^:：\s]{1,12})[:：]\s*(.*)$")
_ENCODINGS = ("utf-8-sig", "gb18030", "utf-16")


def decode_text(data: bytes) -> str:
    """UTF-8, then UTF-16 told by content (GB18030 would take its bytes for nonsense text), then GB18030."""
    utf16 = utf16_without_bom(data)
    if utf16 is not None:
        return data.decode(utf16, errors="replace")
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableDocument("text in an unknown encoding")


def read(data: bytes) -> Document:
    lines = decode_text(data).splitlines()
    doc = Document(format="text")
    lines = _read_header(lines, doc)
    table_rows: list[list[str]] = []
    row: list[str] = []

    def close_row() -> None:
        nonlocal row
        if row:
            table_rows.append(row)
        row = []

    def close_table() -> None:
        close_row()
        if table_rows:
            doc.tables.append(_table(len(doc.tables) + 1, table_rows))
            table_rows.clear()

    for line in lines:
        if line.startswith("\t"):
            row.append(clean_text(line))
        elif not line.strip():
            close_row()
        else:
            close_table()
            doc.blocks.append(TextBlock(clean_text(line)))
    close_table()
    if doc.title is None:
        doc.title = next((b.text for b in doc.blocks if b.text), None)
    return doc


def _read_header(lines: list[str], doc: Document) -> list[str]:
    for i, line in enumerate(lines[:40]):
        if _BODY_RULE.match(line.strip()):
            for head in lines[:i]:
                match = _META_LINE.match(head.strip())
                if match:
                    doc.metadata[match.group(1)] = match.group(2).strip()
            doc.title = doc.metadata.get("标题") or None
            return lines[i + 1 :]
    return lines


def _table(index: int, rows: list[list[str]]) -> Table:
    grid = [[GridCell(text, r, c, (r, c)) for c, text in enumerate(row, start=1)] for r, row in enumerate(rows, start=1)]
    return Table(index=index, rows=grid, aligned=False)
