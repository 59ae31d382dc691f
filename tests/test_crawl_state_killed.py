"""The crawl state is saved during a crawl, not only at its end: a `gongkai nightly` killed (SIGKILL) after some
reports were loaded keeps their validators, so the next run asks for those conditionally (304) and for the rest in
full, and every report ends up loaded once. A validator is never saved for a document that was not loaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from shard_portal import REPORT_YEARS, ShardPortal, is_document, wait_for

from gongkai.crawler.state import CrawlState, WarehouseCrawlState
from gongkai.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parents[1]
HOSTS = {0: [1, 2], 1: [3, 4]}
PORTALS = [("k1", 0, 1), ("k2", 0, 2), ("k3", 1, 3), ("k4", 1, 4)]
SERVED_BEFORE_HOLD = 3
SAVE_S = 0.3



def _nightly(folder: Path, registry: Path, db_url: str, log: Path, processes: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GONGKAI_"))} | {
        "PYTHONPATH": str(ROOT), "GONGKAI_DB": db_url, "GONGKAI_DATA": str(folder / "data"), "GONGKAI_EXTRACT_PROCESSES": "0",
        "GONGKAI_CRAWL_STATE_SAVE_S": str(SAVE_S),
        "GONGKAI_CRAWL_PROCESSES": str(processes), "PREFECT_HOME": str(folder / "prefect"), "DO_NOT_TRACK": "1"}
    return subprocess.Popen([sys.executable, "-m", "gongkai.cli", "nightly", "--registry", str(registry), "--delay", "0.1",
                             "--concurrency", "2"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=folder)


@pytest.mark.postgres
@pytest.mark.parametrize("processes", [1, 2])
def test_a_nightly_killed_mid_crawl_keeps_the_validators_of_what_it_loaded(processes: int, postgres_url: str,
                                                                            tmp_path: Path) -> None:
    """With 2 crawler processes (one host each) the children's validators reach the command's state as they are
    committed, so its autosave keeps them too (they came back only at a child's end, lost with the command)."""
    with ShardPortal(HOSTS) as portal:
        registry = tmp_path / "registry.toml"
        registry.write_text(portal.registry(PORTALS), "utf-8")
        log = tmp_path / "nightly.log"
        portal.hold_after(SERVED_BEFORE_HOLD)  # a few reports, then the portal stalls: the crawl is mid-way
        first = _nightly(tmp_path, registry, postgres_url, log, processes)
        try:
            def served() -> set[str]:
                return {f"http://{h.host}{h.path}" for h in list(portal.hits) if h.status == 200 and is_document(h.path)}

            wait_for(lambda: len(served()) >= SERVED_BEFORE_HOLD or first.poll() is not None, 120, "the first reports")
            assert first.poll() is None, log.read_text(errors="replace")[-3000:]
            loaded = served()

            def saved() -> bool:  # validators reach the warehouse only after the document's load was committed
                with open_warehouse(postgres_url) as wh:
                    urls = {url for (url,) in wh.db.query("SELECT url FROM crawl_state")}
                return loaded <= urls

            try:
                wait_for(saved, 60, "the loaded reports' validators in crawl_state while the crawl runs")
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=20)
        finally:
            portal.release()
        with open_warehouse(postgres_url) as wh:
            assert wh.db.query("SELECT status FROM runs") == [("running",)]  # killed: never finished
            stored = {url for (url,) in wh.db.query("SELECT url FROM crawl_state")}
            documents = {url for (url,) in wh.db.query("SELECT url FROM documents WHERE url IS NOT NULL")}
        # no validator of a document that was not loaded
        assert {url for url in stored if is_document("/" + url.split("/", 3)[3])} <= documents

        portal.clear()
        second = _nightly(tmp_path, registry, postgres_url, log, processes)
        assert second.wait(timeout=240) == 0, log.read_text(errors="replace")[-3000:]
        hits = [h for h in portal.clear() if is_document(h.path)]
        conditional = {f"http://{h.host}{h.path}" for h in hits if h.conditional and h.status == 304}
        full = {f"http://{h.host}{h.path}" for h in hits if not h.conditional and h.status == 200}
        assert conditional == loaded, (conditional, loaded)
        assert len(full) == len(PORTALS) * len(REPORT_YEARS) - len(loaded) and not full & loaded, full
        with open_warehouse(postgres_url) as wh:
            rows = wh.db.query("SELECT a.division_code, r.year, count(*) FROM reports r JOIN agencies a ON a.agency_id = r.agency_id "
                               "GROUP BY a.division_code, r.year")
            assert sorted((code, year) for code, year, _ in rows) == sorted(
                (f"{110000 + a:06d}", y) for _, _, a in PORTALS for y in REPORT_YEARS)
            assert all(n == 1 for *_, n in rows), rows
            assert wh.db.query("SELECT count(*) FROM documents")[0][0] == len(PORTALS) * len(REPORT_YEARS)


@pytest.mark.parametrize("store", ["json", "duckdb"])
def test_autosave_saves_while_the_block_runs_without_the_committing_thread_waiting(store: str, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/a1/index.html"
    wh = open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") if store == "duckdb" else None
    if wh is None:
        state: CrawlState = CrawlState(tmp_path / "state.json")

        def reread() -> dict[str, Any] | None:
            return CrawlState(tmp_path / "state.json").get(url)
    else:
        db = wh.db
        state = WarehouseCrawlState(db, hosts=["127.0.0.1:9"])

        def reread() -> dict[str, Any] | None:
            return WarehouseCrawlState(db, hosts=["127.0.0.1:9"]).get(url)
    try:
        with state.autosave(0.2):
            state.commit(url, etag='"v1"', last_modified=None, derived=[])
            assert reread() is None  # the commit itself does not save
            wait_for(lambda: reread() is not None, 10, "the autosave")
            assert state.unsaved() == 0
            state.commit(url, etag='"v2"', last_modified=None, derived=[])
            wait_for(lambda: (reread() or {}).get("etag") == '"v2"', 10, "the second autosave")
        assert not [t for t in threading.enumerate() if t.name == "crawl-state-autosave"]  # stopped with its block
    finally:
        if wh is not None:
            wh.close()
