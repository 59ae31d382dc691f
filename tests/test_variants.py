"""Generated variants of real reports round-trip to the same cells.

- gold cells written by python-docx into the national template (a DOCX with merged cells);
- an HTML report re-encoded as GBK with <meta charset=gbk>;
- that DOCX rendered to PDF by LibreOffice (skipped only where LibreOffice is absent, never in CI).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import docx
import pytest
from conftest import DOCUMENTS, load_gold

from gongkai.extractors.extract import extract_report

FILLED_FROM = ["pingtan-2024.html", "zibo-stats-2023.txt"]


def _cells_equal(got: dict, want: dict) -> None:
    assert {a: got.get(a, "missing") for a in want if got.get(a, "missing") != want[a]} == {}
    assert set(got) == set(want)


def fill_template(cells: dict[str, int | float | None]) -> bytes:
    """Write values into the blank national template at the cells its own extraction locates."""
    blank_bytes = (DOCUMENTS / "template-blank-2021.docx").read_bytes()
    located = extract_report(blank_bytes, "template-blank-2021.docx")["provenance"]
    document = docx.Document(io.BytesIO(blank_bytes))
    for address, value in cells.items():
        where = located[address]
        cell = document.tables[where["table"] - 1].cell(where["row"] - 1, where["col"] - 1)
        cell.text = "" if value is None else str(value)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.fixture(scope="module", params=FILLED_FROM)
def filled(request: pytest.FixtureRequest) -> tuple[str, bytes, dict]:
    gold = load_gold(request.param)
    return request.param, fill_template(gold["cells"]), gold


def test_gold_cells_written_into_a_docx_come_back(filled: tuple[str, bytes, dict]) -> None:
    name, data, gold = filled
    out = extract_report(data, f"{name}.docx")
    _cells_equal(out["cells"], gold["cells"])
    assert out["template"] == "2021"
    assert {(c["rule"], c["target"]) for c in out["checks"] if c["status"] != "pass"} == {
        (c["rule"], c["target"]) for c in gold["failing_checks"]
    }


def test_html_reencoded_as_gbk_gives_the_same_cells() -> None:
    original = (DOCUMENTS / "pingtan-2024.html").read_bytes()
    text = original.decode("utf-8")
    text = re.sub(r"<meta[^>]+charset=[^>]*>", "", text, flags=re.I)
    text = text.replace("<head>", '<head><meta charset="gbk">', 1)
    gbk = text.encode("gbk", errors="xmlcharrefreplace")
    assert gbk != original
    want = extract_report(original, "pingtan-2024.html")
    got = extract_report(gbk, "pingtan-2024-gbk.html")
    _cells_equal(got["cells"], load_gold("pingtan-2024.html")["cells"])
    assert (got["agency"], got["year"], got["template"]) == (want["agency"], want["year"], want["template"])


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def test_docx_rendered_to_pdf_by_libreoffice(tmp_path: Path, filled: tuple[str, bytes, dict]) -> None:
    soffice = _soffice()
    if soffice is None:
        if os.environ.get("GONGKAI_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("LibreOffice is required here (GONGKAI_REQUIRE_LIBREOFFICE=1) but not installed")
        pytest.skip("LibreOffice not installed")
    name, data, gold = filled
    source = tmp_path / "filled.docx"
    source.write_bytes(data)
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    out = extract_report((tmp_path / "filled.pdf").read_bytes(), f"{name}.pdf")
    _cells_equal(out["cells"], gold["cells"])
