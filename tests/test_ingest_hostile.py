"""`gongkai ingest` against hostile local input: names that are not UTF-8 or hold NUL, symlinks out of the
folder, files too large, and failures whose reasons `gongkai status` must show. DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import DOCUMENTS

from gongkai.cli import main
from gongkai.flows.ingest import ingest_bytes, iter_files
from gongkai.warehouse.archive import open_archive
from gongkai.warehouse.runs import recorded_run
from gongkai.warehouse.store import open_warehouse

REPORT = DOCUMENTS / "zibo-stats-2023.txt"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


def run_ingest(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    os.environ["GONGKAI_PREFECT_RESULTS"] = str(tmp_path / "results")
    try:
        code = main(["ingest", *args, "--archive", str(tmp_path / "archive"), "--json"])
    finally:
        os.environ.pop("GONGKAI_PREFECT_RESULTS", None)
    return code, json.loads(capsys.readouterr().out)


def test_a_folder_unzipped_from_a_gbk_archive_loads_with_readable_names(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "unzipped"
    folder.mkdir()
    gbk_name = "淄博市统计局2023年报告.txt".encode("gbk")  # as `unzip` leaves the names of a Windows archive
    (Path(os.fsdecode(bytes(folder) + b"/" + gbk_name))).write_bytes(REPORT.read_bytes())
    (Path(os.fsdecode(bytes(folder) + b"/\xff\xfe-bad.txt"))).write_bytes(b"neither UTF-8 nor GBK in the name")
    (folder / "shanghai.html").write_bytes((DOCUMENTS / "shanghai-szfbgt-2019.html").read_bytes())
    code, summary = run_ingest([str(folder), "--db", warehouse_url], tmp_path, capsys)
    assert code == 0
    names = {d["name"]: d["outcome"] for d in summary["documents"]}
    assert names["淄博市统计局2023年报告.txt"] == "new" and names["shanghai.html"] == "new"
    assert names["\ufffd\ufffd-bad.txt"] in ("not_a_report", "unreadable", "new")  # recorded, with a printable name
    with open_warehouse(warehouse_url) as wh:
        stored = {name for (name,) in wh.db.query("SELECT original_name FROM documents")}
    assert stored == set(names)


def test_a_nul_in_a_file_name_is_dropped_before_storing(warehouse_url: str, tmp_path: Path) -> None:
    """A Content-Disposition name with a NUL failed that report every night on PostgreSQL."""
    with open_warehouse(warehouse_url) as wh:
        outcome = ingest_bytes(REPORT.read_bytes(), name="report\x00\x1b[2J.txt", url="https://example.gov.cn/a\x00b",
                               warehouse=wh, archive=open_archive(tmp_path / "archive"))
        assert (outcome.outcome, outcome.name) == ("new", "report[2J.txt")
        assert wh.db.query("SELECT original_name, url FROM documents") == [("report[2J.txt", "https://example.gov.cn/ab")]


def test_ingest_refuses_symlinks_out_of_the_folder_and_files_over_the_cap(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    folder = tmp_path / "reports"
    (folder / "inner").mkdir(parents=True)
    (folder / "zibo.txt").write_bytes(REPORT.read_bytes())
    (folder / "passwd").symlink_to(secret)
    (folder / "outside").symlink_to(tmp_path)  # a folder link: not entered
    (folder / "inner" / "same.txt").symlink_to(folder / "zibo.txt")  # stays inside: followed
    cap = REPORT.stat().st_size + 100
    (folder / "big.pdf").write_bytes(b"%PDF-1.4\n" + b"0" * cap)
    os.mkfifo(folder / "pipe.pdf")  # reading it would block the ingest forever
    monkeypatch.setenv("GONGKAI_INGEST_MAX_BYTES", str(cap))
    code, summary = run_ingest([str(folder), "--db", warehouse_url], tmp_path, capsys)
    assert code == 0
    by_name = {Path(d["name"]).name: d for d in summary["documents"]}
    assert set(by_name) == {"zibo.txt", "same.txt", "passwd", "outside", "big.pdf", "pipe.pdf"}
    assert by_name["passwd"]["outcome"] == "unreadable" and "symlink leading out of the folder" in by_name["passwd"]["reason"]
    assert "symlinked folder" in by_name["outside"]["reason"]
    assert f"{cap + 9} bytes, more than the {cap}-byte cap" in by_name["big.pdf"]["reason"]
    assert "not a regular file" in by_name["pipe.pdf"]["reason"]
    assert all("\n" not in (d["reason"] or "") for d in summary["documents"])  # one line each
    assert sorted(by_name[n]["outcome"] for n in ("zibo.txt", "same.txt")) == ["new", "unchanged"]
    archived = [p for p in (tmp_path / "archive").rglob("*") if p.is_file() and p.name != "ARCHIVE-LAYOUT"]
    assert all(p.read_bytes() != secret.read_bytes() for p in archived) and len(archived) == 1
    # named on the command line, a file is still capped
    assert [r.reason for r in iter_files([folder / "big.pdf"], max_bytes=100)] == [
        f"refused: {cap + 9} bytes, more than the 100-byte cap (GONGKAI_INGEST_MAX_BYTES)"
    ]


def test_status_shows_why_loads_failed_grouped_until_they_load(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = open_archive(tmp_path / "archive")

    def crash(data: bytes, name: str) -> dict[str, Any]:
        raise RuntimeError(f"reader bug on {name}\nsecond line")

    with open_warehouse(warehouse_url) as wh, recorded_run(wh, "ingest", {}) as run:
        for i in range(3):
            run.add(ingest_bytes(REPORT.read_bytes() + b" " * i, name=f"r{i}.txt", warehouse=wh, archive=archive,
                                 run_id=run.run_id, extract=crash))
    assert main(["status", "--db", warehouse_url, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    [group] = status["failed to load, by reason (not loaded since)"]
    assert (group["kind"], group["documents"], group["example"]) == ("extractor error: RuntimeError", 3, "r0.txt")
    assert "reader bug" in group["one_reason"]
    assert main(["status", "--db", warehouse_url]) == 0
    assert "extractor error: RuntimeError" in capsys.readouterr().out
    with open_warehouse(warehouse_url) as wh:  # a later run loads one of them: it leaves the list
        assert ingest_bytes(REPORT.read_bytes(), name="r0.txt", warehouse=wh, archive=archive).outcome == "new"
    assert main(["status", "--db", warehouse_url, "--format", "json"]) == 0
    [group] = json.loads(capsys.readouterr().out)["failed to load, by reason (not loaded since)"]
    assert group["documents"] == 2
