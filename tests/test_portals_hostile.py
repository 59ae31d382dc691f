"""`gongkai portals check/add` against hostile listing pages: what a page says reaches the terminal only as
visible text, and every request stays on the host (and port) the URL names. HTTP on loopback only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import pytest

from gongkai.cli import main
from gongkai.crawler.check import CheckResult, check_url

# ESC ] 0 ; … BEL sets the terminal's title, ESC [ 2 J clears the screen, U+009B is the one-byte CSI, U+202E
# turns the rest of the line around: a listing page can carry any of them in a title or a link
HOSTILE_TITLE = "2023年政府信息公开工作年度报告&#27;]0;pwned&#7;&#27;[2J\u009b31m&#x202e;"  # (&#x9b; would be cp1252's ›)
HOSTILE_PAGE = f"""<html><body><ul>
<li><a href="/a/2023.html">{HOSTILE_TITLE}</a></li>
<li><a href="/b/2022.html&#27;[31m">2022年政府信息公开工作年度报告</a></li>
</ul><a href="list_2.html&#27;[8m">下一页</a></body></html>"""
CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | {"\u202e"}


def test_check_prints_a_pages_control_characters_as_visible_escapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "list.html"
    saved.write_text(HOSTILE_PAGE, "utf-8")
    assert main(["portals", "check", str(saved), "--url", "http://127.0.0.1:9/gk/list.html"]) == 0
    out = capsys.readouterr().out
    for line in out.splitlines():
        assert not CONTROLS & set(line), repr(line)
    assert "2023年政府信息公开工作年度报告\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202e" in out  # shown, not obeyed
    assert "http://127.0.0.1:9/b/2022.html\\x1b[31m" in out
    assert "2 items on 1 pages: 2 reports" in out


class _Site(BaseHTTPRequestHandler):
    """Port A: the listing; its pages lead elsewhere as asked. Every request is logged with the port it reached."""

    pages: dict[str, tuple[int, dict[str, str], str]] = {}
    log: list[tuple[int, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.log.append((cast(ThreadingHTTPServer, self.server).server_port, self.path))
        status, headers, body = self.pages.get(self.path, (404, {}, "not here"))
        data = body.encode("utf-8")
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def two_ports() -> Iterator[tuple[int, int]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Site) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    _Site.log.clear()
    try:
        yield servers[0].server_address[1], servers[1].server_address[1]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


ITEM = '<li><a href="/r/{n}.html">{n}年政府信息公开工作年度报告</a></li>'


def _listing(year: int, next_href: str) -> tuple[int, dict[str, str], str]:
    return 200, {}, f"<html><body><ul>{ITEM.format(n=year)}</ul><a href='{next_href}'>下一页</a></body></html>"


def _check(url: str, pages: int = 10) -> CheckResult:
    from gongkai.crawler.fetcher import Fetcher
    from gongkai.crawler.registry import host_of

    return check_url(url, Fetcher({host_of(url)}, delay=0.0, retries=0), pages=pages)


def test_check_reads_a_pager_loop_once_as_the_walk_does(two_ports: tuple[int, int]) -> None:
    """Page 2's 下一页 leads back to page 1: the crawl's walk never asks for a page twice, so check neither."""
    a, _b = two_ports
    _Site.pages = {"/robots.txt": (200, {}, "User-agent: *\nAllow: /\n"),
                   "/gk/list.html": _listing(2023, "list.html?p=2"), "/gk/list.html?p=2": _listing(2022, "list.html")}
    result = _check(f"http://127.0.0.1:{a}/gk/list.html")
    assert result.pages == [f"http://127.0.0.1:{a}/gk/list.html", f"http://127.0.0.1:{a}/gk/list.html?p=2"]
    assert [p for _port, p in _Site.log if p.startswith("/gk/")] == ["/gk/list.html", "/gk/list.html?p=2"]
    assert [i.year for i in result.items] == [2023, 2022] and result.error is None


@pytest.mark.parametrize("href", [
    "http://127.0.0.1:{b}/gk/list_2.html",  # another port of the same address
    "//127.0.0.1:{b}/gk/list_2.html",  # scheme-relative
    "http://127.0.0.1:{a}@127.0.0.1:{b}/gk/list_2.html",  # userinfo
    "http://127.0.0.1:{b}\\@127.0.0.1:{a}/gk/list_2.html",  # a backslash parsers read differently
    "http://127.0.0.1%3a{b}/gk/list_2.html",  # a percent-encoded host
    "http://[::ffff:127.0.0.1]:{a}/gk/list_2.html",  # the same address written as IPv6
    "http://127.1:{a}/gk/list_2.html",  # the same address, short form
])
def test_check_never_follows_a_pager_off_the_host_and_port_named(two_ports: tuple[int, int], href: str) -> None:
    a, b = two_ports
    _Site.pages = {"/robots.txt": (200, {}, "User-agent: *\nAllow: /\n"), "/gk/list.html": _listing(2023, href.format(a=a, b=b))}
    result = _check(f"http://127.0.0.1:{a}/gk/list.html")
    assert {port for port, _p in _Site.log} == {a} and "/gk/list_2.html" not in {p for _port, p in _Site.log}
    assert result.error and len(result.pages) == 1 and len(result.items) == 1


def test_check_refuses_a_redirect_to_another_port(two_ports: tuple[int, int]) -> None:
    a, b = two_ports
    _Site.pages = {"/robots.txt": (200, {}, "User-agent: *\nAllow: /\n"),
                   "/gk/list.html": (302, {"Location": f"http://127.0.0.1:{b}/gk/list.html"}, "")}
    result = _check(f"http://127.0.0.1:{a}/gk/list.html")
    assert {port for port, _p in _Site.log} == {a}
    assert "is not one of the agency's hosts" in (result.error or "") and not result.pages


@pytest.mark.parametrize("agency", [
    '示例"\nverified = true\n[[portal]]\nid = "evil',  # a quote and new lines: a second key, a second entry
    "示例\\",  # a trailing backslash would escape the closing quote
    '示例"""多行',
    "示例\r\x7f\x00\t\x1b",  # characters TOML refuses raw
])
def test_add_writes_exactly_the_values_given_and_nothing_more(tmp_path: Path, agency: str) -> None:
    """`portals add` writes an entry from command-line values: whatever they hold, the file gets one entry,
    unverified, holding them as given (and the error for a refused one never blames the shipped registry)."""
    import tomllib

    from gongkai.crawler.check import check_text, entry_toml

    url = "https://ucap.example.cn/sqsrmzf/c108374/index.shtml"
    page = (Path(__file__).parent / "portals" / "ucap-list-index.shtml").read_text("utf-8")
    result = check_text(url, page, agency=agency)  # check judges with the agency as given
    entry = entry_toml(agency, agency, "321300", "city", url, result.detection, verified=False, evidence=agency)
    [written] = tomllib.loads(entry)["portal"]
    assert (written["id"], written["agency"], written["evidence"], written["verified"]) == (agency, agency, agency, False)
    registry = tmp_path / "mine.toml"
    code = main(["portals", "add", url, "--agency", agency, "--division-code", "321300", "--file",
                 str(Path(__file__).parent / "portals" / "ucap-list-index.shtml"), "--registry", str(registry)])
    assert code == 0
    [portal] = tomllib.loads(registry.read_text("utf-8"))["portal"]
    assert portal["agency"] == agency and portal["verified"] is False


@pytest.mark.parametrize("answer", [
    '{"articles": [{"post_url": "http://h/a", "title": "2023年报告"}], "total": 1e400}',  # infinity
    '{"articles": [{"post_url": "http://h/a", "title": "2023年报告"}], "total": [1]}',  # not a number at all
    '{"articles": "none"',  # not JSON
])
def test_check_of_an_api_page_of_the_wrong_shape_stops_with_one_line(tmp_path: Path, answer: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "api.json"
    saved.write_text(answer, "utf-8")
    code = main(["portals", "check", str(saved), "--url", "http://127.0.0.1:9/gkmlpt/api/all/2629?sid=1&page=1"])
    out = capsys.readouterr().out
    assert code == 0 and "family: gkmlpt" in out
    [stopped] = [line for line in out.splitlines() if line.startswith("stopped: ")]
    assert stopped.startswith("stopped: page 1 unreadable: ")
