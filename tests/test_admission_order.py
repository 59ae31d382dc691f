"""The order a crawl run admits its portals in (crawler/run_history.py): the portals the previous run did not reach or
did not finish (`not_crawled`, `interrupted`) first, then the others, each group in registry order. A national run
stopped by its deadline no longer leaves the same tail portals not crawled night after night.

End to end over loopback (tests/shard_portal.py: one port per host, a request log): a run whose deadline passes leaves
its tail not crawled; the next run asks those portals first, in one process and in each of two crawler processes, with
the warehouse (and its crawl state) in DuckDB or PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from shard_portal import ShardPortal

from gongkai.crawler.run_history import UNFINISHED, admission_order, last_statuses


@dataclass(frozen=True)
class P:
    id: str


def ids(portals: list[P]) -> list[str]:
    return [p.id for p in portals]


# --- the order: a pure function of the portals and their previous statuses ---------------------------------------

def test_unfinished_portals_go_first_each_group_in_the_order_given() -> None:
    portals = [P("a"), P("b"), P("c"), P("d"), P("e"), P("f")]
    previous = {"a": "ok", "b": "not_crawled", "c": "failed", "d": "interrupted", "e": "not_crawled", "f": "empty"}
    assert ids(admission_order(portals, previous)) == ["b", "d", "e", "a", "c", "f"]


def test_a_portal_never_run_and_a_finished_run_keep_registry_order() -> None:
    portals = [P("x"), P("y"), P("z")]
    assert ids(admission_order(portals, {})) == ["x", "y", "z"]
    assert ids(admission_order(portals, {"x": "ok", "y": "ok", "z": "failed"})) == ["x", "y", "z"]
    assert ids(admission_order(portals, {"z": "interrupted"})) == ["z", "x", "y"]  # new portals are not "unfinished"
    assert set(UNFINISHED) == {"not_crawled", "interrupted"}


# --- the previous statuses: the run summaries of data/runs -----------------------------------------------------

def write_summary(runs: Path, run_id: int, kind: str, statuses: dict[str, str]) -> None:
    runs.mkdir(parents=True, exist_ok=True)
    summary = {"run_id": run_id, "kind": kind, "documents": [],
               "portals": {pid: {"status": s, "pages": 0, "listed": 0} for pid, s in statuses.items()}}
    (runs / f"{run_id:06d}-{kind}.json").write_text(json.dumps(summary), "utf-8")


def test_each_portal_takes_its_status_in_the_latest_summary_that_names_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_summary(runs, 1, "nightly", {"a": "ok", "b": "ok", "c": "ok"})
    write_summary(runs, 2, "nightly", {"a": "ok", "b": "not_crawled", "c": "interrupted"})
    write_summary(runs, 3, "backfill", {"c": "ok"})  # a run of one portal (--agency) says nothing of the others
    (runs / "failed-20261130T010000+0000-nightly.json").write_text(json.dumps({"status": "failed"}), "utf-8")
    (runs / "000004-nightly.json").write_text("{not json", "utf-8")  # a summary cut short: skipped
    assert last_statuses(runs, ["a", "b", "c", "new"]) == {"a": "ok", "b": "not_crawled", "c": "ok"}
    assert last_statuses(tmp_path / "none", ["a"]) == {}
    # a portal no recent summary names is taken as never run: the newest `most` are read, not every summary kept
    assert last_statuses(runs, ["a", "b", "c"], most=1) == {"c": "ok"}
    assert last_statuses(runs, ["a", "b", "c"], most=2) == {"a": "ok", "b": "not_crawled", "c": "ok"}


def test_portals_list_still_shows_the_last_real_crawl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gongkai portals list` reads the same summaries (a not_crawled status is not a crawl)."""
    from gongkai.commands.portals import _last_runs

    write_summary(tmp_path / "runs", 7, "nightly", {"a": "ok"})
    write_summary(tmp_path / "runs", 8, "nightly", {"a": "not_crawled"})
    assert _last_runs(tmp_path) == {"a": {"run": 7, "status": "ok", "listed": 0, "documents": 0}}


def test_a_run_s_statuses_are_kept_alone_and_its_order_reads_them_not_the_summary(tmp_path: Path) -> None:
    """A national summary lists every document (46 MB for 3,000 portals, ~200 MB decoded): the order reads each run's
    statuses alone (data/runs/statuses), never the full summary."""
    from gongkai.crawler.run_history import statuses_folder
    from gongkai.flows.crawl import _store_summary

    documents = [{"sha256": f"{i:064x}", "portal": "a", "title": "年度报告" * 50} for i in range(2000)]
    summary = {"run_id": 12, "kind": "nightly", "warehouse": "duckdb:///w.duckdb", "documents": documents,
               "portals": {"a": {"status": "not_crawled", "error": "x" * 500, "pages": 0}, "b": {"status": "ok"}}}
    _store_summary(summary, tmp_path)
    full, compact = tmp_path / "runs" / "000012-nightly.json", statuses_folder(tmp_path) / "000012-nightly.json"
    assert json.loads(full.read_text("utf-8")) == summary  # the summary itself is unchanged
    assert json.loads(compact.read_text("utf-8")) == {
        "run_id": 12, "kind": "nightly", "warehouse": "duckdb:///w.duckdb",
        "portals": {"a": {"status": "not_crawled"}, "b": {"status": "ok"}}}
    assert compact.stat().st_size < full.stat().st_size / 100
    assert last_statuses(statuses_folder(tmp_path), ["a", "b"], warehouse="duckdb:///w.duckdb") == {
        "a": "not_crawled", "b": "ok"}
    full.write_text("{not json", "utf-8")  # the order never reads the full summary
    assert last_statuses(statuses_folder(tmp_path), ["a", "b"]) == {"a": "not_crawled", "b": "ok"}


def test_a_run_whose_statuses_cannot_be_written_still_stores_its_summary_and_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The statuses file only speeds up the next run's order: a run that could not write it (disk full, a folder it
    may not write; here a file where the folder should be) keeps its summary and ends as it would have, saying so,
    instead of raising after its results were recorded (run_crawl and run_sharded store their summary last)."""
    from gongkai.crawler.run_history import statuses_folder
    from gongkai.flows.crawl import _store_summary

    (tmp_path / "runs").mkdir()
    statuses_folder(tmp_path).write_text("not a folder", "utf-8")
    summary = {"run_id": 3, "kind": "nightly", "warehouse": "duckdb:///w.duckdb", "documents": [],
               "portals": {"a": {"status": "not_crawled"}}}
    with caplog.at_level("WARNING"):
        _store_summary(summary, tmp_path)
    assert json.loads((tmp_path / "runs" / "000003-nightly.json").read_text("utf-8")) == summary
    assert "000003-nightly" in caplog.text and "statuses" in caplog.text


# --- end to end: a deadline's tail is crawled first by the next run -----------------------------------------------

HOSTS = 6  # one portal per host: admission, not a host's delay, decides who waits
PORTALS = [(f"p{i}", i, i + 1) for i in range(HOSTS)]  # (id, host, agency): p0..p5 in registry order


def crawl(served: ShardPortal, tmp_path: Path, db_url: str, processes: int, deadline: float) -> tuple[dict[str, Any], list[str]]:
    """One nightly run (a real run_crawl: warehouse, crawl state, summary in data/runs); its summary, and the portals
    in the order each was first asked for a page."""
    from gongkai.flows.crawl import run_crawl
    from gongkai.settings import Settings

    served.clear()
    settings = Settings(data=tmp_path / "data", crawl_processes=processes, crawl_portals_in_progress=1, extract_processes=0,
                        crawl_portal_deadline=deadline)
    summary = run_crawl("nightly", db_url=db_url, archive_location=str(tmp_path / "archive"),
                        registry_file=str(tmp_path / "registry.toml"),
                        politeness={"delay": 0.02, "concurrency": 2, "read_timeout": 10.0, "retries": 1}, settings=settings)
    first_asked: list[str] = []
    for hit in sorted(served.clear(), key=lambda h: h.started):
        agency = hit.path.split("/")[1]  # /a<agency>/...; robots.txt is its host's
        pid = f"p{int(agency[1:]) - 1}" if agency.startswith("a") else None
        if pid is not None and pid not in first_asked:
            first_asked.append(pid)
    return summary, first_asked


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_portals_a_deadline_left_not_crawled_are_crawled_first_next_run(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str, processes: int
) -> None:
    from gongkai.crawler.registry import load_registry, split_by_host

    db_url = (f"duckdb:///{tmp_path / 'warehouse.duckdb'}" if engine == "duckdb"
              else str(request.getfixturevalue("postgres_url")))
    with ShardPortal({i: [i + 1] for i in range(HOSTS)}) as served:
        (tmp_path / "registry.toml").write_text(served.registry(PORTALS), "utf-8")
        groups = [[p.id for p in g] for g in split_by_host(load_registry(tmp_path / "registry.toml"), processes)]
        # every answer takes 0.5 s and one portal at a time: a portal's chain (robots.txt, listing, detail page,
        # attachment) takes 2 s or more, so the deadline passes after the first of each process (which sends its
        # listing's request well before it, however loaded the machine)
        served.slow_s = 0.5
        first, _ = crawl(served, tmp_path, db_url, processes, deadline=2.0)
        statuses = {pid: info["status"] for pid, info in first["portals"].items()}
        for group in groups:  # each process' tail (in registry order) is left not crawled, its head crawled
            reached = [pid for pid in group if statuses[pid] != "not_crawled"]
            assert reached and reached == group[:len(reached)], statuses
            assert len(reached) < len(group), statuses
        left = [pid for pid, _host, _agency in PORTALS if statuses[pid] == "not_crawled"]
        served.slow_s = 0.0
        second, asked = crawl(served, tmp_path, db_url, processes, deadline=3600.0)
    assert {info["status"] for info in second["portals"].values()} == {"ok"}
    for group in groups:  # within each process: the portals the first run left, in registry order, then the others
        order = [pid for pid in asked if pid in group]
        assert order == [pid for pid in group if pid in left] + [pid for pid in group if pid not in left], (order, left)


# --- summaries a run must read past: any file under data/runs, in run order ---------------------------------------

def test_a_summary_too_deeply_nested_to_decode_is_skipped_not_a_crashed_run(tmp_path: Path) -> None:
    """json.loads raises RecursionError (not a ValueError) on deeply nested arrays: a corrupt or hostile file under
    data/runs must not stop every crawl run before it starts."""
    runs = tmp_path / "runs"
    write_summary(runs, 1, "nightly", {"a": "not_crawled"})
    (runs / "000002-nightly.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    assert last_statuses(runs, ["a"]) == {"a": "not_crawled"}


def test_run_ids_past_six_digits_are_still_read_newest_first(tmp_path: Path) -> None:
    """Summaries are named after the run id padded to 6 digits (flows/crawl.py): run 1,000,000's name sorts before run
    999,999's. Newest first is by run id, not by name."""
    runs = tmp_path / "runs"
    import os

    write_summary(runs, 999_999, "nightly", {"a": "ok"})
    write_summary(runs, 1_000_000, "nightly", {"a": "not_crawled"})
    for path in runs.glob("*.json"):  # written in the same instant (a data dir copied without its times)
        os.utime(path, (1_700_000_000, 1_700_000_000))
    assert last_statuses(runs, ["a"]) == {"a": "not_crawled"}


def test_summaries_of_another_warehouse_in_the_same_data_dir_are_not_read(tmp_path: Path) -> None:
    """Run ids count per warehouse: a data dir that served a DuckDB warehouse up to run 500 and now a PostgreSQL one
    (or any other GONGKAI_DB) holds the old warehouse's summaries under higher run ids than the new one's. The new
    warehouse's last run is its own, not the other's run 500."""
    runs = tmp_path / "runs"
    mine, other = "postgresql://gongkai@db/gongkai", "duckdb:///data/gongkai.duckdb"
    for run_id, url, status in [(500, other, "ok"), (7, mine, "not_crawled")]:
        write_summary(runs, run_id, "nightly", {"a": status})
        path = runs / f"{run_id:06d}-nightly.json"
        path.write_text(json.dumps(json.loads(path.read_text("utf-8")) | {"warehouse": url}), "utf-8")
    assert last_statuses(runs, ["a"], warehouse=mine) == {"a": "not_crawled"}
    assert last_statuses(runs, ["a"], warehouse=other) == {"a": "ok"}
    assert last_statuses(runs, ["a"]) == {"a": "not_crawled"}  # no warehouse given: every summary, newest written first


def test_another_warehouses_summaries_count_towards_the_summaries_read(tmp_path: Path) -> None:
    """`most` bounds what is read whatever warehouse a summary is of: the demo's fresh warehouse beside years of a
    national one's summaries does not parse them all."""
    runs = tmp_path / "runs"
    write_summary(runs, 1, "nightly", {"a": "not_crawled"})
    for run_id in range(2, 6):
        write_summary(runs, run_id, "nightly", {"b": "ok"})
    for path in runs.glob("*.json"):
        url = "duckdb:///mine.duckdb" if path.name.startswith("000001") else "duckdb:///other.duckdb"
        path.write_text(json.dumps(json.loads(path.read_text("utf-8")) | {"warehouse": url}), "utf-8")
    assert last_statuses(runs, ["a"], most=5, warehouse="duckdb:///mine.duckdb") == {"a": "not_crawled"}
    assert last_statuses(runs, ["a"], most=4, warehouse="duckdb:///mine.duckdb") == {}


def test_a_warehouse_started_again_at_run_1_reads_its_own_last_run_first(tmp_path: Path) -> None:
    """A data dir that served a DuckDB warehouse up to run 500 now serves a PostgreSQL one at run 7: the summaries are
    read newest written first, so the new warehouse's last run is found, not 30 of the old one's (which, as the
    newest by run id, would use up `most` and leave every portal taken as never run)."""
    import os

    runs = tmp_path / "runs"
    old, new = "duckdb:///data/gongkai.duckdb", "postgresql://gongkai@db/gongkai"
    for run_id in range(471, 501):
        write_summary(runs, run_id, "nightly", {"a": "ok"})
    write_summary(runs, 7, "nightly", {"a": "not_crawled"})
    for path in runs.glob("*.json"):
        run_id = int(path.name.split("-")[0])
        path.write_text(json.dumps(json.loads(path.read_text("utf-8")) | {"warehouse": new if run_id == 7 else old}), "utf-8")
        written = 1_700_000_000 + (10_000 if run_id == 7 else run_id)  # run 7 of the new warehouse written last
        os.utime(path, (written, written))
    assert last_statuses(runs, ["a"], warehouse=new) == {"a": "not_crawled"}
