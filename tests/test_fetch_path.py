"""The fetch path's per-host caches (benchmarks/bench_fetch_path.py measures their worth): what a request looks up
is built once per host, and dropped with the host's other state when the scheduler says it is finished."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from loopback_site import accept_each

from gongkai.crawler.fetcher import USER_AGENT, Fetcher
from gongkai.crawler.scheduler import HostSlots, Reservation

NOT_MODIFIED = b'HTTP/1.1 304 Not Modified\r\nETag: "e1"\r\nContent-Length: 0\r\n\r\n'
NO_ROBOTS = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture()
def server() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback host answering robots.txt 404 and anything else 304; every request head recorded."""
    yield from _serving(NO_ROBOTS, [])


def _serving(robots: bytes, times: list[float]) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback host answering robots.txt `robots` and anything else 304; every request head (and when it came,
    in `times`) recorded."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        buffer = b""
        with conn:
            for _ in range(50):  # a bound: the tests send a handful of requests per connection
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                seen.append(head)
                times.append(time.monotonic())
                conn.sendall(robots if head.startswith(b"GET /robots.txt ") else NOT_MODIFIED)

    accept_each(listener, serve)
    yield f"127.0.0.1:{listener.getsockname()[1]}", seen
    listener.close()


def test_a_finished_host_leaves_no_pool_key_and_is_read_afresh(server: tuple[str, list[bytes]]) -> None:
    host, seen = server
    fetcher = Fetcher({host}, delay=0.0, retries=0)
    validators = {"If-None-Match": '"e1"'}
    for path in ("/a", "/b"):
        assert fetcher.fetch(f"http://{host}{path}", allowed_hosts={host}, validators=validators).not_modified
    assert len(fetcher._pool_keys) == 1  # one key for the host, built once for both requests
    assert [h.split(b"\r\n", 1)[0] for h in seen] == [b"GET /robots.txt HTTP/1.1", b"GET /a HTTP/1.1", b"GET /b HTTP/1.1"]
    # a conditional GET, byte for byte as it went out before these caches (headers in this order, nothing else)
    assert seen[2] == (f"GET /b HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept-Encoding: gzip, deflate\r\n"
                       'Accept: */*\r\nConnection: keep-alive\r\nIf-None-Match: "e1"').encode()
    fetcher.forget_host(host)
    assert fetcher._pool_keys == {} and fetcher._robots == {}  # nothing of the host held once it is finished
    assert fetcher.fetch(f"http://{host}/c", allowed_hosts={host}, validators=validators).not_modified
    assert [h.split(b"\r\n", 1)[0] for h in seen[3:]] == [b"GET /robots.txt HTTP/1.1", b"GET /c HTTP/1.1"]
    assert fetcher.host_stats()[host] == {"requests": 5, "not_modified": 3, "retries": 0, "refused": 0, "failed": 0,
                                          "bytes": 0}


CRAWL_DELAY = 1.0
_RULES = b"User-agent: *\nCrawl-delay: %d\n" % CRAWL_DELAY
DELAYING_ROBOTS = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(_RULES), _RULES)


def test_no_request_finds_a_hosts_robots_rules_before_their_crawl_delay_is_kept() -> None:
    """Rules are found without a lock once read (fetchpath): they must not be found before their Crawl-delay is the
    gate's. They were published first, and a scheduled turn of another thread that came in between found them and went
    out at the configured delay (0 here), right behind the robots.txt request. The request that read robots.txt (a
    redirect hop's, say: not a scheduled turn) waits the Crawl-delay too."""
    times: list[float] = []
    served = _serving(DELAYING_ROBOTS, times)
    host, seen = next(served)
    try:
        slots = HostSlots(1, 0.0)
        fetcher = Fetcher({host}, delay=0.0, retries=0, gate=slots)
        respect = fetcher._respect_crawl_delay
        other: list[threading.Thread] = []

        def scheduled_turn() -> None:
            turn = slots.try_reserve(host)
            assert isinstance(turn, Reservation)
            with slots.holding(turn):
                fetcher.fetch(f"http://{host}/b", allowed_hosts={host})

        def respect_slowly(key: str, rules: object) -> None:
            # the host's next turn is given while this thread is between reading robots.txt and keeping its delay
            other.append(threading.Thread(target=scheduled_turn))
            other[0].start()
            time.sleep(0.3)
            respect(key, rules)  # type: ignore[arg-type]

        fetcher._respect_crawl_delay = respect_slowly  # type: ignore[method-assign]
        assert fetcher.fetch(f"http://{host}/a", allowed_hosts={host}).not_modified
        other[0].join(10)
    finally:
        next(served, None)  # the listener closed
    heads = [h.split(b"\r\n", 1)[0] for h in seen]
    assert heads == [b"GET /robots.txt HTTP/1.1", b"GET /b HTTP/1.1", b"GET /a HTTP/1.1"]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) >= CRAWL_DELAY - 0.05, gaps  # every request the robots.txt's Crawl-delay after the one before


def test_the_request_after_robots_txt_waits_its_crawl_delay_with_the_fetchers_own_gate() -> None:
    """A fetcher without the scheduler (its own per-host gates): the gate's next start was set by the configured delay
    when robots.txt was sent, so the request right after it went out at that delay, not at the Crawl-delay."""
    times: list[float] = []
    served = _serving(DELAYING_ROBOTS, times)
    host, seen = next(served)
    try:
        fetcher = Fetcher({host}, delay=0.0, retries=0)
        assert fetcher.fetch(f"http://{host}/a", allowed_hosts={host}).not_modified
    finally:
        next(served, None)  # the listener closed
    assert [h.split(b"\r\n", 1)[0] for h in seen] == [b"GET /robots.txt HTTP/1.1", b"GET /a HTTP/1.1"]
    assert times[1] - times[0] >= CRAWL_DELAY - 0.05, times
