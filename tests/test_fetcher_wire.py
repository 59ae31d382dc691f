"""The fetcher sends on urllib3's pool directly (requests' Session cost a third of the crawl's CPU in the HTTP
client): what goes on the wire must stay what requests' Session sent (request line, headers in order, body), and
a response must read as requests read it (decoded body, repeated headers joined). A raw loopback server records
the bytes; requests itself, configured as the fetcher used to configure it, is the reference."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from gongkai.crawler.fetcher import USER_AGENT, Fetcher

BODY = "年度报告 ok".encode() * 100


@dataclass
class Wire:
    port: int
    seen: list[bytes] = field(default_factory=list)  # each request's bytes: head and body

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def _read_request(conn: socket.socket, buffer: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    buffer[:] = rest[length:]
    return head + b"\r\n\r\n" + rest[:length]


def _serve(conn: socket.socket, wire: Wire) -> None:
    buffer = bytearray()
    with conn:
        for _ in range(20):  # a bound: the tests send a handful of requests per connection
            request = _read_request(conn, buffer)
            if request is None:
                return
            wire.seen.append(request)
            if request.startswith(b"GET /robots.txt"):
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            body = gzip.compress(BODY)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Encoding: gzip\r\n"
                         b"X-Dup: one\r\nSet-Cookie: a=1; Path=/\r\nX-Dup: two\r\nETag: \"e1\"\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.fixture()
def wire() -> Iterator[Wire]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    found = Wire(listener.getsockname()[1])

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(conn, found), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield found
    listener.close()


def _as_requests_sent(url: str, method: str, headers: dict[str, str], data: dict[str, str] | None) -> requests.Response:
    """The reference: requests' Session as the fetcher configured it before."""
    with requests.Session() as session:
        session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"})
        session.trust_env = False
        return session.request(method, url, headers=headers, data=data, allow_redirects=False, timeout=5)


@pytest.mark.parametrize(("path", "method", "validators", "data"), [
    ("/a/年度报告 2021.html?x=1&y=二", "GET", {"If-None-Match": '"e0"', "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"},
     None),
    ("/search.jsp", "POST", {}, {"q": "年度报告", "page": "2"}),
    ("/empty-form", "POST", {}, {}),
])
def test_a_request_goes_out_as_requests_sent_it_and_reads_as_requests_read_it(
        wire: Wire, path: str, method: str, validators: dict[str, str], data: dict[str, str] | None) -> None:
    url = f"http://{wire.host}{path}"
    reference = _as_requests_sent(url, method, validators, data)
    expected = wire.seen.pop()
    fetcher = Fetcher({wire.host}, delay=0.0, retries=0)
    got = fetcher.fetch(url, allowed_hosts={wire.host}, validators=validators, method=method, data=data)
    assert wire.seen[0].startswith(b"GET /robots.txt HTTP/1.1\r\n")
    assert wire.seen[-1] == expected  # request line, every header in its order, the body: byte for byte
    assert got.content == reference.content == BODY
    assert got.status == reference.status_code == 200
    assert got.headers == {k.lower(): v for k, v in reference.headers.items()}
    assert got.headers["x-dup"] == "one, two" and got.etag == '"e1"'


def test_a_cookie_a_host_sets_is_not_sent_back(wire: Wire) -> None:
    """No cookie jar: requests kept one per thread, so whether a host got its cookie back depended on which worker
    thread served it next (at 1,000 hosts, mostly another). Now no request carries one: the crawl does not depend
    on the thread a request happens to run on."""
    fetcher = Fetcher({wire.host}, delay=0.0, retries=0)
    for name in ("first", "second"):
        fetcher.fetch(f"http://{wire.host}/{name}.html", allowed_hosts={wire.host})
    assert len(wire.seen) == 3
    assert all(b"\r\ncookie:" not in request.lower() for request in wire.seen)
