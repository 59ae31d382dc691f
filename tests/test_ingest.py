"""The ingest path on the real corpus: what `gongkai extract` gives is what the warehouse holds, in DuckDB
and in PostgreSQL; a second ingest extracts nothing; bad files are recorded; kill -9 mid-load is safe."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pypdf
import pytest
from conftest import DOCUMENTS

from gongkai.cli import main
from gongkai.extractors.extract import extract_report
from gongkai.extractors.model import UnreadableDocument
from gongkai.flows.ingest import ingest_bytes
from gongkai.warehouse.archive import open_archive
from gongkai.warehouse.store import CRASH_PAUSE_ENV, Warehouse, open_warehouse

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


def corpus() -> list[Path]:
    return sorted(DOCUMENTS.iterdir())


def expected_of(path: Path) -> dict[str, Any] | str:
    """What `gongkai extract` gives for the file: its result, or the reason it is unreadable."""
    try:
        return extract_report(path.read_bytes(), path.name)
    except UnreadableDocument as exc:
        return str(exc)


def table_counts(wh: Warehouse) -> dict[str, int]:
    return {t: int(wh.db.scalar(f"SELECT count(*) FROM {t}")) for t in ("agencies", "documents", "reports", "cells", "checks", "extractions")}


def test_corpus_loads_exactly_what_extract_gives_and_a_second_ingest_extracts_nothing(warehouse_url: str, tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    calls: list[str] = []

    def counted_extract(data: bytes, name: str) -> dict[str, Any]:
        calls.append(name)
        return extract_report(data, name)

    with open_warehouse(warehouse_url) as wh:
        first = {p.name: ingest_bytes(p.read_bytes(), name=p.name, warehouse=wh, archive=archive, extract=counted_extract) for p in corpus()}
        assert sorted(calls) == sorted(first)
        for path in corpus():
            outcome, expected = first[path.name], expected_of(path)
            if isinstance(expected, str):
                assert (outcome.outcome, outcome.reason) == ("unreadable", expected)
                continue
            assert outcome.report_id is not None, (path.name, outcome)
            assert wh.cells_of(outcome.report_id) == expected["cells"], path.name
            assert sorted(tuple(c.values()) for c in wh.checks_of(outcome.report_id)) == sorted(
                (c["rule"], c["target"], c["expected"], c["actual"], c["status"]) for c in expected["checks"]
            ), path.name
            assert outcome.failing_checks == sum(1 for c in expected["checks"] if c["status"] == "fail")
            raw = dict(wh.db.query("SELECT address, raw FROM cells WHERE report_id = ?", [outcome.report_id]))
            assert raw == {a: p["raw"] for a, p in expected["provenance"].items()}, path.name
        # the letter is recorded as what it is; the 平潭 2024 report as DOCX, PDF and HTML (loaded in that order)
        # is one version while the files give the same cells, and a new version where they do not
        assert first["pingtan-han-2014-notreport.txt"].outcome == "not_a_report"
        trio = [first[n] for n in ("pingtan-2024-libreoffice.docx", "pingtan-2024-libreoffice.pdf", "pingtan-2024.html")]
        assert trio[0].outcome == "new"
        for later in trio[1:]:
            same = wh.cells_of(later.report_id) == wh.cells_of(trio[0].report_id)
            assert (later.outcome, later.report_id == trio[0].report_id) == (("unchanged", True) if same else ("changed", False))
        before = table_counts(wh)
        assert before["documents"] == len(first)

        calls.clear()
        second = [ingest_bytes(p.read_bytes(), name=p.name, warehouse=wh, archive=archive, extract=counted_extract) for p in corpus()]
        assert calls == []  # nothing extracted
        assert {o.outcome for o in second} == {"unchanged"}
        assert table_counts(wh) == before  # nothing loaded


KILLED_LOAD = """
import sys
from pathlib import Path
from gongkai.flows.ingest import ingest_bytes
from gongkai.warehouse import open_archive, open_warehouse
path = Path(sys.argv[3])
with open_warehouse(sys.argv[1]) as wh:
    ingest_bytes(path.read_bytes(), name=path.name, warehouse=wh, archive=open_archive(sys.argv[2]))
"""


def test_kill_9_during_a_load_leaves_no_partial_report_and_a_rerun_completes_it(warehouse_url: str, tmp_path: Path) -> None:
    path = DOCUMENTS / "zibo-stats-2023.txt"
    archive_dir = tmp_path / "archive"
    with open_warehouse(warehouse_url) as wh:  # an earlier, committed load that must survive the crash
        ingest_bytes((DOCUMENTS / "shanghai-szfbgt-2019.html").read_bytes(), name="shanghai-szfbgt-2019.html", warehouse=wh,
                     archive=open_archive(archive_dir))
        before = table_counts(wh)
    env = {**os.environ, CRASH_PAUSE_ENV: "60", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_LOAD, warehouse_url, str(archive_dir), str(path)], env=env, cwd=ROOT,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # printed by the hook inside the transaction, after the report row is written
        assert "paused inside the load transaction" in line, line + proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.2)
    with open_warehouse(warehouse_url) as wh:
        assert table_counts(wh) == before  # the killed transaction left nothing
        outcome = ingest_bytes(path.read_bytes(), name=path.name, warehouse=wh, archive=open_archive(archive_dir))
        again = ingest_bytes(path.read_bytes(), name=path.name, warehouse=wh, archive=open_archive(archive_dir))
        assert (outcome.outcome, outcome.version, again.outcome) == ("new", 1, "unchanged")
        expected = extract_report(path.read_bytes(), path.name)
        assert wh.cells_of(outcome.report_id) == expected["cells"]
        assert int(wh.db.scalar("SELECT count(*) FROM reports WHERE sha256 = ?", [outcome.sha256])) == 1
        after = table_counts(wh)
        assert after["reports"] == before["reports"] + 1 and after["cells"] == before["cells"] + len(expected["cells"])


def bad_folder(tmp_path: Path) -> Path:
    """A folder as a researcher might collect it: good reports, a letter, and broken files."""
    folder = tmp_path / "collected"
    (folder / "sub").mkdir(parents=True)
    for name in ("zibo-stats-2023.txt", "shanghai-szfbgt-2019.html", "pingtan-han-2014-notreport.txt"):
        (folder / name).write_bytes((DOCUMENTS / name).read_bytes())
    (folder / "sub" / "empty.pdf").write_bytes(b"")
    (folder / "sub" / "truncated.pdf").write_bytes((DOCUMENTS / "hongze-2023.pdf").read_bytes()[:5000])
    writer = pypdf.PdfWriter(clone_from=io.BytesIO((DOCUMENTS / "hongze-2023.pdf").read_bytes()))
    writer.encrypt(user_password="secret", owner_password="owner")
    with (folder / "sub" / "locked.pdf").open("wb") as fh:
        writer.write(fh)
    (folder / ".hidden").write_bytes(b"editor swap file")
    return folder


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_ingest_command_records_bad_files_loads_the_rest_and_caches_extraction(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = bad_folder(tmp_path)
    common = ["--archive", str(tmp_path / "archive")]
    os.environ["GONGKAI_PREFECT_RESULTS"] = str(tmp_path / "results")
    try:
        code, first = run_cli(["ingest", str(folder), "--db", warehouse_url, *common], capsys)
        assert code == 0
        by_name = {d["name"]: d for d in first["documents"]}
        assert set(by_name) == {"zibo-stats-2023.txt", "shanghai-szfbgt-2019.html", "pingtan-han-2014-notreport.txt",
                                "empty.pdf", "truncated.pdf", "locked.pdf"}
        assert first["counts"] == {"new": 2, "unchanged": 0, "changed": 0, "not_a_report": 1, "unreadable": 3, "failed": 0}
        assert by_name["empty.pdf"]["reason"] == "empty file (0 bytes)"
        assert "encrypted" in by_name["locked.pdf"]["reason"]
        assert "corrupt" in by_name["truncated.pdf"]["reason"].lower()
        assert (by_name["zibo-stats-2023.txt"]["agency"], by_name["zibo-stats-2023.txt"]["year"]) == ("淄博市统计局", 2023)
        shanghai = extract_report((DOCUMENTS / "shanghai-szfbgt-2019.html").read_bytes(), "shanghai-szfbgt-2019.html")
        assert first["checks_failing"] == sum(1 for c in shanghai["checks"] if c["status"] == "fail") + sum(
            1 for c in extract_report((DOCUMENTS / "zibo-stats-2023.txt").read_bytes(), "x")["checks"] if c["status"] == "fail"
        )
        with open_warehouse(warehouse_url) as wh:
            reasons = dict(wh.db.query("SELECT d.original_name, r.reason FROM reports r JOIN documents d USING (sha256) WHERE r.status = 'unreadable'"))
            assert reasons == {n: by_name[n]["reason"] for n in ("empty.pdf", "truncated.pdf", "locked.pdf")}
            assert wh.cells_of(by_name["shanghai-szfbgt-2019.html"]["report_id"]) == shanghai["cells"]
            stored_run = wh.db.query_one("SELECT kind, status, n_new, n_not_a_report, n_unreadable FROM runs WHERE run_id = ?", [first["run_id"]])
            assert stored_run == ("ingest", "completed", 2, 1, 3)

        code, second = run_cli(["ingest", str(folder), "--db", warehouse_url, *common], capsys)
        assert second["counts"]["unchanged"] == 6 and sum(second["counts"].values()) == 6

        # The Prefect cache, keyed on sha256 + extractor version, serves a fresh warehouse without extracting:
        # a value planted in the cached result shows that the load came from the cache.
        planted = plant_in_cached_result(tmp_path / "results", "requests.new.natural_person", 4242)
        fresh = f"duckdb:///{tmp_path / 'fresh.duckdb'}"
        code, third = run_cli(["ingest", str(folder), "--db", fresh, *common], capsys)
        assert third["counts"]["new"] == 2
        with open_warehouse(fresh) as wh:
            assert wh.db.scalar("SELECT count(*) FROM cells WHERE address = 'requests.new.natural_person' AND value = 4242") == planted

        # --agency/--year: what the researcher says wins over what the document prints
        given = f"duckdb:///{tmp_path / 'given.duckdb'}"
        code, fourth = run_cli(["ingest", str(folder / "zibo-stats-2023.txt"), "--agency", "淄博市统计局（测试）", "--year", "2022",
                                "--db", given, *common], capsys)
        assert [(d["agency"], d["year"], d["outcome"]) for d in fourth["documents"]] == [("淄博市统计局（测试）", 2022, "new")]
        with open_warehouse(given) as wh:
            assert wh.db.query("SELECT a.name, r.year FROM current_reports r JOIN agencies a USING (agency_id)") == [("淄博市统计局（测试）", 2022)]
            assert wh.db.query("SELECT year FROM documents") == [(2022,)]
    finally:
        os.environ.pop("GONGKAI_PREFECT_RESULTS", None)


def plant_in_cached_result(results: Path, address: str, value: int) -> int:
    planted = 0
    for path in results.iterdir():
        record = json.loads(path.read_text(encoding="utf-8"))
        result = json.loads(record["result"])
        if address in result.get("cells", {}):
            result["cells"][address] = value
            record["result"] = json.dumps(result, ensure_ascii=False)
            path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
            planted += 1
    assert planted == 2  # zibo and shanghai
    return planted


def test_ingesting_an_extracted_file_again_with_agency_and_year_moves_its_report(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `gongkai ingest 2023-report.docx --agency … --year …` on a file already ingested without them."""
    path = DOCUMENTS / "zibo-stats-2023.txt"
    archive = open_archive(tmp_path / "archive")
    with open_warehouse(warehouse_url) as wh:
        first = ingest_bytes(path.read_bytes(), name=path.name, warehouse=wh, archive=archive)
        same = ingest_bytes(path.read_bytes(), name=path.name, agency="淄博市统计局", year=2023, warehouse=wh, archive=archive)
        assert (first.outcome, same.outcome, same.report_id) == ("new", "unchanged", first.report_id)  # hints agree: no work
        moved = ingest_bytes(path.read_bytes(), name=path.name, agency="淄博市统计局（测试）", year=2022, warehouse=wh, archive=archive)
        assert (moved.outcome, moved.agency, moved.year) == ("changed", "淄博市统计局（测试）", 2022)
        assert wh.db.query("SELECT a.name, r.year FROM current_reports r JOIN agencies a USING (agency_id)") == [("淄博市统计局（测试）", 2022)]
    os.environ["GONGKAI_PREFECT_RESULTS"] = str(tmp_path / "results")
    try:  # the command's path (the Prefect flow) does the same
        code, summary = run_cli(["ingest", str(path), "--agency", "淄博市统计局（测试）", "--year", "2021", "--db", warehouse_url, "--archive", str(tmp_path / "archive")], capsys)
    finally:
        os.environ.pop("GONGKAI_PREFECT_RESULTS", None)
    assert code == 0 and [(d["outcome"], d["year"]) for d in summary["documents"]] == [("changed", 2021)]
    with open_warehouse(warehouse_url) as wh:
        assert wh.db.query("SELECT a.name, r.year FROM current_reports r JOIN agencies a USING (agency_id)") == [("淄博市统计局（测试）", 2021)]
        assert wh.db.query("SELECT year FROM documents") == [(2021,)]


def test_a_load_error_is_a_failed_outcome_with_its_reason_not_an_exception(warehouse_url: str, tmp_path: Path) -> None:
    path = DOCUMENTS / "zibo-stats-2023.txt"

    def refused_value(data: bytes, name: str) -> dict[str, Any]:
        result = extract_report(data, name)
        result["cells"]["requests.new.total"] = "not a number"  # the database refuses it inside the load
        return result

    with open_warehouse(warehouse_url) as wh:
        outcome = ingest_bytes(path.read_bytes(), name=path.name, warehouse=wh, archive=open_archive(tmp_path / "a"), extract=refused_value)
        assert outcome.outcome == "failed" and (outcome.reason or "").startswith("load error: ")
        assert table_counts(wh)["reports"] == 0 and table_counts(wh)["documents"] == 1  # seen, not extracted: retried next time
        again = ingest_bytes(path.read_bytes(), name=path.name, warehouse=wh, archive=open_archive(tmp_path / "a"))
        assert again.outcome == "new"
