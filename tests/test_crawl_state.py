"""The crawl state in the warehouse (crawl_state): one memory of ETags, Last-Modified and derived pages for every
worker that writes the warehouse, on DuckDB and PostgreSQL; an older JSON state file imported once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gongkai.crawler.demo_portal import DemoPortal
from gongkai.crawler.state import WarehouseCrawlState
from gongkai.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parent.parent
POLITENESS = {"delay": 0.0, "concurrency": 4, "read_timeout": 1.0, "retries": 2, "backoff": 0.05}
LISTING = "http://127.0.0.1:8001/zibo/list.html"
DETAIL = "http://127.0.0.1:8001/zibo/t2024_1.html"
CANDIDATES = [{"url": DETAIL, "title": "淄博市统计局2023年政府信息公开工作年度报告", "year": 2023}]


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'w.duckdb'}"
    return str(request.getfixturevalue("postgres_url"))


def test_commits_reach_the_warehouse_on_save_and_are_read_back(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        state = WarehouseCrawlState(wh.db, hosts=["127.0.0.1:8001"])
        assert state.get(LISTING) is None and len(state) == 0
        state.commit(LISTING, etag='"l1"', last_modified=None, derived=CANDIDATES)
        state.commit(DETAIL, etag=None, last_modified="Mon, 01 Jan 2024 00:00:00 GMT", derived={"attachments": []})
        state.commit("http://127.0.0.1:8001/no-validators", etag=None, last_modified=None, derived=[1])
        assert state.get(LISTING) == {"etag": '"l1"', "last_modified": None, "derived": CANDIDATES}  # this run sees it
        assert len(state) == 2
        assert WarehouseCrawlState(wh.db, hosts=["127.0.0.1:8001"]).get(LISTING) is None  # not saved: not there
        state.save()
        assert wh.db.query("SELECT url, host, etag FROM crawl_state ORDER BY url") == [
            (LISTING, "127.0.0.1:8001", '"l1"'), (DETAIL, "127.0.0.1:8001", None)]
    with open_warehouse(warehouse_url) as wh:
        for hosts in (["127.0.0.1:8001"], []):  # read at the start by host, or looked up URL by URL
            again = WarehouseCrawlState(wh.db, hosts=hosts)
            assert again.get(LISTING) == {"etag": '"l1"', "last_modified": None, "derived": CANDIDATES}
            assert again.validators(DETAIL) == {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
            assert again.get("http://127.0.0.1:8001/no-validators") is None and len(again) == 2
        again.commit(LISTING, etag='"l2"', last_modified=None, derived=[])
        again.forget(DETAIL)
        assert again.get(DETAIL) is None and len(again) == 1
        again.save()
        assert wh.db.query("SELECT url, etag, derived FROM crawl_state") == [(LISTING, '"l2"', "[]")]


def test_two_processes_saving_at_once_on_one_postgresql_lose_nothing(postgres_url: str) -> None:
    """Each worker upserts its own URLs and, in opposite orders, the same 200 shared ones: every row arrives, no
    deadlock, and a third worker reads both workers' state."""
    with open_warehouse(postgres_url):
        pass  # migrated once, before the workers race
    script = textwrap.dedent("""
        import sys
        from gongkai.crawler.state import WarehouseCrawlState
        from gongkai.warehouse import open_warehouse
        url, name = sys.argv[1], sys.argv[2]
        shared = [f"http://shared.example/{i}" for i in range(200)]
        with open_warehouse(url) as wh:
            for round in range(5):
                state = WarehouseCrawlState(wh.db, hosts=["shared.example", f"{name}.example"])
                for i in range(100):
                    state.commit(f"http://{name}.example/{round}/{i}", etag=f'"{name}{i}"', last_modified=None, derived=[i])
                for page in (shared if name == "a" else shared[::-1]):
                    state.commit(page, etag=f'"{name}"', last_modified=None, derived={"by": name})
                state.save()
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", script, postgres_url, name], env=env, stderr=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    with open_warehouse(postgres_url) as wh:
        assert wh.db.query("SELECT host, count(*) FROM crawl_state GROUP BY host ORDER BY host") == [
            ("a.example", 500), ("b.example", 500), ("shared.example", 200)]
        reader = WarehouseCrawlState(wh.db, hosts=["a.example"])
        assert reader.get("http://b.example/4/99") == {"etag": '"b99"', "last_modified": None, "derived": [99]}
        assert reader.validators("http://a.example/0/7") == {"If-None-Match": '"a7"'}
        assert reader.get("http://shared.example/5")["derived"] in ({"by": "a"}, {"by": "b"})  # type: ignore[index]


def test_an_older_json_state_file_is_imported_once(warehouse_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    legacy = tmp_path / "crawl-state-0123456789ab.json"
    entries = {LISTING: {"etag": '"old"', "last_modified": None, "derived": CANDIDATES},
               DETAIL: {"etag": '"d"', "last_modified": None, "derived": {"attachments": ["a.pdf"]}},
               "http://127.0.0.1:8001/nothing": {"etag": None, "last_modified": None, "derived": None}}
    legacy.write_text(json.dumps(entries, ensure_ascii=False), "utf-8")
    with open_warehouse(warehouse_url) as wh:
        newer = WarehouseCrawlState(wh.db)  # another worker saved this page since the file was written: it wins
        newer.commit(DETAIL, etag='"d2"', last_modified=None, derived={"attachments": []})
        newer.save()
        state = WarehouseCrawlState(wh.db, hosts=["127.0.0.1:8001"], legacy_file=legacy)
        assert state.get(LISTING) == entries[LISTING]
        assert state.validators(DETAIL) == {"If-None-Match": '"d2"'}
        assert len(state) == 2
        assert not legacy.exists() and (tmp_path / (legacy.name + ".imported")).exists()
        state.commit(LISTING, etag='"new"', last_modified=None, derived=[])
        state.save()
        assert WarehouseCrawlState(wh.db, legacy_file=legacy).get(LISTING)["etag"] == '"new"'  # type: ignore[index]
        damaged = tmp_path / "damaged.json"
        damaged.write_text("{not json", "utf-8")
        assert len(WarehouseCrawlState(wh.db, legacy_file=damaged)) == 2
        assert "unreadable" in caplog.text and (tmp_path / "damaged.json.unreadable").exists()


def _crawl_in(data_dir: Path, db_url: str, archive: Path, port: int) -> dict[str, Any]:
    """A nightly of two demo portals as a worker with its own data folder (another machine) runs it."""
    script = textwrap.dedent("""
        import json, sys
        from gongkai.flows.crawl import run_crawl
        db_url, archive, port, politeness = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
        summary = run_crawl("nightly", agencies=["demo-zibo", "demo-shanghai"], db_url=db_url, archive_location=archive,
                            demo_port=port, politeness=politeness)
        print(json.dumps(summary["counts"]))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GONGKAI_DATA": str(data_dir), "GONGKAI_EXTRACT_PROCESSES": "0"}
    done = subprocess.run([sys.executable, "-c", script, db_url, str(archive), str(port), json.dumps(POLITENESS)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_second_worker_sends_only_conditional_requests_for_pages_the_first_handled(
        warehouse_url: str, tmp_path: Path) -> None:
    """Worker A crawls; worker B, another process with another data folder (no state file of its own, as on another
    machine), crawls the same portals next: every page is asked for conditionally and answered 304."""
    with DemoPortal(slow_seconds=0.5, down=True) as demo:
        first = _crawl_in(tmp_path / "worker-a", warehouse_url, tmp_path / "archive", demo.port)
        assert first.get("new", 0) >= 2
        demo.clear_log()
        second = _crawl_in(tmp_path / "worker-b", warehouse_url, tmp_path / "archive", demo.port)
        requests = list(demo.requests)
    assert set(second) == {"not_modified"} | ({"refused"} & set(first)), second
    pages = [r for r in requests if r.path != "/robots.txt" and r.status not in (301, 302)]
    assert pages and all(r.conditional and r.status == 304 for r in pages), [r for r in pages if r.status != 304]
    for worker in ("worker-a", "worker-b"):  # nothing kept in a local file
        assert not list((tmp_path / worker).glob("crawl-state*"))
    with open_warehouse(warehouse_url) as wh:
        assert wh.db.query("SELECT count(*) FROM crawl_state")[0][0] >= len(pages)


def test_what_a_run_saved_is_dropped_from_memory_and_read_back_from_the_warehouse(warehouse_url: str) -> None:
    """A saved commit no longer stays in the state's memory (it grew with every URL crawled); looked up again, it is
    read from the table, not taken for a URL the table lacks."""
    with open_warehouse(warehouse_url) as wh:
        state = WarehouseCrawlState(wh.db, hosts=["127.0.0.1:8001"])
        state.commit(LISTING, etag='"l1"', last_modified=None, derived=CANDIDATES)
        state.save()
        assert LISTING not in state._entries and not state._pending
        assert state.get(LISTING) == {"etag": '"l1"', "last_modified": None, "derived": CANDIDATES}
        state.forget(LISTING)
        state.save()
        assert state.get(LISTING) is None and len(state) == 0


def test_a_lone_surrogate_in_a_pages_text_does_not_fail_the_state_file(tmp_path: Path) -> None:
    """A derived text with a lone surrogate is saved (as its JSON escape) and read back the same; the save of the whole
    state failed on it before (UnicodeEncodeError), and every validator of the run with it."""
    from gongkai.crawler.state import CrawlState

    path = tmp_path / "state.json"
    state = CrawlState(path)
    state.commit("http://127.0.0.1:1/a.html", etag='"x"', last_modified=None, derived={"title": "年度报告\ud800", "n": 1})
    state.commit("http://127.0.0.1:1/b.html", etag='"y"', last_modified="Sun, 29 Nov 2026 00:00:00 GMT", derived=None)
    state.save()
    json.loads(path.read_text("utf-8"))  # valid UTF-8 and valid JSON
    again = CrawlState(path)
    assert again.get("http://127.0.0.1:1/a.html") == state.get("http://127.0.0.1:1/a.html")
    assert again.get("http://127.0.0.1:1/a.html")["derived"]["title"] == "年度报告\ud800"  # type: ignore[index]
    assert again.get("http://127.0.0.1:1/b.html") == state.get("http://127.0.0.1:1/b.html")


def test_a_lone_surrogate_in_a_pages_text_is_saved_to_the_warehouse(warehouse_url: str) -> None:
    """The same text in the warehouse's crawl state (PostgreSQL refused the raw surrogate and the save with it)."""
    with open_warehouse(warehouse_url) as wh:
        state = WarehouseCrawlState(wh.db)
        state.commit(DETAIL, etag='"x"', last_modified=None, derived={"title": "年度报告\udc80"})
        state.save()
        again = WarehouseCrawlState(wh.db)
        assert again.get(DETAIL) == {"etag": '"x"', "last_modified": None, "derived": {"title": "年度报告\udc80"}}
