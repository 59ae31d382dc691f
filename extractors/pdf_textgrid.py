"""Tables drawn without ruling lines (borders removed, three-line 三线表): rows rebuilt from glyph positions.

A half-right grid puts numbers under the wrong key, which is worse than a loud loss: `rebuild` answers only
when every check holds and otherwise raises Refused saying which failed (the reader then keeps its
`unreadable table` warning, with that reason). What it builds is the model of a table whose cells lost their
columns (`Table.aligned=False`): header rows carry the texts seen, each data row its label texts then one
value per header column (blank where that column has none), and mapping.py reads it as any such table.

How (one page at a time; a table running on to the next page keeps the header columns of the page before):
- runs: glyphs one after the other in PDFium's text stream, on one line, with no cell's gap between them;
- stacks: runs one under the other, overlapping, close (one cell's wrapped label); a numbered line (1. （二）)
  opens a new one, a run over two runs of one line below it spans cells and stands alone, and a stack
  beside two rows' numbers in one column is split (tight rows);
- numbers: runs that are values, with no text right of them; each is beside the rightmost label level with
  it (or the nearest, within NEAR_LABEL); a number wrapped in a narrow column is joined to its first line
  only when that line is full and both are beside the same label — beside two labels it is refused;
- header columns: the stacks above the numbers that name a schema table's columns, in the schema's order
  (mapping places values by that order); a header stack naming no column over numbers is refused;
- columns of numbers: their x-ranges (one under the other overlap whatever the alignment), matched one to
  one with the header columns in order, or each to the header over it; two numbers of a row in one column,
  a number under two headers, or two rows that fill each other's blanks are refused.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass, field

from gongkai.extractors.model import GridCell, Table
from gongkai.extractors.pdf_layout import ENUMERATION, SHORT_LINE, Char, is_number
from gongkai.extractors.textnorm import clean_text

GAP = 1.0  # ems: glyphs farther apart than this on one line are in different cells
SPACE = 0.25  # ems: ... and those this far apart where PDFium saw a break
SAME_LINE = 0.3  # ems: glyph centres this close vertically are on one line
SPAN_REACH = 3.5  # ems: how far below a label spanning cells the cells it spans may lie
NEAR_LABEL = 1.0  # ems: a number level with no label is beside the nearest one this close (top- or bottom-set)
WRAP_GAP = 1.3  # digit heights (about 0.7 em): a wrapped number's next line lies this close
MIN_GAP = 0.1  # ems: the least gap set between held lines and the next page's
LINE_GAP = 0.3  # ems: between a held header's last line and the next page's first (a line break's gap)
MIN_TEXT_WIDTH = 400.0  # points: a page's text is at least this wide (A4 portrait: about 450)
WIDE_LINE = 0.6  # of the text's width: a run this wide is prose, not a cell
FULL_SLACK = 0.5  # points: a line of digits is full when one more digit overflows its column by this
ALIGN_SPREAD = 3.0  # points: numbers of a column this much different in width show how they are set
MARKER_GAP = 1.5  # ems: a list marker this close before text on its line is part of the label
_MARKER = re.compile(r"^[（(]?[一二三四五六七八九十\d]{1,3}[)）、.．]$")
LABEL_GAP = 1.6  # ems: the most between two lines of one label (loose line spacing)
HEADER_GAP = 3.0  # ems: a line this far below the one above it starts the header (above: headings, prose)
PAGE_NUMBER_ALONE = 2.0  # ems: a page number has no other number this close above or below it
MAX_UNIT = 2  # characters: 元, 万元, 件
STACK_GAP = 0.8  # ems: a cell's wrapped lines lie this close (bottom of one to top of the next)
_DIGITS = re.compile(r"^[\d.,]+$")
HEADER_MATCH = 0.85  # as mapping.HEADER_MATCH (CONTAINED): a header stack names a column


@dataclass(slots=True)
class Run:
    chars: list[Char]
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    cy: float = field(init=False)  # the vertical centre, asked for in every pass: set once (runs never move)

    def __post_init__(self) -> None:
        self.cy = (self.top + self.bottom) / 2


@dataclass(slots=True)
class Stack:
    runs: list[Run] = field(default_factory=list)
    spanning: bool = False

    @property
    def text(self) -> str:
        return clean_text("\n".join(r.text for r in self.runs))

    @property
    def x0(self) -> float:
        return min(r.x0 for r in self.runs)

    @property
    def x1(self) -> float:
        return max(r.x1 for r in self.runs)

    @property
    def top(self) -> float:
        return self.runs[0].top

    @property
    def bottom(self) -> float:
        return self.runs[-1].bottom

    @property
    def size(self) -> float:
        return max(r.size for r in self.runs)


@dataclass(slots=True)
class Columns:
    """The value columns a header names: its headers' x-ranges, left to right."""

    heads: list[tuple[float, float]]
    unnamed: list[tuple[float, float]]  # header texts naming no column (信息内容, a label cut in two)
    align: str | None = None  # how numbers sit in their cells ("left", "right"), where the table shows it


@dataclass(slots=True)
class DataRow:
    numbers: list[Run]
    labels: list[str]
    runs: list[Run] = field(default_factory=list)  # its label's lines (not its groups')


Item = tuple[float, "Run | DataRow"]  # (top, what) in page order


@dataclass(slots=True)
class PageTable:
    rows: list[list[str]]  # header rows and data rows, as mapping reads an unaligned table
    columns: Columns | None  # those in force at the page's end, for a table continued on the next page
    tail: list[Char] = field(default_factory=list)  # text after the last row, held for the next page


class Refused(Exception):
    """A check failed: the grid is not rebuilt (the message says which)."""


class NoTable(Refused):
    """The page's words form no table: no row of numbers, or numbers under no header naming columns (prose
    that names the tables, a list of figures in the text). Said aloud only where no table is read elsewhere."""


def rebuild(chars: list[Char], carried: Columns | None, hold_tail: bool = False) -> PageTable:
    """The page's rule-less table rows; raise Refused when a check fails (see the module's doc).
    With `hold_tail` (the next page is rebuilt too), text after the last row of numbers is not read here
    but handed back as `tail`, for `continued` to set above the next page's glyphs: a header cut by the page
    break (商业 / 企业, 自然 / 人) then joins its rest by column positions, as on one page."""
    runs = _with_units(_runs(chars))
    numeric = [r for r in runs if is_number(r.text)]
    texts = [r for r in runs if not is_number(r.text)]
    values = [n for line in _data_lines(numeric, texts, runs) for n in line]
    if not values:
        if hold_tail and (tail := _held(texts)):
            return PageTable([], carried, tail)
        raise NoTable("no row of numbers")
    stacks = _split_rows(_stacks(texts), values, _column_room(values, texts))
    for st in stacks:  # over two labels below, but with numbers beside it: a row's label merged across columns
        if st.spanning and any(
            n.x0 >= st.x1 and abs(n.cy - r.cy) <= SAME_LINE * r.size for r in st.runs for n in values
        ):
            st.spanning = False
    boxes = _boxes(stacks)
    # a stack right over a number is a column's header, never the label of a row set below it
    heads = {b for b in boxes for v in values if v.x0 < b[2] and b[1] < v.x1 and 0 <= v.top - b[4] <= b[5] * NEAR_LABEL}
    # a row's label lies left of all its numbers: of each number's line, the leftmost
    lefts = _line_lefts(values)
    beside = {id(n): _leaf(boxes, n, heads, lefts[id(n)]) for n in values}
    leaf_of = {k: leaf for k, (leaf, _) in beside.items()}
    level = {k for k, (_, is_level) in beside.items() if is_level}
    values = _join_wrapped(values, leaf_of, level, texts)
    by_leaf: dict[int, list[Run]] = {}
    unlabelled: list[Run] = []
    for n in values:
        leaf = leaf_of[id(n)]
        if leaf is None:
            unlabelled.append(n)
        else:
            by_leaf.setdefault(leaf, []).append(n)
    # leaf → stacks of group labels beside it (三、本年度办理结果)
    extents = _extents(stacks)
    groups = {leaf: _groups_of(stacks, stacks[leaf], by_leaf, extents) for leaf in by_leaf}
    grouped = {i for ids in groups.values() for i in ids}
    left = min(n.x0 for n in values)
    _adopt_orphans(stacks, by_leaf, grouped, left, texts)
    if taken := _join_label_halves(stacks, by_leaf, texts):  # the joined labels reach other group labels
        extents = _extents(stacks)
        groups = {
            leaf: [i for i in _groups_of(stacks, stacks[leaf], by_leaf, extents) if i not in taken] for leaf in by_leaf
        }
        grouped |= taken | {i for ids in groups.values() for i in ids}
    items: list[Item] = []
    for leaf, cells in by_leaf.items():
        labels = [stacks[i].text for i in sorted(groups[leaf], key=lambda i: stacks[i].x0)] + [stacks[leaf].text]
        top = min([n.top for n in cells] + [stacks[leaf].top])
        items.append((top, DataRow(sorted(cells, key=lambda n: n.x0), labels, stacks[leaf].runs)))
    for line in _lines_of(unlabelled):
        items.append((min(n.top for n in line), DataRow(line, [])))
    blank = _blank_rows(stacks, by_leaf, grouped, values, texts, unlabelled)
    extents = _extents(stacks)
    for i in sorted(blank):
        b = stacks[i]
        group = [j for j in _groups_of(stacks, b, by_leaf, extents) if j not in blank and j not in grouped]
        grouped.update(group)
        labels = [stacks[j].text for j in sorted(group, key=lambda j: stacks[j].x0)] + [b.text]
        items.append((b.top, DataRow([], labels, [r for j in [*group, i] for r in stacks[j].runs])))
    for i, s in enumerate(stacks):
        if i not in by_leaf and i not in grouped and i not in blank:
            items.extend((r.top, r) for r in s.runs)
    items.sort(key=lambda item: item[0])
    held: list[Run] = []
    if hold_tail:
        wide = _wide(runs)
        while items and isinstance(run := items[-1][1], Run) and run.x1 - run.x0 < wide:
            held.insert(0, items.pop()[1])  # type: ignore[arg-type]
        if not held and items and isinstance(last := items[-1][1], DataRow) and _may_go_on(last, texts, values):
            # the page ends with a row that may go on: its rest (a label's, a number's) on the next page
            items.pop()
            held = sorted([*last.runs, *last.numbers], key=lambda r: (r.top, r.x0))
    table = _assemble(items, carried, _alignment(values) or (carried.align if carried else None))
    table.tail = [c for r in held for c in r.chars]
    return table


def _may_go_on(row: DataRow, texts: list[Run], values: list[Run]) -> bool:
    """The last line of the row's label, or of one of its numbers, is full: the text may wrap on."""
    room = _column_room(values, texts)
    widest = _widest(values, texts)
    if any(
        _DIGITS.match(n.text) and id(n) in room and _full(n, room) and n.x1 - n.x0 >= widest[id(n)] - 0.5 * n.size
        for n in row.numbers
    ):
        return True
    if not row.runs:
        return False
    last = max(row.runs, key=lambda r: r.top)
    edge = max(t.x1 for t in texts if abs(t.x0 - last.x0) <= last.size)
    return last.x1 + last.size > edge + last.size / 4


def _wide(runs: list[Run]) -> float:
    """A run this wide is a line of prose: text held for the next page starts below the last one."""
    return WIDE_LINE * max(MIN_TEXT_WIDTH, max(r.x1 for r in runs) - min(r.x0 for r in runs)) if runs else 0.0


def _held(runs: list[Run]) -> list[Char]:
    """A page without a row of numbers: the text below its last line of prose (a header at the page foot)."""
    wide = _wide(runs)
    below = max((r.bottom for r in runs if r.x1 - r.x0 >= wide), default=float("-inf"))
    return [c for r in sorted(runs, key=lambda r: r.top) if r.top > below for c in r.chars]


def continued(tail: list[Char], chars: list[Char]) -> list[Char]:
    """The next page's glyphs under the text held from the page before (PageTable.tail), set as if the page
    break were a line break: the held lines end as far above the page's first glyph as the held lines lie
    apart at the closest (the lines of one cell), or LINE_GAP ems when the held text is one line. A header
    cut inside its cells (商业 / 企业) then joins its rest; one cut between rows (信息内容 over 行政许可) stays
    a row apart, as its own lines were."""
    if not tail or not chars:
        return [*tail, *chars]
    first = min(c.top for c in chars)
    last = max(c.bottom for c in tail)
    size = max(c.size for c in tail)
    lines: list[list[float]] = []  # [top, bottom] of the held lines, top to bottom
    for c in sorted(tail, key=lambda c: c.top):
        if lines and c.top <= lines[-1][1] - c.size / 4:
            lines[-1][1] = max(lines[-1][1], c.bottom)
        else:
            lines.append([c.top, c.bottom])
    gaps = [b[0] - a[1] for a, b in zip(lines, lines[1:], strict=False) if b[0] > a[1]]
    shift = first - max(min(gaps, default=LINE_GAP * size), MIN_GAP * size) - last
    moved = [Char(c.text, c.x0, c.top + shift, c.x1, c.bottom + shift, c.size, c.space_before) for c in tail]
    return [*moved, *chars]


def _line_lefts(values: list[Run]) -> dict[int, float]:
    """For each number, where the leftmost number on its line starts (a sweep over the numbers by height)."""
    ordered = sorted(values, key=lambda r: r.cy)
    centres = [r.cy for r in ordered]
    out: dict[int, float] = {}
    for n in values:
        cy, reach = n.cy, SAME_LINE * n.size
        lo, hi = bisect.bisect_left(centres, cy - reach), bisect.bisect_right(centres, cy + reach)
        out[id(n)] = min(r.x0 for r in ordered[lo:hi])
    return out


def _split_rows(stacks: list[Stack], values: list[Run], room: dict[int, float]) -> list[Stack]:
    """Labels of tight rows stack as one (规章 / 行政规范性文件): split a stack before a line level with
    numbers of its own that lie under numbers level with an earlier line (two rows' values in one column;
    a row whose columns are set at different heights is not split). Lines between go with the line above.
    Not where the label and each such number wrapped, all their lines above full (…相关政府信 / 息 beside
    25 / 2 in a column two digits wide): one row, its number 252."""
    out: list[Stack] = []
    centres = [(n.cy, n) for n in values]
    runs = [r for s in stacks for r in s.runs]
    edges = _edges(runs)
    for s in stacks:
        if len(s.runs) == 1:
            out.append(s)
            continue
        level = [[n for cy, n in centres if abs(cy - r.cy) <= SAME_LINE * r.size and n.x0 >= r.x1] for r in s.runs]
        part = Stack([], s.spanning)
        seen: list[Run] = []  # numbers level with the part's lines so far
        for r, numbers in zip(s.runs, level, strict=True):
            under = [(a, b) for a in seen for b in numbers if a.x0 < b.x1 and b.x0 < a.x1]
            if part.runs and under and not _wraps(part.runs[-1], r, under, edges, room):
                out.append(part)
                part, seen = Stack([], s.spanning), []
            part.runs.append(r)
            seen += numbers
        out.append(part)
    return out


def _edges(runs: list[Run]) -> dict[int, float]:
    """For each run, the farthest right any run starting within an em of it ends (its column's edge), by a
    bisect over the runs in x0 order rather than all against all."""
    ordered = sorted(runs, key=lambda r: r.x0)
    starts = [r.x0 for r in ordered]
    out: dict[int, float] = {}
    for r in runs:
        lo, hi = bisect.bisect_left(starts, r.x0 - r.size), bisect.bisect_right(starts, r.x0 + r.size)
        out[id(r)] = max(t.x1 for t in ordered[lo:hi])
    return out


def _wraps(
    line: Run, below: Run, under: list[tuple[Run, Run]], edges: dict[int, float], room: dict[int, float]
) -> bool:
    """The label line `line` and each number over another were full: their next glyphs wrapped below."""
    first = below.chars[0]
    lead = first.size if unicodedata.east_asian_width(first.text) in "FW" else first.x1 - first.x0
    if ENUMERATION.match(below.text) or line.x1 + lead <= edges[id(line)] + first.size / 4:
        return False
    return all(_DIGITS.match(a.text) and _DIGITS.match(b.text) and _full(a, room) for a, b in under)


def _full(n: Run, room: dict[int, float]) -> bool:
    """A line of digits to which one more digit (as wide as its own) would not fit in its column."""
    return (n.x1 - n.x0) * (1 + 1 / max(1, len(n.text))) > room[id(n)] + FULL_SLACK


Box = tuple[int, float, float, float, float, float]  # a label stack: index, x0, x1, top, bottom, size


def _boxes(stacks: list[Stack]) -> list[Box]:
    return [(i, s.x0, s.x1, s.top, s.bottom, s.size) for i, s in enumerate(stacks) if not s.spanning]


def _leaf(boxes: list[Box], n: Run, heads: set[Box], line_left: float) -> tuple[int | None, bool]:
    """The row label beside a number, and whether level with it: the rightmost stack left of it level with
    it, else the nearest within NEAR_LABEL ems (a number set at the top or bottom of a row)."""
    cy = n.cy
    left = [b for b in boxes if b[2] <= line_left]
    level = [b for b in left if b[3] - SAME_LINE * b[5] <= cy <= b[4] + SAME_LINE * b[5]]
    if level:
        return max(level, key=lambda b: b[1])[0], True
    return _nearest([b for b in left if b not in heads], n), False


def _nearest(left: list[Box], n: Run) -> int | None:
    distance = {b: max(b[3] - n.bottom, n.top - b[4]) for b in left}
    close = [b for b, d in distance.items() if d <= NEAR_LABEL * b[5]]
    if not close:
        return None
    closest = min(distance[b] for b in close)
    return max((b for b in close if distance[b] <= closest + 1), key=lambda b: b[1])[0]


def _join_wrapped(values: list[Run], leaf_of: dict[int, int | None], level: set[int], texts: list[Run]) -> list[Run]:
    """A number wrapped in a narrow column (703 / 15 is 70315): digits right under a full line of digits in
    the same column, beside the same label, with nothing between. Where the two lines are beside two labels
    (not each level with its own), which row the second is cannot be told: refused."""
    widest = _widest(values, texts)
    # numbers overlapping each other are in one column: look for the line above among the column's only
    column_of = {id(n): k for k, column in enumerate(_number_columns(values)) for n in column}
    seen: dict[int, list[Run]] = {}  # per column, the numbers so far (joined ones as one)
    out: list[Run] = []
    last_line: dict[int, Run] = {}  # a joined number's last line: it wraps again only if that one is full
    for n in sorted(values, key=lambda r: r.top):
        mine = seen.setdefault(column_of[id(n)], [])
        above = [p for p in mine if p.x0 < n.x1 and n.x0 < p.x1 and p.bottom <= n.top]
        p = max(above, key=lambda p: p.bottom, default=None)
        line = last_line.get(id(p), p) if p is not None else None
        wrapped = (
            p is not None
            and line is not None
            and n.top - p.bottom <= WRAP_GAP * max(p.size, n.size)
            and _DIGITS.match(p.text)
            and _DIGITS.match(n.text)
            # the line above is the widest of its column: it may have wrapped
            and line.x1 - line.x0 >= widest[id(n)] - 0.5 * line.size
            and not any(t.x0 < n.x1 and n.x0 < t.x1 and p.bottom <= t.cy <= n.top for t in texts)
        )
        if wrapped and p is not None and leaf_of[id(p)] != leaf_of[id(n)]:
            if id(p) in level and id(n) in level:
                wrapped = False  # each level with its own label: two rows
            else:
                raise Refused(f"{p.text} / {n.text}: a number wrapped, or two rows' numbers? beside two labels")
        if wrapped and p is not None:
            joined = Run(
                [*p.chars, *n.chars],
                p.text + n.text,
                min(p.x0, n.x0),
                max(p.x1, n.x1),
                p.top,
                n.bottom,
                max(p.size, n.size),
            )
            leaf_of[id(joined)] = leaf_of[id(p)]
            last_line[id(joined)] = n
            out[out.index(p)] = joined
            mine[mine.index(p)] = joined
        else:
            out.append(n)
            mine.append(n)
    return out


def _number_columns(values: list[Run]) -> list[list[Run]]:
    """Numbers one under the other (overlapping x-ranges, whatever the alignment), left to right."""
    columns: list[list[Run]] = []
    right = float("-inf")
    for n in sorted(values, key=lambda r: r.x0):
        if not columns or n.x0 >= right:
            columns.append([])
            right = float("-inf")
        columns[-1].append(n)
        right = max(right, n.x1)
    return columns


def _widest(values: list[Run], texts: list[Run]) -> dict[int, float]:
    """For each number, the widest number of its column within its table (the column cut where text
    overlapping it lies between two numbers: another table's header)."""
    out: dict[int, float] = {}
    for column in _number_columns(values):
        x0, x1 = min(n.x0 for n in column), max(n.x1 for n in column)
        cuts = sorted(t.cy for t in texts if t.x0 < x1 and x0 < t.x1)
        parts: dict[int, list[Run]] = {}
        for n in column:
            parts.setdefault(bisect.bisect_left(cuts, n.cy), []).append(n)
        for part in parts.values():
            width = max(v.x1 - v.x0 for v in part)
            out.update((id(n), width) for n in part)
    return out


def _column_room(values: list[Run], texts: list[Run]) -> dict[int, float]:
    """For each number, how wide a line its column holds: its widest number, or the widest text over that
    column alone (本年新 / 制作数量 over 13: a column that holds 13 with room to spare wraps no number)."""
    columns = _number_columns(values)
    spans = [(min(n.x0 for n in c), max(n.x1 for n in c)) for c in columns]
    out: dict[int, float] = {}
    for k, column in enumerate(columns):
        room = max(n.x1 - n.x0 for n in column)
        top = min(n.top for n in column)
        x0, x1 = spans[k]
        # between the neighbouring columns (the first and last as far out as the gap on their other side)
        low = spans[k - 1][1] if k else x0 - (spans[k + 1][0] - x1 if k + 1 < len(spans) else room)
        high = spans[k + 1][0] if k + 1 < len(spans) else x1 + (x0 - spans[k - 1][1] if k else room)
        for t in texts:
            if t.bottom <= top and low <= t.x0 and t.x1 <= high:
                room = max(room, t.x1 - t.x0)
        out.update((id(n), room) for n in column)
    return out


def _lines_of(values: list[Run]) -> list[list[Run]]:
    """Numbers without a label, by rows: on one line, or a wrapped number over the lines of the others."""
    lines: list[list[Run]] = []
    bottom = float("-inf")
    for n in sorted(values, key=lambda r: r.top):
        if lines and (abs(n.cy - lines[-1][0].cy) <= SAME_LINE * n.size or n.top < bottom - n.size / 2):
            lines[-1].append(n)
        else:
            lines.append([n])
            bottom = float("-inf")
        bottom = max(bottom, n.bottom)
    return [sorted(line, key=lambda r: r.x0) for line in lines]


def _adopt_orphans(
    stacks: list[Stack], by_leaf: dict[int, list[Run]], grouped: set[int], left: float, texts: list[Run]
) -> None:
    """A label's lines set farther apart than STACK_GAP (wide line spacing) leave stacks beside no row's
    numbers: each joins the label of the nearest row (by its numbers' height) in the same column, when
    nothing lies between them, and nothing lies right of it (a header line names the columns there)."""
    cy_of = {leaf: sum(n.cy for n in cells) / len(cells) for leaf, cells in by_leaf.items()}
    if not cy_of:
        return
    extents = _extents(stacks)  # kept as the stacks change: an orphan taken changes its row's label
    lowest, highest = min(cy_of.values()), max(cy_of.values())
    for i, s in enumerate(stacks):
        if i in by_leaf or i in grouped or s.spanning or ENUMERATION.match(s.runs[0].text):
            continue  # a numbered label opens a row of its own (its cells may all be blank)
        s_x0, s_x1, s_top, s_bottom = extents[i]
        if not lowest < (s_top + s_bottom) / 2 < highest:
            continue  # above the first row of numbers or below the last: a heading or a note, not a label
        if any(t.x0 >= s_x1 and any(abs(t.cy - r.cy) <= SAME_LINE * r.size for r in s.runs) for t in texts):
            continue
        candidates = [
            (abs(cy - (s_top + s_bottom) / 2), leaf)
            for leaf, cy in cy_of.items()
            if extents[leaf][0] < s_x1
            and s_x0 < extents[leaf][1]
            and s_x1 <= min(n.x0 for n in by_leaf[leaf])  # in the labels' columns, left of the row's numbers
            and not _between(extents, i, leaf)
            and not _header_between(texts, s, stacks[leaf])
        ]
        above = [(stacks[leaf].bottom, leaf) for _, leaf in candidates if stacks[leaf].bottom <= s.top]
        if above:  # the row just above, its label's last line full: the orphan is the rest of that label
            last = stacks[max(above)[1]].runs[-1]
            edge = max(t.x1 for t in texts if abs(t.x0 - last.x0) <= last.size)
            if last.x1 + s.runs[0].chars[0].size > edge + s.runs[0].size / 4:
                candidates = [(-1.0, max(above)[1])]
        if candidates:
            leaf = min(candidates)[1]
            stacks[leaf].runs = sorted([*stacks[leaf].runs, *s.runs], key=lambda r: r.top)
            extents[leaf] = _extents([stacks[leaf]])[0]
            grouped.add(i)  # taken: not a header text


def _join_label_halves(stacks: list[Stack], by_leaf: dict[int, list[Run]], texts: list[Run]) -> set[int]:
    """One row's label in two stacks, each beside some of its numbers (a cell set at the top, the others
    centred: 1.申请人无正当理由逾期不补 beside 总计, 正、行政机关… beside the rest): joined when the upper
    label's last line is full, the lower opens no new item, lies right under it, and their numbers fill
    different columns. Returns the lower stacks, taken."""
    taken: set[int] = set()
    order = sorted(by_leaf, key=lambda i: stacks[i].top)
    for a, b in zip(order, order[1:], strict=False):
        if a in taken:
            continue
        upper, lower = stacks[a], stacks[b]
        last, first = upper.runs[-1], lower.runs[0]
        if ENUMERATION.match(first.text) or abs(first.x0 - upper.runs[0].x0) > first.size:
            continue
        # as close as lines of one label: LABEL_GAP ems, or as far as the lines of either stack lie apart
        inner = [y.top - x.bottom for st in (upper, lower) for x, y in zip(st.runs, st.runs[1:], strict=False)]
        if not 0 <= first.top - last.bottom <= max([LABEL_GAP * first.size, *(g + first.size / 4 for g in inner)]):
            continue
        edge = max(t.x1 for t in texts if abs(t.x0 - last.x0) <= last.size)
        if last.x1 + first.chars[0].size <= edge + first.size / 4:
            continue  # the upper label's last line had room: the lower one is a label of its own
        if any(m.x0 < n.x1 and n.x0 < m.x1 for m in by_leaf[a] for n in by_leaf[b]):
            continue  # numbers in one column: two rows
        upper.runs += lower.runs
        by_leaf[a] += by_leaf.pop(b)
        taken.add(b)
    return taken


Extent = tuple[float, float, float, float]  # a stack's x0, x1, top, bottom


def _extents(stacks: list[Stack]) -> list[Extent]:
    """Each stack's box, computed once for a pass over all stacks (their properties scan their runs)."""
    return [(s.x0, s.x1, s.top, s.bottom) for s in stacks]


def _groups_of(
    stacks: list[Stack], s: Stack, by_leaf: dict[int, list[Run]], extents: list[Extent] | None = None
) -> list[int]:
    """Stacks left of a row label and level with part of it: the labels of groups of rows it is in
    (`extents`: `_extents(stacks)`, when the caller asks for many labels while the stacks stay as they are)."""
    ext = extents if extents is not None else _extents(stacks)
    s_x0, s_top, s_bottom = s.x0, s.top, s.bottom
    return [
        i
        for i, (g, (_, x1, top, bottom)) in enumerate(zip(stacks, ext, strict=True))
        if top <= s_bottom and s_top <= bottom and i not in by_leaf and not g.spanning and x1 <= s_x0
    ]


def _blank_rows(
    stacks: list[Stack],
    by_leaf: dict[int, list[Run]],
    grouped: set[int],
    values: list[Run],
    texts: list[Run],
    unlabelled: list[Run],
) -> set[int]:
    """Numbered labels of rows whose cells are all blank (7.属于行政执法案卷): a stack opening with a number,
    next (above or below) to a row with numbers, within that row's label columns (right of where its label
    starts, left of its numbers), with no text right of it on its lines (a header) and no label right of it
    (a group label)."""
    out: set[int] = set()
    tops = sorted([(stacks[leaf].top, leaf) for leaf in by_leaf] + [(n.top, -1) for n in unlabelled])
    for i, s in enumerate(stacks):
        if i in by_leaf or i in grouped or s.spanning or not ENUMERATION.match(s.runs[0].text):
            continue
        if any(t.x0 >= s.x1 and any(abs(t.cy - r.cy) <= SAME_LINE * r.size for r in s.runs) for t in texts):
            continue
        if any(v.x0 >= s.x1 and v.top < s.bottom + s.size / 2 and s.top - s.size / 2 < v.bottom for v in values):
            continue  # numbers beside it, though taken by another label: not a row left blank
        if any(
            g.x0 >= s.x1 and g.top <= s.bottom and s.top <= g.bottom and not g.spanning
            for j, g in enumerate(stacks)
            if j != i
        ):
            continue
        k = next((k for k, (top, _) in enumerate(tops) if top > s.top), len(tops))
        for neighbour in (tops[k - 1][1] if k else None, tops[k][1] if k < len(tops) else None):
            if neighbour is None or neighbour < 0:
                continue  # none, or a row of numbers without a label
            row = stacks[neighbour]  # s lies in its labels' columns: right of its start, left of its numbers
            if row.x0 - row.size <= s.x0 and s.x1 <= min(n.x0 for n in by_leaf[neighbour]):
                out.add(i)
    return out


def _header_between(texts: list[Run], orphan: Stack, leaf: Stack) -> bool:
    """Text right of the label column lies between the two (a table's header): they are not one label."""
    low, high, right = min(orphan.bottom, leaf.bottom), max(orphan.top, leaf.top), orphan.x1
    return any(t.x0 >= right and low <= t.cy <= high for t in texts)


def _between(extents: list[Extent], a: int, b: int) -> bool:
    """Another stack overlapping stack a's columns lies between stacks a and b (`extents` of the stacks)."""
    x0, x1, a_top, a_bottom = extents[a]
    _, _, b_top, b_bottom = extents[b]
    low, high = min(a_bottom, b_bottom), max(a_top, b_top)
    return any(
        low <= (t_top + t_bottom) / 2 <= high and t_x0 < x1 and x0 < t_x1
        for j, (t_x0, t_x1, t_top, t_bottom) in enumerate(extents)
        if j not in (a, b)
    )


def _assemble(items: list[Item], carried: Columns | None, align: str | None) -> PageTable:
    rows: list[list[str]] = []
    columns = carried
    if columns is not None:
        columns.align = align
    pending: list[Run] = []  # text runs since the last data row
    # data rows under the current header: (index in rows, numbers, labels)
    block: list[tuple[int, list[Run], list[str]]] = []

    def flush() -> None:
        if block:
            assert columns is not None
            for k, values in zip([b[0] for b in block], _place([b[1] for b in block], columns), strict=True):
                rows[k] = [*block[[b[0] for b in block].index(k)][2], *values]
            block.clear()

    for _, payload in items:
        if isinstance(payload, Run):
            pending.append(payload)
            continue
        if not payload.numbers and (columns is None or pending):
            pending += payload.runs  # a numbered line above a table's header: a heading, not a blank row
            continue
        if pending:
            header, texts = _header(pending)
            rows.append(texts)
            if header is not None:
                flush()
                columns = header
                columns.align = align
            pending = []
        line, labels = payload.numbers, payload.labels
        if columns is None:
            raise NoTable("numbers with no header naming their columns above them")
        if not labels and block:
            raise Refused(f"a second row of numbers without a label ({[n.text for n in line]})")
        block.append((len(rows), line, labels))
        rows.append([])
    flush()
    if pending:
        header, texts = _header(pending)
        rows.append(texts)
        columns = header or columns
        if columns is not None:
            columns.align = align
    return PageTable(rows, columns)


def _place(lines: list[list[Run]], columns: Columns) -> list[list[str]]:
    """Each row's numbers, one text per header column (blank where it has none). The numbers' columns are
    told by their own x-ranges (one under the other overlap, whatever the alignment), each matched to the
    one header over it, or clearly nearest it; anything else is refused."""
    clusters: list[list[float]] = []  # [x0, x1]
    for x0, x1 in sorted((n.x0, n.x1) for line in lines for n in line):
        if clusters and x0 < clusters[-1][1]:
            clusters[-1][1] = max(clusters[-1][1], x1)
        else:
            clusters.append([x0, x1])
    heads = columns.heads
    for x0, x1 in clusters:
        if any(h0 < x1 and x0 < h1 for h0, h1 in columns.unnamed):
            raise Refused(f"numbers at {x0:.0f}–{x1:.0f} lie under a header that names no column")
    assigned: list[int] = []
    if len(clusters) == len(heads):  # one column of numbers per header: in order, each near its own
        assigned = list(range(len(heads)))
        for j, (x0, x1) in enumerate(clusters):
            low = heads[j - 1][0] if j else float("-inf")
            high = heads[j + 1][1] if j + 1 < len(heads) else float("inf")
            if not (low < x0 and x1 < high):
                raise Refused(f"numbers at {x0:.0f}–{x1:.0f} lie far from their column header")
    for x0, x1 in clusters if not assigned else []:
        over = [j for j, (h0, h1) in enumerate(heads) if h0 < x1 and x0 < h1]
        if len(over) > 1:
            raise Refused(f"numbers at {x0:.0f}–{x1:.0f} lie under {len(over)} column headers")
        if not over:
            gaps = sorted((max(h0 - x1, x0 - h1), j) for j, (h0, h1) in enumerate(heads))
            if len(gaps) > 1 and gaps[0][0] * 2 > gaps[1][0]:
                by_side = _by_alignment(x0, x1, [heads[gaps[0][1]], heads[gaps[1][1]]], columns.align)
                if not by_side:
                    raise Refused(f"numbers at {x0:.0f}–{x1:.0f} lie under no column header, between two")
                over = [heads.index(by_side[0])]
            else:
                over = [gaps[0][1]]
        assigned.append(over[0])
    if assigned != sorted(set(assigned)):
        raise Refused("two columns of numbers under one header")
    out: list[list[str]] = []
    for line in lines:
        values = [""] * len(heads)
        for n in line:
            j = assigned[next(k for k, (x0, x1) in enumerate(clusters) if x0 <= n.x0 and n.x1 <= x1)]
            if values[j]:
                raise Refused(f"two numbers of one row under one header ({values[j]}, {n.text})")
            values[j] = n.text
        out.append(values)
    for above, below in zip(out, out[1:], strict=False):
        if (
            any(above)
            and any(below)
            and "" in above
            and "" in below
            and not any(a and b for a, b in zip(above, below, strict=True))
        ):
            # one row's numbers set at two heights, each beside a part of its label, or two rows? refused
            raise Refused(f"two rows of numbers filling each other's blank columns ({above} / {below})")
    return out


def _alignment(values: list[Run]) -> str | None:
    """How the table sets numbers in their cells, told by columns holding numbers of different widths:
    "right" where they end together, "left" where they start together; None unless all such agree."""
    seen: set[str] = set()
    for column in _number_columns(values):
        if max(n.x1 - n.x0 for n in column) - min(n.x1 - n.x0 for n in column) < ALIGN_SPREAD:
            continue  # numbers of one width: they end and start together however set
        ends = max(n.x1 for n in column) - min(n.x1 for n in column)
        starts = max(n.x0 for n in column) - min(n.x0 for n in column)
        seen.add("right" if ends < 1 else "left" if starts < 1 else "other")
    return next(iter(seen)) if len(seen) == 1 and "other" not in seen else None


def _by_alignment(
    x0: float, x1: float, heads: list[tuple[float, float]], align: str | None
) -> list[tuple[float, float]]:
    """Numbers between two header columns, in a table whose numbers sit at one side of their cells and
    headers at the left: right-set ones belong to the header starting left of their end, left-set ones
    to the header starting at or left of their start (the rightmost such)."""
    if align == "right":
        fits = [h for h in heads if h[0] < x1]
    elif align == "left":
        fits = [h for h in heads if h[0] <= x0 + 1]
    else:
        return []
    return [max(fits)] if fits else []


def _header(runs: list[Run]) -> tuple[Columns | None, list[str]]:
    """The value columns that text above a table's numbers names, and its texts. Runs one under the other
    (overlapping) are one column's header, read top to bottom (商业 / 企业); a run over two runs that do not
    overlap each other spans columns (申请人情况, 法人或其他组织) and names none. Text set apart above the
    header (headings, prose: HEADER_GAP ems or more above the next line) is read as text, not as a header."""
    ordered = sorted(runs, key=lambda r: r.top)
    bottom, start = float("-inf"), 0
    for k, r in enumerate(ordered):
        if r.top - bottom > HEADER_GAP * r.size:
            start = k
        bottom = max(bottom, r.bottom)
    above = [Stack([r], True) for r in ordered[:start]]
    columns_of, texts = _header_band(ordered[start:])
    return columns_of, [s.text for s in sorted(above, key=lambda h: (h.top, h.x0))] + texts


def _header_band(runs: list[Run]) -> tuple[Columns | None, list[str]]:
    spanning = [r for r in runs if _spans(r, runs)]
    columns: list[list[Run]] = []
    for r in sorted((r for r in runs if r not in spanning), key=lambda r: r.x0):
        if columns and r.x0 < max(c.x1 for c in columns[-1]):
            columns[-1].append(r)
        else:
            columns.append([r])
    headers = [Stack(sorted(c, key=lambda r: r.top)) for c in columns]
    texts = [h.text for h in sorted([*headers, *(Stack([r], True) for r in spanning)], key=lambda h: (h.top, h.x0))]
    return _header_columns(headers), texts


@functools.lru_cache(maxsize=4096)
def _column_scores(header: str) -> tuple[tuple[float, ...], ...]:
    """How well a header text names each column of each schema table (TABLES' order): the same headers
    recur on every page and in every report, and scoring them was a tenth of the rebuild."""
    from gongkai.schema import TABLES
    from gongkai.schema.labels import best_score, normalize_label

    text = normalize_label(header)
    return tuple(tuple(best_score(text, c.labels) for c in table.columns) for table in TABLES.values())


def _header_columns(leaves: list[Stack]) -> Columns | None:
    """The value columns named by header stacks, when they name a schema table's columns in its order."""
    from gongkai.schema import TABLES

    best: tuple[int, list[Stack]] | None = None
    leaf_scores = [_column_scores(s.text) for s in leaves]
    for t, table in enumerate(TABLES.values()):
        keys = [c.key for c in table.columns]
        named: list[tuple[Stack, int]] = []
        for s, by_table in zip(leaves, leaf_scores, strict=True):
            scores = list(by_table[t])
            top = max(scores, default=0.0)
            if top >= HEADER_MATCH:
                if scores.count(top) > 1:
                    return None  # a header naming two columns alike
                named.append((s, scores.index(top)))
        if not named:
            continue
        order = [k for _, k in named]
        if table.orientation == "rows":
            if order != sorted(set(order)):
                continue  # printed in another order than the schema's: mapping would place them wrong
        elif len(order) % len(keys) or order != list(range(len(keys))) * (len(order) // len(keys)):
            continue
        if best is None or len(named) > best[0]:
            best = (len(named), [s for s, _ in named])
    if best is None:
        return None
    taken = {id(h) for h in best[1]}
    return Columns([(h.x0, h.x1) for h in best[1]], [(h.x0, h.x1) for h in leaves if id(h) not in taken])


def _runs(chars: list[Char]) -> list[Run]:
    """Glyphs one after the other in the text stream, on one line, without a cell's gap between them.
    PDFium marks a break (a space, a new line) before a glyph: there a gap of SPACE ems parts two cells
    (tight columns sit that close), elsewhere only a gap of GAP ems does (justified CJK text)."""
    runs: list[Run] = []
    current: list[Char] = []
    top = bottom = em = 0.0  # of the current run
    for c in chars:  # in the stream's order: cells and lines come one after the other
        half = c.size / 2
        if current:
            prev = current[-1]
            size = max(c.size, prev.size)
            # A glyph's box is its ink (一 is a thin stroke, 、 sits low): lines are told by em-high bands.
            same_line = top <= c.cy <= bottom or c.cy - half <= (top + bottom) / 2 <= c.cy + half
            gap = c.x0 - _end(prev, em)
            if not same_line or gap < -0.9 * size or gap > GAP * size or (c.space_before and gap > SPACE * size):
                runs.append(_run(current))
                current = []
        if current:
            top, bottom, em = min(top, c.cy - half), max(bottom, c.cy + half), max(em, c.size)
        else:
            top, bottom, em = c.cy - half, c.cy + half, c.size
        current.append(c)
    if current:
        runs.append(_run(current))
    return runs


def _with_units(runs: list[Run]) -> list[Run]:
    """A unit set a space after its number (251000 元, 12 件) is part of the value, not a label beside it;
    a list marker set apart from its text by justified spacing (1.  申 请 人) is part of the label."""
    out: list[Run] = []
    for r in runs:
        p = out[-1] if out else None
        if p is not None and abs(r.cy - p.cy) <= SAME_LINE * max(r.size, p.size) and r.x0 >= p.x1:
            gap = (r.x0 - p.x1) / max(r.size, p.size)
            unit = gap <= GAP and len(r.text) <= MAX_UNIT and is_number(p.text + r.text)
            marker = gap <= MARKER_GAP and bool(_MARKER.match(p.text))
            if (marker or (unit and is_number(p.text))) and not is_number(r.text):
                chars = [*p.chars, *r.chars]
                out[-1] = Run(chars, p.text + r.text, p.x0, r.x1, min(p.top, r.top), max(p.bottom, r.bottom), p.size)
                continue
        out.append(r)
    return out


def _end(c: Char, em: float) -> float:
    """Where a glyph's advance ends: a full-width glyph (（ ） ， or an ideograph) takes its whole em, the
    line's (the ink of ， is a dot at the left of it)."""
    if unicodedata.east_asian_width(c.text) in "FW":
        return max(c.x1, c.x0 + em * 0.9)
    return c.x1


def _run(chars: list[Char]) -> Run:
    parts = [chars[0].text]
    for prev, c in zip(chars, chars[1:], strict=False):
        parts.append((" " if c.space_before and c.x0 > prev.x1 else "") + c.text)
    return Run(
        chars,
        clean_text("".join(parts)),
        min(c.x0 for c in chars),
        max(c.x1 for c in chars),
        min(c.top for c in chars),
        max(c.bottom for c in chars),
        max(c.size for c in chars),
    )


def _data_lines(numeric: list[Run], texts: list[Run], runs: list[Run]) -> list[list[Run]]:
    """Numbers on one line with no text to their right: a row's values (page numbers left out)."""
    lines: list[list[Run]] = []
    for n in sorted(numeric, key=lambda r: r.cy):
        if lines and abs(n.cy - lines[-1][0].cy) <= SAME_LINE * n.size:
            lines[-1].append(n)
        else:
            lines.append([n])
    top = min((r.top for r in runs), default=0.0)
    bottom = max((r.bottom for r in runs), default=0.0)
    out: list[list[Run]] = []
    by_height = sorted(texts, key=lambda t: t.cy)
    heights = [t.cy for t in by_height]
    for line in lines:
        line.sort(key=lambda r: r.x0)
        cy, size = line[0].cy, line[0].size
        lo = bisect.bisect_left(heights, cy - SAME_LINE * size)
        beside = by_height[lo : bisect.bisect_right(heights, cy + SAME_LINE * size)]
        if any(t.x1 > line[0].x0 for t in beside):
            continue  # a number inside prose or a label, not a row's values
        lone = len(line) == 1 and not beside and len(line[0].text) <= SHORT_LINE
        n = line[0]
        if lone and (n.top <= top + 1 or n.bottom >= bottom - 1) and not _near_other(n, numeric):
            continue  # a page number (a row's number at the page's edge has the row's others near it)
        out.append(line)
    return out


def _near_other(n: Run, numeric: list[Run]) -> bool:
    """Another number lies within PAGE_NUMBER_ALONE ems above or below (asked only of lone numbers at a
    page's edge: all against all on every line cost more than the rest of the rebuild)."""
    return any(m is not n and abs(m.cy - n.cy) <= PAGE_NUMBER_ALONE * n.size for m in numeric)


def _stacks(texts: list[Run]) -> list[Stack]:
    """Runs set one under the other into cells; spanning labels alone."""
    ordered = sorted(texts, key=lambda r: (r.top, r.x0))
    tops = [r.top for r in ordered]
    spanning = {id(r) for r in ordered if _spans_near(r, ordered, tops)}
    stacks: list[Stack] = []
    for r in ordered:
        target = None
        if id(r) not in spanning and not ENUMERATION.match(r.text):  # 1. （二） 三、 open a new row's label
            for s in reversed(stacks):
                last = s.runs[-1]
                if s.spanning or last.bottom >= r.top:
                    continue
                if r.top - last.bottom <= STACK_GAP * max(r.size, last.size) and last.x0 < r.x1 and r.x0 < last.x1:
                    target = s
                    break
        if target is None:
            stacks.append(Stack([r], id(r) in spanning))
        else:
            target.runs.append(r)
    return stacks


def _spans_near(run: Run, ordered: list[Run], tops: list[float]) -> bool:
    """`_spans(run, ordered, SPAN_REACH)`, looking only at the runs whose tops lie within reach below it
    (`ordered` by top, `tops` theirs): every run against every other was the rebuild's costliest pass."""
    lo = bisect.bisect_left(tops, run.bottom)
    hi = bisect.bisect_right(tops, run.bottom + SPAN_REACH * run.size)
    return _spans(run, ordered[lo:hi], SPAN_REACH)


def _spans(run: Run, runs: list[Run], reach: float | None = None) -> bool:
    """Over two runs below it that do not overlap each other (within `reach` ems and on one line when
    given, anywhere below when not): a label spanning columns."""
    under = sorted(
        (r for r in runs if run.bottom <= r.top and run.x0 < r.x1 and r.x0 < run.x1),
        key=lambda r: r.x0,
    )
    if reach is None:
        return any(b.x0 >= a.x1 for a in under for b in under)
    near = [r for r in under if r.top <= run.bottom + reach * run.size]
    return any(b.x0 >= a.x1 and abs(a.cy - b.cy) <= SAME_LINE * a.size for a in near for b in near)


def to_table(index: int, page: int, rows: list[list[str]]) -> Table:
    """Rows of texts → the model's unaligned table (cells keep their order, not their columns)."""
    grid = [
        [GridCell(text, r, c, (r, c), page) for c, text in enumerate(row, start=1)]
        for r, row in enumerate(rows, start=1)
    ]
    return Table(index=index, rows=grid, page=page, aligned=False, rebuilt=True)
