"""Map the document model's table grids onto common-schema cells, by the labels declared in schema/.

The grids are read row by row. Header rows (column labels, no numbers) open a section and say which
standard table it belongs to and which value column carries which key; data rows below are matched
to a row key by their most specific label (the leaf: 1.属于国家秘密 rather than （三）不予公开), the
enclosing group label breaking ties. A section may continue into the next grid (a table split
across pages or pasted as several tables). Values go to keys by order where the count of value
cells equals the count of keys (headers and data rows often merge cells differently), else by
column position; where the source kept no positions (flattened text) the schema's order applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gongkai.extractors.model import BBox, Document, GridCell, Table
from gongkai.schema import TEMPLATES, Key, TableDef, Template
from gongkai.schema.labels import CONTAINED, best_score, normalize_label
from gongkai.schema.values import is_number, is_readable, parse_value

ROW_MATCH = 0.7  # a misspelt label still matches (其他法律行政止公开 ≈ 0.74 × 0.9 discounts stay above)
HEADER_MATCH = CONTAINED

# (row key or None for row-oriented tables, column key)
SlotKey = tuple[str | None, str]


@dataclass(frozen=True)
class MappedCell:
    address: str
    value: int | float | None
    raw: str
    page: int | None
    table: int
    row: int
    col: int
    bbox: BBox | None
    source: str | None = None  # "ocr" for a cell read from an image
    confidence: float | None = None  # the recogniser's

    def provenance(self) -> dict[str, object]:
        out: dict[str, object] = {"raw": self.raw, "page": self.page, "table": self.table, "row": self.row, "col": self.col}
        if self.bbox is not None:
            out["bbox"] = [round(v, 2) for v in self.bbox]
        if self.source is not None:
            out["source"] = self.source
        if self.confidence is not None:
            out["confidence"] = round(self.confidence, 3)
        return out


@dataclass
class Mapping:
    cells: dict[str, MappedCell] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Section:
    """What a header block established: the table, its value slots in order, and where they sit."""

    table: TableDef
    slots: list[SlotKey]
    slot_columns: dict[SlotKey, list[int]]
    slot_headers: dict[SlotKey, str]
    first_value_col: int | None
    last_row_key: str | None = None
    # Continued from an earlier grid: rows must prove they belong (no placing by position), and the
    # first row with numbers that does not map ends the continuation.
    carried: bool = False


def _norm_texts(cells: list[GridCell]) -> list[str]:
    return [normalize_label(c.text) for c in cells]


# A four-digit year in a column header reads as YYYY: the 统计表 heads its annual column 2011年度 (label YYYY年度).
_HEADER_YEAR = re.compile(r"(?:19|20)\d{2}")


def _header_form(text: str) -> str:
    return _HEADER_YEAR.sub("YYYY", text)


def distinct(cells: list[GridCell]) -> list[GridCell]:
    """One cell per merged region, in row order."""
    seen: set[tuple[int, int]] = set()
    out = []
    for cell in cells:
        if cell.origin not in seen:
            seen.add(cell.origin)
            out.append(cell)
    return out


def _header_labels(table: TableDef) -> list[Key]:
    keys = list(table.columns)
    if table.orientation == "columns":
        keys += list(table.rows)
    return keys


def _header_hits(texts: list[str], table: TableDef) -> int:
    keys = _header_labels(table)
    groups = {k.group for k in keys if k.group}
    hits = 0
    for text in {_header_form(t) for t in texts}:
        if not text:
            continue
        if any(best_score(text, k.labels) >= HEADER_MATCH for k in keys):
            hits += 1
        elif text in table.header_markers or text in groups:
            hits += 1
    return hits


def detect_template(doc: Document) -> Template | None:
    """The template whose markers the document's tables show most; None when none shows."""
    texts = {normalize_label(c.text) for t in doc.tables for row in t.rows for c in row if c.text}
    best: tuple[int, Template | None] = (0, None)
    for template in TEMPLATES:
        hits = sum(1 for m in template.markers if any(m in t for t in texts))
        if hits > best[0]:
            best = (hits, template)
    return best[1]


def map_document(doc: Document, template: Template) -> Mapping:
    result = Mapping()
    section: Section | None = None
    for table in doc.tables:
        section = _map_table(table, template, section, result)
    return result


def _map_table(table: Table, template: Template, section: Section | None, result: Mapping) -> Section | None:
    header_block: list[list[GridCell]] = []
    if section is not None:
        section.carried = True
    for row in table.rows:
        cells = distinct(row)
        texts = _norm_texts(cells)
        numbers = sum(1 for c in cells if is_number(c.text))
        if numbers == 0:
            hits = max((_header_hits(texts, t) for t in template.tables), default=0)
            if hits >= 2 or (hits == 1 and not _matches_any_row(texts, template)):
                header_block.append(row)
                continue
        if header_block:
            section = _open_section(header_block, table.aligned, template, result) or section
            header_block = []
        if section is not None and not _map_row(row, cells, table, section, result) and section.carried and numbers:
            section = None  # an unrelated table after a standard one
    if header_block:
        section = _open_section(header_block, table.aligned, template, result) or section
    return section


def _matches_any_row(texts: list[str], template: Template) -> bool:
    return any(best_score(t, r.labels) >= HEADER_MATCH for t in texts if t for tab in template.tables for r in tab.rows)


def _open_section(block: list[list[GridCell]], aligned: bool, template: Template, result: Mapping) -> Section | None:
    texts = [normalize_label(c.text) for row in block for c in row if c.text]
    scored = sorted(((_header_hits(texts, t), t) for t in template.tables), key=lambda s: -s[0])
    if not scored or scored[0][0] == 0:
        return None
    table = scored[0][1]
    if aligned:
        return _aligned_section(block, table)
    return _ordered_section(texts, table)


def _slot_for_path(path: list[str], table: TableDef) -> SlotKey | None:
    path = [_header_form(p) for p in path]
    column = _best_key(list(reversed(path)), table.columns, path)
    if column is None:
        return None
    if table.orientation == "rows":
        return (None, column.key)
    row = _best_key(path, table.rows, path)
    return (row.key, column.key) if row else None


def _best_key(candidates: list[str], keys: tuple[Key, ...], context: list[str]) -> Key | None:
    """The key best matching the first text in `candidates` that matches any; groups in `context` break ties."""
    for text in candidates:
        if not text:
            continue
        scored = [(best_score(text, k.labels), k) for k in keys]
        top = max((s for s, _ in scored), default=0.0)
        if top < ROW_MATCH:  # inside a known header block a near miss (本年新废止件数) still names its column
            continue
        tied = [k for s, k in scored if s == top]
        grouped = [k for k in tied if k.group and k.group in context]
        return (grouped or tied)[0]
    return None


def _aligned_section(block: list[list[GridCell]], table: TableDef) -> Section:
    width = max(len(r) for r in block)
    slots: list[SlotKey] = []
    slot_columns: dict[SlotKey, list[int]] = {}
    slot_headers: dict[SlotKey, str] = {}
    unnamed: dict[int, tuple[str, str]] = {}  # header columns naming no key: leaf text, as printed
    for col in range(width):
        path: list[str] = []
        raw_leaf = ""
        for row in block:
            if col < len(row) and row[col].text:
                text = normalize_label(row[col].text)
                if not path or path[-1] != text:
                    path.append(text)
                    raw_leaf = row[col].text
        slot = _slot_for_path(path, table)
        if slot is None:
            if path:
                unnamed[col] = (path[-1], raw_leaf)
            continue
        if slot not in slot_columns:
            slots.append(slot)
            slot_columns[slot] = []
            slot_headers[slot] = raw_leaf
        slot_columns[slot].append(col + 1)
    if table.orientation == "rows":
        for column in _sole_columns(table, {s[1] for s in slots}):
            cols = [col for col, (text, _) in unnamed.items() if best_score(text, column.sole_labels) >= HEADER_MATCH]
            if len(cols) == 1:
                slot = (None, column.key)
                slots.append(slot)
                slot_columns[slot] = [cols[0] + 1]
                slot_headers[slot] = unnamed[cols[0]][1]
    first = min((c for cols in slot_columns.values() for c in cols), default=None)
    return Section(table, slots, slot_columns, slot_headers, first)


def _sole_columns(table: TableDef, named: set[str]) -> list[Key]:
    """Columns with `sole_labels` that no header named: 本期实际 is the year's figure only where no 本年累计 is."""
    return [c for c in table.columns if c.sole_labels and c.key not in named]


def _ordered_section(texts: list[str], table: TableDef) -> Section:
    """Headers whose cells lost their positions: the keys they name, in the schema's order."""
    texts = [_header_form(t) for t in texts]
    columns = [c for c in table.columns if any(best_score(t, c.labels) >= HEADER_MATCH for t in texts)]
    headers = {c.key: next(t for t in texts if best_score(t, c.labels) >= HEADER_MATCH) for c in columns}
    if table.orientation == "rows":
        for sole in _sole_columns(table, {c.key for c in columns}):
            found = [t for t in texts if best_score(t, sole.sole_labels) >= HEADER_MATCH]
            if len(found) == 1:
                columns = sorted([*columns, sole], key=table.columns.index)
                headers[sole.key] = found[0]
    slots: list[SlotKey]
    if table.orientation == "rows":
        slots = [(None, c.key) for c in columns]
    else:
        rows = [r for r in table.rows if any(best_score(t, r.labels) >= HEADER_MATCH for t in texts)]
        slots = [(r.key, c.key) for r in rows for c in columns]
    return Section(table, slots, {}, {s: headers[s[1]] for s in slots}, None)


def _map_row(row: list[GridCell], cells: list[GridCell], table: Table, section: Section, result: Mapping) -> bool:
    """Map one data row; True when it placed any cell."""
    k = len(section.slots)
    if k == 0:
        return False
    if section.first_value_col is not None:
        first = section.first_value_col
        labels = distinct([c for c in row if c.col < first])
        values = distinct([c for c in row if c.col >= first and c.origin[1] >= first])
    else:
        labels, values = cells[:-k] if len(cells) > k else [], cells[-k:]
    if not labels and not any(is_readable(c.text) for c in values):
        return False  # a section title such as 第二十条第（五）项 spanning the row, not values
    assigned = _assign_values(values, row, section, result, table)
    if not assigned:
        return False
    if section.table.orientation == "columns":
        for (row_key, col_key), cell in assigned.items():
            assert row_key is not None
            _emit(section, row_key, col_key, cell, table, result)
        return True
    row_key = _row_key(labels, section, result, table, row)
    if row_key is None:
        return False
    section.last_row_key = row_key
    for (_, col_key), cell in assigned.items():
        _emit(section, row_key, col_key, cell, table, result)
    return True


def _assign_values(
    values: list[GridCell], row: list[GridCell], section: Section, result: Mapping, table: Table
) -> dict[SlotKey, GridCell]:
    if len(values) == len(section.slots):
        return dict(zip(section.slots, values, strict=True))
    if not section.slot_columns or not values or section.carried:
        return {}
    # Merged differently from the header and not one cell per key: fall back on column positions.
    out: dict[SlotKey, GridCell] = {}
    used: set[tuple[int, int]] = set()
    for slot in section.slots:
        col = section.slot_columns[slot][0]
        if col - 1 < len(row) and row[col - 1].origin not in used:
            out[slot] = row[col - 1]
            used.add(row[col - 1].origin)
    if out:
        result.warnings.append(
            f"table {table.index} row {values[0].row}: {len(values)} value cells for {len(section.slots)} columns; placed by column position"
        )
    return out


def _row_key(labels: list[GridCell], section: Section, result: Mapping, table: Table, row: list[GridCell]) -> str | None:
    # A unit (条) or a row code (01) beside the label is not the label; nor is a figure of a column not read (本月累计).
    texts = [t for t in _norm_texts(labels) if t and t not in section.table.units and not t.isdigit()]
    rows = section.table.rows
    if texts:
        # The row's own (innermost) label decides; an unknown sub-row under （六）其他处理 is not 其他处理.
        scored = [(best_score(texts[-1], r.labels), r) for r in rows]
        top = max(s for s, _ in scored)
        if top < ROW_MATCH:
            # A renamed row must not vanish in silence. In a grid continuing a table (the next page) such a row
            # ends the table instead: it may be an unrelated table, or a renamed row; either way say so.
            printed = " / ".join(dict.fromkeys(c.text for c in labels if c.text.strip()))
            consequence = "taken for the end of that table" if section.carried else "its values are not read"
            result.warnings.append(
                f"table {table.index} row {row[0].row}: label {printed!r} matches no row of {section.table.address}; {consequence}"
            )
            return None  # a label we do not know: not a standard row
        tied = [r for s, r in scored if s == top]
        grouped = [r for r in tied if r.group and any(r.group in t for t in texts)]
        return (grouped or tied)[0].key
    if table.rebuilt:
        # Rows rebuilt from glyph positions: numbers with no label beside them may be the rest of a number
        # wrapped from the row above, or a row set apart from its label; the next row in order is a guess.
        shown = " ".join(c.text for c in row if c.text.strip())
        result.warnings.append(
            f"table {table.index} row {row[0].row}: numbers without a label ({shown}) in a table rebuilt from "
            f"text positions; not placed in {section.table.address}"
        )
        return None
    if section.carried:
        return None
    # No readable label at all: the row after the last one placed, and say so.
    keys = [r.key for r in rows]
    if section.last_row_key in keys and keys.index(section.last_row_key) + 1 < len(keys):
        guess = keys[keys.index(section.last_row_key) + 1]
        result.warnings.append(
            f"table {table.index} row {row[0].row}: label unreadable; placed as {section.table.address}.{guess} by position"
        )
        return guess
    return None


def _emit(section: Section, row_key: str, col_key: str, cell: GridCell, table: Table, result: Mapping) -> None:
    tdef = section.table
    row_def = tdef.row(row_key)
    if col_key not in [c.key for c in tdef.columns_of(row_def)]:
        if cell.text.strip():
            result.warnings.append(f"{tdef.address}.{row_key} has no column {col_key}; value {cell.text!r} ignored")
        return
    address = f"{tdef.address}.{row_key}.{col_key}"
    if address in result.cells:
        result.warnings.append(f"{address} printed twice; kept the first (table {result.cells[address].table})")
        return
    column = tdef.column(col_key)
    parsed = parse_value(cell.text, column.kind, section.slot_headers.get((row_key, col_key)) or section.slot_headers.get((None, col_key)))
    if not parsed.readable:
        result.unreadable.add(address)
        result.warnings.append(f"{address}: {cell.text!r} is not a number")
    row, col = cell.origin
    result.cells[address] = MappedCell(address, parsed.value, cell.text, cell.page, table.index, row, col, cell.bbox,
                                       cell.source, cell.confidence)
