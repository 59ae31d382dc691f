"""Operating gongkai (issue 11): readers while a run writes, runs that fail before the warehouse opens, the nightly
deployment as Prefect users expect it, and the current version whatever the load order."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import DOCUMENTS

from gongkai.cli import main
from gongkai.warehouse import open_warehouse


def hold_writer(path: Path) -> subprocess.Popen[str]:
    """Another process holding the DuckDB file for writing, as a running nightly does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
         str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def test_status_waits_for_a_short_writer_and_says_why_it_gives_up_on_a_long_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gongkai.readers

    path = tmp_path / "w.duckdb"
    open_warehouse(f"duckdb:///{path}").close()
    holder = hold_writer(path)
    threading.Timer(1.5, release, [holder]).start()  # a short ingest ends
    assert main(["status", "--db", f"duckdb:///{path}"]) == 0
    captured = capsys.readouterr()
    assert "warehouse:" in captured.out and captured.err.count("\n") == 1 and "waiting up to" in captured.err
    monkeypatch.setattr(gongkai.readers, "WAIT_S", 1.0)
    holder = hold_writer(path)
    try:
        for command in (["status"], ["query", "SELECT 1 AS one"]):
            assert main([*command, "--db", f"duckdb:///{path}"]) == 1
            err = capsys.readouterr().err
            assert "Traceback" not in err and err.count("\n") == 2 and "PostgreSQL" in err, err
    finally:
        release(holder)


def test_a_nightly_that_cannot_open_the_warehouse_is_seen_by_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from gongkai.flows.crawl import run_crawl
    from gongkai.settings import load_settings

    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path / "data"))
    path = tmp_path / "data" / "gongkai.duckdb"
    path.parent.mkdir()
    open_warehouse(f"duckdb:///{path}").close()
    holder = hold_writer(path)
    try:  # a second nightly, as a deployment would start it: no command line in front of it
        with pytest.raises(Exception, match="lock"):
            run_crawl("nightly", registry_file=None, settings=load_settings())
    finally:
        release(holder)
    assert main(["status", "--format", "json"]) == 0
    [record] = json.loads(capsys.readouterr().out)["failed before opening the warehouse"]
    assert record["kind"] == "nightly" and "lock" in record["error"] and record["failed_at"][-6] in "+-"
    assert main(["status"]) == 0
    assert "failed before opening the warehouse" in capsys.readouterr().out


def test_the_nightly_deployment_runs_one_at_a_time_and_describes_its_parameters() -> None:
    from gongkai.flows.deploy import nightly_deployment

    deployment = nightly_deployment("0 3 * * *", "Asia/Shanghai")
    limit = deployment.concurrency_limit
    assert (limit if isinstance(limit, int) else limit.limit) == 1  # type: ignore[union-attr]
    properties = deployment._parameter_openapi_schema.properties
    assert all(properties[name].get("description") for name in ("agencies", "db_url", "registry_file", "demo_port")), properties
    assert all(properties[name].get("description") for name in properties), properties
    assert deployment.parameters["fail_run_on_failure"] is True


def _current_after_shuffled_ingests(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[list[tuple]]:
    names = sorted(str(p) for p in folder.iterdir())
    seen = []
    for attempt in range(3):
        order = names[:]
        random.Random(attempt).shuffle(order)
        url = f"duckdb:///{tmp_path / f'w{attempt}.duckdb'}"
        assert main(["ingest", *order, "--db", url, "--archive", str(tmp_path / f"a{attempt}"), "--json"]) in (0, 1)
        capsys.readouterr()
        with open_warehouse(url) as warehouse:
            seen.append(warehouse.db.query(
                "SELECT a.name, r.year, r.sha256 FROM current_reports r JOIN agencies a USING (agency_id) ORDER BY 1, 2"))
        shutil.rmtree(tmp_path / f"a{attempt}")
    return seen


def test_the_same_files_loaded_in_any_order_give_the_same_current_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11's finding: the same files loaded into fresh warehouses gave different current files. Corrected
    versions of the same reports (one figure changed) are ingested in shuffled orders; the current version of every
    agency and year is the same each time."""
    monkeypatch.setenv("GONGKAI_EXTRACT_PROCESSES", "0")
    folder = tmp_path / "files"
    folder.mkdir()
    text = (DOCUMENTS / "zibo-stats-2023.txt").read_text("utf-8")
    for variant, figure in enumerate(("", "5", "6", "7")):
        changed = text.replace("\t0\n", f"\t{figure}\n", 1) if figure else text  # a corrected figure: another version
        assert changed != text or not figure
        (folder / f"v{variant}-zibo.txt").write_text(changed, "utf-8")
    for name in ("pingtan-2024.html", "shanghai-szfbgt-2019.html"):
        shutil.copy(DOCUMENTS / name, folder / name)
    seen = _current_after_shuffled_ingests(folder, tmp_path, capsys)
    assert seen[0] and seen[0] == seen[1] == seen[2]


def test_files_with_the_same_cells_give_the_same_current_file_in_any_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GONGKAI_EXTRACT_PROCESSES", "0")
    folder = tmp_path / "files"
    folder.mkdir()
    page = (DOCUMENTS / "shanghai-szfbgt-2019.html").read_bytes()
    for copy in range(4):  # the same report saved four times: other bytes, the same cells
        (folder / f"copy{copy}.html").write_bytes(page + f"<!-- saved {copy} -->".encode())
    seen = _current_after_shuffled_ingests(folder, tmp_path, capsys)
    assert seen[0] and seen[0] == seen[1] == seen[2]


def test_a_scheduled_nightly_with_a_failed_portal_ends_failed_naming_it_and_keeps_the_others_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a real (temporary) Prefect server, as `gongkai serve` runs it: the demo's flaky portal is down."""
    from gongkai.crawler.demo_portal import DemoPortal
    from gongkai.flows.crawl import nightly_flow

    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GONGKAI_CRAWL_DELAY", "0")
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with DemoPortal() as demo:
        state = nightly_flow(agencies=["demo-zibo", "demo-flaky"], db_url=url, demo_port=demo.port, fail_run_on_failure=True,
                             archive_location=str(tmp_path / "archive"), return_state=True)
    assert state.is_failed() and "demo-flaky" in str(state.message) and "demo-zibo" not in str(state.message), state.message
    with open_warehouse(url) as warehouse:
        assert warehouse.db.scalar("SELECT count(*) FROM reports WHERE status = 'extracted'") >= 1  # zibo's work is kept
        assert warehouse.db.scalar("SELECT n_failed FROM runs") == 1


def test_a_stopped_run_ends_cancelled_in_prefect_not_completed() -> None:
    """Issue 11: a nightly stopped by Ctrl-C/SIGTERM on a Prefect server ended `Completed` there while `runs` said
    `interrupted`. The state the flow returns now says so; a failed portal still ends it Failed, a clean run Completed."""
    from gongkai.flows.crawl import final_state

    clean = {"portals": {"a": {"status": "ok", "error": None}}, "documents": []}
    failed = {"portals": {"a": {"status": "failed", "error": "down"}}, "documents": []}
    stopped = clean | {"interrupted": True}
    assert final_state(clean) is clean
    assert final_state(failed).is_failed() and "a (down)" in str(final_state(failed).message)
    state = final_state(stopped)
    assert state.is_cancelled() and "interrupted" in str(state.message)
    assert final_state(failed | {"interrupted": True}).is_cancelled()
