"""Rule-less tables cut by page breaks, in a layout of its own (not one of ../shared's reports): the blank
national template filled with seeded numbers of 1–3 digits, set at 10 pt with a label column 1.3 times as
wide as the template's (the number columns narrower), drawn without borders with a page break at every row
boundary of each table, and as three-line tables with the page ending half way down every row of table 三.
Every gold cell must come back from every one, as a clean `extracted`; tests/pdf_sweep.py renders them once
and caches them under .pytest_cache (CI: `bash scripts/test.sh` runs them).
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import docx
import pytest
from conftest import DOCUMENTS, load_gold
from docx.oxml.ns import qn
from docx.shared import Pt
from pdf_sweep import content_key, render, require_soffice, sweep_variants
from test_variants import fill_template

from gongkai.extractors.extract import EXTRACTED, extract_report

pytestmark = pytest.mark.libreoffice

LABEL_WIDENING = 1.3  # the first column this much wider, the others narrower to keep the table's width
FONT_PT = 10


def _cells() -> dict[str, int | float | None]:
    rng = random.Random(2024)
    gold = load_gold("pingtan-2024.html")["cells"]
    return {a: rng.choice([0, rng.randint(1, 9), rng.randint(10, 99), rng.randint(100, 999)]) for a in gold}


def _relaid(data: bytes) -> bytes:
    """Another font size and other column widths than the template's."""
    document = docx.Document(io.BytesIO(data))
    for table in document.tables:
        cols = table._tbl.tblGrid.findall(qn("w:gridCol"))
        widths = [int(col.get(qn("w:w"), "0")) for col in cols]
        if len(widths) > 2 and all(widths):
            first = int(widths[0] * LABEL_WIDENING)
            rest = (sum(widths) - first) / sum(widths[1:])
            new = [first, *(int(w * rest) for w in widths[1:])]
            for col, width in zip(cols, new, strict=True):
                col.set(qn("w:w"), str(width))
            for row in table._tbl.tr_lst:  # cell widths follow the grid (spans add up their columns)
                k = 0
                for tc in row.tc_lst:
                    span = tc.tcPr.gridSpan.val if tc.tcPr is not None and tc.tcPr.gridSpan is not None else 1
                    width_el = tc.tcPr.find(qn("w:tcW")) if tc.tcPr is not None else None
                    if width_el is not None:
                        width_el.set(qn("w:w"), str(sum(new[k : k + span])))
                        width_el.set(qn("w:type"), "dxa")
                    k += span
        for row in table.rows:
            for cell in row.cells:
                for paragraph in cell.paragraphs:
                    for run in paragraph.runs:
                        run.font.size = Pt(FONT_PT)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, bytes], dict[str, object]]:
    require_soffice()
    cache_plugin = getattr(request.config, "cache", None)
    cache = Path(cache_plugin.mkdir("gongkai-pdf-layouts")) if cache_plugin else tmp_path_factory.mktemp("layouts")
    cells = _cells()
    data = _relaid(fill_template(cells))
    template = (DOCUMENTS / "template-blank-2021.docx").read_bytes()
    key = content_key(template, json.dumps(cells, sort_keys=True), f"relaid:{LABEL_WIDENING}:{FONT_PT}")
    variants = {
        **sweep_variants(data, cache, source_key=key, style="borderless", kinds=("break",)),
        **sweep_variants(data, cache, tables=[1], source_key=key, style="three-line", kinds=("cut",)),
    }
    return render(variants, cache), dict(cells)


def test_every_page_break_of_a_rule_less_table_keeps_every_cell(
    rendered: tuple[dict[str, bytes], dict[str, object]],
) -> None:
    pdfs, gold = rendered
    assert len(pdfs) >= 50  # every row boundary of tables 二, 三, 四; every row of 三 cut in half
    lost: dict[str, object] = {}
    for name, pdf in pdfs.items():
        result = extract_report(pdf, "layout.pdf")
        got = result["cells"]
        diff = {a: (got.get(a, "missing"), want) for a, want in gold.items() if got.get(a, "missing") != want}
        if diff or result["status"] != EXTRACTED:
            lost[name] = (result["status"], len(diff), sorted(diff.items())[:3])
    assert lost == {}
