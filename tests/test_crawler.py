"""Registry, discovery, fetcher and the three CMS adapters, against the demo portal over loopback (no Prefect)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gongkai.crawler.adapters import Candidate, PageRequest
from gongkai.crawler.crawl import (
    CrawlContext,
    DocResult,
    Limits,
    listing_item,
    older_than_wanted,
    pages_requested,
    walk_sequentially,
)
from gongkai.crawler.demo_portal import DemoPortal
from gongkai.crawler.detail import parse_detail
from gongkai.crawler.fetcher import USER_AGENT, Fetcher, FetchError, Refused, TooLarge, content_disposition_filename
from gongkai.crawler.registry import DEFAULT_REGISTRY, Portal, RegistryError, all_hosts, load_registry, select
from gongkai.crawler.state import CrawlState
from gongkai.extractors.report_meta import classify_title
from gongkai.warehouse.store import IngestOutcome

DOCUMENTS = Path(__file__).parent / "corpus" / "documents"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoPortal]:
    with DemoPortal(slow_seconds=2.5) as portal:
        yield portal


@pytest.fixture()
def fresh(demo: DemoPortal) -> DemoPortal:
    demo.reset_faults()
    demo.clear_log()
    return demo


@pytest.fixture(scope="module")
def portals(demo: DemoPortal) -> dict[str, Portal]:
    return {p.id: p for p in load_registry(demo_port=demo.port)}


def fetcher_for(portals: dict[str, Portal], **kw: object) -> Fetcher:
    options: dict = {"delay": 0.0, "timeout": (2.0, 1.0), "retries": 2, "backoff": 0.01} | kw
    return Fetcher(all_hosts(portals.values()), **options)


def paths(demo: DemoPortal) -> list[str]:
    return [r.path for r in demo.requests]


# --- registry ------------------------------------------------------------------------------------------

def test_registry_fills_the_demo_port_and_skips_demo_entries_without_one(demo: DemoPortal) -> None:
    portals = load_registry(demo_port=demo.port)
    assert [p.id for p in portals] == ["demo-pingtan", "demo-shanghai", "demo-huaian", "demo-zibo", "demo-ucap", "demo-gkmlpt",
                                     "demo-flaky"]
    pingtan = portals[0]
    assert pingtan.listing == (f"http://127.0.0.1:{demo.port}/pingtan/zwgk/zfxxgk/zfxxgknb/index.html",)
    assert pingtan.hosts == frozenset({f"127.0.0.1:{demo.port}"})
    assert (pingtan.division_code, pingtan.level, pingtan.cms, pingtan.param("channel_id")) == ("350128", "city", "trs", "1813")
    assert load_registry(DEFAULT_REGISTRY) == []  # the shipped registry holds only demo entries
    assert [p.id for p in select(portals, ["320813", "demo-zibo"])] == ["demo-huaian", "demo-zibo"]
    with pytest.raises(RegistryError):
        select(portals, ["999999"])


PINGTAN_ENTRY = """[[portal]]
id = "pingtan"
agency = "平潭综合实验区"
division_code = "350128"
level = "city"
cms = "trs"
listing = ["https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/index.html"]
hosts = ["www.pingtan.gov.cn"]
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('cms = "trs"', 'cms = "wordpress"'),
        ('division_code = "350128"', 'division_code = "35012"'),
        ('hosts = ["www.pingtan.gov.cn"]', 'hosts = ["www.example.org"]'),
    ],
)
def test_registry_rejects_bad_entries(change: str, message: str) -> None:
    entry = PINGTAN_ENTRY
    assert load_registry(text=entry)[0].hosts == frozenset({"www.pingtan.gov.cn"})
    with pytest.raises(RegistryError):
        load_registry(text=entry.replace(change, message))


def test_registry_hosts_are_judged_by_the_fetchers_parser() -> None:
    """An IPv6 host is written in brackets, as the fetcher keys it (host_of used to drop them: `::1:8080`)."""
    listing = "http://[::1]:8080/list.html"
    entry = PINGTAN_ENTRY.replace("https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/index.html", listing).replace(
        '"www.pingtan.gov.cn"', '"[::1]:8080"')
    assert load_registry(text=entry)[0].listing == (listing,)
    with pytest.raises(RegistryError, match="backslash|not on one of its hosts"):
        load_registry(text=entry.replace(listing, "http://evil.example\\\\@[::1]:8080/list.html"))


# --- discovery -----------------------------------------------------------------------------------------

def test_the_letter_in_the_report_column_is_not_a_report() -> None:
    header = (DOCUMENTS / "pingtan-han-2014-notreport.txt").read_text("utf-8").splitlines()[0]
    title = header.removeprefix("标题:").strip()
    assert title == "关于2014年政府信息公开工作要点落实情况的函"
    verdict = classify_title(title)
    assert not verdict.is_report and verdict.reason == "a letter or notice, not a report"


@pytest.mark.parametrize(
    ("title", "year", "agency"),
    [
        ("平潭综合实验区2024年度政府信息公开工作年度报告", 2024, "平潭综合实验区"),  # published 2025-03-10
        ("平潭综合实验区地方税务局2013年信息公开年度报告", 2013, "平潭综合实验区地方税务局"),
        ("2019年上海市人民政府办公厅政府信息公开工作年度报告", 2019, "上海市人民政府办公厅"),
        ("淄博市统计局２０２３年政府信息公开工作年度报告", 2023, "淄博市统计局"),
        ("二〇二二年度政府信息公开工作年报", 2022, None),
        ("2021年度政府信息公开工作年度报告", 2021, None),
    ],
)
def test_report_titles_give_the_year_reported_on(title: str, year: int, agency: str | None) -> None:
    verdict = classify_title(title)
    assert verdict.is_report and verdict.year == year and verdict.agency == agency


@pytest.mark.parametrize(
    "title",
    ["关于做好2019年政府信息公开工作年度报告编制工作的通知", "淄博市统计局2024年政务公开工作要点",
     "关于印发政府信息公开工作年度报告格式的通知", "政府信息公开年报", "洪泽区关于开展第1批政务公开专项检查的通知"],
)
def test_notices_about_reports_are_not_reports(title: str) -> None:
    assert not classify_title(title).is_report


# --- fetcher -------------------------------------------------------------------------------------------

def test_robots_disallowed_path_is_never_requested(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    fetcher = fetcher_for(portals)
    url = f"{fresh.base_url}/pingtan/private/201303/t20130301_80750.htm"
    with pytest.raises(Refused, match="robots.txt"):
        fetcher.fetch(url, allowed_hosts=portals["demo-pingtan"].hosts)
    assert paths(fresh) == ["/robots.txt"]


def test_redirect_to_a_foreign_host_is_not_followed(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    fetcher = fetcher_for(portals)
    with pytest.raises(Refused, match=f"localhost:{fresh.port}"):
        fetcher.fetch(f"{fresh.base_url}/shanghai/nj_zfxxgk/201901/t20190131_900.html", allowed_hosts=portals["demo-shanghai"].hosts)
    assert [r.status for r in fresh.requests if r.path != "/robots.txt"] == [302]
    assert not any(r.host.startswith("localhost") or r.path.startswith("/foreign/") for r in fresh.requests)


def test_a_host_outside_the_registry_gets_no_request(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    fetcher = fetcher_for(portals)
    with pytest.raises(Refused):
        fetcher.fetch(f"http://localhost:{fresh.port}/foreign/2018.html", allowed_hosts={f"localhost:{fresh.port}"})
    assert fresh.requests == []


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        ("/pingtan/zwgk/zfxxgk/zfxxgknb/202503/t20250310_97791.htm", "error500"),
        ("/shanghai/nj_zfxxgk/index_1.html", "timeout"),
        ("/hongze/module/download/downfile.jsp?classid=0&filename=2401201630.pdf", "reset"),
    ],
)
def test_transient_faults_are_retried(fresh: DemoPortal, portals: dict[str, Portal], path: str, fault: str) -> None:
    resp = fetcher_for(portals).fetch(fresh.base_url + path, allowed_hosts=all_hosts(portals.values()))
    assert resp.status == 200 and resp.content == fresh.site.body(path)
    assert [r.status for r in fresh.requests if r.path == path] == [fault, 200]
    assert all(r.user_agent == USER_AGENT for r in fresh.requests)


def test_not_found_is_not_retried_and_retries_give_up(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    fetcher = fetcher_for(portals)
    with pytest.raises(FetchError) as missing:
        fetcher.fetch(f"{fresh.base_url}/pingtan/nothing.html", allowed_hosts=all_hosts(portals.values()))
    assert missing.value.status == 404
    assert paths(fresh).count("/pingtan/nothing.html") == 1
    with pytest.raises(FetchError, match="gave up after 3 attempts"):
        fetcher.fetch(f"{fresh.base_url}/flaky/xxgknb/list.html", allowed_hosts=all_hosts(portals.values()))
    assert paths(fresh).count("/flaky/xxgknb/list.html") == 3


def test_conditional_get_costs_a_304(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    fetcher, state = fetcher_for(portals), CrawlState(None)
    url = f"{fresh.base_url}/zibo/tjj/xxgknb/files/2023nb.txt"
    first = fetcher.fetch(url, allowed_hosts=all_hosts(portals.values()), validators=state.validators(url))
    assert first.status == 200 and first.content == (DOCUMENTS / "zibo-stats-2023.txt").read_bytes()
    state.commit(url, etag=first.etag, last_modified=first.last_modified)
    again = fetcher.fetch(url, allowed_hosts=all_hosts(portals.values()), validators=state.validators(url))
    assert again.not_modified and again.content == b""
    assert [(r.status, r.if_none_match) for r in fresh.requests if r.path.endswith("2023nb.txt")] == [(200, None), (304, first.etag)]


def test_size_cap(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    fetcher = fetcher_for(portals, max_bytes=100_000)
    with pytest.raises(TooLarge):
        fetcher.fetch(f"{fresh.base_url}/pingtan/zwgk/zfxxgk/zfxxgknb/201204/t20120418_80716.htm", allowed_hosts=all_hosts(portals.values()))


def test_per_host_delay_spaces_requests(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    fetcher = fetcher_for(portals, delay=0.15)
    started = time.monotonic()
    for _ in range(5):  # robots.txt, then 5 pages: 6 request starts at least 0.15 s apart
        fetcher.fetch(f"{fresh.base_url}/", allowed_hosts=all_hosts(portals.values()))
    assert time.monotonic() - started >= 0.7


def test_attachment_names_from_content_disposition() -> None:
    assert content_disposition_filename("attachment; filename*=UTF-8''%E6%B4%AA%E6%B3%BD.pdf") == "洪泽.pdf"
    raw = "洪泽区2022年报.pdf".encode("gbk").decode("latin-1")  # how http.client hands GBK header bytes over
    assert content_disposition_filename(f'attachment; filename="{raw}"') == "洪泽区2022年报.pdf"


# --- adapters ------------------------------------------------------------------------------------------

def walk(ctx: CrawlContext, portal: Portal) -> tuple[list[Candidate], list[PageRequest]]:
    """The crawler's own listing walk (no items fetched): every candidate of every page, the pages asked for."""
    done = walk_sequentially(ctx, [portal], fetch_items=False, keep_listings=True)
    found = [c for listed in done.progress[portal.id].listed.values() for c in listed]
    return found, pages_requested(done, portal)


def context(portals: dict[str, Portal], calls: list | None = None, state: CrawlState | None = None) -> CrawlContext:
    def ingest(data: bytes, **kw: object) -> IngestOutcome:
        if calls is not None:
            calls.append((data, kw))
        return IngestOutcome("", "new")

    return CrawlContext(fetcher_for(portals), state if state is not None else CrawlState(None), ingest)


def test_trs_search_api_variant(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    found, requests = walk(context(portals), portals["demo-pingtan"])
    assert [(r.method, r.number) for r in requests] == [("GET", 1), ("POST", 2)]
    assert [c.title for c in found][:2] == ["平潭综合实验区2024年度政府信息公开工作年度报告", "关于2014年政府信息公开工作要点落实情况的函"]
    assert len(found) == 6 and found[4].url.endswith("/201204/t20120418_80716.htm") and found[4].published == "2012-04-18"


def test_trs_classic_paging_gbk(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    found, requests = walk(context(portals), portals["demo-shanghai"])
    assert [r.url.rsplit("/", 1)[1] for r in requests] == ["index.html", "index_1.html", "index_2.html"]
    assert found[0].title == "2019年上海市人民政府办公厅政府信息公开工作年度报告"  # decoded from GBK
    assert len(found) == 5


def test_hanweb_groups_of_45_with_a_repeated_boundary_record(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    found, requests = walk(context(portals), portals["demo-huaian"])
    assert [r.url.split("?")[-1] for r in requests][1:] == [
        "startrecord=1&endrecord=45&perpage=15", "startrecord=46&endrecord=50&perpage=15"]
    assert len(found) == 15 + 45 + 6 and len({c.url for c in found}) == 50
    reports = [c for c in found if classify_title(c.title).is_report]
    assert sorted({classify_title(c.title).year for c in reports}) == [2022, 2023]


def test_generic_next_page_links(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    found, requests = walk(context(portals), portals["demo-zibo"])
    assert [r.url.rsplit("/", 1)[1] for r in requests] == ["list.html", "list_2.html", "list_3.html"]
    assert [c.title for c in found if classify_title(c.title).is_report] == ["淄博市统计局２０２３年政府信息公开工作年度报告"]


def test_detail_pages() -> None:
    page = parse_detail((DOCUMENTS / "pingtan-2024.html").read_text("utf-8"), "http://x/zfxxgknb/202503/t20250310_97791.htm")
    assert page.title == "平潭综合实验区2024年度政府信息公开工作年度报告" and page.published == "2025-03-10 15:35"
    assert page.body_is_report


def test_a_notice_page_yields_its_attachment_only(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    calls: list = []
    ctx = context(portals, calls)
    candidate = Candidate("淄博市统计局２０２３年政府信息公开工作年度报告", f"{fresh.base_url}/zibo/tjj/xxgknb/2024/0120/c1.html")
    results = listing_item(ctx, portals["demo-zibo"], candidate)
    assert [(r.outcome, r.url.rsplit("/", 1)[1], r.year, r.agency) for r in results] == [("new", "2023nb.txt", 2023, "淄博市统计局")]
    assert calls[0][0] == (DOCUMENTS / "zibo-stats-2023.txt").read_bytes()
    assert calls[0][1]["name"] == "2023nb.txt"


def test_second_pass_is_conditional_and_ingests_nothing(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    calls: list = []
    state = CrawlState(None)
    portal = portals["demo-huaian"]
    candidate = Candidate("淮安市洪泽区人民政府2023年政府信息公开工作年度报告", f"{fresh.base_url}/hongze/art/2024/1/20/art_5521_3001.html")
    first = listing_item(context(portals, calls, state), portal, candidate)
    assert [r.outcome for r in first] == ["new"] and calls[0][1]["name"] == "淮安市洪泽区人民政府2023年政府信息公开工作年度报告.pdf"
    fresh.clear_log()
    second: list[DocResult] = listing_item(context(portals, calls, state), portal, candidate)
    assert [r.outcome for r in second] == ["not_modified", "not_modified"] and len(calls) == 1
    assert [(r.status, r.conditional) for r in fresh.requests if r.path != "/robots.txt"] == [(304, True), (304, True)]


def test_backfill_stops_below_the_wanted_years(portals: dict[str, Portal]) -> None:
    ctx = context(portals)
    ctx.years = frozenset(range(2019, 2024))
    old = [Candidate("a", "u1", "2018-03-01"), Candidate("b", "u2", "2017-12-30")]
    assert older_than_wanted(ctx, old)
    assert not older_than_wanted(ctx, old + [Candidate("c", "u3", "2019-01-31")])


def test_robots_crawl_delay_lengthens_the_per_host_delay(portals: dict[str, Portal]) -> None:
    import urllib.robotparser

    fetcher = fetcher_for(portals, delay=0.5)
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(["User-agent: *", "Crawl-delay: 3", "Disallow: /private/"])
    fetcher._respect_crawl_delay("www.example.gov.cn", parser)
    assert fetcher._gate("www.example.gov.cn").delay == 3.0  # type: ignore[attr-defined]
    assert fetcher._gate("other.gov.cn").delay == 0.5  # type: ignore[attr-defined]


def test_serve_dry_run_shows_the_configured_schedule(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gongkai.cli import main

    assert main(["serve", "--dry-run"]) == 0
    assert "deployment gongkai-nightly/nightly: cron '0 2 * * *' in Asia/Shanghai" in capsys.readouterr().out
    monkeypatch.setenv("GONGKAI_NIGHTLY_CRON", "15 1 * * *")
    assert main(["serve", "--dry-run", "--timezone", "UTC"]) == 0
    assert "cron '15 1 * * *' in UTC" in capsys.readouterr().out


def test_backfill_year_ranges() -> None:
    import argparse

    from gongkai.commands.backfill import parse_years

    assert parse_years("2019-2021,2023") == [2019, 2020, 2021, 2023]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_years("2023-2019")
    # reports exist from 2008 (the regulation); the pre-2019 ones are read too (table stats)
    assert parse_years("2008-2010,2024") == [2008, 2009, 2010, 2024]
    for bad in ("2007-2010", "twenty", "2019-20x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_years(bad)


def test_a_crawl_logs_every_url_it_fetches_and_each_portals_progress(
    fresh: DemoPortal, portals: dict[str, Portal], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gongkai.crawler")
    walk_sequentially(context(portals), [portals["demo-zibo"]])
    fetched = [r.path for r in fresh.requests if r.path != "/robots.txt"]
    assert fetched  # the listing pages, the detail page, the attachment
    debug = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert all(f":{fresh.port}{path}" in debug for path in fetched)
    progress = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len([m for m in progress if m.startswith("portal demo-zibo: page")]) == 3  # one line per listing page


def test_per_portal_limits_cut_the_walk_and_are_recorded(fresh: DemoPortal, portals: dict[str, Portal]) -> None:
    shanghai, huaian = portals["demo-shanghai"], portals["demo-huaian"]
    paged = walk_sequentially(context(portals), [shanghai], fetch_items=False, limits=Limits(max_pages=2),
                              keep_listings=True)
    assert [r.url.rsplit("/", 1)[1] for r in pages_requested(paged, shanghai)][:2] == ["index.html", "index_1.html"]
    assert paged.summary()["portals"]["demo-shanghai"] | {"listed": 0} == {
        "status": "ok", "error": None, "pages": 2, "listed": 0, "listing_from_cache": False, "limit": "2 listing pages"}
    assert "index_2.html" not in " ".join(r.path for r in fresh.requests)
    items = walk_sequentially(context(portals), [huaian], fetch_items=False, limits=Limits(max_items=1))
    assert items.progress["demo-huaian"].items == 1 and items.summary()["portals"]["demo-huaian"]["limit"] == "1 listing items"
    late = walk_sequentially(context(portals), [huaian], limits=Limits(deadline_s=1e-9))
    assert late.summary()["portals"]["demo-huaian"]["limit"] == "deadline of 1e-09 s" and late.documents == []


def test_detail_page_read_without_beautifulsoup_keeps_its_reading() -> None:
    """parse_detail reads lxml's tree directly (a tenth of the CPU of a BeautifulSoup tree over it) and reads pages as
    before: script, style and comments are not text, an empty value cell or body is still found (an lxml element
    without children is false), 发布机构 split over <span>s, a link's title before its text."""
    page = ('<html><head><title>页面_网站</title><script>var 发布机构 = 1;</script></head><body>'
            '<table><tr><td>发布<span>机构</span>：</td><td>某局</td></tr><tr><td>标题</td><td>真的标题</td></tr></table>'
            '<span>分类：</span><span>信息公开年报</span>'
            '<div class="TRS_Editor x"><p>短</p><!-- ' + "注" * 400 + ' --><style>' + "p{}" * 200 + '</style></div>'
            '<a href="./P0.pdf" title=" 附件一 ">下载</a><a href="javascript:;">附件</a><a href="/more.html">附件</a></body></html>')
    detail = parse_detail(page, "http://www.example.gov.cn/a/t1.html")
    assert (detail.title, detail.agency, detail.category) == ("真的标题", "某局", "信息公开年报")
    assert detail.body_is_report is False  # the comment and the style are not the body's 300 characters
    assert detail.attachments == [("http://www.example.gov.cn/a/P0.pdf", "附件一")]
    empty = parse_detail("<html><body><div id='zoom'></div></body></html>", "http://www.example.gov.cn/a/t2.html")
    assert (empty.title, empty.body_is_report, empty.attachments) == (None, False, [])
    assert parse_detail("", "http://www.example.gov.cn/a/t3.html").title is None
