"""OCR of scanned reports (the optional extra `gongkai[ocr]`): scans made from corpus reports, read back cell by
cell. The default run reads one report at 200 dpi; the dpi matrix (tests marked `ocr_sweep`) runs in CI
(.ci/run sets GONGKAI_REQUIRE_LIBREOFFICE=1) or with GONGKAI_OCR_SWEEP=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ocr_scans import scanned_pdf

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR extra is not installed (pip install gongkai[ocr])")

from gongkai.extractors.extract import extract_result  # noqa: E402
from gongkai.extractors.result import ExtractionResult  # noqa: E402

HERE = Path(__file__).parent
DOCUMENTS = HERE / "corpus" / "documents"
GOLD = HERE / "corpus" / "gold"
SWEEP = os.environ.get("GONGKAI_OCR_SWEEP") == "1" or os.environ.get("GONGKAI_REQUIRE_LIBREOFFICE") == "1"


@pytest.fixture(scope="module")
def scan_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache_plugin = request.config.cache
    return Path(cache_plugin.mkdir("gongkai-ocr-scans")) if cache_plugin else tmp_path_factory.mktemp("scans")


_READ: dict[tuple[str, int], ExtractionResult] = {}


def _read_scan(name: str, dpi: int, cache: Path) -> ExtractionResult:
    """One scan read once per test session (several tests look at the same result)."""
    if (name, dpi) not in _READ:
        scan = scanned_pdf((DOCUMENTS / name).read_bytes(), dpi, cache)
        _READ[(name, dpi)] = extract_result(scan, f"scan-{dpi}-{name}")
    return _READ[(name, dpi)]


def _score(result: ExtractionResult, gold: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    """Gold cells read right; cells read wrong; of those, the ones no warning names."""
    right, wrong = 0, []
    for address, value in gold["cells"].items():
        if address in result.cells and result.cells[address] == value:
            right += 1
        else:
            wrong.append(address)
    silent = [a for a in wrong if a in result.cells and not any(a in w for w in result.warnings)]
    return right, wrong, silent


def test_scanned_report_at_200_dpi_gives_every_gold_cell(scan_cache: Path) -> None:
    result = _read_scan("hongze-2023.pdf", 200, scan_cache)
    gold = json.loads((GOLD / "hongze-2023.pdf.json").read_text(encoding="utf-8"))
    right, wrong, silent = _score(result, gold)
    assert wrong == [] and right == len(gold["cells"])
    assert set(result.cells) == set(gold["cells"])
    assert (result.status, result.year, result.agency, result.template) == ("extracted", gold["year"], gold["agency"], gold["template"])
    assert result.as_json()["read_by"] == "ocr"
    assert any(w.startswith("read by OCR: pages 1, 2, 3, 4, 5") for w in result.warnings)
    assert any("deskewed page 1 by" in w for w in result.warnings)  # the scan is turned 1.2° page by page
    cell = result.provenance["requests.new.natural_person"]
    assert cell["source"] == "ocr" and 0 < cell["confidence"] <= 1 and cell["page"] in (2, 3)
    x0, top, x1, bottom = cell["bbox"]
    assert 0 <= x0 < x1 <= 600 and 0 <= top < bottom <= 850  # points on an A4 page
    doubtful = [a for a, p in result.provenance.items() if p["confidence"] < 0.9]
    assert all(any(w.startswith(f"{a}: read by OCR") for w in result.warnings) for a in doubtful)


def test_documents_with_a_text_layer_never_go_through_ocr() -> None:
    result = extract_result((DOCUMENTS / "hongze-2023.pdf").read_bytes(), "hongze-2023.pdf")
    assert result.read_by is None and "read_by" not in result.as_json()
    assert all("source" not in p and "confidence" not in p for p in result.provenance.values())
    assert not any("OCR" in w for w in result.warnings)


def test_a_blank_scan_is_still_refused_with_its_reason() -> None:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (1240, 1754), 255).save(out, "PDF", resolution=150.0)
    from gongkai.extractors.model import UnreadableDocument

    with pytest.raises(UnreadableDocument, match="scanned: no text layer, and OCR read no text on it"):
        extract_result(out.getvalue(), "blank.pdf")


def test_misread_labels_snap_to_the_schema_labels() -> None:
    from gongkai.extractors.ocr.labels import snap

    assert snap("白然人") == "自然人"
    assert snap("尚未重结") == "尚未审结"
    assert snap("属F国家秘密") == "属于国家秘密"
    assert snap("自然人") is None  # already a label
    assert snap("会议纪要附件") is None  # nothing near enough: left as read (and named in a warning)


def test_deskew_finds_the_turn_of_a_scanned_page() -> None:
    import numpy as np
    import pypdfium2 as pdfium
    from ocr_scans import degrade

    from gongkai.extractors.ocr.imaging import deskew

    pdf = pdfium.PdfDocument((DOCUMENTS / "hongze-2023.pdf").read_bytes())
    gray = pdf[2].render(scale=100 / 72, grayscale=True).to_numpy().copy()
    pdf.close()
    for angle in (0.6, -1.5, 2.0):
        _, found = deskew(np.asarray(degrade(gray, angle, seed=1)))
        assert abs(found + angle) <= 0.15, (angle, found)
    assert deskew(gray)[1] == 0.0  # an upright page is left as it is


def test_without_the_extra_a_scan_names_it_in_one_line(tmp_path: Path, scan_cache: Path) -> None:
    """The extra made unimportable in a real subprocess (a sitecustomize that refuses the import)."""
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(scanned_pdf((DOCUMENTS / "hongze-2023.pdf").read_bytes(), 150, scan_cache))
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        class _NoOcr:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("rapidocr_onnxruntime", "cv2"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None
        sys.meta_path.insert(0, _NoOcr())
    """), encoding="utf-8")
    root = HERE.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(root)])}
    done = subprocess.run([sys.executable, "-m", "gongkai.cli", "extract", str(scan)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    errors = [line for line in done.stderr.splitlines() if "unreadable" in line]
    assert done.returncode != 0 and len(errors) == 1, done.stderr
    assert "scanned: no text layer" in errors[0] and "pip install gongkai[ocr]" in errors[0]


def test_the_settings_bound_ocr_in_a_worker_process(tmp_path: Path, scan_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OCR bounds travel with the extraction call from Settings (a flag, a settings file, a flow's arguments),
    not from the worker's environment: a page cap of 1 given to the ingest flow is honoured by its spawned
    extraction worker, whose environment says 20."""
    from gongkai.flows.ingest import ingest_paths
    from gongkai.settings import load_settings

    monkeypatch.setenv("GONGKAI_OCR_MAX_PAGES", "20")
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(scanned_pdf((DOCUMENTS / "hongze-2023.pdf").read_bytes(), 150, scan_cache))
    settings = load_settings(data=tmp_path / "data", extract_processes=2, ocr_max_pages=1, ocr_threads=1)
    summary = ingest_paths([str(scan)], settings=settings)
    assert [d["outcome"] for d in summary["documents"]] != ["failed"], summary
    cached = [json.loads(json.loads(p.read_text(encoding="utf-8"))["result"]) for p in settings.results_dir.iterdir()]
    assert len(cached) == 1
    warnings = cached[0]["warnings"]
    assert "OCR: 5 scanned pages, read the first 1 (GONGKAI_OCR_MAX_PAGES)" in warnings, warnings


MATRIX = [("hongze-2023.pdf", 150), ("hongze-2023.pdf", 300), ("pingtan-2024-libreoffice.pdf", 150),
          ("pingtan-2024-libreoffice.pdf", 200), ("pingtan-2024-libreoffice.pdf", 300)]  # hongze at 200: the default test's
_SWEEP_ONLY = pytest.mark.skipif(not SWEEP, reason="the OCR dpi matrix runs in CI or with GONGKAI_OCR_SWEEP=1")


@pytest.mark.ocr_sweep
@_SWEEP_ONLY
@pytest.mark.parametrize(("name", "dpi"), MATRIX, ids=[f"{n}-{d}dpi" for n, d in MATRIX])
def test_scans_at_every_dpi(name: str, dpi: int, scan_cache: Path) -> None:
    """Every gold cell at 200 and 300 dpi, 99 % at 150."""
    result = _read_scan(name, dpi, scan_cache)
    gold = json.loads((GOLD / f"{name}.json").read_text(encoding="utf-8"))
    right, wrong, _ = _score(result, gold)
    if dpi >= 200:
        assert wrong == [], wrong
    else:
        assert right >= 0.99 * len(gold["cells"]), wrong


def _gold_of(name: str, prefix: str) -> dict[str, Any]:
    gold = json.loads((GOLD / f"{name}.json").read_text(encoding="utf-8"))
    return {a: v for a, v in gold["cells"].items() if a.startswith(prefix)}


def test_a_row_cut_by_a_page_break_is_joined(scan_cache: Path) -> None:
    """pingtan's requests table runs from page 2 to page 4, and its row 一、本年新收政府信息公开申请数 / 量 is cut
    by the first break: the pages' grids are joined as the PDF reader joins its own, every requests cell is read."""
    name = "pingtan-2024-libreoffice.pdf"
    scan = scanned_pdf((DOCUMENTS / name).read_bytes(), 200, scan_cache, only=(2, 3, 4))
    result = extract_result(scan, "pingtan-pages-2-4.pdf")
    gold = _gold_of(name, "requests.")
    assert {a: result.cells.get(a) for a in gold} == gold
    assert not any(w.startswith("requests.") and w.endswith("not found") for w in result.warnings)
    assert not any("match no schema label" in w for w in result.warnings), result.warnings
    assert {result.provenance[a]["page"] for a in gold} == {1, 2, 3}  # the scan's pages: one table over all three


def test_stacked_narrow_headers_at_300_dpi(scan_cache: Path) -> None:
    """The appeals table's narrow columns stack their headers in two lines (结果 / 纠正): told apart by the ink,
    not by the detector (which took them for one line and read 继 or 结是)."""
    name = "hongze-2023.pdf"
    scan = scanned_pdf((DOCUMENTS / name).read_bytes(), 300, scan_cache, only=(4,))
    result = extract_result(scan, "hongze-page-4.pdf")  # rendered at the default 200 dpi, as a report is read
    gold = _gold_of(name, "appeals.")
    assert {a: result.cells.get(a) for a in gold} == gold


def test_prose_in_frames_is_no_table() -> None:
    """Text boxes drawn around the paragraphs of a scanned page (one frame, one split in four) give no table
    and no warning about labels; their text stays the page's text."""
    from ocr_scans import framed_prose_pdf

    from gongkai.extractors import read_document

    doc = read_document(framed_prose_pdf((DOCUMENTS / "hongze-2023.pdf").read_bytes(), 1, 200), "framed.pdf")
    assert doc.tables == []
    assert not any("label" in w or w.startswith("unreadable") for w in doc.warnings), doc.warnings
    assert sum(len(b.text) for b in doc.blocks) > 300  # the paragraphs, framed or not, are read as text


def test_tables_pasted_into_an_html_page_as_inline_pictures() -> None:
    """A web page whose table is a PNG in its body (a data: URI, as an editor stores a pasted screenshot)."""
    from ocr_scans import pictures_html

    page = pictures_html((DOCUMENTS / "hongze-2023.pdf").read_bytes(), 200, only=(4,))
    result = extract_result(page, "pictures.html")
    gold = _gold_of("hongze-2023.pdf", "appeals.")
    assert {a: result.cells.get(a) for a in gold} == gold
    assert result.read_by == "ocr" and all(result.provenance[a]["source"] == "ocr" for a in gold)
    assert any(w.startswith("read by OCR: pictures 1;") for w in result.warnings)


@pytest.mark.ocr_sweep
@_SWEEP_ONLY
@pytest.mark.parametrize(("name", "dpi"), MATRIX, ids=[f"{n}-{d}dpi" for n, d in MATRIX])
def test_scans_are_never_wrong_in_silence(name: str, dpi: int, scan_cache: Path) -> None:
    """A cell missing is named (row or cell not found), a value read is right or named in a warning."""
    result = _read_scan(name, dpi, scan_cache)
    gold = json.loads((GOLD / f"{name}.json").read_text(encoding="utf-8"))
    _, wrong, silent = _score(result, gold)
    assert silent == [], silent
    assert not set(result.cells) - set(gold["cells"])
    if any(a not in result.cells for a in wrong):  # missing: the status says so, and each lost row is named
        assert result.status == "partial"
        assert any(w.endswith(("row not found", "cell not found")) for w in result.warnings)


def _check_pictures(result: ExtractionResult, name: str) -> None:
    gold = json.loads((GOLD / f"{name}.json").read_text(encoding="utf-8"))
    right, wrong, silent = _score(result, gold)
    assert wrong == [] and silent == []
    assert result.read_by == "ocr" and result.status == "extracted"
    assert any(w.startswith("read by OCR:") for w in result.warnings)


PICTURED = ["hongze-2023.pdf", "pingtan-2024-libreoffice.pdf"]


@pytest.mark.ocr_sweep
@_SWEEP_ONLY
@pytest.mark.parametrize("name", PICTURED)
def test_tables_pasted_as_pictures_into_a_docx(name: str, scan_cache: Path) -> None:
    """pingtan's requests table spans two pages, so two pictures: joined as a table cut by a page break."""
    from ocr_scans import pictures_docx

    docx_bytes = pictures_docx((DOCUMENTS / name).read_bytes(), 200)
    _check_pictures(extract_result(docx_bytes, "pictures.docx"), name)


@pytest.mark.ocr_sweep
@_SWEEP_ONLY
@pytest.mark.parametrize("name", PICTURED)
def test_tables_pasted_as_pictures_into_an_html_page(name: str) -> None:
    from ocr_scans import pictures_html

    _check_pictures(extract_result(pictures_html((DOCUMENTS / name).read_bytes(), 200), "pictures.html"), name)


@pytest.mark.ocr_sweep
@pytest.mark.libreoffice
@_SWEEP_ONLY
def test_tables_pasted_as_pictures_into_a_pdf(scan_cache: Path) -> None:
    """The same DOCX printed to PDF by LibreOffice: text on every page, the tables pictures on theirs."""
    from ocr_scans import pictures_docx
    from pdf_sweep import Variant, content_key, render, require_soffice

    require_soffice()
    source = (DOCUMENTS / "hongze-2023.pdf").read_bytes()
    pdf = render({"pictures": Variant(content_key("ocr-pictures", source), lambda: pictures_docx(source, 200))}, scan_cache / "libreoffice")
    result = extract_result(pdf["pictures"], "pictures.pdf")
    _check_pictures(result, "hongze-2023.pdf")
    assert all(p["source"] == "ocr" and p["page"] is not None and p["bbox"] for p in result.provenance.values())
    assert not any(w.startswith("unreadable table:") for w in result.warnings)
