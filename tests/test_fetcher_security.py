"""Issue 13 and issue 8 item 7 against the fetcher: hostile servers on loopback that record every connection
and request they receive.

`registry` is the agency's host (in the allow-list); `hostile` is another server the attacker would like us
to reach. A refused URL must reach neither (not even its robots.txt).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gongkai.crawler import transport, urls
from gongkai.crawler.adapters import PageRequest
from gongkai.crawler.adapters.links import join_link
from gongkai.crawler.crawl import CrawlContext, listing_item, listing_page
from gongkai.crawler.fetcher import DeadlineExceeded, Fetcher, FetchError, Refused, Robots, retry_after_seconds
from gongkai.crawler.registry import load_registry
from gongkai.crawler.state import CrawlState
from gongkai.warehouse.store import IngestOutcome

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    method: str
    path: str
    host: str
    at: float


@dataclass
class Hostile:
    """A loopback HTTP server: routes path -> reply (or a callable writing to the handler itself)."""

    server: ThreadingHTTPServer
    routes: dict[str, Reply | Callable[[BaseHTTPRequestHandler], None]] = field(default_factory=dict)
    connections: list[tuple[str, int]] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


def _serve() -> Hostile:
    box: dict[str, Hostile] = {}

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
            sock, address = super().get_request()
            box["h"].connections.append(address)
            return sock, address

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            me = box["h"]
            me.requests.append(Seen(self.command, self.path, self.headers.get("Host", ""), time.monotonic()))
            route = me.routes.get(self.path.split("?")[0], (404, {}, b"no") if self.path == "/robots.txt" else (200, {}, b"ok"))
            if callable(route):
                route(self)
                return
            status, headers, body = route
            self.send_response(status)
            for key, value in ({"Content-Length": str(len(body))} | headers).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    server = Server(("127.0.0.1", 0), Handler)
    box["h"] = Hostile(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return box["h"]


@pytest.fixture()
def registry() -> Iterator[Hostile]:
    h = _serve()
    yield h
    h.server.shutdown()
    h.server.server_close()


hostile = registry


def fetcher(hosts: set[str] | frozenset[str], **kw: object) -> Fetcher:
    return Fetcher(hosts, **({"delay": 0.0, "timeout": (2.0, 2.0), "retries": 2, "backoff": 0.01} | kw))  # type: ignore[arg-type]


# --- SSRF past the host allow-list -------------------------------------------------------------------------

def test_backslash_url_reaches_no_server(registry: Hostile, hostile: Hostile) -> None:
    url = f"http://{hostile.host}\\@{registry.host}/../secret"
    with pytest.raises(Refused, match="backslash"):
        fetcher({registry.host}).fetch(url, allowed_hosts={registry.host})
    assert hostile.connections == [] and registry.connections == []


def test_redirect_to_a_backslash_url_is_refused(registry: Hostile, hostile: Hostile) -> None:
    registry.routes["/go"] = (302, {"Location": f"http://{hostile.host}\\@{registry.host}/../secret"}, b"")
    with pytest.raises(Refused, match="redirect refused: backslash"):
        fetcher({registry.host}).fetch(f"{registry.base}/go", allowed_hosts={registry.host})
    assert hostile.connections == []
    assert registry.paths() == ["/robots.txt", "/go"]


def test_redirect_off_the_allowed_hosts_is_refused(registry: Hostile, hostile: Hostile) -> None:
    registry.routes["/away"] = (302, {"Location": f"{hostile.base}/x"}, b"")
    f = fetcher({registry.host, hostile.host})  # in the registry, but not this portal's
    with pytest.raises(Refused, match=f"host {hostile.host} is not one of the agency's hosts"):
        f.fetch(f"{registry.base}/away", allowed_hosts={registry.host})
    assert hostile.connections == []


@pytest.mark.parametrize("userinfo", ["{hostile}@", "user:secret@"])
def test_userinfo_url_reaches_no_server(registry: Hostile, hostile: Hostile, userinfo: str) -> None:
    url = f"http://{userinfo.format(hostile=hostile.host)}{registry.host}/x"
    with pytest.raises(Refused, match="credentials"):
        fetcher({registry.host}).fetch(url, allowed_hosts={registry.host})
    assert hostile.connections == [] and registry.connections == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://evil\\@good/", "backslash"),
        ("http://good/a\\b", "backslash"),
        ("http://u:p@good/", "credentials"),
        ("http://go\tod/", "control character"),
        ("http://good/\x85", "control character"),
        ("http://go od/", "whitespace in host"),
        ("http://[::1", "malformed host"),
        ("http://[fe80::1%25eth0]/", "zone id"),
        ("http://%67ood/", "percent-encoded host"),
        ("http://127.1/", "ambiguous numeric host"),
        ("http://2130706433/", "ambiguous numeric host"),
        ("http://0x7f.0.0.1/", "ambiguous numeric host"),
        ("http://good:99999/", "out of range"),
        ("http://good:/", "malformed host"),
        ("ftp://good/", "not an http(s) URL"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("http:/good/", "malformed http URL"),
        ("//good/x", "not an absolute http(s) URL"),
        ("http://xn--/", "malformed host name"),
    ],
)
def test_ambiguous_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(urls.BadURL, match=re.escape(reason)):
        urls.parse(url)


def test_the_url_sent_is_the_url_checked() -> None:
    parsed = urls.parse("HTTP://WWW.Example.GOV.cn:80/a/../b c/洪泽.pdf?x=中#frag")
    assert parsed.url == "http://www.example.gov.cn:80/b%20c/%E6%B4%AA%E6%B3%BD.pdf?x=%E4%B8%AD"
    assert (parsed.key, parsed.origin) == ("www.example.gov.cn", "http://www.example.gov.cn")
    assert urls.parse(parsed.url) == parsed  # a fixed point: requests will not change it again
    assert urls.parse("http://[::1]:8080/x").key == "[::1]:8080"
    with pytest.raises(urls.BadURL, match="control character"):  # urljoin would silently drop the tab
        urls.resolve("http://good/", "ht\ttp://evil/")


def test_a_name_is_connected_only_at_the_address_it_resolved_to(registry: Hostile) -> None:
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> tuple[str, ...]:
        asked.append((host, port))
        return ("127.0.0.1",)

    name = f"portal.invalid:{registry.port}"  # .invalid never resolves in DNS: only the pin can reach the server
    f = fetcher({name}, resolver=resolver)
    assert f.fetch(f"http://{name}/x", allowed_hosts={name}).content == b"ok"
    assert f.fetch(f"http://{name}/y", allowed_hosts={name}).content == b"ok"
    assert [r.host for r in registry.requests] == [name] * 3  # robots.txt, /x, /y with the name as Host
    assert asked == [("portal.invalid", registry.port)]  # resolved once, then pinned


def test_a_name_resolving_to_a_private_address_is_refused(registry: Hostile) -> None:
    name = f"localhost:{registry.port}"  # the system resolver says loopback
    with pytest.raises(Refused, match="non-public"):
        fetcher({name}).fetch(f"http://{name}/x", allowed_hosts={name})
    assert registry.connections == []


def test_connections_outside_a_fetch_fail_closed_and_the_peer_is_checked(registry: Hostile) -> None:
    f = fetcher({registry.host})
    with pytest.raises(Exception, match="no pinned address"):
        f._pool(urls.parse(f"{registry.base}/x")).urlopen("GET", "/x", retries=False, timeout=2)
    with socket.create_connection(("127.0.0.1", registry.port)) as sock:
        assert transport.peer_allowed(sock, ("127.0.0.1",))
        assert not transport.peer_allowed(sock, ("::1", "192.0.2.1"))
    assert registry.requests == []


# --- a malformed link fails that item only ------------------------------------------------------------------

def test_a_malformed_link_is_refused_and_the_others_are_crawled(registry: Hostile) -> None:
    rows = [("a.txt", "示例市2021年政府信息公开工作年度报告"), ("http://[::1", "示例市2022年政府信息公开工作年度报告"),
            ("c.txt", "示例市2023年政府信息公开工作年度报告")]
    registry.routes["/list.html"] = (200, {"Content-Type": "text/html; charset=utf-8"},
                                     "".join(f'<li><a href="{href}">{title}</a></li>' for href, title in rows).encode())
    [portal] = load_registry(text=f"""[[portal]]
id = "hostile"
agency = "示例市人民政府"
division_code = "350100"
level = "city"
cms = "generic"
listing = ["{registry.base}/list.html"]
hosts = ["{registry.host}"]
""")
    ctx = CrawlContext(fetcher(portal.hosts), CrawlState(None), lambda *a, **k: IngestOutcome("", "new"))
    page = listing_page(ctx, portal, PageRequest(f"{registry.base}/list.html"))
    assert [c.url for c in page.candidates] == [f"{registry.base}/a.txt", "http://[::1", f"{registry.base}/c.txt"]
    results = [r for c in page.candidates for r in listing_item(ctx, portal, c)]
    assert [(r.outcome, r.reason) for r in results] == [("new", None), ("refused", "malformed host '[::1'"), ("new", None)]
    assert join_link("http://h/", "http://[::1") == "http://[::1"  # kept as written: the fetcher refuses it


# --- a total deadline per download ---------------------------------------------------------------------------

def _trickle(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    try:
        for _ in range(1000):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)  # well within the read timeout: only a total deadline ends this
    except OSError:
        pass


def _trickle_headers(handler: BaseHTTPRequestHandler) -> None:
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(1000):  # one header line, a byte at a time (http.client allows 64 KB per line)
            handler.wfile.write(b"a")
            handler.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass


@pytest.mark.parametrize("route", [_trickle, _trickle_headers])
def test_a_trickling_download_hits_the_deadline(registry: Hostile, route: Callable[[BaseHTTPRequestHandler], None]) -> None:
    registry.routes["/slow.pdf"] = route
    f = fetcher({registry.host}, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="download deadline of 1 s exceeded"):
        f.fetch(f"{registry.base}/slow.pdf", allowed_hosts={registry.host})
    assert time.monotonic() - started < 2.5
    assert registry.paths().count("/slow.pdf") == 1  # a deadline is not retried
    assert f.host_stats()[registry.host]["failed"] == 1


# --- Retry-After ----------------------------------------------------------------------------------------------

def _busy_once(retry_after: str) -> Callable[[BaseHTTPRequestHandler], None]:
    calls: list[int] = []

    def route(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        first = len(calls) == 1
        body = b"busy" if first else b"done"
        handler.send_response(503 if first else 200)
        handler.send_header("Content-Length", str(len(body)))
        if first:
            handler.send_header("Retry-After", retry_after)
        handler.end_headers()
        handler.wfile.write(body)

    return route


def test_retry_after_replaces_the_backoff(registry: Hostile) -> None:
    registry.routes["/busy"] = _busy_once("1")
    f = fetcher({registry.host}, backoff=2.0)  # a backoff on top would add 1 to 3 s
    assert f.fetch(f"{registry.base}/busy", allowed_hosts={registry.host}).content == b"done"
    first, second = [r.at for r in registry.requests if r.path == "/busy"]
    assert 1.0 <= second - first < 1.4


def test_the_host_slot_is_free_while_waiting_for_retry_after(registry: Hostile) -> None:
    registry.routes["/busy"] = _busy_once("1")
    f = fetcher({registry.host}, concurrency=1)
    f.fetch(f"{registry.base}/", allowed_hosts={registry.host})  # robots.txt read before the race
    waiting = threading.Thread(target=f.fetch, args=(f"{registry.base}/busy",), kwargs={"allowed_hosts": {registry.host}})
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    f.fetch(f"{registry.base}/other", allowed_hosts={registry.host})
    elapsed = time.monotonic() - started
    waiting.join()
    assert elapsed < 0.5  # not held up by the other request's 1 s wait
    assert registry.paths()[-3:] == ["/busy", "/other", "/busy"]


def test_a_retry_after_beyond_the_maximum_fails_the_fetch_at_once(registry: Hostile) -> None:
    registry.routes["/busy"] = _busy_once("3600")
    started = time.monotonic()
    with pytest.raises(FetchError, match="Retry-After 3600 s, beyond the 300 s this run waits"):
        fetcher({registry.host}).fetch(f"{registry.base}/busy", allowed_hosts={registry.host})
    assert time.monotonic() - started < 1.0 and registry.paths().count("/busy") == 1


def test_retry_after_as_a_date() -> None:
    assert retry_after_seconds("120") == 120.0 and retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: retry now
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 < (retry_after_seconds(later) or 0) <= 60


# --- per-host counters ----------------------------------------------------------------------------------------

def test_per_host_counters(registry: Hostile) -> None:
    registry.routes["/busy"] = _busy_once("0")
    registry.routes["/same"] = lambda h: (h.send_response(304), h.end_headers())  # type: ignore[func-returns-value]
    f = fetcher({registry.host})
    f.fetch(f"{registry.base}/busy", allowed_hosts={registry.host})
    assert f.fetch(f"{registry.base}/same", allowed_hosts={registry.host}, validators={"If-None-Match": '"1"'}).not_modified
    for refused in (f"{registry.base}\\@x/", "http://other.example/"):
        with pytest.raises(Refused):
            f.fetch(refused, allowed_hosts={registry.host})
    stats = f.host_stats()
    assert stats[registry.host] == {"requests": 4, "not_modified": 1, "retries": 1, "refused": 0, "failed": 0,
                                    "bytes": len(b"no") + len(b"busy") + len(b"done")}
    assert stats["other.example"]["refused"] == 1 and stats["(malformed URL)"]["refused"] == 1


# --- robots.txt in linear time ---------------------------------------------------------------------------------

PATHOLOGICAL = """
from gongkai.crawler.fetcher import Robots
robots = Robots.parse(["User-agent: *", "Disallow: /" + "*a" * 40 + "*b$"])
assert robots.can_fetch("gongkai/0.1", "http://h/" + "a" * 20000)
assert not robots.can_fetch("gongkai/0.1", "http://h/" + "a" * 20000 + "b")
print("done")
"""


def test_a_pathological_robots_pattern_is_matched_in_linear_time() -> None:
    # a subprocess, because an exponential regex holds the GIL: the test could not even time itself out
    done = subprocess.run([sys.executable, "-c", PATHOLOGICAL], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "done", done.stderr


def test_robots_txt_through_protego_keeps_rfc_9309() -> None:
    robots = Robots.parse(["User-agent: *", "Disallow: /", "", "User-agent: github", "Disallow: /x",
                           "", "User-agent: gongkai", "Allow: /a$", "Disallow: /a", "Allow: /b", "Disallow: /b"])
    assert robots.can_fetch("gongkai/0.1 (+https://github.com/gongkai/gongkai)", "http://h/a")  # $ anchors
    assert not robots.can_fetch("gongkai/0.1", "http://h/ab")
    assert robots.can_fetch("gongkai/0.1", "http://h/b")  # a tie: Allow wins
    assert robots.can_fetch("gongkai/0.1 (+https://github.com/gongkai/gongkai)", "http://h/x")  # "github" is not our token
