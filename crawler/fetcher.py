"""Polite, safe HTTP: robots.txt, per-host delay and concurrency, retries with backoff (or the server's
Retry-After), conditional GET, a size cap and a total deadline per download, per-host counters, and
redirects followed by hand so that no request ever leaves the registry's hosts.

Where a URL goes is decided in three places, each judging what is actually used: crawler.urls (the one
parse: the string requests sends), Fetcher._check (that URL's host against the registry and the portal,
robots.txt), crawler.transport (the socket connects only to the addresses that host resolved to)."""

from __future__ import annotations

import contextvars
import datetime
import email.utils
import functools
import ipaddress
import random
import re
import resource
import socket
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from email.message import Message
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connectionpool import port_by_scheme
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    DecodeError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util import Retry, Timeout

from gongkai.crawler import transport, urls
from gongkai.crawler.robots import DISALLOW_ALL, Robots
from gongkai.crawler.transport import Addresses, PinnedAdapter, Resolver
from gongkai.crawler.urls import SafeURL
from gongkai.extractors import html_reader

USER_AGENT = "gongkai/0.1 (+https://github.com/gongkai/gongkai)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})  # requests' is_redirect: these with a Location
MAX_REDIRECTS = 5
READ_CHUNK = 1024 * 1024  # a body is read (and decoded) at most this much at a time, and never past the size cap + 1
# a body going into a sink (a file of the crawl, streamed into the archive) is read at most this much at a time. Read in
# one piece of its declared length (or READ_CHUNK at a time), each file in flight held a buffer of its size, up to 1 MB,
# until written: a crawl's memory grew with the files in flight (128 threads could hold 128 MB of report PDFs at once;
# the benchmark's 290 kB PDFs, 290 kB each, mapped from the system as glibc maps every block of 128 kB or more). Just
# under glibc's mmap threshold (tune_malloc), a chunk freed is the next one's, in the heap. Its cost, measured: some
# 20 us of CPU per 290 kB file (3 reads instead of 1: 150 us against 130), 40 us at 64 kB
SINK_CHUNK = 120 * 1024
# urllib3 never retries nor redirects by itself (the fetcher does both, each attempt counted and each hop checked);
# one immutable instance for every request (urllib3 built one per request from `retries=False`)
NO_RETRIES = Retry(total=False, redirect=False)


class FetchError(Exception):
    """A URL could not be fetched (after retries); `status` is the last HTTP status if there was one."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.status = url, reason, status


class Refused(FetchError):
    """Not requested at all: robots.txt disallows it, or its host is not the agency's."""


class TooLarge(FetchError):
    pass


class DeadlineExceeded(FetchError):
    """The whole download (headers and body) took longer than the fetcher's deadline."""


class _Transient(Exception):
    """A timeout, a reset or a body cut short: worth another attempt. `reason` names it as requests did."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Reply:
    """One HTTP response, its body read under the size cap and the deadline. Headers: lower-case names, repeated
    headers joined with ", " (as requests' CaseInsensitiveDict over urllib3's headers read them)."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def is_redirect(self) -> bool:
        return "location" in self.headers and self.status_code in REDIRECT_STATUSES


def _path_url(url: str) -> str:
    """The request target sent for a URL (requests' PreparedRequest.path_url and HTTPAdapter.request_url)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"/{path.lstrip('/')}" if path.startswith("//") else path


@dataclass
class Response:
    url: str  # after redirects
    status: int  # 200 or 304
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def filename(self) -> str:
        """From Content-Disposition (RFC 5987 filename*, or raw GBK/UTF-8 bytes), else the URL path."""
        return content_disposition_filename(self.headers.get("content-disposition", "")) or url_filename(self.url)

    def text(self) -> str:
        return decode_html(self.content, self.headers.get("content-type", ""))

    def text_and_utf8(self) -> tuple[str, bytes | None]:
        """text(), and the content when it is that text's UTF-8 (a page's parse then reads it as it is: encoding the
        text again was a sixth of parsing a detail page)."""
        text, is_utf8 = html_reader.decode_html_utf8(self.content, content_type_charset(self.headers.get("content-type", "")))
        return text, self.content if is_utf8 else None


def url_filename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "index.html"


def content_disposition_filename(value: str) -> str | None:
    if not value:
        return None
    m = re.search(r"filename\*\s*=\s*([\w-]+)'[^']*'([^;]+)", value, re.I)
    if m:
        return unquote(m.group(2).strip().strip('"'), encoding=m.group(1), errors="replace")
    # http.client hands header bytes over as latin-1: undo that and try the encodings sites use
    m = re.search(r'filename\s*=\s*"?([^";]+)"?', value, re.I)
    if not m:
        return None
    raw = m.group(1).strip().encode("latin-1", errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return unquote(raw.decode(encoding))
        except UnicodeDecodeError:
            continue
    return m.group(1)


def decode_html(data: bytes, content_type: str = "") -> str:
    """Decode a page by the charset its Content-Type names, through the extractors' decoder (BOM, <meta>, GBK)."""
    return html_reader.decode_html(data, content_type_charset(content_type))


@functools.lru_cache(maxsize=256)  # a crawl meets a few Content-Types: email's parsing of each was most of decode_html
def content_type_charset(content_type: str) -> str | None:
    """The charset a Content-Type names, as email's parser reads it."""
    msg = Message()
    msg["content-type"] = content_type or "text/html"
    charset = msg.get_param("charset")
    return str(charset) if charset else None


class _HostGate:
    """At most `concurrency` requests in flight to one host, and `delay` seconds between request starts."""

    def __init__(self, concurrency: int, delay: float) -> None:
        self.slots = threading.BoundedSemaphore(concurrency)
        self.delay = delay
        self._lock = threading.Lock()
        self._next = 0.0

    def __enter__(self) -> None:
        self.slots.acquire()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.delay
        if start > now:
            time.sleep(start - now)

    def __exit__(self, *exc: object) -> None:
        self.slots.release()

    def lengthen(self, delay: float) -> None:
        """A longer delay (robots.txt's Crawl-delay), kept from the last start already: the next one was set by the old
        delay (the request after robots.txt went out at the configured delay, not at the Crawl-delay)."""
        with self._lock:
            if delay > self.delay:
                if self._next:  # a request started: the next start is its start + the delay
                    self._next += delay - self.delay
                self.delay = delay


@dataclass(slots=True)
class HostStats:
    """What one run asked of one host: the run summary shows these per host."""

    requests: int = 0  # requests sent (each retry is one)
    not_modified: int = 0  # 304s
    retries: int = 0
    refused: int = 0  # URLs not requested: foreign host, robots.txt, a malformed or ambiguous URL
    failed: int = 0  # fetches that failed after retries (HTTP errors, timeouts, deadline, size cap)
    bytes: int = 0  # body bytes read


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def public_addresses(host: str, port: int) -> Addresses:
    """The default resolver: the addresses a host name has, public ones only. A registry host whose name
    points at loopback, a private network or a link-local address (cloud metadata) is refused; a registry
    that means such an address names it as an IP literal, which is used as written."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    public = tuple(a for a in found if ipaddress.ip_address(a.split("%", 1)[0]).is_global)
    if not public:
        raise LookupError(f"host {host} resolves only to non-public addresses ({', '.join(found[:4])})")
    return public


def idle_pools(hosts: int, concurrency: int) -> int:
    """How many hosts' idle connections to keep: every host's, when half the file descriptors left (beyond 256 for
    files, the warehouse and connections in flight) hold `concurrency` sockets for each; else as many as do."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = soft if soft != resource.RLIM_INFINITY else 65536
    return max(2, min(max(1, hosts), (budget - 256) // (2 * max(1, concurrency))))


class Fetcher:
    """One per run; thread-safe. `registry_hosts` bounds every request, `allowed` per call bounds redirects.

    Every URL (listing, link, redirect hop) is parsed once by crawler.urls into the exact string requests
    sends; that object is checked (scheme, host allow-list, robots.txt) and sent. Connections go only to the
    addresses the host resolved to when checked (crawler.transport), each request has a total deadline."""

    def __init__(
        self,
        registry_hosts: Iterable[str],
        *,
        delay: float = 1.0,
        concurrency: int = 2,
        timeout: tuple[float, float] = (10.0, 30.0),
        retries: int = 3,
        backoff: float = 1.0,
        max_bytes: int = 50 * 1024 * 1024,
        deadline: float = 300.0,
        max_retry_after: float = 300.0,
        user_agent: str = USER_AGENT,
        gate: Callable[[str], AbstractContextManager[Any]] | None = None,
        resolver: Resolver = public_addresses,
        dns_ttl: float = 300.0,
    ) -> None:
        self.registry_hosts = frozenset(registry_hosts)
        self.delay, self.concurrency, self.timeout = delay, concurrency, timeout
        self.retries, self.backoff, self.max_bytes = retries, backoff, max_bytes
        self.deadline = deadline  # seconds from sending a request to the last byte of its body
        self._timeouts = Timeout(connect=timeout[0], read=timeout[1])
        self.max_retry_after = max_retry_after  # a longer Retry-After fails the fetch for this run
        self.user_agent = user_agent
        self.gate = gate  # replaces the in-process per-host gate (e.g. Prefect global concurrency limits)
        self.resolver, self.dns_ttl = resolver, dns_ttl
        self._lock = threading.Lock()
        # idle connections kept: `concurrency` per host for as many hosts as half the spare file descriptors allow
        # (one pool per thread, ten each, held 2,578 sockets open at 1,000 hosts: past the usual limit of 1,024)
        self._adapter = PinnedAdapter(pool_connections=idle_pools(len(self.registry_hosts), concurrency),
                                      pool_maxsize=max(1, concurrency))
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, Robots] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._addresses: dict[tuple[str, int], tuple[float, Addresses]] = {}
        self._stats: dict[str, HostStats] = {}
        # urllib3's pool key per (scheme, host, port): built once, not per request (dropped by forget_host)
        self._pool_keys: dict[tuple[str, str, int | None], Any] = {}
        self.requests_sent = 0

    # -- plumbing ---------------------------------------------------------------------------------
    def _pool(self, target: SafeURL) -> urllib3.HTTPConnectionPool:
        """The target's connection pool: one PoolManager for every thread (urllib3's is thread-safe; a worker serves
        whichever host's turn came, so a pool per thread reconnected on nearly every request at 1,000 hosts).
        Verified TLS against requests' CA bundle, exactly as requests' HTTPAdapter set it up; no proxy, ever."""
        manager, where = self._adapter.poolmanager, (target.scheme, target.host, target.port)
        key = self._pool_keys.get(where)
        if key is None:
            key = self._pool_keys[where] = self._pool_key(*where)[0]
        pool = manager.pools.get(key)  # its own lock; a pool evicted or never made: made as urllib3 makes it
        if pool is None:
            key, context = self._pool_key(*where)
            pool = manager.connection_from_pool_key(key, request_context=context)
        if target.scheme == "https" and pool.ca_certs != DEFAULT_CA_BUNDLE_PATH:
            self._adapter.cert_verify(pool, target.url, True, None)
        return pool

    def _pool_key(self, scheme: str, host: str, port: int | None) -> tuple[Any, dict[str, Any]]:
        """urllib3's key of a host's pool, built as PoolManager.connection_from_host builds it: the one place both
        getting a pool and dropping a finished host's pool (forget_host, by key: no scan of every pool) name it."""
        manager = self._adapter.poolmanager
        context = manager._merge_pool_kwargs({"cert_reqs": "CERT_REQUIRED"})
        context["scheme"], context["host"] = scheme, host
        context["port"] = port if port is not None else port_by_scheme.get(scheme, 80)
        return manager.key_fn_by_scheme[scheme](context), context

    def _gate(self, host: str) -> AbstractContextManager[Any]:
        if self.gate is not None:
            return self.gate(host)
        with self._lock:
            if host not in self._gates:
                self._gates[host] = _HostGate(self.concurrency, self.delay)
            return self._gates[host]

    def _count(self, host: str, name: str, amount: int = 1) -> None:
        with self._lock:
            stats = self._stats.get(host)
            if stats is None:  # (setdefault built a HostStats on every call, two or three a request)
                stats = self._stats[host] = HostStats()
            setattr(stats, name, getattr(stats, name) + amount)

    def host_stats(self) -> dict[str, dict[str, int]]:
        """Per host (host[:port]): requests, not_modified, retries, refused, failed, bytes, for the run summary."""
        with self._lock:
            return {host: asdict(stats) for host, stats in sorted(self._stats.items())}

    def _backoff(self, attempt: int) -> float:
        # exponential backoff with full jitter, so that retries of many workers do not line up
        return float(min(30.0, self.backoff * 2.0**attempt) * random.uniform(0.5, 1.5))

    def _resolve(self, target: SafeURL) -> Addresses:
        """The addresses this request may connect to: an IP literal as written, a name as resolved (cached)."""
        if _is_ip_literal(target.host):
            return (target.host,)
        key = (target.host, target.port)
        now = time.monotonic()
        with self._lock:
            cached = self._addresses.get(key)
        if cached and now - cached[0] < self.dns_ttl:
            return cached[1]
        try:
            found = self.resolver(target.host, target.port)
        except LookupError as exc:
            raise Refused(target.url, str(exc)) from None
        except OSError as exc:
            raise FetchError(target.url, f"cannot resolve {target.host}: {exc}") from None
        with self._lock:
            self._addresses[key] = (now, found)
        return found

    def _send(self, method: str, target: SafeURL, headers: dict[str, str], data: Any) -> _Reply:
        """One request with retries on 5xx, timeouts and resets (never on 4xx). Body read under the size cap
        and the deadline. A Retry-After replaces the backoff; every wait happens outside the host's slot."""
        url, host = target.url, target.key
        last: str = ""
        status: int | None = None
        wait = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                self._count(host, "retries")
                time.sleep(wait)
            addresses = self._resolve(target)
            try:
                with self._gate(host) as sent:  # the scheduler's gate wants to know when the request is out
                    with self._lock:  # both counts under one lock taking (two before, for every request)
                        self.requests_sent += 1
                        stats = self._stats.get(host) or self._stats.setdefault(host, HostStats())
                        stats.requests += 1
                    resp = self._attempt(method, target, headers, data, addresses, sent if callable(sent) else None)
            except _Transient as exc:  # a timeout, a reset, a body cut short: tried again
                status, last = None, exc.reason
                wait = self._backoff(attempt)
                continue
            if resp.status_code not in RETRY_STATUSES:
                return resp
            status, last = resp.status_code, f"HTTP {resp.status_code}"
            asked = retry_after_seconds(resp.headers.get("retry-after"))
            if asked is not None and asked > self.max_retry_after:
                raise FetchError(url, f"HTTP {status} with Retry-After {asked:g} s, beyond the {self.max_retry_after:g} s "
                                      "this run waits", status)
            wait = asked if asked is not None else self._backoff(attempt)  # the server said how long: believe it
        raise FetchError(url, f"gave up after {self.retries + 1} attempts ({last})", status)

    def _request_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """What requests' Session sent: its default headers with ours, then the call's (validators) over them.
        Merged as urllib3.HTTPHeaderDict.update merged them (a name already there, in any case, keeps its place and
        takes the new spelling and value; a new one goes last), into a plain dict: urllib3 only iterates it, and
        building an HTTPHeaderDict and updating it was a tenth of a 304's CPU in the HTTP client."""
        merged = {"user-agent": ("User-Agent", self.user_agent), "accept-encoding": ("Accept-Encoding", "gzip, deflate"),
                  "accept": ("Accept", "*/*"), "connection": ("Connection", "keep-alive")}
        for name, value in headers.items():
            merged[name.lower()] = (name, value)
        return dict(merged.values())

    def _attempt(self, method: str, target: SafeURL, headers: dict[str, str], data: Any,
                 addresses: Addresses, on_sent: Callable[[], None] | None = None) -> _Reply:
        """One request on urllib3's pool, as requests' Session sent it (same request line, headers and body; no
        cookie jar, no proxy from the environment), without its per-request overhead (a third of the crawl's CPU in
        the HTTP client went to preparing, merging and wrapping). target.url is the fixed point of requests' URL
        normalisation (crawler.urls), so it is sent as it was checked."""
        sent_headers: Mapping[str, str] = self._request_headers(headers)
        body: Any = None
        if data is not None or method not in ("GET", "HEAD"):  # a form: requests' own encoding and length
            prepared = requests.PreparedRequest()
            prepared.prepare(method=method, url=target.url, headers=sent_headers, data=data)
            if prepared.url != target.url:  # cannot happen: target.url is the fixed point of this very normalisation
                raise Refused(target.url, f"the HTTP client would send {prepared.url!r} instead")
            sent_headers, body = urllib3.HTTPHeaderDict(prepared.headers), prepared.body
        pool = self._pool(target)
        with transport.call(addresses, self.deadline, on_sent) as call:
            raw: urllib3.HTTPResponse | None = None
            try:
                try:
                    raw = transport.exchange(pool, method, _path_url(target.url), body, sent_headers,
                                             self._timeouts, NO_RETRIES)
                except (ProtocolError, OSError, ClosedPoolError, NewConnectionError) as exc:
                    raise _Transient(f"ConnectionError: {exc}") from exc
                except ConnectTimeoutError as exc:
                    raise _Transient(f"ConnectTimeout: {exc}") from exc
                except ReadTimeoutError as exc:
                    raise _Transient(f"ReadTimeout: {exc}") from exc
                content = self._read_body(raw, target)
            except (_Transient, urllib3.exceptions.HTTPError) as exc:
                if call.expired:
                    raise DeadlineExceeded(target.url, f"download deadline of {self.deadline:g} s exceeded") from None
                if isinstance(exc, _Transient):
                    raise
                # not transient: a bad certificate (SSLError), a header it cannot read; never retried
                raise FetchError(target.url, f"{type(exc).__name__}: {exc}") from exc
            if call.expired:  # the shutdown may read as a clean end of a body without a length: not a success
                _close(raw)
                raise DeadlineExceeded(target.url, f"download deadline of {self.deadline:g} s exceeded")
        self._count(target.key, "bytes", len(content))
        return _Reply(raw.status, _lower_cased(raw.headers), content)

    def _read_capped(self, raw: urllib3.HTTPResponse, url: str) -> bytes:
        """The body, decoded (gzip, deflate), at most max_bytes of it; the errors named as requests named them."""
        amount = self._read_amount(raw, url)
        if _ended_empty(raw):  # a 304's (or HEAD's, or Content-Length: 0) body: nothing to stream
            return b""
        chunks: list[bytes] = []
        self._stream_capped(raw, url, amount, chunks.append)
        return b"".join(chunks)

    def _read_amount(self, raw: urllib3.HTTPResponse, url: str) -> int:
        """How much to read at once; a declared length past the cap refused (TooLarge) unread. A body of a known length,
        not encoded, is read in one piece of exactly that length when it fits in READ_CHUNK: urllib3 then hands the
        piece over as read (a read of more than the body cost one more call and a copy)."""
        declared = raw.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            _close(raw)
            raise TooLarge(url, f"{declared} bytes > cap {self.max_bytes}")
        amount = READ_CHUNK
        if declared and declared.isdigit() and 0 < int(declared) < READ_CHUNK and "content-encoding" not in raw.headers:
            amount = int(declared)
        return min(amount, self.max_bytes + 1)  # no read past the cap: one byte over it is enough to know

    def _stream_capped(self, raw: urllib3.HTTPResponse, url: str, amount: int, take: Callable[[bytes], None]) -> int:
        """Each decoded chunk of the body handed to `take` as it is read, at most max_bytes of them; its size. The
        errors named as requests named them (a cut body: _Transient, tried again)."""
        size = 0
        try:
            for chunk in raw.stream(amount, decode_content=True):
                size += len(chunk)
                if size > self.max_bytes:
                    _close(raw)
                    raise TooLarge(url, f"more than {self.max_bytes} bytes")
                take(chunk)
        except ProtocolError as exc:
            raise _Transient(f"ChunkedEncodingError: {exc}") from exc
        except ReadTimeoutError as exc:
            raise _Transient(f"ConnectionError: {exc}") from exc
        except DecodeError as exc:
            raise FetchError(url, f"ContentDecodingError: {exc}") from exc
        return size

    def _read_body(self, raw: urllib3.HTTPResponse, target: SafeURL) -> bytes:
        """The body as _read_capped reads it; but a 2xx body of a fetch that has a sink (BODY_SINK: a file of the
        crawl, crawl.CrawlContext.fetch) goes into a new writer of the sink chunk by chunk as it is read, under the same
        cap and with the same errors, and b"" is returned: never held whole. Any failure aborts that writer (nothing
        half-written is kept); the caller names it only once the whole fetch succeeded (deadline included)."""
        sink = BODY_SINK.get()
        if sink is None or not 200 <= raw.status < 300:
            return self._read_capped(raw, target.url)
        amount = min(self._read_amount(raw, target.url), SINK_CHUNK)
        try:
            writer = sink()
        except OSError:  # the sink cannot take a file (too many open, its disk): the item's error, the connection given up
            _close(raw)
            raise

        def write(chunk: bytes) -> None:
            try:
                writer.write(chunk)
            except OSError:  # the sink's disk (full?): the item's error; the connection given up
                _close(raw)
                raise

        try:
            size = self._stream_capped(raw, target.url, amount, write)
        except BaseException:
            writer.abort()
            raise
        self._count(target.key, "bytes", size)
        return b""

    def _robots_for(self, target: SafeURL) -> Robots:
        key = target.origin
        rules = self._robots.get(key)  # read once and kept: no lock needed to find it (two per request before)
        if rules is not None:
            return rules
        with self._lock:
            lock = self._robots_locks.get(key) or self._robots_locks.setdefault(key, threading.Lock())
        with lock:
            rules = self._robots.get(key)
            if rules is None:
                rules = self._read_robots(target)
                try:
                    if not rules.unreachable:
                        self._respect_crawl_delay(target.key, rules)
                finally:  # (kept even if that failed, as before: never a robots.txt read again for every request)
                    # published only now: a request finds the rules without this lock (above), so once found their
                    # Crawl-delay must be the gate's already (published first, a request went out at the shorter delay)
                    self._robots[key] = rules
            return rules

    def _read_robots(self, site: SafeURL) -> Robots:
        """RFC 9309: redirects followed (5 at most, within the registry's hosts); 4xx but 401/403 = no rules;
        5xx, unreachable or redirected elsewhere = nothing allowed, reported as unreachable (tried again next run)."""
        outer = BODY_SINK.set(None)  # read within a fetch whose body has a sink (_read_body): these are the rules
        try:
            _, resp = self._follow(urls.parse(site.origin + "/robots.txt"), self.registry_hosts, "GET", {}, None,
                                   robots=False)
        except FetchError as exc:
            return Robots.parse(DISALLOW_ALL, unreachable=exc.reason)
        finally:
            BODY_SINK.reset(outer)
        if resp.status_code in (401, 403):
            return Robots.parse(DISALLOW_ALL)  # kept out explicitly: stay out
        if resp.status_code >= 400:
            return Robots.parse([])  # no robots.txt: everything allowed
        return Robots.parse(decode_html(resp.content, "text/plain").splitlines())

    def _respect_crawl_delay(self, host: str, parser: Robots | urllib.robotparser.RobotFileParser) -> None:
        """A Crawl-delay in robots.txt lengthens (never shortens) the configured per-host delay."""
        asked = parser.crawl_delay(self.user_agent)
        if asked is None:
            return
        if self.gate is None:
            gate = self._gate(host)
            assert isinstance(gate, _HostGate)
            gate.lengthen(min(float(asked), 60.0))
        elif hasattr(self.gate, "respect_crawl_delay"):  # the crawl scheduler's per-host slots
            self.gate.respect_crawl_delay(host, min(float(asked), 60.0))

    def forget_host(self, host: str) -> int:
        """A host with no work left in this run (the scheduler's "host finished"): close its idle connections and drop
        its robots.txt rules and resolved addresses, so what the run holds does not grow with the hosts it has done.
        Seen again (a redirect, a later portal), it is resolved and its robots.txt read again; its per-host delay is
        the gate's to keep (HostSlots.forget), its counters stay for the run summary. Returns the pools closed."""
        sites = [urls.parse_uncached(f"{scheme}://{host}/") for scheme in ("http", "https")]
        with self._lock:
            for site in sites:
                self._robots.pop(site.origin, None)
                self._robots_locks.pop(site.origin, None)
                self._addresses.pop((site.host, site.port), None)
                self._pool_keys.pop((site.scheme, site.host, site.port), None)
        pools = self._adapter.poolmanager.pools
        closed = 0
        for site in sites:  # by key: listing every pool per finished host cost O(hosts²) (5 % of a 1,000-host crawl)
            try:
                del pools[self._pool_key(site.scheme, site.host, site.port)[0]]  # urllib3 closes its idle connections
                closed += 1
            except KeyError:  # never opened, or dropped meanwhile (evicted by another host's pool)
                pass
        return closed

    def allowed_by_robots(self, url: str) -> bool:
        return self._robots_for(urls.parse(url)).can_fetch(self.user_agent, url)

    def _check(self, target: SafeURL, allowed: frozenset[str], *, robots: bool = True) -> None:
        host = target.key
        if host not in self.registry_hosts or host not in allowed:
            raise Refused(target.url, f"host {host} is not one of the agency's hosts")
        self._resolve(target)  # a name that resolves only to private addresses is refused here
        if not robots:
            return
        rules = self._robots_for(target)
        if rules.unreachable:  # a fetch failure of this run, not the site's policy
            raise FetchError(target.url, f"robots.txt unreachable ({rules.unreachable})")
        if not rules.can_fetch(self.user_agent, target.url):
            raise Refused(target.url, "disallowed by robots.txt")

    def _follow(self, target: SafeURL, allowed: frozenset[str], method: str, headers: dict[str, str], data: Any,
                *, robots: bool = True) -> tuple[SafeURL, _Reply]:
        """Send, following redirects by hand: every hop parsed and checked like the first URL."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check(target, allowed, robots=robots)
            resp = self._send(method, target, headers, data)
            if not resp.is_redirect:
                return target, resp
            location = resp.headers.get("location", "")
            try:
                target = urls.resolve(target.url, location)
            except urls.BadURL as exc:
                raise Refused(location or target.url, f"redirect refused: {exc.reason}") from None
            if resp.status_code in (301, 302, 303):
                method, data = "GET", None
        raise FetchError(target.url, f"more than {MAX_REDIRECTS} redirects")

    # -- the API ----------------------------------------------------------------------------------
    def fetch(
        self,
        url: str,
        *,
        allowed_hosts: Iterable[str],
        validators: dict[str, str] | None = None,
        method: str = "GET",
        data: dict[str, str] | None = None,
    ) -> Response:
        """GET (or POST) a URL, following redirects only within `allowed_hosts`; 304 when `validators` still hold.
        Refused (never requested): a malformed or ambiguous URL, a foreign host, robots.txt. FetchError: the rest."""
        host = MALFORMED
        try:
            target = urls.parse(url)
            host = target.key
            final, resp = self._follow(target, frozenset(allowed_hosts), method, dict(validators or {}), data)
        except urls.BadURL as exc:
            self._count(host, "refused")
            raise Refused(url, exc.reason) from None
        except Refused as exc:
            self._count(_key_of(exc.url, host), "refused")
            raise
        except FetchError as exc:
            self._count(_key_of(exc.url, host), "failed")
            raise
        headers = resp.headers  # already lower-cased names, a dict of this response's own (_attempt)
        if resp.status_code == 304:
            self._count(final.key, "not_modified")
            return Response(final.url, 304, b"", headers)
        if resp.status_code >= 400:
            self._count(final.key, "failed")
            raise FetchError(final.url, f"HTTP {resp.status_code}", resp.status_code)
        return Response(final.url, resp.status_code, resp.content, headers)


MALFORMED = "(malformed URL)"


class BodyWriter(Protocol):
    """Where a streamed body goes (Fetcher._read_body): each chunk as it is read; abort when it is given up."""

    def write(self, data: bytes) -> None: ...

    def abort(self) -> None: ...


# The body sink of the fetch this thread (context) runs, if any: called for a new BodyWriter at each 2xx body (an attempt
# that fails and is retried aborts its writer and gets a new one). Set around one fetch by crawl.CrawlContext.fetch.
BODY_SINK: contextvars.ContextVar[Callable[[], BodyWriter] | None] = contextvars.ContextVar("gongkai_body_sink",
                                                                                            default=None)


@functools.lru_cache(maxsize=4096)
def _is_ip_literal(host: str) -> bool:
    """SafeURL.is_ip_literal, remembered: asked twice a request, it parsed the host with ipaddress each time."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _lower_cased(headers: urllib3.HTTPHeaderDict) -> dict[str, str]:
    """{name.lower(): headers[name] for name in headers}: read from the dict's own store, which keeps each header under
    its lower-cased name as [first spelling, value, value...] and joins the values with ", " on reading (__getitem__):
    the same, without a lookup and a lower() per header. Another store (a urllib3 that changed it): read as before."""
    store = getattr(headers, "_container", None)
    if isinstance(store, dict):
        return {name: ", ".join(spelled_and_values[1:]) for name, spelled_and_values in store.items()}
    return {name.lower(): headers[name] for name in headers}


def _ended_empty(raw: urllib3.HTTPResponse) -> bool:
    """Whether the body is known empty and now read: http.client's length 0 (a 304, a HEAD, Content-Length: 0), not
    chunked, not encoded. Its end is read as raw.stream read it (http.client's read closes the response at length 0)
    and the connection given back to the pool as urllib3 gives it back at a body's end, without the stream's
    generator, decoder set-up and error-catching context (a tenth of a 304's CPU in the HTTP client)."""
    original = raw._original_response
    if original is None or original.length != 0 or original.chunked or "content-encoding" in raw.headers:
        return False
    original.read(0)  # at length 0: closes the response (its file), keeps the socket for the next request
    if not original.isclosed():  # cannot happen at length 0; the stream then reads it as before
        return False
    raw.release_conn()
    return True


def _close(raw: urllib3.HTTPResponse) -> None:
    """A response given up on: its connection closed, then handed back (the pool opens a new one)."""
    raw.close()
    raw.release_conn()


def _key_of(url: str, fallback: str) -> str:
    try:
        return urls.parse(url).key
    except urls.BadURL:
        return fallback
