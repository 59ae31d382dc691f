"""Polite, safe HTTP: robots.txt, per-host delay and concurrency, retries with backoff, conditional GET,
a size cap, and redirects followed by hand so that no request ever leaves the registry's hosts."""

from __future__ import annotations

import random
import re
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests

from gongkai.crawler.registry import host_of
from gongkai.extractors import html_reader

USER_AGENT = "gongkai/0.1 (+https://github.com/gongkai/gongkai)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
DISALLOW_ALL = ["User-agent: *", "Disallow: /"]


class FetchError(Exception):
    """A URL could not be fetched (after retries); `status` is the last HTTP status if there was one."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.status = url, reason, status


class Refused(FetchError):
    """Not requested at all: robots.txt disallows it, or its host is not the agency's."""


class TooLarge(FetchError):
    pass


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
    msg = Message()
    msg["content-type"] = content_type or "text/html"
    charset = msg.get_param("charset")
    return html_reader.decode_html(data, str(charset) if charset else None)


@dataclass
class _Group:
    agents: list[str] = field(default_factory=list)
    rules: list[tuple[bool, re.Pattern[str], int]] = field(default_factory=list)  # (allow, pattern, length)
    delay: float | None = None


def _rule_pattern(path: str) -> re.Pattern[str]:
    """An RFC 9309 path pattern: `*` any characters, a final `$` the end of the URL path."""
    anchored = path.endswith("$")
    body = ".*".join(re.escape(unquote(part)) for part in (path[:-1] if anchored else path).split("*"))
    return re.compile(body + ("$" if anchored else ""), re.S)


@dataclass
class Robots:
    """robots.txt as RFC 9309 reads it (urllib.robotparser knows neither `*` nor `$` in paths):
    the group naming our product token, else `*`; the longest matching rule wins, Allow on a tie."""

    groups: list[_Group]
    unreachable: str | None = None  # why robots.txt could not be read (then nothing is allowed)

    @classmethod
    def parse(cls, lines: Iterable[str], *, unreachable: str | None = None) -> Robots:
        groups: list[_Group] = []
        current: _Group | None = None
        in_agents = False  # consecutive User-agent lines share one group
        for raw in lines:
            line = raw.split("#", 1)[0].strip()
            field_name, sep, value = line.partition(":")
            if not sep:
                continue
            name, value = field_name.strip().lower(), value.strip()
            if name == "user-agent":
                if current is None or not in_agents:
                    current = _Group()
                    groups.append(current)
                current.agents.append(value.lower())
                in_agents = True
                continue
            in_agents = False
            if current is None:
                continue
            if name in ("allow", "disallow") and value:  # an empty Disallow allows everything
                current.rules.append((name == "allow", _rule_pattern(value), len(value)))
            elif name == "crawl-delay":
                try:
                    current.delay = float(value)
                except ValueError:
                    pass
        return cls(groups, unreachable)

    def _groups_for(self, user_agent: str) -> list[_Group]:
        token = user_agent.split("/", 1)[0].strip().lower()
        named = [g for g in self.groups if token in g.agents]
        return named or [g for g in self.groups if "*" in g.agents]

    def can_fetch(self, user_agent: str, url: str) -> bool:
        parts = urlsplit(url)
        target = unquote(parts.path or "/") + (f"?{unquote(parts.query)}" if parts.query else "")
        best: tuple[int, bool] | None = None  # (length, allow): longer wins, then allow over disallow
        for group in self._groups_for(user_agent):
            for allow, pattern, length in group.rules:
                if pattern.match(target) and (best is None or (length, allow) > best):
                    best = (length, allow)
        return best is None or best[1]

    def crawl_delay(self, user_agent: str) -> float | None:
        delays = [g.delay for g in self._groups_for(user_agent) if g.delay is not None]
        return max(delays) if delays else None


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


class Fetcher:
    """One per run; thread-safe. `registry_hosts` bounds every request, `allowed` per call bounds redirects."""

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
        user_agent: str = USER_AGENT,
        gate: Callable[[str], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.registry_hosts = frozenset(registry_hosts)
        self.delay, self.concurrency, self.timeout = delay, concurrency, timeout
        self.retries, self.backoff, self.max_bytes = retries, backoff, max_bytes
        self.user_agent = user_agent
        self.gate = gate  # replaces the in-process per-host gate (e.g. Prefect global concurrency limits)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, Robots] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self.requests_sent = 0

    # -- plumbing ---------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"})
            session.trust_env = False  # no proxies from the environment: the registry decides where we go
            self._local.session = session
        return session

    def _gate(self, host: str) -> AbstractContextManager[None]:
        if self.gate is not None:
            return self.gate(host)
        with self._lock:
            if host not in self._gates:
                self._gates[host] = _HostGate(self.concurrency, self.delay)
            return self._gates[host]

    def _sleep_before_retry(self, attempt: int) -> None:
        # exponential backoff with full jitter, so that retries of many workers do not line up
        time.sleep(min(30.0, self.backoff * 2**attempt) * random.uniform(0.5, 1.5))

    def _send(self, method: str, url: str, headers: dict[str, str], data: Any) -> requests.Response:
        """One request with retries on 5xx, timeouts and resets (never on 4xx). Body read under the size cap."""
        host = host_of(url)
        last: str = ""
        status: int | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep_before_retry(attempt - 1)
            try:
                with self._gate(host):
                    with self._lock:
                        self.requests_sent += 1
                    resp = self._session().request(
                        method, url, headers=headers, data=data, timeout=self.timeout, allow_redirects=False, stream=True
                    )
                    if resp.status_code in RETRY_STATUSES:
                        status, last = resp.status_code, f"HTTP {resp.status_code}"
                        wait = resp.headers.get("retry-after", "")
                        resp.close()
                        if wait.isdigit() and attempt < self.retries:  # the server said how long: believe it, within reason
                            time.sleep(min(int(wait), 60))
                        continue
                    self._read_capped(resp, url)
                    return resp
            except TooLarge:
                raise
            except requests.exceptions.SSLError as exc:  # a bad certificate stays bad: no retry
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
            except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                status, last = None, f"{type(exc).__name__}: {exc}"
                continue
            except requests.RequestException as exc:  # an invalid URL, a body that does not decode: not transient
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
        raise FetchError(url, f"gave up after {self.retries + 1} attempts ({last})", status)

    def _read_capped(self, resp: requests.Response, url: str) -> None:
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            resp.close()
            raise TooLarge(url, f"{declared} bytes > cap {self.max_bytes}")
        chunks, size = [], 0
        for chunk in resp.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                resp.close()
                raise TooLarge(url, f"more than {self.max_bytes} bytes")
            chunks.append(chunk)
        resp._content = b"".join(chunks)  # what resp.content would have read, now bounded
        resp._content_consumed = True  # type: ignore[attr-defined]

    def _robots_for(self, url: str) -> Robots:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            lock = self._robots_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._robots:
                self._robots[key] = self._read_robots(key)
                if not self._robots[key].unreachable:
                    self._respect_crawl_delay(host_of(key), self._robots[key])
            return self._robots[key]

    def _read_robots(self, key: str) -> Robots:
        """RFC 9309: redirects followed (5 at most, within the registry's hosts); 4xx but 401/403 = no rules;
        5xx, unreachable or redirected elsewhere = nothing allowed, reported as unreachable (tried again next run)."""
        url = key + "/robots.txt"
        try:
            for _ in range(MAX_REDIRECTS + 1):
                resp = self._send("GET", url, {}, None)
                if not resp.is_redirect:
                    break
                url = urljoin(url, resp.headers.get("location", ""))
                if urlsplit(url).scheme not in ("http", "https") or host_of(url) not in self.registry_hosts | {host_of(key)}:
                    raise FetchError(url, "robots.txt redirects off the registry's hosts")
            else:
                raise FetchError(url, f"robots.txt: more than {MAX_REDIRECTS} redirects")
        except FetchError as exc:
            return Robots.parse(DISALLOW_ALL, unreachable=exc.reason)
        if resp.status_code in (401, 403):
            return Robots.parse(DISALLOW_ALL)  # kept out explicitly: stay out
        if resp.status_code >= 400:
            return Robots.parse([])  # no robots.txt: everything allowed
        return Robots.parse(decode_html(resp.content, "text/plain").splitlines())

    def _respect_crawl_delay(self, host: str, parser: Robots | urllib.robotparser.RobotFileParser) -> None:
        """A Crawl-delay in robots.txt lengthens (never shortens) the configured per-host delay."""
        asked = parser.crawl_delay(self.user_agent)
        if asked is not None and self.gate is None:
            gate = self._gate(host)
            assert isinstance(gate, _HostGate)
            gate.delay = max(gate.delay, min(float(asked), 60.0))

    def allowed_by_robots(self, url: str) -> bool:
        return self._robots_for(url).can_fetch(self.user_agent, url)

    def _check(self, url: str, allowed: frozenset[str]) -> None:
        host = host_of(url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise Refused(url, "not an http(s) URL")
        if host not in self.registry_hosts or host not in allowed:
            raise Refused(url, f"host {host} is not one of the agency's hosts")
        robots = self._robots_for(url)
        if robots.unreachable:  # a fetch failure of this run, not the site's policy
            raise FetchError(url, f"robots.txt unreachable ({robots.unreachable})")
        if not robots.can_fetch(self.user_agent, url):
            raise Refused(url, "disallowed by robots.txt")

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
        """GET (or POST) a URL, following redirects only within `allowed_hosts`; 304 when `validators` still hold."""
        allowed = frozenset(allowed_hosts)
        headers = dict(validators or {})
        for _ in range(MAX_REDIRECTS + 1):
            self._check(url, allowed)
            resp = self._send(method, url, headers, data)
            if resp.is_redirect:
                target = urljoin(url, resp.headers.get("location", ""))
                url = target
                if resp.status_code in (301, 302, 303):
                    method, data = "GET", None
                continue
            if resp.status_code == 304:
                return Response(url, 304, b"", {k.lower(): v for k, v in resp.headers.items()})
            if resp.status_code >= 400:
                raise FetchError(url, f"HTTP {resp.status_code}", resp.status_code)
            return Response(url, resp.status_code, resp.content, {k.lower(): v for k, v in resp.headers.items()})
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")
