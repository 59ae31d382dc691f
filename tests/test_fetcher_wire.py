"""The fetcher sends on urllib3's pool directly (requests' Session cost a third of the crawl's CPU in the HTTP
client): what goes on the wire must stay what requests' Session sent (request line, headers in order, body), and
a response must read as requests read it (decoded body, repeated headers joined). A raw loopback server records
the bytes; requests itself, configured as the fetcher used to configure it, is the reference."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import inspect
import io
import random
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from loopback_site import accept_each

from gongkai.crawler import wire as wire_reading
from gongkai.crawler.fetcher import USER_AGENT, Fetcher, FetchError

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

    accept_each(listener, lambda conn: _serve(conn, found))
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


# --- the response head read by crawler.wire (a larger buffer, email's parser only where a line needs it) ------------

ODD_RESPONSES: dict[str, bytes] = {
    "/folded": b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\tthree\r\nContent-Length: 4\r\n\r\nbody",
    "/duplicates": b"HTTP/1.1 200 OK\r\nX-Dup: a\r\nx-dup: b\r\nX-DUP:c\r\nSet-Cookie: s=1\r\nset-cookie: t=2\r\n"
                   b"Content-Length: 4\r\n\r\nbody",
    "/casing": b"HTTP/1.1 200 OK\r\ncOnTeNt-TyPe: text/html; charset=GBK\r\nETAG: \"E\"\r\nlast-MODIFIED: x  \r\n"
               b"CONTENT-LENGTH: 4\r\n\r\nbody",
    "/huge": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 3000) for i in range(95))
             + b"Content-Length: 4\r\n\r\nbody",
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nT: x\r\n\r\n",
    "/longer": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody and more the length does not cover",
    "/shorter": b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\nConnection: close\r\n\r\nbody",
    "/no-length": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"until the end " * 5000,
    "/lf-only": b"HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 4\n\nbody",
    "/not-a-header": b"HTTP/1.1 200 OK\r\nX-A: 1\r\nthis line has no colon\r\nX-B: 2\r\nContent-Length: 4\r\n\r\nbody",
    "/space-before-colon": b"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 4\r\n\r\nbody",
    "/odd-breaks": b"HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nX-C: a\x85b\x0bc\r\nContent-Length: 4\r\n\r\nbody",
    "/bytes": "HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"年度报告.pdf\"\r\nContent-Length: 4\r\n\r\nbody"
              .encode("gb18030"),
    "/multipart": b"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed\r\nContent-Length: 4\r\n\r\nbody",
    "/gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(gzip.compress(BODY * 50)), gzip.compress(BODY * 50)),
    "/from-line": b"HTTP/1.1 200 OK\r\nFrom nobody\r\nX-A: 1\r\nContent-Length: 4\r\n\r\nbody",
    "/empty-value": b"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:   \r\nContent-Length: 4\r\n\r\nbody",
    "/empty": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "/one-past-a-chunk": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (1024 * 1024 + 1, b"x" * (1024 * 1024 + 1)),
    "/continue": b"HTTP/1.1 100 Continue\r\nX-Skipped: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
}


@pytest.fixture()
def odd() -> Iterator[str]:
    """A server answering each path with its raw response from ODD_RESPONSES, then closing the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve(conn: socket.socket) -> None:
        buffer = bytearray()
        with conn:
            for _ in range(50):
                request = _read_request(conn, buffer)
                if request is None:
                    return
                path = request.split(b" ", 2)[1].decode()
                if path == "/robots.txt":
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                conn.sendall(ODD_RESPONSES[path])
                return  # each odd response ends its connection (a head with its length dropped reads to the end)

    accept_each(listener, serve)
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.mark.parametrize("path", sorted(ODD_RESPONSES))
def test_an_odd_response_reads_as_requests_read_it(odd: str, path: str) -> None:
    """Folded, repeated, oddly cased, huge, chunked, short or long bodies, lines email's parser treats specially:
    the fetcher (crawler.wire's head reading) gets what requests (http.client's) got, or fails where it failed."""
    url = f"http://{odd}{path}"
    try:
        reference = _as_requests_sent(url, "GET", {}, None)
        expected: tuple[int, dict[str, str], bytes] | None = (
            reference.status_code, {k.lower(): v for k, v in reference.headers.items()}, reference.content)
    except requests.RequestException:
        expected = None
    fetcher = Fetcher({odd}, delay=0.0, retries=0)
    try:
        got = fetcher.fetch(url, allowed_hosts={odd})
        result: tuple[int, dict[str, str], bytes] | None = (got.status, got.headers, got.content)
    except FetchError:
        result = None
    assert result == expected
    if path in ("/folded", "/duplicates", "/huge", "/chunked", "/gzip", "/empty", "/one-past-a-chunk"):
        assert result is not None  # these must read, not merely fail alike


def _old_parse(head: bytes) -> http.client.HTTPMessage:
    return http.client.parse_headers(io.BytesIO(head))


def _new_parse(head: bytes) -> http.client.HTTPMessage:
    return wire_reading.parse_header_lines(http.client._read_headers(io.BytesIO(head)))  # type: ignore[attr-defined]


def _as_seen(message: http.client.HTTPMessage) -> tuple[Any, ...]:
    """Everything http.client and urllib3 read from a parsed head (assert_header_parsing: defects and payload)."""
    payload = message.get_payload()
    if isinstance(payload, list):
        payload = [_as_seen(part) for part in payload]
    return (type(message), message.items(), payload, [type(d).__name__ for d in message.defects],
            message.get_unixfrom(), message.is_multipart(), message.get("content-length"),
            message.get("transfer-encoding"), message.get_all("x-dup"), message.get_content_type())


LINES = [b"X-Dup: a\r\n", b"x-dup:b\r\n", b"Content-Length: 4\r\n", b"Content-Type: text/html; charset=utf-8\r\n",
         b" folded\r\n", b"\tfolded\r\n", b"no colon\r\n", b": empty name\r\n", b"From nobody\r\n", b"From: a@b\r\n",
         b"X-A : spaced\r\n", b"X-CR: a\rb\r\n", b"X-NEL: a\x85b\r\n", b"X-VT: a\x0bb\x0cc\x1cd\x1de\x1ef\r\n",
         b"X-LF: lf only\n", b"X-Trail:  v  \r\n", b"X-Empty:\r\n", b"X-Latin: \xe5\xb9\xb4\xff\r\n",
         b"Content-Type: multipart/mixed; boundary=x\r\n", b"content-type: Message/rfc822\r\n", b"X-Nul: a\x00b\r\n",
         b"X-Ctl: \x01\x7f\r\n", b"X{}: braces\r\n", b"X-Tab:\tv\r\n", b"Transfer-Encoding: chunked\r\n",
         b"X-Colon: a:b:c\r\n", b"\r\n".join([b"X-Long: " + b"z" * 5000]) + b"\r\n", b"X-\x80: high name\r\n"]


def _generated_heads(count: int, seed: int = 10) -> Iterator[bytes]:
    rng = random.Random(seed)
    for line in LINES:
        yield line + b"\r\n"
    for _ in range(count):
        block = b"".join(rng.choice(LINES) for _ in range(rng.randint(0, 12)))
        if rng.random() < 0.2:  # a random byte somewhere: any of the 256
            at = rng.randint(0, len(block))
            block = block[:at] + bytes([rng.randrange(256)]) + block[at:]
        yield block + rng.choice([b"\r\n", b"\n"])
    yield b"X-A: 1\r\nX-B: 2\r\n"  # the end of the stream before the blank line
    yield b""
    yield b"X-Big: " + b"v" * 60000 + b"\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(98)) + b"\r\n"


def test_the_header_parse_builds_what_emails_parser_built() -> None:
    """crawler.wire_reading.parse_header_lines against http.client.parse_headers (kept here as the reference) on every
    saved response head in tests/ and on generated hostile heads: the same message as http.client and urllib3 see it."""
    heads = list(_generated_heads(3000))
    heads += [h.split(b"\r\n", 1)[1] for h in ODD_RESPONSES.values() if b"\r\n\r\n" in h and b"100 Continue" not in h]
    plain = 0
    for head in heads:
        assert _as_seen(_new_parse(head)) == _as_seen(_old_parse(head)), head[:200]
        plain += all(wire_reading._PLAIN_LINE.fullmatch(line) for line in http.client._read_headers(io.BytesIO(head))[:-1])  # type: ignore[attr-defined]
    assert plain > 100  # the fast path was taken often, not only the fallback


def test_response_begin_is_the_one_it_was_copied_from() -> None:
    """crawler.wire.Response.begin is http.client's begin (CPython 3.11) with the header parse swapped: it is used only
    on a Python whose begin is the one copied; any other reads heads with its own begin (the larger buffer only)."""
    from gongkai.crawler import transport

    source = inspect.getsource(http.client.HTTPResponse.begin)
    copied = hashlib.sha256(source.encode()).hexdigest() == wire_reading.BEGIN_SHA256
    assert "parse_headers(self.fp)" in source
    assert transport.PinnedHTTPConnection.response_class is (wire_reading.Response if copied else wire_reading.BufferedResponse)
    assert transport.PinnedHTTPSConnection.response_class is transport.PinnedHTTPConnection.response_class
    if sys.version_info[:2] == (3, 11):
        assert copied, "http.client's begin changed on this Python 3.11: re-copy it into crawler/wire.py"


def test_a_response_is_read_in_large_chunks(odd: str) -> None:
    """A 700 KB body without a length read to its end in large socket reads, not 8 KB ones (fewer recv calls, polls
    and hand-offs of the GIL)."""
    sizes: list[int] = []
    original = socket.socket.recv_into

    def recording(self: socket.socket, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        sizes.append(nbytes or len(buffer))
        return original(self, buffer, nbytes, flags)

    fetcher = Fetcher({odd}, delay=0.0, retries=0)
    fetcher.allowed_by_robots(f"http://{odd}/")
    socket.socket.recv_into = recording  # type: ignore[method-assign]
    try:
        got = fetcher.fetch(f"http://{odd}/no-length", allowed_hosts={odd})
    finally:
        socket.socket.recv_into = original  # type: ignore[method-assign]
    assert got.content == b"until the end " * 5000
    # the head read (http.client: 8 KB) takes up to wire.BUFFER (64 KB until each response in flight held that much:
    # tests/test_crawl_memory.py), the body past it is read straight into the body in large reads, never 8 KB ones
    from gongkai.crawler import wire

    assert sizes and sizes[0] >= wire.BUFFER >= 16 * 1024
    assert len(sizes) > 1 and min(sizes[1:-1] or sizes[1:]) >= 64 * 1024, sizes
