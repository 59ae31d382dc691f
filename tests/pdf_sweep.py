"""PDF layouts of real reports as agencies publish them: page breaks at every row, no borders, three-line tables.

From one DOCX, `sweep_variants` makes DOCX variants and LibreOffice renders them (`render`, one soffice call
for many files, cached by content hash):

- `break-T-K`: table T starts on a new page lowered by an invisible spacer paragraph of exact height, so that
  the page ends right at the top of row K (K = 1..n-1): rows 0..K-1 on one page, row K and after on the next.
  Row positions are measured first on a rendering with very tall pages (every table on one page).
- `cut-T-K`: the same, but the page ends half way down row K, so LibreOffice splits the row: a label or a
  number wrapped on two lines is cut in two (`自然` / `人`, `1` / `3`).
- `borderless`: every table's borders removed; `three-line`: only the rules above and below each table and
  under its header (三线表). `sweep_variants(..., style=...)` makes the page-break variants so drawn.

LibreOffice ignores page breaks inside table cells, hence the spacer. Needs CJK fonts for real line breaks
(`.ci/run` installs fonts-noto-cjk and fonts-wqy-zenhei).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import docx
import pdfplumber
import pytest
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

TALL_PAGE_TWIPS = 20 * 4000  # 4000 pt: every table fits on one page of the measuring rendering
MEASURE_SPACER = 20.0  # pt
CLEAR_GAP = 2.0  # pt left at the page bottom above row K: too little for any line of it
GENERATOR_VERSION = "2"  # part of the cache key: bump when the variants change
REPEAT_HEAD_TABLE = 1  # 0-based: table 三, the longest, also swept with its head repeated on every page


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def require_soffice() -> str:
    found = soffice()
    if found is None:
        if os.environ.get("GONGKAI_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("LibreOffice is required here (GONGKAI_REQUIRE_LIBREOFFICE=1) but not installed")
        pytest.skip("LibreOffice not installed")
    return found


@dataclass(frozen=True)
class Variant:
    """A DOCX to render, made only when its PDF is not cached; `key` names what it is made of."""

    key: str
    make: Callable[[], bytes]


def content_key(*parts: bytes | str) -> str:
    digest = hashlib.sha256(GENERATOR_VERSION.encode())
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def render(docs: dict[str, Variant], cache: Path) -> dict[str, bytes]:
    """DOCX → PDF by LibreOffice, converting in one soffice call every file not cached yet (python-docx
    output is not byte-stable, so the cache is keyed by what a variant is made of, not by its bytes)."""
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("*.pdf"):  # renderings of an older generator: never asked for again
        if not stale.name.startswith(f"v{GENERATOR_VERSION}-"):
            stale.unlink(missing_ok=True)
    keys = {name: f"v{GENERATOR_VERSION}-{variant.key}" for name, variant in docs.items()}
    missing = {name: variant for name, variant in docs.items() if not (cache / f"{keys[name]}.pdf").exists()}
    if missing:
        binary = require_soffice()
        with tempfile.TemporaryDirectory() as tmp:
            sources = []
            for name, variant in missing.items():
                sources.append(Path(tmp) / f"{keys[name]}.docx")
                sources[-1].write_bytes(variant.make())
            profile = Path(tmp) / "profile"
            for start in range(0, len(sources), 200):  # bounded command lines
                subprocess.run(
                    [
                        binary,
                        f"-env:UserInstallation=file://{profile}",
                        "--headless",
                        "--convert-to",
                        "pdf",
                        "--outdir",
                        str(cache),
                        *map(str, sources[start : start + 200]),
                    ],
                    check=True,
                    capture_output=True,
                    timeout=60 + 5 * len(sources[start : start + 200]),
                )
    out = {}
    for name, key in keys.items():
        path = cache / f"{key}.pdf"
        if not path.exists():
            pytest.fail(f"LibreOffice did not convert {name}")
        out[name] = path.read_bytes()
    return out


# --- DOCX editing -------------------------------------------------------------------------------------


def _load(data: bytes) -> docx.document.Document:
    return docx.Document(io.BytesIO(data))


def _save(document: docx.document.Document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _spacer(height_pt: float) -> OxmlElement:
    """An empty paragraph starting a new page, exactly height_pt tall."""
    p = OxmlElement("w:p")
    ppr = OxmlElement("w:pPr")
    ppr.append(OxmlElement("w:pageBreakBefore"))
    grid = OxmlElement("w:snapToGrid")
    grid.set(qn("w:val"), "0")
    ppr.append(grid)
    spacing = OxmlElement("w:spacing")
    for attr, value in (
        ("w:before", "0"),
        ("w:after", "0"),
        ("w:line", str(max(1, round(height_pt * 20)))),
        ("w:lineRule", "exact"),
    ):
        spacing.set(qn(attr), value)
    ppr.append(spacing)
    rpr = OxmlElement("w:rPr")
    size = OxmlElement("w:sz")
    size.set(qn("w:val"), "2")
    rpr.append(size)
    ppr.append(rpr)
    p.append(ppr)
    return p


def _fit_to_page(document: docx.document.Document) -> None:
    """Narrow a table wider than the text area to fit it (as the agency would before publishing a PDF:
    LibreOffice otherwise cuts its sides off at the paper's edges)."""
    section = document.sections[-1]
    text_width = round((section.page_width - section.left_margin - section.right_margin) / 635)  # EMU → twips
    for table in document.tables:
        grid = table._tbl.tblGrid
        cols = grid.findall(qn("w:gridCol")) if grid is not None else []
        widths = [int(col.get(qn("w:w"), "0")) for col in cols]
        if not widths or sum(widths) <= text_width:
            continue
        scale = text_width / sum(widths)
        for col in cols:
            col.set(qn("w:w"), str(int(int(col.get(qn("w:w"))) * scale)))
        for element in table._tbl.iter(qn("w:tcW"), qn("w:tblW")):
            if element.get(qn("w:type")) in (None, "dxa"):
                element.set(qn("w:w"), str(int(int(element.get(qn("w:w"), "0")) * scale)))
        for indent in table._tbl.iter(qn("w:tblInd")):
            indent.set(qn("w:w"), "0")


def _with_spacers(
    data: bytes, heights: dict[int, float], page_height_twips: int | None = None, repeat_head: bool = False
) -> bytes:
    document = _load(data)
    _fit_to_page(document)
    for index, height in heights.items():
        table = document.tables[index]
        table._tbl.addprevious(_spacer(height))
        if repeat_head:  # Word's "repeat as header row": the head again at the top of every page
            for tr in table._tbl.tr_lst[: _header_rows(table)]:
                tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    if page_height_twips is not None:
        for sect in document.element.body.iter(qn("w:sectPr")):
            size = sect.find(qn("w:pgSz"))
            if size is not None:
                size.set(qn("w:h"), str(page_height_twips))
    return _save(document)


def _body_bottom(data: bytes) -> float:
    """Where the body text area ends, in points from the page top (A4 as written in the DOCX)."""
    section = _load(data).sections[-1]
    return float(section.page_height.pt - section.bottom_margin.pt)


def table_sizes(data: bytes) -> list[int]:
    return [len(t.rows) for t in _load(data).tables]


def _set_borders(parent: OxmlElement, tag: str, sides: dict[str, str]) -> None:
    old = parent.find(qn(tag))
    if old is not None:
        parent.remove(old)
    borders = OxmlElement(tag)
    for side, value in sides.items():
        edge = OxmlElement(f"w:{side}")
        edge.set(qn("w:val"), value)
        if value != "nil":
            edge.set(qn("w:sz"), "12")
            edge.set(qn("w:color"), "000000")
        borders.append(edge)
    # schema order matters to Word, not to LibreOffice; append after what is there
    parent.append(borders)


def _header_rows(table: docx.table.Table) -> int:
    """Rows before the first that shows a number (the head of a statistics table)."""
    for r, row in enumerate(table.rows):
        if any(cell.text.strip().replace(".", "", 1).isdigit() for cell in row.cells):
            return r
    return 1


def restyled(data: bytes, style: str) -> bytes:
    """Every table without borders (`borderless`) or with only three rules (`three-line`)."""
    document = _load(data)
    _fit_to_page(document)
    nil = {side: "nil" for side in ("top", "left", "bottom", "right", "insideH", "insideV")}
    for table in document.tables:
        tbl_pr = table._tbl.tblPr
        if style == "three-line":
            _set_borders(tbl_pr, "w:tblBorders", {**nil, "top": "single", "bottom": "single"})
        else:
            _set_borders(tbl_pr, "w:tblBorders", nil)
        first_data = _header_rows(table)
        for r, tr in enumerate(table._tbl.tr_lst):
            for tc in tr.tc_lst:
                sides = dict(nil)
                if style == "three-line":
                    del sides["insideH"], sides["insideV"]
                    if r == 0:
                        sides["top"] = "single"
                    if r == first_data:
                        sides["top"] = "single"
                    if r == len(table._tbl.tr_lst) - 1:
                        sides["bottom"] = "single"
                else:
                    del sides["insideH"], sides["insideV"]
                _set_borders(tc.get_or_add_tcPr(), "w:tcBorders", sides)
    return _save(document)


# --- measuring and the sweep --------------------------------------------------------------------------


def _row_tops(pdf: bytes, sizes: list[int]) -> list[tuple[float, list[float]]]:
    """For each table of the measuring rendering: its top on the page and its row boundaries below it."""
    found: list[tuple[float, list[float]]] = []
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages:
            if len(found) == len(sizes):
                break
            ys = sorted({round(e["top"], 1) for e in page.horizontal_edges})
            chars = [c["top"] for c in page.chars]
            if not ys or (chars and min(chars) < ys[0]):
                continue  # a table page starts with the table's top rule (the spacer holds no text)
            merged: list[float] = []
            for y in ys:
                if not merged or y - merged[-1] > 1.5:
                    merged.append(y)
            n = sizes[len(found)]
            if len(merged) < n + 1:
                raise AssertionError(f"measuring: table {len(found) + 1} shows {len(merged) - 1} rows, not {n}")
            found.append((merged[0], [y - merged[0] for y in merged[: n + 1]]))
    if len(found) != len(sizes):
        raise AssertionError(f"measuring: found {len(found)} of {len(sizes)} tables")
    return found


def restyled_variants(data: bytes, source_key: str | None = None) -> dict[str, Variant]:
    source = source_key or content_key(data)
    return {
        style: Variant(content_key(source, style), functools.partial(restyled, data, style))
        for style in ("borderless", "three-line")
    }


def _restyled_with_spacers(data: bytes, style: str, heights: dict[int, float], page_height_twips: int | None) -> bytes:
    return _with_spacers(restyled(data, style), heights, page_height_twips)


def sweep_variants(
    data: bytes,
    cache: Path,
    tables: Iterable[int] | None = None,
    source_key: str | None = None,
    style: str | None = None,
    kinds: tuple[str, ...] = ("break", "cut"),
) -> dict[str, Variant]:
    """The break-T-K and cut-T-K DOCX variants of `data` (T, K 1-based table and 0-based row).
    `source_key` names what `data` was made of when its bytes are not stable (python-docx output).
    With `style` ("borderless", "three-line") the variants are rendered so, rows measured with their rules
    (a rule is a fraction of a point: the break falls at row K or within a line of it)."""
    source = source_key or content_key(data)
    sizes = table_sizes(data)
    measure = Variant(
        content_key(source, "measure"),
        lambda: _with_spacers(data, dict.fromkeys(range(len(sizes)), MEASURE_SPACER), TALL_PAGE_TWIPS),
    )
    measured = _row_tops(render({"measure": measure}, cache)["measure"], sizes)
    bottom = _body_bottom(data)
    page_pt = float(_load(data).sections[-1].page_height.pt)
    variants: dict[str, Variant] = {}
    for t in tables if tables is not None else range(len(sizes)):
        top, offsets = measured[t]
        above_spacer = top - MEASURE_SPACER  # the page's body top, as LibreOffice lays it out
        for k in range(sizes[t]):
            for kind, room in (("break", CLEAR_GAP), ("cut", (offsets[k + 1] - offsets[k]) / 2)):
                if (kind == "break" and k == 0) or kind not in kinds:
                    continue
                height = bottom - above_spacer - offsets[k] - room  # room: what row K gets on the first page
                page_height = None
                if height < MEASURE_SPACER:  # rows 0..K-1 exceed an A4 page: make the pages that much taller
                    page_height = round((page_pt + MEASURE_SPACER - height) * 20)
                    height = MEASURE_SPACER
                if style is not None:
                    variants[f"{style}-{kind}-{t + 1}-{k}"] = Variant(
                        content_key(source, f"{t}:{height:.2f}:{page_height}:{style}"),
                        functools.partial(_restyled_with_spacers, data, style, {t: height}, page_height),
                    )
                    continue
                variants[f"{kind}-{t + 1}-{k}"] = Variant(
                    content_key(source, f"{t}:{height:.2f}:{page_height}"),
                    functools.partial(_with_spacers, data, {t: height}, page_height),
                )
                if kind == "break" and t == REPEAT_HEAD_TABLE and k > _header_rows(_load(data).tables[t]):
                    variants[f"head-{t + 1}-{k}"] = Variant(
                        content_key(source, f"{t}:{height:.2f}:{page_height}:head"),
                        functools.partial(_with_spacers, data, {t: height}, page_height, True),
                    )
    return variants
