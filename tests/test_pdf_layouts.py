"""The page-break sweep of issue 14: real reports rendered to PDF by LibreOffice with a page break at every
row boundary of each standard table (and half way down every row), without borders, and as three-line
tables; every gold cell must come back from every one (tests/pdf_sweep.py makes the layouts).

Sources: two reports of the 2021 template (pingtan-2024 as published in DOCX, zibo-stats-2023's gold cells
written into the blank national template), one of the 2019 template (shanghai-szfbgt-2019), and the blank
template filled with seeded random numbers of 1–5 digits (values not keyed to any corpus document). The
PDFs are rendered once and cached under .pytest_cache by what they are made of; one soffice call converts
all that is missing. CI (`bash scripts/test.sh`, GONGKAI_REQUIRE_LIBREOFFICE=1) runs all of it.
"""

from __future__ import annotations

import functools
import io
import json
import random
import re
from pathlib import Path

import docx
import pytest
from conftest import DOCUMENTS, load_gold
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from pdf_sweep import Variant, content_key, render, require_soffice, restyled, restyled_variants, sweep_variants
from test_variants import fill_template

from gongkai.extractors import pdf_reader
from gongkai.extractors.extract import EXTRACTED, PARTIAL, UNREADABLE_TABLES, extract_report
from gongkai.schema.values import is_number

pytestmark = pytest.mark.libreoffice


def _random_cells() -> dict[str, int | float | None]:
    rng = random.Random(14)
    gold = load_gold("pingtan-2024.html")["cells"]
    return {a: rng.choice([0, rng.randint(1, 9), rng.randint(10, 99), rng.randint(100, 99999)]) for a in gold}


def _source(name: str) -> tuple[bytes, str, dict[str, object]]:
    """The DOCX, a stable key of what it is made of, and its gold cells."""
    if name.endswith(".docx"):
        data = (DOCUMENTS / name).read_bytes()
        return data, content_key(data), load_gold(name)["cells"]
    cells = _random_cells() if name == "random-2021" else load_gold(name)["cells"]
    template = (DOCUMENTS / "template-blank-2021.docx").read_bytes()
    return fill_template(cells), content_key(template, json.dumps(cells, sort_keys=True)), dict(cells)


SOURCES = [
    "pingtan-2024-libreoffice.docx",
    "zibo-stats-2023.txt",
    "shanghai-szfbgt-2019-libreoffice.docx",
    "random-2021",
]


# Rule-less layouts whose grids the reader rebuilds exactly (extractors/pdf_textgrid.py): every source in
# every style but the seeded random numbers at 10.5 and 9 pt, where numbers of 4–5 digits wrap in columns
# three digits wide, set at the top of some cells and centred in others, beside group labels cut into
# fragments: which row a wrapped line belongs to is not told for sure, and the reader refuses, aloud.
REBUILT = {
    (source, style)
    for source in ("pingtan-2024-libreoffice.docx", "zibo-stats-2023.txt", "shanghai-szfbgt-2019-libreoffice.docx")
    for style in ("borderless", "three-line", "borderless-9pt-right", "three-line-12pt-centred")
} | {("random-2021", "three-line-12pt-centred")}
RULELESS = ["borderless", "three-line", "borderless-9pt-right", "three-line-12pt-centred"]


def _reshaped(data: bytes, style: str, font_pt: float, align: WD_ALIGN_PARAGRAPH) -> bytes:
    """A rule-less rendering the sweep does not make: another font size, numbers aligned otherwise."""
    document = docx.Document(io.BytesIO(restyled(data, style)))
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                number = is_number(cell.text.strip())
                for paragraph in cell.paragraphs:
                    if number:
                        paragraph.alignment = align
                    for run in paragraph.runs:
                        run.font.size = Pt(font_pt)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _reshaped_variants(data: bytes, key: str) -> dict[str, Variant]:
    return {
        "borderless-9pt-right": Variant(
            content_key(key, "borderless-9pt-right"),
            functools.partial(_reshaped, data, "borderless", 9, WD_ALIGN_PARAGRAPH.RIGHT),
        ),
        "three-line-12pt-centred": Variant(
            content_key(key, "three-line-12pt-centred"),
            functools.partial(_reshaped, data, "three-line", 12, WD_ALIGN_PARAGRAPH.CENTER),
        ),
    }


@pytest.fixture(scope="module", params=SOURCES)
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, bytes], dict[str, object]]:
    require_soffice()  # fails or skips as GONGKAI_REQUIRE_LIBREOFFICE says
    cache_plugin = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = Path(cache_plugin.mkdir("gongkai-pdf-layouts")) if cache_plugin else tmp_path_factory.mktemp("layouts")
    data, key, gold = _source(request.param)
    variants = {
        **sweep_variants(data, cache, source_key=key),
        **restyled_variants(data, key),
        **_reshaped_variants(data, key),
    }
    return request.param, render(variants, cache), gold


def _lost(pdf: bytes, gold: dict[str, object]) -> dict[str, object]:
    got = extract_report(pdf, "layout.pdf")["cells"]
    return {a: (got.get(a, "missing"), want) for a, want in gold.items() if got.get(a, "missing") != want}


def test_every_page_break_keeps_every_cell(rendered: tuple[str, dict[str, bytes], dict[str, object]]) -> None:
    name, pdfs, gold = rendered
    breaks = {k: v for k, v in pdfs.items() if k.startswith(("break-", "cut-", "head-"))}
    assert len(breaks) >= 60  # every row boundary of tables 二, 三, 四, twice
    lost = {k: len(diff) for k, pdf in breaks.items() if (diff := _lost(pdf, gold))}
    assert lost == {}, f"{name}: cells lost or wrong in {lost}"


@pytest.mark.parametrize("style", RULELESS)
def test_tables_without_rules_never_give_a_wrong_number(
    rendered: tuple[str, dict[str, bytes], dict[str, object]], style: str
) -> None:
    """Whether its grid is rebuilt or not, a rule-less table yields no cell that differs from the gold."""
    name, pdfs, gold = rendered
    got = extract_report(pdfs[style], "layout.pdf")["cells"]
    assert {a: (got[a], want) for a, want in gold.items() if a in got and got[a] != want} == {}, name


@pytest.mark.parametrize("style", RULELESS)
def test_tables_without_rules_keep_every_cell(
    rendered: tuple[str, dict[str, bytes], dict[str, object]], style: str
) -> None:
    name, pdfs, gold = rendered
    if (name, style) not in REBUILT:
        pytest.skip("refused by the reader: test_tables_without_rules_are_said_aloud")
    assert _lost(pdfs[style], gold) == {}, name
    result = extract_report(pdfs[style], "layout.pdf")
    assert result["status"] == EXTRACTED
    # pages of prose that name the tables (read on other pages) are no unreadable tables
    assert [w for w in result["warnings"] if w.startswith("unreadable table")] == [], name


@pytest.mark.parametrize("style", RULELESS)
def test_tables_without_rules_are_said_aloud(
    rendered: tuple[str, dict[str, bytes], dict[str, object]], style: str
) -> None:
    """Where a grid is not rebuilt, the reader names the pages whose table labels have no ruled table and
    why, and the report is not taken for one without tables nor for a whole one."""
    name, pdfs, gold = rendered
    if (name, style) in REBUILT:
        pytest.skip("rebuilt: test_tables_without_rules_keep_every_cell")
    warnings = pdf_reader.read(pdfs[style]).warnings
    assert any(re.match(r"unreadable table: page \d+ .*no ruled table.*\(.+\)$", w) for w in warnings), name
    result = extract_report(pdfs[style], "layout.pdf")
    assert result["status"] in (UNREADABLE_TABLES, PARTIAL), (name, result["status"])
    assert any("no ruled table" in w for w in result["warnings"])
    assert _lost(pdfs[style], gold)  # not said aloud for nothing

