"""The fetch path's shortcuts past urllib3's machinery (crawler.transport.exchange, crawler.wire.getresponse and
_headers_of, the fetcher's header merging and its empty-body read) against what they replace, side by side on
loopback: the same bytes sent, the same response read, the same errors raised, the connection kept as before."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import inspect
import io
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from loopback_site import accept_each
from test_fetcher_wire import ODD_RESPONSES, _generated_heads, _read_request
from urllib3.connection import _normalize_header_values

from gongkai.crawler import transport
from gongkai.crawler import wire as wire_reading
from gongkai.crawler.fetcher import NO_RETRIES, Fetcher, FetchError, TooLarge, _lower_cased
from gongkai.crawler.urls import parse


class Server:
    """A raw loopback server: each request's bytes kept, each answered by `answer(request)` (None: hang up)."""

    def __init__(self, answer: Callable[[bytes], bytes | None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.seen: list[bytes] = []
        self.connections = 0
        self._lock = threading.Lock()
        self.answer = answer
        accept_each(self.listener, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        buffer = bytearray()
        with conn:
            for _ in range(50):  # a bound: the tests send a handful of requests per connection
                request = _read_request(conn, buffer)
                if request is None:
                    return
                self.seen.append(request)
                if request.startswith(b"GET /robots.txt"):
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                reply = self.answer(request)
                if reply is None:
                    return
                conn.sendall(reply)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture()
def server() -> Iterator[Callable[[Callable[[bytes], bytes | None]], Server]]:
    made: list[Server] = []

    def make(answer: Callable[[bytes], bytes | None]) -> Server:
        made.append(Server(answer))
        return made[-1]

    yield make
    for one in made:
        one.close()


BROKEN: dict[str, bytes | None] = {
    "hang-up": None,  # the connection closed before any answer: RemoteDisconnected
    "garbage": b"this is not HTTP\r\n\r\n",  # BadStatusLine
    "bad-version": b"HTTP/2.5 200 OK\r\nContent-Length: 0\r\n\r\n",  # UnknownProtocol
    "long-line": b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n",  # LineTooLong
    "too-many": b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",  # HTTPException: got more than 100 headers
}


def _outcome(send: Callable[[], urllib3.HTTPResponse]) -> tuple[Any, ...]:
    """What a caller sees of one exchange: the response read whole, or the error's type and text."""
    try:
        raw = send()
    except Exception as exc:  # noqa: BLE001 - the very exception is what is compared
        return ("raised", type(exc), str(exc), type(exc.__context__ or exc.__cause__))
    body = raw.read(decode_content=True)
    raw.release_conn()
    return ("read", raw.status, list(raw.headers.items()), body, raw.version, raw.reason)


@pytest.mark.parametrize("kind", sorted(BROKEN) + ["ok", "gzip", "refused"])
def test_exchange_raises_and_reads_as_urlopen(server: Callable[..., Server], kind: str) -> None:
    """transport.exchange against pool.urlopen called as the fetcher called it: each a fresh pool on the same loopback
    server (or a closed port), the same request under the same pinned call; the same response, or the same error."""
    body = gzip.compress("年度报告".encode() * 100)
    replies = {"ok": b"HTTP/1.1 200 OK\r\nX-Dup: a\r\nx-dup: b\r\nContent-Length: 4\r\n\r\nbody",
               "gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)}
    site = server(lambda request: replies.get(kind, BROKEN.get(kind)))
    host = site.host
    if kind == "refused":
        spare = socket.create_server(("127.0.0.1", 0))
        host = f"127.0.0.1:{spare.getsockname()[1]}"
        spare.close()  # nothing listens there now: the connect is refused
    headers = {"User-Agent": "t", "Accept-Encoding": "gzip, deflate", "If-None-Match": '"e"'}
    timeout = urllib3.Timeout(connect=5, read=5)
    outcomes, sent = [], []
    for way in ("urlopen", "exchange"):
        fetcher = Fetcher({host}, delay=0.0, retries=0)
        pool = fetcher._pool(parse(f"http://{host}/"))
        before = len(site.seen)
        with transport.call(("127.0.0.1",), 10):
            if way == "urlopen":
                outcomes.append(_outcome(lambda pool=pool: pool.urlopen(
                    "GET", "/a/年度 报告?q=1", body=None, headers=headers, redirect=False, assert_same_host=False,
                    preload_content=False, decode_content=False, retries=NO_RETRIES, timeout=timeout, chunked=False)))
            else:
                outcomes.append(_outcome(lambda pool=pool: transport.exchange(pool, "GET", "/a/年度 报告?q=1", None, headers,
                                                                    timeout, NO_RETRIES)))
        sent.append(site.seen[before:])
    assert outcomes[0] == outcomes[1]
    assert sent[0] == sent[1]  # byte for byte, the target encoded alike
    if kind in ("ok", "gzip"):
        assert outcomes[1][0] == "read" and sent[1] and b"GET /a/%E5%B9%B4%E5%BA%A6%20" in sent[1][0]
    else:
        assert outcomes[1][0] == "raised"


def test_the_fetcher_reports_a_broken_answer_as_before(server: Callable[..., Server]) -> None:
    """The reasons a crawl records (FetchError.reason) keep requests' names and urllib3's words."""
    site = server(lambda request: None)
    fetcher = Fetcher({site.host}, delay=0.0, retries=0)
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://{site.host}/x", allowed_hosts={site.host})
    assert caught.value.reason == ("gave up after 1 attempts (ConnectionError: ('Connection aborted.', "
                                   "RemoteDisconnected('Remote end closed connection without response')))")


def test_the_response_headers_are_urllib3s() -> None:
    """wire._headers_of builds the HTTPHeaderDict urllib3's getresponse built, and fetcher._lower_cased reads it as
    {name.lower(): headers[name]} read it, on every generated and saved head (folded lines included)."""
    heads = list(_generated_heads(1500, seed=11))
    heads += [h.split(b"\r\n", 1)[1] for h in ODD_RESPONSES.values() if b"\r\n\r\n" in h and b"100 Continue" not in h]
    for head in heads:
        made = [wire_reading.parse_header_lines(http.client._read_headers(io.BytesIO(head)))  # type: ignore[attr-defined]
                for _ in range(2)]
        ours, theirs = wire_reading._headers_of(made[0]), urllib3.HTTPHeaderDict(_normalize_header_values(made[1]))
        assert list(ours.items()) == list(theirs.items()) and ours._container == theirs._container, head[:200]
        assert made[0].items() == made[1].items()  # both normalised the message alike (a folded value, in place)
        assert _lower_cased(ours) == {name.lower(): theirs[name] for name in theirs}


def test_the_plain_block_path_is_taken_and_agrees() -> None:
    """parse_header_lines' whole-block path is the common one and reads as the line-by-line path (tests/
    test_fetcher_wire.py compares both with email's parser on the same heads)."""
    taken = 0
    for head in _generated_heads(1500, seed=12):
        lines = http.client._read_headers(io.BytesIO(head))  # type: ignore[attr-defined]
        block = b"".join(lines[:-1])
        if wire_reading._PLAIN_BLOCK.fullmatch(block) and not wire_reading._SPECIAL_TYPE.search(block):
            taken += 1
            assert all(wire_reading._PLAIN_LINE.fullmatch(line) for line in lines[:-1])
    assert taken > 100


def test_getresponse_is_the_one_it_follows() -> None:
    """crawler.wire.getresponse follows urllib3's HTTPConnection.getresponse (2.8.0): used only where urllib3's is the
    one followed (its source's sha256); any other urllib3 gets its responses with its own."""
    source = inspect.getsource(urllib3.connection.HTTPConnection.getresponse)
    followed = hashlib.sha256(source.encode()).hexdigest() == wire_reading.GETRESPONSE_SHA256
    for cls in (transport.PinnedHTTPConnection, transport.PinnedHTTPSConnection):
        assert (cls.getresponse is wire_reading.getresponse) == followed
    if urllib3.__version__ == "2.8.0":
        assert followed, "urllib3 2.8.0's getresponse changed? re-follow it in crawler/wire.py"


@pytest.mark.parametrize("validators", [
    {}, {"If-None-Match": '"e"', "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"},
    {"user-agent": "other", "ACCEPT": "text/html", "X-New": "1", "if-none-match": "a", "If-None-Match": "b"},
])
def test_the_request_headers_merge_as_httpheaderdict_merged(validators: dict[str, str]) -> None:
    """A validator named like a default (in any case) takes its place with its own spelling, as HTTPHeaderDict.update
    had it; new ones go last in their order."""
    fetcher = Fetcher({"example.org"}, delay=0.0)
    reference = urllib3.HTTPHeaderDict({"User-Agent": fetcher.user_agent, "Accept-Encoding": "gzip, deflate",
                                        "Accept": "*/*", "Connection": "keep-alive"})
    reference.update(validators)
    assert list(fetcher._request_headers(validators).items()) == list(reference.items())


def test_empty_bodies_keep_the_connection_and_the_caps(server: Callable[..., Server]) -> None:
    """A 304, a 204-like empty 200 and an empty gzip body read as before: content b"", the one connection reused for
    every request (the empty body's end read, the connection given back); a 304 declaring a length past the cap is
    still refused."""
    empty_gzip = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n"

    def answer(request: bytes) -> bytes:
        if b"/huge" in request:
            return b"HTTP/1.1 304 Not Modified\r\nContent-Length: 999999999\r\n\r\n"
        if b"/gz" in request:
            return empty_gzip
        if b"If-None-Match" in request:
            return b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n'
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    site = server(answer)
    fetcher = Fetcher({site.host}, delay=0.0, retries=0, max_bytes=1000)
    for path, validators, status in (("/a", {"If-None-Match": '"e"'}, 304), ("/b", None, 200),
                                     ("/a", {"If-None-Match": '"e"'}, 304), ("/gz", None, 200)):
        got = fetcher.fetch(f"http://{site.host}{path}", allowed_hosts={site.host}, validators=validators)
        assert (got.status, got.content) == (status, b"")
    assert site.connections == 1 and len(site.seen) == 5  # robots.txt and four requests, on one connection
    with pytest.raises(TooLarge):
        fetcher.fetch(f"http://{site.host}/huge", allowed_hosts={site.host})


def test_putheader_writes_and_refuses_as_urllib3s() -> None:
    """The pinned connections' putheader against urllib3's: the same head lines, the same refusals (a line break in a
    value, a bad name: http.client's checks; SKIP_HEADER only where urllib3 allows it)."""
    from urllib3.connection import HTTPConnection
    from urllib3.util import SKIP_HEADER

    calls: list[tuple[Any, ...]] = [("X-A", "1"), ("User-Agent", SKIP_HEADER), ("X-Skip", SKIP_HEADER), ("X-Int", 5),
                                    ("X-Two", "a", "b"), ("X-Bytes", b"v"), ("X-Inject", "v\r\nX-Evil: 1"),
                                    ("Bad Name", "v"), ("X-Latin", "é"), ("X-Wide", "年"), ("X-Empty", "")]
    seen = []
    for cls in (HTTPConnection, transport.PinnedHTTPConnection):
        conn = cls("127.0.0.1", 80)
        conn.putrequest("GET", "/", skip_host=True, skip_accept_encoding=True)
        outcomes = []
        for call in calls:
            try:
                conn.putheader(*call)
                outcomes.append("ok")
            except (ValueError, UnicodeError) as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
        seen.append((outcomes, list(conn._buffer)))  # type: ignore[attr-defined]
    assert seen[0] == seen[1]
    assert seen[1][0].count("ok") < len(calls)  # the refusals were exercised


def test_the_response_headers_get_as_httpheaderdict_gets() -> None:
    """wire.ResponseHeaders.get answers as HTTPHeaderDict's (Mapping's) get: present, repeated, missing, a default,
    any case, a bytes name."""
    items = [("Content-Length", "4"), ("X-Dup", "a"), ("x-dup", "b"), ("ETag", '"e"'), ("X-Empty", "")]
    ours, theirs = wire_reading.ResponseHeaders(), urllib3.HTTPHeaderDict(items)
    for name, value in items:
        ours.add(name, value)
    for key in ("content-length", "CONTENT-LENGTH", "x-dup", "X-Dup", "etag", "x-empty", "content-encoding",
                b"X-Dup", b"missing", "transfer-encoding"):
        assert ours.get(key) == theirs.get(key), key
        assert ours.get(key, "default") == theirs.get(key, "default"), key
    assert isinstance(ours, urllib3.HTTPHeaderDict) and ours == theirs
