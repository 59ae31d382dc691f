"""One page image → its text lines and its tables as the document model's grids, each cell flagged `ocr` with the
recogniser's confidence.

Ruled tables: the grid from the ruling lines; a cell holding one line of ink is read from a tight crop of that ink
(the page-wide detector misses lone digits such as 0 in a grid of 0s), a cell of several lines by detecting its
lines within the cell alone, top to bottom. A page whose text names a standard table but shows no rules: the detector's lines
aligned into rows by position (`aligned=False`: the mapping then places values in the schema's order).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from gongkai.extractors.model import BBox, Table, build_grid
from gongkai.extractors.ocr import imaging
from gongkai.extractors.ocr.engine import Image, TextBox, locate, recognise
from gongkai.extractors.ocr.imaging import PixelBox, PixelGrid
from gongkai.extractors.pdf_layout import Cell, Grid, Line
from gongkai.extractors.textnorm import clean_text
from gongkai.schema.labels import normalize_label
from gongkai.schema.values import is_number

SOURCE = "ocr"
# Cell ink no taller than this many text heights is one line (read from a crop); a digit is ~0.7 of a CJK glyph.
ONE_LINE = 1.6
POINTS = 72.0
MIN_TABLE_ANCHORS = 2
# The white margin around a cell's ink, in text heights: a lone 0 in a wide margin reads as D or O (measured on
# scans: a margin of 0.4 gave 0 at confidence 0.57-0.96, 0.2 on a binarised crop 0.97-1.0).
CELL_PAD = 0.2
BOX_PER_GLYPH = 1.3  # a detected line's box stands this many times its glyphs' ink
PROSE = 24  # characters: a line of text this long in one piece is prose (a row label wraps far sooner)
MIN_FIGURE_ROWS = 3  # rows of a label and figures a rule-less table must show


@dataclass(slots=True)
class PageText:
    """What OCR read on one page: lines outside tables (top to bottom, in points), the ruled tables' grids (joined
    across pages afterwards, as the PDF reader joins its own) and tables rebuilt from aligned text."""

    number: int
    lines: list[Line] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)  # rule-less, aligned=False
    skew: float = 0.0
    confidences: list[float] = field(default_factory=list)  # of every cell read, for the summary


def read_page(
    gray: Image, dpi: float, number: int, origin: tuple[float, float] = (0.0, 0.0), *, rule_less: bool = True,
) -> PageText:
    """Read a grey page (or a picture on one). `origin`: where the image's top-left sits on the page, in points,
    so that cell boxes are page coordinates; `rule_less`: rebuild a table from aligned text when no rules show."""
    upright, skew = imaging.deskew(gray)
    mask = imaging.ink(upright)
    found, lines = imaging.grids(mask, dpi)
    located = locate(upright)
    out = PageText(number, skew=skew)
    f = POINTS / dpi

    def to_points(box: PixelBox) -> BBox:
        return (origin[0] + box[0] * f, origin[1] + box[1] * f, origin[0] + box[2] * f, origin[1] + box[3] * f)

    text_height = _text_height(located, dpi)
    clean = imaging.without_rules(upright, lines) if found else upright
    for grid in found:
        read = _read_grid(grid, clean, mask, lines, dpi, text_height, number, to_points)
        if _is_prose(read):  # a text box drawn around paragraphs: its text is the page's, not a table's
            out.lines += [Line(c.text, c.bbox[1], c.bbox[3] - c.bbox[1], c.bbox[3] - c.bbox[1])
                          for c in sorted(read.cells, key=lambda c: (c.row, c.col)) if c.text]
        else:
            out.grids.append(read)
    del clean
    rest = [b for b in located if not any(_centre_in(b, g.box) for g in found)]
    rows = _rows(_read_lines(upright, rest, text_height))
    framed, out.lines = out.lines, []
    for row in rows:
        top = min(to_points(b.box)[1] for b in row)
        bottom = max(to_points(b.box)[3] for b in row)
        out.lines.append(Line("".join(b.text for b in row), top, bottom - top, bottom - top))
    out.lines = sorted(out.lines + framed, key=lambda line: line.top)
    if not out.grids and rule_less and names_tables([line.text for line in out.lines]):
        table = _aligned_table(rows, number, to_points)
        if table is not None:
            out.tables.append(table)
    out.confidences = [c.confidence for g in out.grids for c in g.cells if c.confidence is not None]
    out.confidences += [c.confidence for t in out.tables for r in t.rows for c in r if c.is_anchor and c.confidence is not None]
    return out


def _read_grid(
    grid: PixelGrid, gray: Image, mask: Image, lines: Image, dpi: float, text_height: float,
    number: int, to_points: Callable[[PixelBox], BBox],
) -> Grid:
    """The grid's cells in points, each with its text, its confidence, and the width of its last line and of its
    first glyph (what the page join asks of a cell cut by a page break)."""
    pad = max(3.0, text_height * CELL_PAD)
    crops: list[Image] = []
    pending: list[int] = []  # the cell of each crop, in order (a cell of several lines has a crop per line)
    texts: dict[int, tuple[str, float, float, float]] = {}  # text, confidence, last line's width, lead (pixels)
    for i, cell in enumerate(grid.cells):
        ink_box = imaging.cell_ink(mask, lines, cell.box, dpi)
        if ink_box is None:
            texts[i] = ("", 1.0, 0.0, 0.0)
            continue
        width, height = ink_box[2] - ink_box[0], ink_box[3] - ink_box[1]
        # Lines told apart by the cell's ink, each read from its own crop (two stacked lines of a narrow header
        # are hardly taller than one line is allowed to be: the gap between them tells).
        bands = imaging.text_lines(mask, lines, cell.box, dpi, text_height / BOX_PER_GLYPH)
        if len(bands) <= 1 and height <= ONE_LINE * text_height:
            crops.append(imaging.crop(gray, ink_box, pad, binary=True))
            pending.append(i)
            texts[i] = ("", 1.0, width, min(height, text_height))  # a CJK glyph is about as wide as tall
            continue
        if all(b[3] - b[1] <= ONE_LINE * text_height for b in bands):
            crops += [imaging.crop(gray, b, pad, binary=True) for b in bands]
            pending += [i] * len(bands)
            texts[i] = ("", 1.0, bands[-1][2] - bands[-1][0], min(bands[0][3] - bands[0][1], text_height))
            continue
        # Lines that touch: detected within the cell alone (on the whole page the detector runs lines on across
        # narrow columns, 结果/维持 beside 纠正).
        part = imaging.crop(gray, ink_box, pad)
        read_rows = _rows(_read_lines(part, locate(part), text_height))
        read = [b for row in read_rows for b in row]
        last = read_rows[-1] if read_rows else []
        last_width = max(b.box[2] for b in last) - min(b.box[0] for b in last) if last else width
        lead = min(read[0].box[3] - read[0].box[1], text_height) if read else text_height
        texts[i] = ("".join(b.text for b in read), min((b.confidence for b in read), default=0.0), last_width, lead)
    read_lines: dict[int, list[tuple[str, float]]] = {}
    for i, (text, score) in zip(pending, recognise(crops), strict=True):
        read_lines.setdefault(i, []).append(_as_figure(text, score))
    for i, parts in read_lines.items():
        _, _, width, lead = texts[i]
        texts[i] = ("".join(t for t, _ in parts), min(s for _, s in parts), width, lead)
    f = POINTS / dpi
    cells = []
    for i, cell in enumerate(grid.cells):
        text, score, width, lead = texts[i]
        cells.append(Cell(cell.row, cell.col, cell.rowspan, cell.colspan, clean_text(text), to_points(cell.box), number,
                          width * f, lead * f, score))
    box = to_points(grid.box)
    xs = [box[0] + (x - grid.xs[0]) * f for x in grid.xs]
    return Grid(box, xs, cells, [number] * grid.n_rows)


# Letters the recogniser gives for digits in a cell of figures (O for 0, l for 1): read as the digit, never trusted.
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "|": "1", "i": "1"})
DOUBTED = 0.5  # the confidence given to a figure read through a look-alike: below summary.LOW_CONFIDENCE


def _as_figure(text: str, score: float) -> tuple[str, float]:
    """A cell read as letters that are all digit look-alikes (O, 0l) becomes the figure, flagged as doubtful."""
    stripped = text.strip()
    if stripped and not stripped.isdigit() and len(stripped) <= 12:
        figure = stripped.translate(_DIGIT_LOOKALIKES)
        if figure.isdigit():
            return figure, min(score, DOUBTED)
    return text, score


def _flag(table: Table, confidence: dict[tuple[int, int], float]) -> Table:
    table.rows = [
        [dataclasses.replace(c, source=SOURCE, confidence=confidence.get(c.origin)) for c in row] for row in table.rows
    ]
    return table


def _is_prose(grid: Grid) -> bool:
    """Frames around prose, not a table: two rows or more, and not one cell holds a figure or a schema label
    (a table cut by a page break may leave a lone row of labels or blanks: the page join decides on those)."""
    if grid.n_rows < 2:
        return False
    from gongkai.extractors.ocr.labels import is_label

    return not any(is_number(c.text) or is_label(c.text) for c in grid.cells if c.text)


def _aligned_table(rows: list[list[TextBox]], number: int, to_points: Callable[[PixelBox], BBox]) -> Table | None:
    """A rule-less table from text lines: each row's pieces left to right. Columns are not known (aligned=False).
    Prose is left out (a line that is one long piece: a paragraph naming the tables is no table row), and without
    MIN_FIGURE_ROWS rows holding a figure beside a label there is no table at all."""
    rows = [row for row in rows if len(row) > 1 or len(row[0].text) <= PROSE]
    if sum(1 for row in rows if len(row) > 1 and any(is_number(b.text) for b in row)) < MIN_FIGURE_ROWS:
        return None
    spans = [[(b.text, 1, 1) for b in row] for row in rows]
    bboxes: list[list[BBox | None]] = [[to_points(b.box) for b in row] for row in rows]
    confidence = {(r + 1, c + 1): b.confidence for r, row in enumerate(rows) for c, b in enumerate(row)}
    table = build_grid(0, spans, page=number, bboxes=bboxes)
    # build_grid pads ragged rows to a rectangle: drop the padding, the source kept no columns
    table.rows = [[c for c in row if c.text or (c.row, c.col) in confidence] for row in table.rows]
    table.aligned = False
    return _flag(table, confidence)


def names_tables(lines: list[str]) -> bool:
    """Whether text names standard tables (two of their anchor labels, as the PDF reader asks of a page)."""
    text = normalize_label("".join(lines))
    return sum(1 for anchor in _anchors() if anchor in text) >= MIN_TABLE_ANCHORS


@functools.cache
def _anchors() -> tuple[str, ...]:
    from gongkai.schema import TABLES

    return tuple(sorted({a for t in TABLES.values() for a in t.anchors if len(a) >= 4}))


def _rows(boxes: list[TextBox]) -> list[list[TextBox]]:
    """Text lines grouped into rows by vertical overlap, each row left to right, rows top to bottom."""
    rows: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        centre = (box.box[1] + box.box[3]) / 2
        if rows:
            last = rows[-1]
            top = min(b.box[1] for b in last)
            bottom = max(b.box[3] for b in last)
            if top <= centre <= bottom:
                last.append(box)
                continue
        rows.append([box])
    return [sorted(row, key=lambda b: b.box[0]) for row in rows]


def _read_lines(gray: Image, boxes: list[PixelBox], text_height: float) -> list[TextBox]:
    """Recognise detected lines, each from its own crop."""
    pad = max(2.0, text_height * 0.15)
    read = recognise([imaging.crop(gray, box, pad) for box in boxes])
    return [TextBox(text, box, score) for box, (text, score) in zip(boxes, read, strict=True) if text.strip()]


def _text_height(boxes: list[PixelBox], dpi: float) -> float:
    """The page's usual line height in pixels (the median detected line wider than tall), 10.5 pt when none."""
    heights = sorted(b[3] - b[1] for b in boxes if b[2] - b[0] > 1.5 * (b[3] - b[1]))
    return heights[len(heights) // 2] if heights else dpi / 72 * 10.5


def _centre_in(box: PixelBox, area: PixelBox) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] <= cx <= area[2] and area[1] <= cy <= area[3]

