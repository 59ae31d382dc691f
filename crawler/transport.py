"""The socket layer under requests: connections pinned to the addresses the fetcher resolved, and a total
deadline per request.

Pinning: the fetcher resolves an allowed host once (crawler.fetcher), and these connections connect to those
addresses only, never resolving the name again. So DNS that answers differently the second time (rebinding),
a proxy, or a parser differential deeper down cannot carry a request to another address; the TLS name check
and SNI still use the host name. After connecting, the socket's peer address is checked against the pinned
set once more. A connection made outside a fetcher call has no pins and is refused (fails closed).

Deadline: requests' timeouts bound each socket read, so a server that trickles a byte every few seconds keeps
a download alive forever. A watchdog thread shuts the socket down when the request's total deadline passes; the
blocked read returns and the fetcher reports the deadline.
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import BaseSSLError, HTTPConnection, HTTPException, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as U3TimeoutError
from urllib3.response import HTTPResponse
from urllib3.util import SKIP_HEADER
from urllib3.util import connection as u3connection
from urllib3.util.retry import Retry
from urllib3.util.ssl_match_hostname import CertificateError
from urllib3.util.timeout import Timeout
from urllib3.util.url import _encode_target

from gongkai.crawler import wire

Addresses = tuple[str, ...]
_current = threading.local()  # the Call of this thread's request in flight (requests is synchronous)


class Call:
    """One request: the addresses its host may be reached at, and its deadline watch."""

    def __init__(self, addresses: Addresses, deadline: float, on_sent: Callable[[], None] | None = None) -> None:
        self.addresses = addresses
        self.deadline = deadline
        self.on_sent = on_sent  # told once the request's bytes are written (the per-host delay counts from then)
        self.expired = False
        self._lock = threading.Lock()
        self._done = False
        self._conn: HTTPConnection | None = None
        self._sock: socket.socket | None = None

    def attach(self, conn: HTTPConnection) -> None:
        """The connection this request runs on (a reused one, or one about to connect)."""
        with self._lock:
            self._conn = conn
            if self.expired:
                _shutdown(conn.sock)

    def attach_socket(self, sock: socket.socket) -> None:
        """A socket just connected for this request: held here too, since urllib3 sets conn.sock only later."""
        with self._lock:
            self._sock = sock
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            _shutdown(self._sock)
            if self._conn is not None:
                _shutdown(self._conn.sock)

    def finish(self) -> None:
        with self._lock:  # after this, the watchdog can no longer touch a connection the pool may hand out again
            self._done = True
            self._conn = self._sock = None
            # the watch keeps a finished call until its deadline (minutes): it must not keep the run alive with it
            # (on_sent is the gate's request -> HostSlots -> the scheduler, the fetcher, the walk: every page and item)
            self.on_sent = None


class _Watchdog:
    """One thread for all deadlines (a thread per request would cost more than the request's own CPU)."""

    PRUNE_FLOOR = 256

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Call]] = []
        self._thread: threading.Thread | None = None
        self._prune_at = self.PRUNE_FLOOR

    def watch(self, current: Call) -> None:
        with self._cond:
            due = time.monotonic() + current.deadline
            if len(self._heap) >= self._prune_at:  # calls long finished would stay until their deadline: drop them
                self._heap = [entry for entry in self._heap if not entry[2]._done]
                heapq.heapify(self._heap)
                # the next prune when the heap has doubled: linear work per push on average, and at most twice the
                # calls in flight kept (a fixed 4,096 pushes kept up to 4,096 finished calls, about 1 MB, at any load)
                self._prune_at = max(self.PRUNE_FLOOR, 2 * len(self._heap))
            earliest = not self._heap or due < self._heap[0][0]
            heapq.heappush(self._heap, (due, id(current), current))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="gongkai-fetch-deadlines", daemon=True)
                self._thread.start()
            if earliest:  # the watchdog sleeps until the earliest deadline: wake it only when that changed
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                due, _, current = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            current._expire()  # a no-op when the request finished in time


_watchdog = _Watchdog()


def _shutdown(sock: socket.socket | None) -> None:
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class call:  # noqa: N801 - used as `with transport.call(...) as current:`, as the generator it replaced was
    """One request's Call, current in this thread and watched while the block runs. A class, not a @contextmanager
    generator: one of these per request, and the generator's frames and wrappers cost more than the rest of it."""

    __slots__ = ("_args", "_current", "_previous")

    def __init__(self, addresses: Addresses, deadline: float, on_sent: Callable[[], None] | None = None) -> None:
        self._args = (addresses, deadline, on_sent)

    def __enter__(self) -> Call:
        current = self._current = Call(*self._args)
        self._previous = getattr(_current, "call", None)
        _current.call = current
        _watchdog.watch(current)
        return current

    def __exit__(self, *exc: object) -> None:
        self._current.finish()
        _current.call = self._previous


def peer_allowed(sock: socket.socket, addresses: Addresses) -> bool:
    peer = ipaddress.ip_address(sock.getpeername()[0])
    return any(ipaddress.ip_address(a) == peer for a in addresses)


class _Pinned:
    """Mixin for urllib3 connections: connect to the current call's pinned addresses, never to a name."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        current: Call | None = getattr(_current, "call", None)
        if current is None or not current.addresses:
            raise NewConnectionError(self, f"no pinned address for {self.host}: connections go through the fetcher")  # type: ignore[arg-type]
        error: Exception | None = None
        for address in current.addresses:
            try:
                sock = u3connection.create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address, socket_options=self.socket_options
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(self, f"Connection to {self.host} ({address}) timed out")
                error.__cause__ = exc
                continue
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to connect to {self.host} ({address}): {exc}")  # type: ignore[arg-type]
                continue
            if not peer_allowed(sock, current.addresses):  # belt and braces: the peer is what we pinned
                sock.close()
                raise NewConnectionError(self, f"connected peer of {self.host} is not a resolved address")  # type: ignore[arg-type]
            current.attach_socket(sock)  # from here the deadline can cut it
            return sock
        assert error is not None
        raise error

    def putheader(self, header: str, *values: str) -> None:
        """urllib3's putheader: http.client's, unless a value is urllib3's SKIP_HEADER. The one plain str value of the
        fetcher's every header goes straight to http.client's (which validates name and value as before), without
        urllib3's generator over the values (a twentieth of a request's CPU in the HTTP client, six headers a request)."""
        if len(values) == 1 and type(values[0]) is str and values[0] != SKIP_HEADER:
            http.client.HTTPConnection.putheader(self, header, values[0])  # type: ignore[arg-type]
        else:
            super().putheader(header, *values)  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        current: Call | None = getattr(_current, "call", None)
        if current is not None:
            current.attach(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]
        if current is not None and current.on_sent is not None:
            current.on_sent()


class PinnedHTTPConnection(_Pinned, HTTPConnection):  # type: ignore[misc]  # putheader: urllib3 narrowed it
    response_class = wire.response_class  # http.client's, read with fewer recv calls and a cheaper header parse
    if wire.lean_getresponse is not None:  # urllib3's, doing less for a plainly read head (crawler.wire)
        getresponse = wire.lean_getresponse


class PinnedHTTPSConnection(_Pinned, HTTPSConnection):  # type: ignore[misc]
    response_class = wire.response_class
    if wire.lean_getresponse is not None:
        getresponse = wire.lean_getresponse


class ConnectionStack:
    """A pool's idle connections, last in first out, for pools that never block (the adapter's pool_block is off, so
    urllib3 only ever gets and puts without waiting): queue.LifoQueue's behaviour there without its three Conditions
    and their bound methods, some 2.4 kB a pool: 2.4 MB with 1,000 hosts in progress at once."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: list[Any] = []
        self._lock = threading.Lock()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._lock:
            if not self._items:
                raise queue.Empty  # urllib3 opens a new connection (a blocking pool would wait: refused by the adapter)
            return self._items.pop()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        # http.client keeps a keep-alive connection's last response (its head parsed, ~1.2 kB) until the connection's
        # next request, which drops it once read to its end: every idle connection held one, one per host in progress
        # (1,000 at 1,000 hosts). Dropped here as that request would (only a response read to its end: a connection
        # given back with its response unread still refuses its next request, as http.client has it)
        response = getattr(item, "_HTTPConnection__response", None)
        if response is not None and response.isclosed():
            item._HTTPConnection__response = None
        with self._lock:
            if 0 < self.maxsize <= len(self._items):
                raise queue.Full  # urllib3 closes the connection it could not keep
            self._items.append(item)

    def qsize(self) -> int:
        return len(self._items)


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection
    QueueCls = ConnectionStack  # type: ignore[assignment]


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection
    QueueCls = ConnectionStack  # type: ignore[assignment]


class PinnedAdapter(HTTPAdapter):
    """requests' adapter over pinned connections; mount it for http:// and https://."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("block") or len(args) > 2 and args[2]:
            raise ValueError("the fetcher's pools never block (ConnectionStack)")
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise RuntimeError("the fetcher never uses a proxy")  # trust_env is off; a proxy would bypass the pins


def exchange(pool: HTTPConnectionPool, method: str, url: str, body: Any, headers: Any, timeout: Timeout,
             retries: Retry) -> HTTPResponse:
    """pool.urlopen(method, url, body=body, headers=headers, timeout=timeout, redirect=False, assert_same_host=False,
    preload_content=False, decode_content=False, retries=retries, chunked=False) without what that call does for
    nothing here (a fifth of a request's CPU in the HTTP client): no proxy (none is ever set: PinnedAdapter), no retry
    (an error raised at once, as urlopen re-raised it under the fetcher's Retry(total=False)), no redirect, no body to
    rewind, no second copy of the headers (urlopen copied them to add a proxy's). What it keeps is urllib3's own:
    _get_conn (a dropped idle connection replaced), _make_request (the connect, TLS validation, sending, reading the
    head; its errors as it raises them), urlopen's wrapping of an error (SSLError, ProtocolError("Connection
    aborted.", ...)) and its closing of the connection on any error. The response holds its connection, given back to
    the pool by release_conn once read to its end (as preload_content=False has it). The request target is encoded as
    urlopen encoded it (_encode_target): the bytes sent are the same (tests/test_fetcher_path.py)."""
    url = _encode_target(url)
    conn = None
    clean_exit = False
    try:
        conn = pool._get_conn()
        conn.timeout = timeout.connect_timeout  # type: ignore[assignment]
        response = pool._make_request(conn, method, url, timeout=timeout, body=body, headers=headers, chunked=False,
                                      retries=retries, response_conn=conn, preload_content=False, decode_content=False)
        clean_exit = True
    except (U3TimeoutError, HTTPException, OSError, ProtocolError, BaseSSLError, SSLError, CertificateError) as e:
        new_e: Exception = e
        if isinstance(e, (BaseSSLError, CertificateError)):
            new_e = SSLError(e)
        elif isinstance(new_e, (OSError, HTTPException)):
            new_e = ProtocolError("Connection aborted.", new_e)
        if new_e is e:
            raise
        raise new_e from e
    finally:
        if not clean_exit:
            if conn:
                conn.close()
            pool._put_conn(None)
    return response  # type: ignore[return-value]


Resolver = Callable[[str, int], Addresses]
