"""The nightly and backfill flows for real: Prefect, the demo portal over loopback, DuckDB (and PostgreSQL).

One module-scoped sequence of nightly runs is shared by most assertions (Prefect's ephemeral server
takes seconds to start): run 1 with the flaky portal down, run 2 unchanged, run 3 with it back up.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gongkai.crawler.demo_portal import DemoPortal, LoggedRequest
from gongkai.crawler.fetcher import USER_AGENT, url_filename
from gongkai.extractors.extract import extract_report
from gongkai.warehouse import open_warehouse

POLITENESS = {"delay": 0.0, "concurrency": 4, "read_timeout": 1.0, "retries": 2, "backoff": 0.05}


@dataclass
class Run:
    summary: dict[str, Any]
    requests: list[LoggedRequest]


@dataclass
class Nightly:
    demo: DemoPortal
    db_url: str
    runs: list[Run]
    folder: Path


def _crawl(demo: DemoPortal, folder: Path, db_url: str, **kw: Any) -> Run:
    from gongkai.flows.crawl import backfill_flow, nightly_flow

    demo.clear_log()
    params = dict(db_url=db_url, archive_location=str(folder / "archive"), demo_port=demo.port,
                  state_file=str(folder / "crawl-state.json"), politeness=POLITENESS)
    summary = backfill_flow(**params, **kw) if "years" in kw else nightly_flow(**params, **kw)
    return Run(summary, list(demo.requests))


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nightly]:
    folder = tmp_path_factory.mktemp("nightly")
    previous = os.environ.get("GONGKAI_DATA")
    os.environ["GONGKAI_DATA"] = str(folder / "data")  # run summaries land here
    from gongkai.settings import quiet_prefect

    quiet_prefect()
    db_url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    with DemoPortal(slow_seconds=1.5, down=True) as demo:
        runs = [_crawl(demo, folder, db_url), _crawl(demo, folder, db_url)]
        demo.set_down(False)
        runs.append(_crawl(demo, folder, db_url))
        yield Nightly(demo, db_url, runs, folder)
    if previous is None:
        os.environ.pop("GONGKAI_DATA", None)
    else:
        os.environ["GONGKAI_DATA"] = previous


def _report_cells(db_url: str, data: bytes) -> tuple[str, dict[str, Any]]:
    with open_warehouse(db_url) as warehouse:
        report_id = warehouse.current_report(hashlib.sha256(data).hexdigest())
        assert report_id is not None
        status = warehouse.db.scalar("SELECT status FROM reports WHERE report_id = ?", [report_id])
        return status, warehouse.cells_of(report_id)


def _served(demo: DemoPortal, expect: str) -> list[Any]:
    return [d for d in demo.site.documents if d.expect == expect]


def test_every_served_report_is_loaded_with_the_cells_extract_gives(nightly: Nightly) -> None:
    reports = _served(nightly.demo, "report")
    assert len(reports) == 9
    extracted_with_cells = 0
    for doc in reports:
        data = nightly.demo.site.body(doc.path)
        expected = extract_report(data, url_filename(doc.path))
        status, cells = _report_cells(nightly.db_url, data)
        assert status == expected["status"], doc.path
        assert cells == expected["cells"], doc.path
        extracted_with_cells += bool(cells)
    # pingtan 2024 (HTML and DOCX), shanghai 2019, hongze 2023, zibo 2023, and pingtan-county 2011 (its 统计表);
    # the UCAP and gkmlpt pages (pingtan-county 2011's and pingtan 2017's bodies, their 统计表)
    assert extracted_with_cells == 8
    first, third = nightly.runs[0].summary, nightly.runs[2].summary
    assert first["counts"]["new"] == 8 and third["counts"]["new"] == 1


def test_a_real_corpus_report_arrives_with_its_gold_cells(nightly: Nightly) -> None:
    import json

    gold = json.loads((Path(__file__).parent / "corpus" / "gold" / "pingtan-2024.html.json").read_text("utf-8"))
    data = nightly.demo.site.body("/pingtan/zwgk/zfxxgk/zfxxgknb/202503/t20250310_97791.htm")
    _, cells = _report_cells(nightly.db_url, data)
    assert cells["requests.new.natural_person"] == gold["cells"]["requests.new.natural_person"]
    assert cells["proactive.normative_documents.issued"] == 62


def test_the_letter_and_the_corrupt_pdf_are_recorded_not_loaded_as_reports(nightly: Nightly) -> None:
    summary = nightly.runs[0].summary
    letter = _served(nightly.demo, "rejected_title")[0]
    rejected = [r for r in summary["rejected"] if r["url"].endswith(letter.path)]
    assert rejected == [{"portal": "demo-pingtan", "title": "关于2014年政府信息公开工作要点落实情况的函",
                         "url": nightly.demo.base_url + letter.path, "reason": "a letter or notice, not a report"}]
    assert not any(r.path == letter.path for run in nightly.runs for r in run.requests)
    corrupt = _served(nightly.demo, "unreadable")[0]
    status, cells = _report_cells(nightly.db_url, nightly.demo.site.body(corrupt.path))
    assert status == "unreadable" and cells == {}
    [outcome] = [d for d in summary["documents"] if d["url"].endswith(corrupt.path)]
    assert outcome["outcome"] == "unreadable" and "PDF" in outcome["reason"]
    with open_warehouse(nightly.db_url) as warehouse:
        loaded = warehouse.db.query("SELECT count(*) FROM current_reports WHERE status IN ('extracted', 'no_standard_tables')")
        assert loaded == [(9,)]


def test_listing_noise_is_counted_in_the_stored_run_summary(nightly: Nightly) -> None:
    import json

    first = nightly.runs[0].summary
    stored = json.loads((Path(os.environ["GONGKAI_DATA"]) / "runs" / f"{first['run_id']:06d}-nightly.json").read_text("utf-8"))
    assert stored["noise"]["demo-ucap"] == {"interpretation": 1, "news": 1, "notice": 1, "year_folder_differs": 1}
    assert stored["noise"]["demo-gkmlpt"] == {"interpretation": 1, "notice": 1, "other_agency": 1}
    assert stored["noise"]["demo-shanghai"]["refused_host"] == 1 and stored["noise"]["demo-pingtan"]["refused_robots"] == 1
    loaded = {(d["agency"], d["year"]) for d in first["documents"] if d["outcome"] == "new"}
    assert {("示例市人民政府", 2011), ("示例省文物局", 2017)} <= loaded  # by their titles: not the folder's 2012, not the portal's agency


def test_disallowed_path_and_foreign_host_never_requested(nightly: Nightly) -> None:
    every = [r for run in nightly.runs for r in run.requests]
    assert len(every) > 40
    assert not [r for r in every if r.path.startswith("/pingtan/private/")]
    assert not [r for r in every if not r.host.startswith("127.0.0.1:") or r.path.startswith("/foreign/")]
    assert {r.user_agent for r in every} == {USER_AGENT}
    outcomes = {d["title"]: (d["outcome"], d["reason"]) for d in nightly.runs[0].summary["documents"]}
    assert outcomes["平潭综合实验区2012年政府信息公开工作年度报告"] == ("refused", "disallowed by robots.txt")
    assert outcomes["2018年上海市人民政府办公厅政府信息公开工作年度报告"][0] == "refused"


def test_faults_were_met_and_recovered(nightly: Nightly) -> None:
    statuses = [r.status for r in nightly.runs[0].requests]
    assert {"error500", "timeout", "reset"} <= set(statuses)
    portals = nightly.runs[0].summary["portals"]
    assert {pid for pid, info in portals.items() if info["status"] == "ok"} == {"demo-pingtan", "demo-shanghai", "demo-huaian", "demo-zibo",
                                                                                          "demo-ucap", "demo-gkmlpt"}


def test_second_nightly_sends_only_conditional_requests_and_loads_nothing(nightly: Nightly) -> None:
    second = nightly.runs[1]
    assert set(second.summary["counts"]) == {"not_modified", "refused"}
    # besides robots.txt, the down portal and the redirect (which carry no validators), every request is a 304
    full = [r for r in second.requests if r.path != "/robots.txt" and not r.path.startswith("/flaky/") and r.status != 302]
    assert full and all(r.conditional and r.status == 304 for r in full), [r for r in full if r.status != 304]
    assert not any(r.method == "POST" for r in second.requests)
    with open_warehouse(nightly.db_url) as warehouse:
        rows = warehouse.db.query("SELECT kind, status, n_new, n_changed, n_failed FROM runs ORDER BY run_id")
    assert rows[0] == ("crawl-nightly", "completed", 8, 0, 1)
    assert rows[1] == ("crawl-nightly", "completed", 0, 0, 1)  # the portal still down is the one failure


def test_a_portal_down_is_reported_and_retried_next_run(nightly: Nightly) -> None:
    for run in nightly.runs[:2]:
        info = run.summary["portals"]["demo-flaky"]
        assert info["status"] == "failed" and "503" in info["error"]
        assert [r.status for r in run.requests if r.path.startswith("/flaky/")] == [503, 503, 503]
    third = nightly.runs[2].summary
    assert third["portals"]["demo-flaky"]["status"] == "ok"
    [loaded] = [d for d in third["documents"] if d["outcome"] == "new"]
    assert loaded["portal"] == "demo-flaky" and loaded["year"] == 2024
    summary_file = Path(os.environ["GONGKAI_DATA"]) / "runs" / f"{third['run_id']:06d}-nightly.json"
    assert summary_file.exists()


def test_backfill_loads_only_the_wanted_years(nightly: Nightly, tmp_path: Path) -> None:
    db_url = f"duckdb:///{tmp_path / 'backfill.duckdb'}"
    run = _crawl(nightly.demo, tmp_path, db_url, years=list(range(2019, 2024)), agencies=["demo-shanghai", "320813", "demo-zibo"])
    assert set(run.summary["portals"]) == {"demo-shanghai", "demo-huaian", "demo-zibo"}
    with open_warehouse(db_url) as warehouse:
        rows = warehouse.db.query("SELECT a.name, r.year, r.status FROM reports r JOIN agencies a USING (agency_id) ORDER BY r.year, a.name")
    assert rows == [("上海市人民政府办公厅", 2019, "extracted"), ("淮安市洪泽区人民政府", 2022, "unreadable"),
                    ("淄博市统计局", 2023, "extracted"), ("淮安市洪泽区人民政府", 2023, "extracted")]


def test_serve_registers_the_nightly_deployment_with_its_schedule(nightly: Nightly) -> None:
    from prefect.client.orchestration import get_client

    from gongkai.flows.deploy import nightly_deployment

    default = nightly_deployment().schedules[0].schedule
    assert (default.cron, default.timezone) == ("0 2 * * *", "Asia/Shanghai")
    deployment_id = nightly_deployment(cron="30 3 * * 1-5", timezone="Asia/Shanghai").apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
    assert stored.name == "nightly" and stored.entrypoint == "gongkai/flows/crawl.py:nightly_flow"
    assert [(s.schedule.cron, s.schedule.timezone) for s in stored.schedules] == [("30 3 * * 1-5", "Asia/Shanghai")]


@pytest.mark.postgres
def test_nightly_into_postgresql(nightly: Nightly, postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    run = _crawl(nightly.demo, tmp_path, postgres_url)
    assert run.summary["counts"]["new"] == 9
    data = nightly.demo.site.body("/hongze/module/download/downfile.jsp?classid=0&filename=2401201630.pdf")
    status, cells = _report_cells(postgres_url, data)
    assert status == "extracted" and cells == extract_report(data, "hongze.pdf")["cells"]


def test_per_host_limits_on_the_prefect_server(nightly: Nightly, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from gongkai.crawler.host_limits import limit_names

    politeness = POLITENESS | {"prefect_limits": True, "delay": 0.05, "concurrency": 2}
    from gongkai.flows.crawl import nightly_flow

    nightly.demo.clear_log()
    summary = nightly_flow(agencies=["demo-zibo"], db_url=f"duckdb:///{tmp_path / 'limits.duckdb'}", archive_location=str(tmp_path / "a"),
                           demo_port=nightly.demo.port, state_file=str(tmp_path / "state.json"), politeness=politeness)
    assert summary["counts"] == {"new": 1}
    in_flight, rate = limit_names(f"127.0.0.1:{nightly.demo.port}")
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(in_flight).limit == 2
        rate_limit = client.read_global_concurrency_limit_by_name(rate)
    assert (rate_limit.limit, rate_limit.slot_decay_per_second) == (1, 20.0)
    assert len(nightly.demo.requests) == 6  # robots.txt, three listing pages, the notice, its attachment


def test_gongkai_demo_command(nightly: Nightly, capsys: pytest.CaptureFixture[str]) -> None:
    from gongkai.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "portal demo-flaky: 0 listing pages, 0 items; FAILED" in out
    assert "unreadable   2022  淮安市洪泽区人民政府2022年政府信息公开工作年度报告 — corrupt PDF" in out
    assert "关于2014年政府信息公开工作要点落实情况的函 (a letter or notice, not a report)" in out
    assert "requests to the robots.txt-disallowed path or the foreign host: 0" in out
    assert "  淄博市统计局 2023: extracted, template 2021, 200 cells" in out
    assert "portal demo-ucap listing noise: 1 interpretation, 1 news, 1 notice, 1 year folder differs" in out
    assert (Path(os.environ["GONGKAI_DATA"]) / "demo" / "gongkai-demo.duckdb").exists()


def test_the_run_summary_counts_requests_304s_retries_refusals_and_bytes_per_host(nightly: Nightly) -> None:
    portal_host = f"127.0.0.1:{nightly.demo.port}"
    for run in nightly.runs:
        hosts = run.summary["hosts"]
        counts = hosts[portal_host]
        assert counts["requests"] == len(run.requests) == run.summary["requests"]
        assert counts["not_modified"] == sum(1 for r in run.requests if r.status == 304)
        distinct = {(r.method, r.path, r.if_none_match, r.if_modified_since) for r in run.requests}
        assert counts["retries"] == len(run.requests) - len(distinct)  # a URL asked for again in one run: a retry
        refused = sum(1 for d in run.summary["documents"] if d["outcome"] == "refused")
        assert sum(h["refused"] for h in hosts.values()) == refused > 0  # robots.txt, the foreign host
        assert all(h["requests"] == 0 for name, h in hosts.items() if name != portal_host)  # a foreign host: never asked
    first, unchanged = nightly.runs[0].summary["hosts"][portal_host], nightly.runs[1].summary["hosts"][portal_host]
    assert first["retries"] >= 2  # the flaky portal's 503s at least
    assert first["bytes"] > unchanged["bytes"]  # run 2: 304s, no bodies


def test_one_process_nightly_stores_each_file_where_it_was_fetched(nightly: Nightly, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-process crawl took the bytes of each file through its ingest backlog (spilled to a temporary folder
    beyond it) and the ingest path stored them. Now, as in a crawler process, each file is stored in the archive on
    the thread that fetched it and the ingest path gets its digest (`archived=`), reading the file back: it stores
    none of them again, and every file is loaded as before."""
    import threading

    from gongkai.flows.crawl import nightly_flow
    from gongkai.flows.pipeline import Pipeline
    from gongkai.warehouse.archive import LocalArchive

    puts: list[tuple[str, int]] = []  # (digest, thread)
    ingests: list[tuple[str | None, int]] = []  # (archived, thread)
    put, ingest = LocalArchive.put, Pipeline.ingest

    def recording_put(self: LocalArchive, data: bytes) -> str:
        sha256 = put(self, data)
        puts.append((sha256, threading.get_ident()))
        return sha256

    def recording_ingest(self: Pipeline, data: bytes, **kw: Any) -> Any:
        ingests.append((kw.get("archived"), threading.get_ident()))
        return ingest(self, data, **kw)

    link = LocalArchive._link  # a file stored as it was fetched (LocalArchive.incoming) is named here: a put too

    def recording_link(self: LocalArchive, incoming: Any) -> str:
        sha256 = link(self, incoming)
        puts.append((sha256, threading.get_ident()))
        return sha256

    monkeypatch.setattr(LocalArchive, "put", recording_put)
    monkeypatch.setattr(LocalArchive, "_link", recording_link)
    monkeypatch.setattr(Pipeline, "ingest", recording_ingest)
    db_url = f"duckdb:///{tmp_path / 'storefirst.duckdb'}"
    summary = nightly_flow(agencies=["demo-shanghai", "320813", "demo-zibo"], db_url=db_url, archive_location=str(tmp_path / "a"),
                           demo_port=nightly.demo.port, state_file=str(tmp_path / "state.json"), politeness=POLITENESS)
    files = ("new", "unchanged", "changed", "not_a_report", "unreadable", "failed")
    assert summary["counts"]["new"] >= 3 and len(ingests) == sum(summary["counts"].get(k, 0) for k in files)
    archived = {sha256 for sha256, _ in ingests}
    assert None not in archived  # was None for every file: the ingest path stored it
    ingest_threads = {thread for _, thread in ingests}
    assert archived <= {sha256 for sha256, _ in puts}
    assert not {thread for sha256, thread in puts if sha256 in archived} & ingest_threads  # stored at fetch only
    assert "spilled" not in summary["scheduler"]
    with open_warehouse(db_url) as warehouse:
        loaded = {row[0] for row in warehouse.db.query("SELECT sha256 FROM documents")}
    assert archived <= loaded
