"""Ruling lines of a PDF page, read from PDFium's vector paths, as pdfplumber edges."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from gongkai.extractors.pdf_layout import View

MAX_PATHS_PER_PAGE = 20_000  # a map or chart drawn in vectors: not a statistics table
THIN = 2.5  # a filled rectangle thinner than this is a drawn line (Word draws borders so)


def edge(orientation: str, x0: float, top: float, x1: float, bottom: float) -> dict[str, Any]:
    return {
        "object_type": "line",
        "orientation": orientation,
        "x0": x0,
        "x1": x1,
        "top": top,
        "bottom": bottom,
        "doctop": top,
        "width": x1 - x0,
        "height": bottom - top,
    }


def ruling_edges(page: pdfium.PdfPage, number: int, warnings: list[str], shading: bool) -> list[dict[str, Any]]:
    """Visible straight lines of the page as pdfplumber edges: stroked segments and thin filled bars,
    and with `shading` the outlines of wider filled shapes too.

    White or unpainted shapes are left out: an editor that paints a white box behind every line of
    text would otherwise turn the whole page into a table.
    """
    view = View.of(page)
    segments: list[tuple[float, float, float, float]] = []
    for n_paths, (obj, matrix) in enumerate(_path_objects(page.raw), start=1):
        if n_paths > MAX_PATHS_PER_PAGE:
            warnings.append(f"page {number}: over {MAX_PATHS_PER_PAGE} vector paths, tables not searched")
            return []
        segments += _visible_segments(obj, matrix, shading)
    edges = []
    for x0, y0, x1, y1 in segments:
        ax0, atop, ax1, abottom = view.box(x0, y0, x1, y1)
        orientation = "h" if abottom - atop < 1.0 else "v" if ax1 - ax0 < 1.0 else None
        if orientation == "h":
            atop = abottom = (atop + abottom) / 2
        elif orientation == "v":
            ax0 = ax1 = (ax0 + ax1) / 2
        else:
            continue
        edges.append(edge(orientation, ax0, atop, ax1, abottom))
    return edges


_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _path_objects(page_handle: Any) -> Iterator[tuple[Any, _Matrix]]:
    """Path objects of a page, also inside form XObjects, with the matrix to page space."""

    def walk(count: int, get: Any, outer: _Matrix, depth: int) -> Iterator[tuple[Any, _Matrix]]:
        for i in range(count):
            obj = get(i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
                yield obj, outer
            elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 4:
                m = pdfium_c.FS_MATRIX()
                pdfium_c.FPDFPageObj_GetMatrix(obj, m)
                inner = _compose((m.a, m.b, m.c, m.d, m.e, m.f), outer)
                yield from walk(
                    pdfium_c.FPDFFormObj_CountObjects(obj),
                    lambda k, o=obj: pdfium_c.FPDFFormObj_GetObject(o, k),
                    inner,
                    depth + 1,
                )

    yield from walk(
        pdfium_c.FPDFPage_CountObjects(page_handle), lambda k: pdfium_c.FPDFPage_GetObject(page_handle, k), _IDENTITY, 0
    )


def _compose(inner: _Matrix, outer: _Matrix) -> _Matrix:
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def _visible_segments(obj: Any, outer: _Matrix, shading: bool) -> list[tuple[float, float, float, float]]:
    fill_mode, stroked = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDFPath_GetDrawMode(obj, fill_mode, stroked)
    stroke_visible = bool(stroked.value) and not _is_white(obj, pdfium_c.FPDFPageObj_GetStrokeColor)
    fill_visible = fill_mode.value != 0 and not _is_white(obj, pdfium_c.FPDFPageObj_GetFillColor)
    if not (stroke_visible or fill_visible):
        return []
    m = pdfium_c.FS_MATRIX()
    pdfium_c.FPDFPageObj_GetMatrix(obj, m)
    a, b, c, d, e, f = _compose((m.a, m.b, m.c, m.d, m.e, m.f), outer)
    x, y = ctypes.c_float(), ctypes.c_float()
    points: list[tuple[float, float]] = []
    segments: list[tuple[float, float, float, float]] = []
    start: tuple[float, float] | None = None
    for i in range(pdfium_c.FPDFPath_CountSegments(obj)):
        seg = pdfium_c.FPDFPath_GetPathSegment(obj, i)
        pdfium_c.FPDFPathSegment_GetPoint(seg, x, y)
        point = (a * x.value + c * y.value + e, b * x.value + d * y.value + f)
        kind = pdfium_c.FPDFPathSegment_GetType(seg)
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO or not points:
            start = point
        elif kind == pdfium_c.FPDF_SEGMENT_LINETO:
            segments.append((*points[-1], *point))
        if pdfium_c.FPDFPathSegment_GetClose(seg) and start is not None:
            segments.append((*point, *start))
        points.append(point)
    if stroke_visible or shading:
        return segments
    # Filled only: a thin bar is a drawn line; a wider fill is cell shading, not a border.
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if not points:
        return []
    w, h = max(xs) - min(xs), max(ys) - min(ys)
    if h <= THIN < w:
        return [(min(xs), (min(ys) + max(ys)) / 2, max(xs), (min(ys) + max(ys)) / 2)]
    if w <= THIN < h:
        return [((min(xs) + max(xs)) / 2, min(ys), (min(xs) + max(xs)) / 2, max(ys))]
    return []


def _is_white(obj: Any, get_color: Any) -> bool:
    r, g, b, alpha = (ctypes.c_uint() for _ in range(4))
    if not get_color(obj, r, g, b, alpha):
        return False
    return alpha.value == 0 or min(r.value, g.value, b.value) >= 250
