"""crawler/urls.py's fast path judges every URL exactly as the full path does.

urls.parse is the gate every URL passes before any request (SECURITY.md): the fast path skips requests' prepare_url
for URLs it would leave unchanged, so it must never accept what the full path refuses, nor give another sent form,
host or port. The full path of before is kept verbatim in tests/urls_reference.py and both are run on every URL of
the repository's tests and saved pages (links joined against their page) and on generated hostile URLs. Set
GONGKAI_SHARED to the shared folder (with portals/ and corpus/) to sweep its pages too."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import url_samples
import urls_reference as reference
from requests.models import PreparedRequest

from gongkai.crawler import urls
from gongkai.crawler.crawl import CrawlContext, Limits, Walk
from gongkai.crawler.fetcher import Fetcher, Refused
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.scheduler import CrawlScheduler, HostSlots, host_of, origin_of
from gongkai.crawler.state import CrawlState
from gongkai.warehouse import IngestOutcome

Judgement = tuple[Any, ...]


def judge(parse: Callable[[str], Any], bad: type[Exception], url: str) -> Judgement:
    try:
        got = parse(url)
    except bad as exc:
        return ("refused", exc.reason)  # type: ignore[attr-defined]
    except (ValueError, KeyError) as exc:  # the reference's bugs: urldefrag's ValueError for "http://[::1/#x" escaped,
        # and DEFAULT_PORTS["httpſ"] (a scheme matched by Unicode case folding) raised KeyError
        return ("crashed", f"{type(exc).__name__}: {exc}")
    return ("sent", got.url, got.scheme, got.host, got.port, got.key, got.origin, got.is_ip_literal)


def same(old: Judgement, new: Judgement) -> bool:
    """The same judgement; where the reference crashed, the new code refuses (and never accepts)."""
    return old == new or (old[0] == "crashed" and new[0] == "refused")


def judge_resolve(resolve: Callable[[str, str], Any], bad: type[Exception], base: str, href: str) -> Judgement:
    return judge(lambda reference_: resolve(base, reference_), bad, href)


def differences(candidates: list[str]) -> list[tuple[str, Judgement, Judgement]]:
    out = []
    for url in candidates:
        old = judge(reference.parse_uncached, reference.BadURL, url)
        new = judge(urls.parse_uncached, urls.BadURL, url)
        if not same(old, new) and not (old[0] == new[0] == "refused" and not url.split(":", 1)[0].isascii()):
            # a scheme that is http(s) only under Unicode case folding ("httpſ") is now refused as not http(s) up
            # front; the reference refused it later (or crashed) for another reason
            out.append((url, old, new))
    return out


def settled(url: str) -> bool:
    """Whether the new code takes its fast path for this URL (judged as parse_uncached reaches that point)."""
    try:
        urls._raw_checks(url)
        parts = urls._split(url.split("#", 1)[0] if "#" in url else url)
    except urls.BadURL:
        return False
    return urls._settled(url.split("#", 1)[0], *parts)


def _shared_roots() -> list[Path]:
    shared = os.environ.get("GONGKAI_SHARED")
    return [Path(shared) / sub for sub in ("portals", "corpus")] if shared else []


@pytest.fixture(scope="module")
def repository() -> tuple[list[str], list[tuple[str, str]]]:
    return url_samples.repository_urls(*_shared_roots())


def test_every_url_of_the_repository_is_judged_as_before(repository: tuple[list[str], list[tuple[str, str]]]) -> None:
    found, links = repository
    assert len(found) > 500 and len(links) > 300  # the harvest really read the tests and pages
    assert differences(found) == []
    fast = [url for url in found if settled(url)]
    assert len(fast) > len(found) // 3  # the sweep exercised the fast path, not only the full one


def test_every_link_of_the_saved_pages_is_resolved_as_before(repository: tuple[list[str], list[tuple[str, str]]]) -> None:
    _, links = repository
    urls._parse_cached.cache_clear()  # resolve goes through the remembered parse: start it empty
    bad = [(base, href, old, new) for base, href in links
           if not same(old := judge_resolve(reference.resolve, reference.BadURL, base, href),
                       new := judge_resolve(urls.resolve, urls.BadURL, base, href))]
    assert bad == []


def test_generated_hostile_urls_are_judged_as_before(repository: tuple[list[str], list[tuple[str, str]]]) -> None:
    generated = url_samples.hostile_urls(30_000) + url_samples.mutations(repository[0], 10_000)
    systematic = url_samples.systematic_urls()
    assert differences(systematic) == []
    assert differences(generated) == []
    accepted = [url for url in generated if judge(reference.parse_uncached, reference.BadURL, url)[0] == "sent"]
    fast = [url for url in generated + systematic if settled(url)]
    # both sides of the border were tried: many accepted URLs, many through the fast path, most hostile ones refused
    assert len(accepted) > 5_000 and len(fast) > 5_000 and len(generated) - len(accepted) > 10_000


def test_cached_parse_agrees_with_the_uncached_one() -> None:
    urls._parse_cached.cache_clear()
    sample = url_samples.hostile_urls(3_000, seed=12)
    for url in sample + sample:  # the second time from the cache
        assert same(judge(reference.parse_uncached, reference.BadURL, url), judge(urls.parse, urls.BadURL, url)), url


def test_a_plain_url_is_judged_without_the_http_clients_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the fast path: prepare_url (about 40 µs of a ~45 µs judgement) runs only where it could change
    the URL; a plain link of a Chinese government portal, or a benchmark URL on a loopback port, skips it."""
    prepared: list[str] = []
    real = PreparedRequest.prepare_url

    def counting(self: PreparedRequest, url: Any, params: Any) -> None:
        prepared.append(url)
        real(self, url, params)

    monkeypatch.setattr(PreparedRequest, "prepare_url", counting)
    plain = ["http://www.pingtan.gov.cn/zfxxgk/xxgknb/202401/t20240115_123.html",
             "https://www.beijing.gov.cn/gongkai/zfxxgk/gknb/202503/P020250331.pdf?name=2024%E5%B9%B4#top",
             "http://127.0.0.1:8123/a7/index_1.html", "https://x.gov.cn:8443/module/jpage/dataproxy.jsp?startrecord=1&perpage=15"]
    for url in plain:
        assert urls.parse_uncached(url).url == url.split("#")[0]
    assert prepared == []
    normalised = {"HTTP://WWW.Example.GOV.cn:80/a/../b c/洪泽.pdf?x=中#frag":
                  "http://www.example.gov.cn:80/b%20c/%E6%B4%AA%E6%B3%BD.pdf?x=%E4%B8%AD",
                  "http://a.cn": "http://a.cn/", "http://a.cn/%7euser/%e4%b8%ad": "http://a.cn/~user/%E4%B8%AD",
                  "http://a.cn:080/x?": "http://a.cn:80/x", "http://a.cn/a/./b/../c": "http://a.cn/a/c"}
    for url, sent in normalised.items():
        assert urls.parse_uncached(url).url == sent
    assert len(prepared) >= len(normalised)  # these went through the HTTP client's own normalisation


@pytest.mark.parametrize(("url", "reason"), [
    ("http://[::1/x#a", "malformed host '[::1'"),
    ("http://[1::2::3]/#a", "malformed IPv6 host '[1::2::3]'"),
    ("http://a]/#a", "malformed host 'a]'"),
    ("http://a.cn/x#a[", None),
])
def test_a_bracket_and_a_fragment_are_refused_not_a_crash(url: str, reason: str | None) -> None:
    """urldefrag raised a plain ValueError for these (urlsplit's bracket checks), which every caller catching BadURL let
    through: one such link on a listing page reached the scheduler's host_of uncaught. Now refused with the reason
    the URL has without its fragment."""
    if reason is None:
        assert urls.parse(url).url == "http://a.cn/x"
        return
    with pytest.raises(urls.BadURL, match=re.escape(reason)):
        urls.parse(url)
    assert host_of(url) is None and origin_of(url) is None
    fetcher = Fetcher({"a.cn"}, delay=0.0, retries=0)
    with pytest.raises(Refused, match=re.escape(reason)):  # refused before any request, counted for the item alone
        fetcher.fetch(url, allowed_hosts={"a.cn"})


def test_a_link_with_a_bracket_and_a_fragment_fails_its_item_not_the_crawl() -> None:
    """Before, the scheduler's host_of let urldefrag's ValueError out of CrawlScheduler.run: one such link on one
    listing page ended the whole crawl. Now that item is refused with its reason and the others are crawled."""
    rows = [("a.txt", "示例市2021年政府信息公开工作年度报告"), ("http://[::1/x#a", "示例市2022年政府信息公开工作年度报告"),
            ("c.txt", "示例市2023年政府信息公开工作年度报告")]
    listing = "".join(f'<li><a href="{href}">{title}</a></li>' for href, title in rows).encode()

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = listing if self.path == "/list.html" else b"report" if self.path.endswith(".txt") else None
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8" if body is listing else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        portals = load_registry(text=f"""[[portal]]
id = "hostile"
agency = "示例市人民政府"
division_code = "350100"
level = "city"
cms = "generic"
listing = ["http://{host}/list.html"]
hosts = ["{host}"]
""")
        slots = HostSlots(2, 0.0)
        fetcher = Fetcher(all_hosts(portals), delay=0.0, retries=0, gate=slots)

        def ingest(data: bytes, *, url: str, **_: Any) -> IngestOutcome:
            return IngestOutcome("", "new", url=url)

        ctx = CrawlContext(fetcher, CrawlState(None), ingest)
        walk = CrawlScheduler(ctx, slots, workers=4).run(Walk(ctx, portals, Limits()))
    finally:
        server.shutdown()
        server.server_close()
    assert sorted((d.outcome, d.reason) for d in walk.documents) == [
        ("new", None), ("new", None), ("refused", "malformed host '[::1'")]


@pytest.mark.parametrize("url", ["httpſ://h:80/x", "httpſ://h/x", "HTTPſ://h/", "httpſ://127.0.0.1:8080/a?b=c"])
def test_a_scheme_that_only_unicode_case_folding_makes_http_is_refused(url: str) -> None:
    # "ſ" (long s) matched "s" under re.IGNORECASE: with a port the fast path accepted the URL the full path refuses,
    # without one DEFAULT_PORTS["httpſ"] raised KeyError out of parse (a crash, not a refusal)
    with pytest.raises(urls.BadURL, match="not an http"):
        urls.parse_uncached(url)
    with pytest.raises(urls.BadURL, match="not an http"):
        urls.parse(url)
