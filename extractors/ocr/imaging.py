"""Page images: ink, deskew, and the table grids drawn by ruling lines (OpenCV morphology).

Pixel coordinates throughout, (x0, top, x1, bottom) from the image's top-left; the caller scales to points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges

from gongkai.extractors.ocr.engine import Image
from gongkai.extractors.pdf_rules import edge

MAX_SKEW = 2.5  # degrees searched either way: office scanners feed pages within ~2°
SKEW_STEP = 0.1
MIN_SKEW = 0.15  # below this a rotation only blurs
SKEW_WIDTH = 900  # the skew is measured on a copy this wide (a page's lines stay lines)
PixelBox = tuple[float, float, float, float]


@dataclass(slots=True)
class PixelCell:
    row: int
    col: int
    rowspan: int
    colspan: int
    box: PixelBox


@dataclass(slots=True)
class PixelGrid:
    box: PixelBox
    n_rows: int
    n_cols: int
    cells: list[PixelCell]
    xs: list[float]  # column boundaries, left to right


def ink(gray: Image) -> Image:
    """255 where there is ink: a local threshold copes with uneven scanner lighting and JPEG haze."""
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 20)


def deskew(gray: Image) -> tuple[Image, float]:
    """The image turned upright and the angle it was turned by (degrees): the angle whose rotation makes the ink's
    row profile sharpest (text lines and rules then fall into few rows), searched within ±MAX_SKEW."""
    mask = ink(gray)
    scale = min(1.0, SKEW_WIDTH / mask.shape[1])
    small = cv2.resize(mask, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape
    centre = (w / 2, h / 2)

    def sharpness(angle: float) -> float:
        turned = cv2.warpAffine(small, cv2.getRotationMatrix2D(centre, angle, 1.0), (w, h), flags=cv2.INTER_NEAREST)
        rows = turned.sum(axis=1, dtype=np.float64)
        return float(np.square(np.diff(rows)).sum())

    coarse = [i * 0.5 for i in range(-int(MAX_SKEW * 2), int(MAX_SKEW * 2) + 1)]
    best = max(coarse, key=sharpness)
    fine = [best + i * SKEW_STEP for i in range(-5, 6)]
    best = max(fine, key=sharpness)
    if abs(best) < MIN_SKEW:
        return gray, 0.0
    gh, gw = gray.shape
    matrix = cv2.getRotationMatrix2D((gw / 2, gh / 2), best, 1.0)
    turned = cv2.warpAffine(gray, matrix, (gw, gh), flags=cv2.INTER_LINEAR, borderValue=255)
    return turned, best


def rules(mask: Image, dpi: float) -> tuple[Image, Image]:
    """The horizontal and vertical ruling lines of an ink mask: runs of ink far longer than any glyph stroke."""
    long_run = max(15, int(dpi * 0.35))  # ~9 mm: twice a character's width at report sizes
    bridged = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # a scanned rule breaks up in places; glyphs stay short
    horizontal = cv2.morphologyEx(bridged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (long_run, 1)))
    vertical = cv2.morphologyEx(bridged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, long_run)))
    return horizontal, vertical


def grids(mask: Image, dpi: float) -> tuple[list[PixelGrid], Image]:
    """The ruled tables of a page, and the mask of their rules (to take out of the cells' ink)."""
    horizontal, vertical = rules(mask, dpi)
    edges = _segments(horizontal, "h") + _segments(vertical, "v")
    lines = cv2.bitwise_or(horizontal, vertical)
    if len(edges) < 4:
        return [], lines
    tol = max(3.0, dpi / 72 * 3)  # 3 pt, as the PDF reader snaps vector rules
    edges = merge_edges(edges, tol, tol, tol, tol)
    edges = merge_edges(edges + _closing_edges(edges, tol), tol, tol, tol, tol)
    cells = intersections_to_cells(edges_to_intersections(edges, tol, tol))
    found = [_grid(boxes, tol) for boxes in cells_to_tables(cells)]
    # a lone row is kept: it may be the end of a table cut by the page break (the page join drops it otherwise)
    return [g for g in found if g.n_cols >= 2], lines


def _closing_edges(edges: list[dict[str, Any]], tol: float) -> list[dict[str, Any]]:
    """A table cut by a page break lacks its last (or first) rule: two or more vertical rules then end together
    off any horizontal one. Draw the missing rule there (the PDF reader does the same for vector rules)."""
    horizontal = [e for e in edges if e["orientation"] == "h"]

    def on_a_rule(x: float, y: float) -> bool:
        return any(abs(h["top"] - y) <= tol and h["x0"] - tol <= x <= h["x1"] + tol for h in horizontal)

    added: list[dict[str, Any]] = []
    for end in ("top", "bottom"):
        loose = sorted((e[end], e["x0"]) for e in edges if e["orientation"] == "v" and not on_a_rule(e["x0"], e[end]))
        groups: list[list[tuple[float, float]]] = []
        for point in loose:
            if groups and point[0] - groups[-1][-1][0] <= tol:
                groups[-1].append(point)
            else:
                groups.append([point])
        for group in (g for g in groups if len(g) >= 2):
            y = min(p[0] for p in group) if end == "top" else max(p[0] for p in group)
            added.append(edge("h", min(p[1] for p in group), y, max(p[1] for p in group), y))
    return added


def _segments(mask: Image, orientation: str) -> list[dict[str, Any]]:
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out: list[dict[str, Any]] = []
    for x, y, w, h, _area in stats[1:count]:
        if orientation == "h":
            mid = y + h / 2
            out.append(edge("h", float(x), float(mid), float(x + w), float(mid)))
        else:
            mid = x + w / 2
            out.append(edge("v", float(mid), float(y), float(mid), float(y + h)))
    return out


def _grid(boxes: list[tuple[float, float, float, float]], tol: float) -> PixelGrid:
    xs = _boundaries([b[0] for b in boxes] + [b[2] for b in boxes], tol)
    ys = _boundaries([b[1] for b in boxes] + [b[3] for b in boxes], tol)
    cells: list[PixelCell] = []
    taken: set[tuple[int, int]] = set()
    for x0, top, x1, bottom in sorted(boxes, key=lambda b: (b[1], b[0])):
        row, col = _nearest(ys, top), _nearest(xs, x0)
        rowspan, colspan = max(1, _nearest(ys, bottom) - row), max(1, _nearest(xs, x1) - col)
        covered = {(r, c) for r in range(row, row + rowspan) for c in range(col, col + colspan)}
        if covered & taken:
            continue  # overlapping boxes from a broken rule: keep the first
        taken |= covered
        cells.append(PixelCell(row, col, rowspan, colspan, (x0, top, x1, bottom)))
    return PixelGrid((xs[0], ys[0], xs[-1], ys[-1]), len(ys) - 1, len(xs) - 1, cells, xs)


def _boundaries(values: list[float], tol: float) -> list[float]:
    merged: list[list[float]] = []
    for v in sorted(values):
        if merged and v - merged[-1][-1] <= tol:
            merged[-1].append(v)
        else:
            merged.append([v])
    return [sum(group) / len(group) for group in merged]


def _nearest(boundaries: list[float], value: float) -> int:
    return min(range(len(boundaries)), key=lambda i: abs(boundaries[i] - value))


def cell_ink(mask: Image, lines: Image, box: PixelBox, dpi: float) -> PixelBox | None:
    """The box of the ink inside a cell, rules and scanner specks left out; None for an empty cell."""
    return _union(_glyph_parts(mask, lines, box, dpi))


def text_lines(mask: Image, lines: Image, box: PixelBox, dpi: float, glyph: float) -> list[PixelBox]:
    """The ink of each line of text in a cell, top to bottom (`glyph`: the height of a glyph's ink, pixels).

    Lines are told apart by the ink itself, not by the detector: in a narrow column of stacked two-character
    lines (结果 / 纠正) the detector takes two lines for one. Ink parts whose heights overlap are one line; a part
    much shorter than a glyph (a stroke of 二 or 三, a 、) joins the line it is nearer to."""
    bands: list[list[float]] = []
    for part in sorted(_glyph_parts(mask, lines, box, dpi), key=lambda p: p[1]):
        if bands and part[1] <= bands[-1][3]:
            band = bands[-1]
            band[:] = [min(band[0], part[0]), band[1], max(band[2], part[2]), max(band[3], part[3])]
        else:
            bands.append(list(part))
    while len(bands) > 1:
        short = min(range(len(bands)), key=lambda k: bands[k][3] - bands[k][1])
        if bands[short][3] - bands[short][1] >= SHORT_PART * glyph:
            break
        gap_above = bands[short][1] - bands[short - 1][3] if short > 0 else float("inf")
        gap_below = bands[short + 1][1] - bands[short][3] if short + 1 < len(bands) else float("inf")
        other = short - 1 if gap_above <= gap_below else short + 1
        a, b = bands[min(short, other)], bands[max(short, other)]
        bands[min(short, other)] = [min(a[0], b[0]), a[1], max(a[2], b[2]), b[3]]
        del bands[max(short, other)]
    return [(b[0], b[1], b[2], b[3]) for b in bands]


SHORT_PART = 0.6  # of a glyph's height: ink this short is part of a glyph, not a line of its own


def _glyph_parts(mask: Image, lines: Image, box: PixelBox, dpi: float) -> list[PixelBox]:
    """The connected parts of the ink inside a cell, rules and scanner specks left out, in image pixels."""
    # A small inset: the rules themselves are taken out by their mask; a glyph set close to a rule (a 0 against
    # the cell's left border) must keep its stroke (a wider inset read 0 as ")" or "3").
    inset = 1
    x0, top, x1, bottom = int(box[0]) + inset, int(box[1]) + inset, int(box[2]) - inset, int(box[3]) - inset
    if x1 - x0 < 3 or bottom - top < 3:
        return []
    region = cv2.bitwise_and(mask[top:bottom, x0:x1], cv2.bitwise_not(cv2.dilate(lines[top:bottom, x0:x1], RULE_MARGIN)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    speck = (dpi / 200) ** 2 * 12  # pixels: a dot of noise, smaller than a full stop's ink at 8 pt
    thin = max(2.0, dpi / 72 * 1.0)  # a sliver of rule the mask missed: a point wide, half the cell long
    keep = [s for s in stats[1:count]
            if (s[4] >= speck or (s[2] >= 3 and s[3] >= 3 and s[4] >= speck / 2))
            and not (s[2] <= thin and s[3] >= (bottom - top) / 2) and not (s[3] <= thin and s[2] >= (x1 - x0) / 2)]
    return [(float(x0 + s[0]), float(top + s[1]), float(x0 + s[0] + s[2]), float(top + s[1] + s[3])) for s in keep]


def _union(boxes: list[PixelBox]) -> PixelBox | None:
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


# The rules' mask is not grown further: it was found on the ink grown by a pixel (`rules`), which covers a rule's
# anti-aliased edge, and a glyph may touch a rule (a 0 against a cell's left border lost its stroke to a 5 px margin).
RULE_MARGIN = np.ones((1, 1), np.uint8)


def without_rules(gray: Image, lines: Image) -> Image:
    """The page with its ruling lines painted white: a cell's crop then holds its text alone, even where a glyph
    stands against a border."""
    clean = gray.copy()
    clean[cv2.dilate(lines, RULE_MARGIN) > 0] = 255
    return clean


def crop(gray: Image, box: PixelBox, pad: float, *, binary: bool = False) -> Image:
    """A crop of the grey image with a white margin of `pad` pixels (the recogniser reads text set in space);
    `binary`: ink and paper split by Otsu's threshold (a cell's scanner noise and grey cast left out)."""
    h, w = gray.shape
    x0, top = max(0, int(box[0])), max(0, int(box[1]))
    x1, bottom = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    part = gray[top:bottom, x0:x1]
    if binary and part.size:
        _, part = cv2.threshold(part, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    margin = int(pad)
    return cv2.copyMakeBorder(part, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)
