"""`gongkai portals` (list, check, add), the starter registry, and the listing noise a run counts: against the demo
portal over loopback, the real saved pages and the built ones (tests/portals)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gongkai.cli import main
from gongkai.crawler.crawl import CrawlContext, walk_sequentially
from gongkai.crawler.demo_portal import DemoPortal
from gongkai.crawler.fetcher import Fetcher
from gongkai.crawler.registry import DEFAULT_REGISTRY, RegistryError, all_hosts, load_registry
from gongkai.crawler.state import CrawlState
from gongkai.warehouse.store import IngestOutcome

PAGES = Path(__file__).parent / "portals"
STARTER = DEFAULT_REGISTRY.with_name("registry-starter.toml")


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoPortal]:
    with DemoPortal(slow_seconds=0.5) as portal:
        yield portal


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["portals", "check", *argv])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    ("path", "family", "reports", "not_reports", "pages"),
    [
        ("/shanghai/nj_zfxxgk/index.html", "trs", 2, 3, 3),
        ("/hongze/col/col5521/index.html", "hanweb", 2, 48, 3),
        ("/sqxx/sqsrmzf/c108374/index.shtml", "ucap", 1, 3, 2),
        # 100 articles a page, as on real sites (the demo's registry entry says 2): the site page and one API page
        ("/gdwhly/gkmlpt/annualreport#2629", "gkmlpt", 1, 1, 2),
        ("/zibo/tjj/xxgknb/list.html", "generic", 1, 3, 3),
    ],
)
def test_check_detects_each_demo_family_and_lists_its_items_without_fetching_them(
    demo: DemoPortal, capsys: pytest.CaptureFixture[str], path: str, family: str, reports: int, not_reports: int, pages: int
) -> None:
    demo.reset_faults()
    demo.clear_log()
    code, out = check(capsys, demo.base_url + path, "--delay", "0", "--pages", "5")
    assert code == 0, out
    assert f"family: {family} (" in out
    assert f"on {pages} pages: {reports} reports, {not_reports} not reports; nothing fetched beyond the listing, nothing loaded" in out
    requested = [r.path for r in demo.requests if r.path != "/robots.txt"]
    assert len(set(requested)) == pages  # the listing pages only (a fault retried): no detail page, no attachment
    assert all(r.host == f"127.0.0.1:{demo.port}" for r in demo.requests)


def test_check_gives_item_verdicts_other_agencies_and_year_folders(demo: DemoPortal, capsys: pytest.CaptureFixture[str]) -> None:
    _, ucap = check(capsys, demo.base_url + "/sqxx/sqsrmzf/c108374/index.shtml", "--delay", "0", "--agency", "示例市人民政府")
    assert "  report        2011  示例市人民政府2011年政府信息公开工作年度报告" in ucap
    assert "[URL folder names another year; the title's year is kept]" in ucap
    assert "(a 解读 of a report, not the report)" in ucap
    _, gk = check(capsys, demo.base_url + "/gdwhly/gkmlpt/annualreport#2629", "--delay", "0", "--agency", "示例省文化和旅游厅")
    assert "params: {'sid': '175', 'category': '2629'}" in gk
    assert "[another agency's report, attributed by its own title: 示例省文物局]" in gk


def test_check_contacts_only_the_host_the_url_names(demo: DemoPortal, capsys: pytest.CaptureFixture[str]) -> None:
    """The Shanghai listing's report redirects to localhost: check never reads items, and its fetcher knows one host."""
    from gongkai.crawler.check import check_url
    from gongkai.crawler.fetcher import Refused

    fetcher = Fetcher({f"127.0.0.1:{demo.port}"}, delay=0.0)
    demo.clear_log()
    with pytest.raises(Refused):
        fetcher.fetch(f"http://localhost:{demo.port}/foreign/2018.html", allowed_hosts={f"127.0.0.1:{demo.port}"})
    result = check_url(demo.base_url + "/pingtan/zwgk/zfxxgk/zfxxgknb/index.html", fetcher, pages=3)
    assert result.detection.family == "trs" and result.detection.missing  # the search API's path is not in the page
    assert {r.host for r in demo.requests} == {f"127.0.0.1:{demo.port}"}
    assert not any(r.path.startswith("/pingtan/private/") for r in demo.requests)


def test_check_a_saved_page_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, str(PAGES / "pingtan-zfxxgknb-list.html"), "--url", "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/")
    assert code == 0
    assert "family: trs (TRS search-API listing (classsql, searchId))" in out
    assert "params: {'channel_id': '1813', 'search_channel': '200210', 'page_size': 10}" in out
    assert "10 items on 1 pages: 10 reports, 0 not reports" in out
    code, out = check(capsys, str(PAGES / "ordos-engebei-xxgknb-list-2020.html"), "--url", "http://egb.example.cn/xxgk/xxgknb/index.html",
                      "--agency", "鄂尔多斯恩格贝生态示范区管理委员会")
    assert "family: trs (TRS WCM: 10 links" in out and "10 items on 1 pages: 4 reports, 6 not reports" in out
    assert out.count("another agency's report") == 4
    assert "next page (not read): http://egb.example.cn/xxgk/xxgknb/index_1.html" in out
    code, out = check(capsys, str(PAGES / "unknown-cms-list.html"), "--url", "http://www.mouxian.example.cn/gk/nb/list.asp")
    assert "family: generic (" in out and "6 items on 1 pages: 3 reports, 3 not reports" in out
    assert "next page (not read): http://www.mouxian.example.cn/gk/nb/list.asp?page=2" in out
    code, out = check(capsys, str(PAGES / "ucap-list-index.shtml"), "--url", "https://ucap.example.cn/sqsrmzf/c108374/index.shtml")
    assert "family: ucap (UCAP: 6 links" in out and "next page (not read): https://ucap.example.cn/sqsrmzf/c108374/index_1.shtml" in out
    assert check(capsys, "/nonexistent/page.html", "--url", "http://h/x.html")[0] == 2
    assert main(["portals", "check", str(PAGES / "unknown-cms-list.html"), "--url", "http://[::1/list.asp"]) == 2
    assert capsys.readouterr().err.startswith("gongkai portals check: ")  # one line, no traceback


def test_add_writes_the_detected_entry_and_refuses_a_duplicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "mine.toml"
    argv = ["portals", "add", "https://ucap.example.cn/sqsrmzf/c108374/index.shtml", "--agency", "示例市人民政府", "--division-code",
            "321300", "--level", "city", "--file", str(PAGES / "ucap-list-index.shtml"), "--registry", str(registry)]
    assert main(argv) == 0
    [portal] = load_registry(registry)
    assert (portal.id, portal.cms, portal.hosts, portal.verified) == ("321300", "ucap", frozenset({"ucap.example.cn"}), False)
    assert "from the saved page" in portal.evidence and "4 reports listed" in portal.evidence
    before = registry.read_text("utf-8")
    capsys.readouterr()
    assert main(argv) == 2  # the same id again: the file would not validate, so nothing is written
    assert "duplicate portal ids" in capsys.readouterr().err and registry.read_text("utf-8") == before


def test_add_and_verify_a_live_demo_column(demo: DemoPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "starter.toml"
    url = demo.base_url + "/gdwhly/gkmlpt/annualreport#2629"
    entry = (f'[[portal]]\nid = "gd-whly"\nagency = "示例省文化和旅游厅"\ndivision_code = "440000"\nlevel = "department"\ncms = "gkmlpt"\n'
             f'listing = ["{url}"]\nhosts = ["127.0.0.1:{demo.port}"]\nverified = false\nevidence = "named in code"\n')
    registry.write_text(entry, "utf-8")
    code, out = check(capsys, url, "--delay", "0", "--registry", str(registry))
    assert code == 0 and f"{registry}: entry gd-whly marked verified" in out
    [portal] = load_registry(registry)
    assert portal.verified and portal.evidence.startswith("portals check ") and portal.evidence.endswith("named in code")


def test_starter_registry_loads_validates_and_is_listed_unverified(capsys: pytest.CaptureFixture[str]) -> None:
    portals = load_registry(STARTER)
    assert len(portals) == 107 and len({p.id for p in portals}) == 107
    assert not any(p.verified for p in portals) and all(p.evidence for p in portals)
    levels = {p.level for p in portals}
    assert levels == {"province", "ministry", "city", "county", "department"}
    by_url = {p.listing[0]: p for p in portals}
    whly = by_url["http://whly.gd.gov.cn/gkmlpt/annualreport#2629"]
    assert (whly.cms, whly.params) == ("gkmlpt", {"sid": "175", "category": "2629"})
    gd = by_url["http://www.gd.gov.cn/gkmlpt/index"]
    assert gd.params == {"sid": "2"} and "category id" in gd.missing
    assert "API" in by_url["https://www.chinatax.gov.cn/chinatax/n810214/c102384r/index.html?tab=gknb"].missing
    assert all(p.missing for p in portals if "host-assumed" in p.evidence or p.cms == "generic")
    assert load_registry(DEFAULT_REGISTRY) == []  # the default registry stays the demo's: starters run only when asked
    assert main(["portals", "list"]) == 0
    out = capsys.readouterr().out
    assert "starter-whly-gd" in out and "UNVERIFIED" in out and "evidence: code: read_file id 20879211009" in out
    assert "107 portals, 107 unverified" in out


def test_a_starter_entry_with_a_slip_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "starter.toml"
    bad.write_text(STARTER.read_text("utf-8").replace('category = "2629"', 'categry = "2629"'), "utf-8")
    with pytest.raises(RegistryError, match="categry"):
        load_registry(bad)


def test_listing_noise_is_counted_per_portal_in_the_run_summary(demo: DemoPortal) -> None:
    portals = {p.id: p for p in load_registry(demo_port=demo.port)}
    chosen = [portals[i] for i in ("demo-pingtan", "demo-shanghai", "demo-ucap", "demo-gkmlpt")]
    fetcher = Fetcher(all_hosts(chosen), delay=0.0, timeout=(2.0, 1.0), retries=2, backoff=0.01)
    demo.reset_faults()
    ctx = CrawlContext(fetcher, CrawlState(None), lambda data, **kw: IngestOutcome("", "new"))
    summary = walk_sequentially(ctx, chosen).summary()
    assert summary["noise"] == {
        "demo-gkmlpt": {"interpretation": 1, "notice": 1, "other_agency": 1},
        "demo-pingtan": {"notice": 2, "other_agency": 2, "refused_robots": 1},  # 地方税务局, 平潭县 in the 实验区's column
        "demo-shanghai": {"notice": 3, "refused_host": 1},  # the report that redirects to a mirror host
        "demo-ucap": {"interpretation": 1, "news": 1, "notice": 1, "year_folder_differs": 1},
    }
    loaded = {(d["agency"], d["year"]) for d in summary["documents"] if d["outcome"] == "new"}
    assert ("示例省文物局", 2017) in loaded and ("示例市人民政府", 2011) in loaded  # by their own titles, not the folder


def test_noise_rules() -> None:
    from gongkai.crawler.noise import folder_years, same_agency

    assert folder_years("http://h/zfxxgknb/2024n78/202601/t1.html") == {2024}
    assert folder_years("http://h/gknb/2024_nd/sj/202603/t20260305_1.html") == {2024}
    assert folder_years("http://h/zfxxgknb/202501/t20250110_1.html") == set()  # a month folder is not a year folder
    assert same_agency("洪泽区人民政府", "淮安市洪泽区人民政府") and not same_agency("鄂尔多斯市", "鄂尔多斯恩格贝生态示范区")


def test_a_report_title_without_its_agency_takes_the_pages_publishing_agency(demo: DemoPortal) -> None:
    """UCAP's metadata table (发布机构) names the agency a bare 2023年度… title leaves out; the registry's is the last resort."""
    from gongkai.crawler.adapters import Candidate
    from gongkai.crawler.crawl import listing_item
    from gongkai.crawler.demo_portal.site import Resource, _ucap_detail

    path = "/sqxx/extra/202401/4b5c6d7e8f901a2b3c4d5e6f70819203.shtml"
    body = "<table><tr><td>本年新收政府信息公开申请数量</td><td>12</td></tr></table>" + "<p>政府信息公开工作情况。</p>" * 40
    demo.site.add(path, Resource(_ucap_detail("2023年度政府信息公开工作年度报告", "示例市宿城区人民政府", "2024-01-19", body)))
    portal = {p.id: p for p in load_registry(demo_port=demo.port)}["demo-ucap"]
    seen: list[dict[str, object]] = []

    def ingest(data: bytes, **kw: object) -> IngestOutcome:
        seen.append(kw)
        return IngestOutcome("", "new")

    ctx = CrawlContext(Fetcher(portal.hosts, delay=0.0), CrawlState(None), ingest)
    [outcome] = listing_item(ctx, portal, Candidate("2023年度政府信息公开工作年度报告", demo.base_url + path))
    assert (outcome.agency, outcome.year) == ("示例市宿城区人民政府", 2023)
    assert seen[0]["agency"] == "示例市宿城区人民政府"


def test_list_shows_the_last_run_of_each_portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A run summary as the crawl stores it (data/runs/NNNNNN-kind.json): a starter crawled with reports counts as verified."""
    import json

    (tmp_path / "runs").mkdir()
    summary = {"run_id": 7, "kind": "nightly", "portals": {"starter-whly-gd": {"status": "ok", "listed": 12},
                                                          "starter-moe": {"status": "failed", "listed": 0}},
               "documents": [{"portal": "starter-whly-gd", "outcome": "new"}]}
    (tmp_path / "runs" / "000007-nightly.json").write_text(json.dumps(summary), "utf-8")
    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path))
    assert main(["portals", "list", "--registry", str(STARTER), "--format", "json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["starter-whly-gd"]["verified"] and rows["starter-whly-gd"]["last_run"] == {"run": 7, "status": "ok", "listed": 12, "documents": 1}
    assert not rows["starter-moe"]["verified"] and rows["starter-moe"]["last_run"]["status"] == "failed"
    assert rows["starter-beijing"]["last_run"] is None


def test_a_portal_a_stopped_run_never_reached_keeps_its_last_crawl(tmp_path: Path) -> None:
    """A run stopped before a portal's turn (admission: crawler/scheduler.py) reports it not_crawled: `portals list`
    shows the run that last crawled it, not the stopped one (which hid an earlier ok crawl with documents)."""
    import json

    from gongkai.commands.portals import _last_runs

    runs = tmp_path / "runs"
    runs.mkdir()
    ok = {"run_id": 1, "portals": {"p": {"status": "ok", "listed": 3}}, "documents": [{"portal": "p"}]}
    stopped = {"run_id": 2, "portals": {"p": {"status": "not_crawled", "listed": 0}, "q": {"status": "not_crawled"}},
               "documents": []}
    (runs / "2026-01-01.json").write_text(json.dumps(ok), "utf-8")
    (runs / "2026-01-02.json").write_text(json.dumps(stopped), "utf-8")
    found = _last_runs(tmp_path)
    assert found == {"p": {"run": 1, "status": "ok", "listed": 3, "documents": 1}}
