"""Review findings on the crawler: listing state, paging, robots.txt, fetch errors, crawl state, the registry.

Adapter, fetcher, state and registry tests run without Prefect; the flow tests share one demo portal with
extra listings (two listing URLs, a redirecting listing, an empty one, a 下一页 loop).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_crawler import PINGTAN_ENTRY

from gongkai.crawler.adapters import PageRequest, generic, hanweb
from gongkai.crawler.crawl import CrawlContext, pages_requested, walk_sequentially
from gongkai.crawler.demo_portal import DemoPortal, LoggedRequest
from gongkai.crawler.demo_portal.site import Resource, _generic_listing
from gongkai.crawler.fetcher import Fetcher, FetchError, Refused, Robots
from gongkai.crawler.registry import Portal, RegistryError, load_registry
from gongkai.crawler.state import CrawlState
from gongkai.warehouse import open_warehouse
from gongkai.warehouse.store import IngestOutcome

POLITENESS = {"delay": 0.0, "concurrency": 4, "read_timeout": 1.0, "retries": 2, "backoff": 0.05}

REGISTRY = """
[[portal]]
id = "rv-multi"
agency = "上海市人民政府办公厅"
division_code = "310000"
level = "province"
cms = "trs"
listing = ["http://127.0.0.1:{demo}/a/nj_zfxxgk/index.html", "http://127.0.0.1:{demo}/b/nj_zfxxgk/index.html"]
hosts = ["127.0.0.1:{demo}"]

[[portal]]
id = "rv-moved"
agency = "淄博市统计局"
division_code = "370300"
level = "department"
cms = "generic"
listing = ["http://127.0.0.1:{demo}/moved/list.html"]
hosts = ["127.0.0.1:{demo}"]

[[portal]]
id = "rv-empty"
agency = "示例县人民政府"
division_code = "350181"
level = "county"
cms = "generic"
listing = ["http://127.0.0.1:{demo}/"]
hosts = ["127.0.0.1:{demo}"]

[[portal]]
id = "rv-loop"
agency = "示例市人民政府"
division_code = "350100"
level = "city"
cms = "generic"
listing = ["http://127.0.0.1:{demo}/loop/list.html"]
hosts = ["127.0.0.1:{demo}"]
"""


def _review_site(demo: DemoPortal) -> None:
    site = demo.site
    for path, resource in list(site.resources.items()):  # the Shanghai column twice, under /a/ and /b/, without faults
        if path.startswith("/shanghai/nj_zfxxgk/"):
            for copy in ("/a/", "/b/"):
                site.add(path.replace("/shanghai/", copy, 1), dataclasses.replace(resource, fault=None))
    site.add("/moved/list.html", Resource(b"", status=301, headers={"Location": "/zibo/tjj/xxgknb/list.html"}, validators=False))
    rows = [("c1.html", "示例市2024年政务公开工作要点", "2024-02-01")]
    site.add("/loop/list.html", Resource(_generic_listing(rows, "list_2.html", "list_2.html")))
    site.add("/loop/list_2.html", Resource(_generic_listing([("c2.html", "示例市关于2023年政务公开检查的通报", "2024-01-01")],
                                                            "list.html", "list_2.html")))


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoPortal]:
    with DemoPortal(slow_seconds=1.5) as portal:
        _review_site(portal)
        yield portal


@pytest.fixture()
def fresh(demo: DemoPortal) -> DemoPortal:
    demo.reset_faults()
    demo.clear_log()
    return demo


def fetcher(hosts: frozenset[str], **kw: Any) -> Fetcher:
    return Fetcher(hosts, **({"delay": 0.0, "timeout": (2.0, 1.0), "retries": 2, "backoff": 0.01} | kw))


def review_portals(demo: DemoPortal) -> dict[str, Portal]:
    return {p.id: p for p in load_registry(text=REGISTRY, demo_port=demo.port)}


# --- adapters (findings 4, 7) ------------------------------------------------------------------------------

def test_a_javascript_next_link_is_no_next_page() -> None:
    [portal] = [p for p in load_registry(text=REGISTRY, demo_port=1) if p.id == "rv-loop"]
    html = '<table><tr><td><a href="c1.html">示例市2024年政务公开工作要点</a></td></tr></table>'
    for href in ("javascript:void(0)", "#", "list.html#top"):
        page = generic.parse_listing(portal, PageRequest("http://h/list.html"), html + f'<a href="{href}">下一页</a>', "http://h/list.html")
        assert len(page.candidates) == 1 and page.next == [], href


def test_every_listing_of_a_portal_pages_from_its_own_url(fresh: DemoPortal) -> None:
    portal = review_portals(fresh)["rv-multi"]
    ctx = CrawlContext(fetcher(portal.hosts), CrawlState(None), lambda *a, **k: IngestOutcome("", "new"))
    walk = walk_sequentially(ctx, [portal], fetch_items=False, keep_listings=True)  # the crawler's own paging, breadth first
    requested = [r.url.split(f":{fresh.port}")[1] for r in pages_requested(walk, portal)]
    assert requested == ["/a/nj_zfxxgk/index.html", "/b/nj_zfxxgk/index.html", "/a/nj_zfxxgk/index_1.html",
                         "/b/nj_zfxxgk/index_1.html", "/a/nj_zfxxgk/index_2.html", "/b/nj_zfxxgk/index_2.html"]


def test_hanweb_groups_follow_the_column_requested() -> None:
    [portal] = load_registry(text=REGISTRY.split("[[portal]]")[0] + """[[portal]]
id = "hw"
agency = "淮安市洪泽区人民政府"
division_code = "320813"
level = "county"
cms = "hanweb"
listing = ["http://h/site1/col/col1/index.html", "http://h/site2/col/col2/index.html"]
hosts = ["h"]
""")
    page = hanweb.parse_listing(portal, PageRequest("http://h/site2/col/col2/index.html"), "<totalrecord>60</totalrecord>", "x")
    [group] = page.next
    assert group.url.startswith("http://h/site2/module/web/jpage/dataproxy.jsp?startrecord=1&") and group.data
    assert group.data["columnid"] == "2"
    [following] = hanweb.parse_listing(portal, group, "<totalrecord>60</totalrecord>", group.url).next
    assert following.url.startswith("http://h/site2/module/") and following.data and following.data["columnid"] == "2"


# --- robots.txt (findings 3, 12) ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/a/list.jsp", False), ("/a/list.jsp?x=1", False), ("/a/list.html", True), ("/a/list.html?page=2", False),
     ("/public/x.jsp", True), ("/docs/", False), ("/docs/x.html", True), ("/private/x", False), ("/private/ok/x", True)],
)
def test_robots_wildcards_and_longest_match(path: str, allowed: bool) -> None:
    robots = Robots.parse(["User-agent: *", "Disallow: /*.jsp", "Disallow: /*?", "Allow: /public/",
                           "Disallow: /docs/$", "Disallow: /private", "Allow: /private/ok/", "Crawl-delay: 2"])
    assert robots.can_fetch("gongkai/0.1", f"http://h{path}") is allowed
    assert robots.crawl_delay("gongkai/0.1") == 2.0


def test_robots_group_naming_the_crawler_wins_over_the_star_group() -> None:
    robots = Robots.parse(["User-agent: *", "Disallow: /", "", "User-agent: Gongkai", "User-agent: other", "Disallow: /x"])
    assert robots.can_fetch("gongkai/0.1 (+https://x)", "http://h/a") and not robots.can_fetch("gongkai/0.1", "http://h/x/y")
    assert not robots.can_fetch("somebot/1.0", "http://h/a")


def test_a_redirected_robots_txt_is_followed() -> None:
    with DemoPortal() as demo:
        demo.site.add("/robots.txt", Resource(b"", status=301, headers={"Location": "/site/robots.txt"}, validators=False))
        demo.site.add("/site/robots.txt", Resource(b"User-agent: *\nDisallow: /*.jsp\n", "text/plain"))
        demo.site.add("/list.html", Resource(b"<p>ok</p>"))
        hosts = frozenset({f"127.0.0.1:{demo.port}"})
        f = fetcher(hosts)
        with pytest.raises(Refused, match="robots.txt"):
            f.fetch(f"{demo.base_url}/module/list.jsp?page=2", allowed_hosts=hosts)
        assert f.fetch(f"{demo.base_url}/list.html", allowed_hosts=hosts).status == 200
        assert [r.path for r in demo.requests] == ["/robots.txt", "/site/robots.txt", "/list.html"]


def test_an_unreachable_robots_txt_is_a_fetch_failure_not_a_refusal() -> None:
    with DemoPortal() as demo:
        demo.site.add("/robots.txt", Resource(b"busy", status=503, validators=False))
        hosts = frozenset({f"127.0.0.1:{demo.port}"})
        with pytest.raises(FetchError, match="robots.txt unreachable") as failed:
            fetcher(hosts).fetch(f"{demo.base_url}/", allowed_hosts=hosts)
        assert not isinstance(failed.value, Refused)
        assert [r.path for r in demo.requests] == ["/robots.txt"] * 3  # retried, then nothing else requested


# --- errors escaping the fetcher (finding 11) ---------------------------------------------------------------

def test_a_body_that_does_not_decode_is_a_fetch_error_without_retries(fresh: DemoPortal) -> None:
    fresh.site.add("/broken.html", Resource(b"not gzip at all", headers={"Content-Encoding": "gzip"}, validators=False))
    hosts = frozenset({f"127.0.0.1:{fresh.port}"})
    with pytest.raises(FetchError, match="ContentDecodingError"):
        fetcher(hosts).fetch(f"{fresh.base_url}/broken.html", allowed_hosts=hosts)
    assert [r.path for r in fresh.requests].count("/broken.html") == 1


def test_a_tls_failure_is_not_retried(fresh: DemoPortal) -> None:
    hosts = frozenset({f"127.0.0.1:{fresh.port}"})
    started = time.monotonic()
    with pytest.raises(FetchError, match="SSLError"):  # https to a plain-HTTP server: robots.txt cannot be read
        fetcher(hosts, backoff=1.0).fetch(f"https://127.0.0.1:{fresh.port}/", allowed_hosts=hosts)
    assert time.monotonic() - started < 0.5  # a retry would have slept at least 0.5 s


# --- crawl state (finding 10) -------------------------------------------------------------------------------

def test_an_unreadable_state_file_starts_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "crawl-state.json"
    path.write_text('{"http://x": {"etag": "1"', "utf-8")  # cut short by a crash
    with caplog.at_level(logging.WARNING, logger="gongkai.crawler.state"):
        state = CrawlState(path)
    assert len(state) == 0 and "unreadable" in caplog.text
    state.commit("http://x", etag='"1"', last_modified=None)
    state.save()
    assert json.loads(path.read_text("utf-8"))["http://x"]["etag"] == '"1"'


def test_state_saves_through_a_temp_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "crawl-state.json"
    path.with_suffix(".tmp").mkdir()  # the fixed name another run would be writing to
    state = CrawlState(path)
    state.commit("http://x", etag='"1"', last_modified=None)
    state.save()
    assert CrawlState(path).validators("http://x") == {"If-None-Match": '"1"'}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crawl-state.json", "crawl-state.tmp"]


# --- registry (finding 13) ----------------------------------------------------------------------------------

ENTRY = PINGTAN_ENTRY + "[portal.params]\npage_size = 10\n"


@pytest.mark.parametrize(
    ("change", "slip", "message"),
    [
        ('division_code = "350128"', "division_code = 350128", "division_code must be a string"),
        ('hosts = ["www.pingtan.gov.cn"]', 'hosts = "www.pingtan.gov.cn"', "hosts must be a list"),
        ('listing = ["https', 'listing = [1, "https', "listing must be a URL or a list"),
        ("page_size = 10", "page_sise = 10", "unknown trs params page_sise"),
    ],
)
def test_registry_names_the_entry_and_field_of_a_slip(change: str, slip: str, message: str) -> None:
    assert load_registry(text=ENTRY)[0].param("page_size") == 10
    with pytest.raises(RegistryError, match=f"portal pingtan: {message}"):
        load_registry(text=ENTRY.replace(change, slip))


# --- the flows (findings 1, 2, 4, 6, 7, 8, 11) --------------------------------------------------------------

@dataclasses.dataclass
class CliRun:
    code: int
    summary: dict[str, Any]
    requests: list[LoggedRequest]


@pytest.fixture(scope="module")
def cli_runs(demo: DemoPortal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CliRun]]:
    """`gongkai nightly` into warehouse A, then B, then A again; the crawl state where the command puts it."""
    from gongkai.cli import main

    folder = tmp_path_factory.mktemp("review")
    registry = folder / "registry.toml"
    registry.write_text(REGISTRY, "utf-8")
    previous = os.environ.get("GONGKAI_DATA")
    os.environ["GONGKAI_DATA"] = str(folder / "data")
    runs = []
    try:
        for name in ("a", "b", "a"):
            demo.clear_log()
            code = main(["nightly", "--db", f"duckdb:///{folder / name}.duckdb", "--registry", str(registry),
                         "--demo-port", str(demo.port), "--delay", "0", "--concurrency", "4"])
            summary_file = sorted((folder / "data" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)[-1]
            runs.append(CliRun(code, json.loads(summary_file.read_text("utf-8")), list(demo.requests)))
        yield runs
    finally:
        if previous is None:
            os.environ.pop("GONGKAI_DATA", None)
        else:
            os.environ["GONGKAI_DATA"] = previous


def test_an_empty_listing_fails_the_run(cli_runs: list[CliRun]) -> None:
    first = cli_runs[0]
    assert first.summary["portals"]["rv-empty"] == {"status": "empty", "error": "no listing items", "pages": 1, "listed": 0,
                                                    "listing_from_cache": False}
    assert first.code == 1
    assert {p["status"] for pid, p in first.summary["portals"].items() if pid != "rv-empty"} == {"ok"}


def test_a_next_link_back_to_an_earlier_page_is_not_followed(cli_runs: list[CliRun]) -> None:
    assert cli_runs[0].summary["portals"]["rv-loop"]["pages"] == 2
    assert [r.path for r in cli_runs[0].requests if r.path.startswith("/loop/")] == ["/loop/list.html", "/loop/list_2.html"]


def test_each_warehouse_has_its_own_crawl_state(cli_runs: list[CliRun]) -> None:
    a, b = cli_runs[0].summary, cli_runs[1].summary
    assert a["counts"].get("new", 0) >= 2 and b["counts"] == a["counts"]
    with open_warehouse(b["warehouse"]) as warehouse:
        assert warehouse.db.query("SELECT count(*) FROM reports")[0][0] >= 2


def test_every_listing_url_is_fetched_conditionally_next_run(cli_runs: list[CliRun]) -> None:
    again = cli_runs[2]
    listing = [r for r in again.requests if "/list" in r.path or "/index" in r.path or r.path == "/"]
    # first pages only, each a 304 (the redirecting one through its 301): the cached listings are used
    assert sorted((r.path, r.status, r.conditional) for r in listing) == [
        ("/", 304, True), ("/a/nj_zfxxgk/index.html", 304, True), ("/b/nj_zfxxgk/index.html", 304, True),
        ("/loop/list.html", 304, True), ("/moved/list.html", 301, True), ("/zibo/tjj/xxgknb/list.html", 304, True)]
    assert all(p["listing_from_cache"] for pid, p in again.summary["portals"].items())
    assert again.summary["counts"].get("new", 0) == 0


def test_a_narrow_backfill_does_not_cut_short_a_later_one(demo: DemoPortal, tmp_path: Path) -> None:
    from gongkai.flows.crawl import backfill_flow

    params = dict(db_url=f"duckdb:///{tmp_path / 'w.duckdb'}", archive_location=str(tmp_path / "archive"), demo_port=demo.port,
                  state_file=str(tmp_path / "state.json"), politeness=POLITENESS, agencies=["demo-shanghai"])
    demo.reset_faults()
    backfill_flow(years=[2020, 2021, 2022, 2023], **params)
    demo.clear_log()
    older = backfill_flow(years=[2017, 2018, 2019], **params)
    listing = [r.path.rsplit("/", 1)[1] for r in demo.requests if "/index" in r.path]
    assert listing == ["index.html", "index_1.html", "index_2.html"]
    assert older["portals"]["demo-shanghai"]["pages"] == 3


def test_a_crashed_item_counts_as_a_failure_of_the_run(demo: DemoPortal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gongkai.flows.crawl as crawl_flows

    def crash(*_args: Any) -> list[Any]:
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(crawl_flows, "item_steps", crash)
    db_url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    summary = crawl_flows.backfill_flow(years=[2023], agencies=["demo-zibo"], db_url=db_url, archive_location=str(tmp_path / "a"),
                                        demo_port=demo.port, state_file=str(tmp_path / "state.json"), politeness=POLITENESS)
    assert summary["counts"] == {"crashed": 1}
    with open_warehouse(db_url) as warehouse:
        assert warehouse.db.query("SELECT n_failed FROM runs") == [(1,)]



def test_a_portal_cut_by_its_limits_is_recorded_and_the_run_writes_its_summary(demo: DemoPortal, tmp_path: Path) -> None:
    from gongkai.flows.crawl import nightly_flow
    from gongkai.settings import Settings

    demo.reset_faults()
    demo.clear_log()
    settings = Settings(data=tmp_path / "data", crawl_max_pages=1, crawl_max_items=1, extract_processes=1)
    summary = nightly_flow(agencies=["demo-shanghai", "demo-huaian"], db_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
                           archive_location=str(tmp_path / "a"), demo_port=demo.port, politeness=POLITENESS, settings=settings)
    portals = summary["portals"]
    assert (portals["demo-shanghai"]["pages"], portals["demo-shanghai"]["limit"]) == (1, "1 listing pages")
    assert portals["demo-huaian"]["limit"] in ("1 listing pages", "1 listing items")
    assert not any("index_1.html" in r.path for r in demo.requests)
    assert len([d for d in summary["documents"] if d["portal"] == "demo-shanghai"]) <= 1
    stored = json.loads((tmp_path / "data" / "runs" / f"{summary['run_id']:06d}-nightly.json").read_text("utf-8"))
    assert stored["portals"] == portals
