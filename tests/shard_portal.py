"""Several loopback hosts (one port each) serving TRS-style report columns built from corpus documents, logging every
request with when it arrived and when its answer was sent: the sharded-crawl tests read politeness from this log.

Each agency's column lists REPORT_YEARS reports: a report page itself, or a notice page with a PDF / DOCX attachment,
made distinct per agency and year. An agency number served on two hosts serves the same bytes on both (one report
reachable from two portals, so from two shards).
"""

from __future__ import annotations

import io
import re
import threading
import time
import zipfile
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

DOCUMENTS = Path(__file__).parent / "corpus" / "documents"
REPORT_YEARS = (2022, 2023)
KINDS = [("pingtan-2024.html", "page"), ("hongze-2023.pdf", "pdf"), ("shanghai-szfbgt-2019-libreoffice.docx", "docx")]
ETAG = '"shard-v1"'
HOLD_S = 120.0  # the longest a held request waits (the test releases or kills the client well before)
ROUTE = re.compile(r"^/a(\d+)/(?:index\.html|\d{6}/t\d{8}_(\d{4})\.html|\d{6}/P0(\d{4})\.(pdf|docx))$")


@dataclass(frozen=True)
class Hit:
    host: str  # the port's host[:port], as the registry names it
    path: str
    started: float  # time.monotonic() when the request line arrived
    ended: float  # when the answer was written
    conditional: bool
    status: int


@cache
def _base(name: str) -> bytes:
    return (DOCUMENTS / name).read_bytes()


def report_bytes(agency: int, year: int) -> tuple[bytes, str]:
    """The served file of an agency's report (HTML page, PDF or DOCX), distinct per agency and year."""
    name, kind = KINDS[(agency + year) % len(KINDS)]
    data, tag = _base(name), f"gongkai-shard-test agency {agency} year {year}"
    if kind == "pdf":
        return data + f"\n%{tag}\n".encode(), kind  # bytes after %%EOF are ignored by readers
    if kind == "docx":
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                dst.writestr(item, src.read(item.filename))
            dst.writestr("customXml/gongkai-shard-test.txt", tag)
        return out.getvalue(), kind
    return data.replace(b"</body>", f"<!-- {tag} --></body>".encode()), kind


def agency_name(agency: int) -> str:
    return f"示例市第{agency}局"


def _title(agency: int, year: int) -> str:
    return f"{agency_name(agency)}{year}年政府信息公开工作年度报告"


def _listing(agency: int) -> bytes:
    rows = "".join(f'<li><a href="./{y + 1}03/t{y + 1}0301_{y}.html" title="{_title(agency, y)}">{_title(agency, y)}</a>'
                   f"<span>{y + 1}-03-01</span></li>" for y in sorted(REPORT_YEARS, reverse=True))
    return f'<html><head><meta charset="utf-8"></head><body><ul>{rows}</ul></body></html>'.encode()


def _detail(agency: int, year: int) -> bytes:
    data, kind = report_bytes(agency, year)
    if kind == "page":
        return data
    title = _title(agency, year)
    return (f'<html><head><meta charset="utf-8"><meta name="ArticleTitle" content="{title}"></head><body>'
            f'<div class="TRS_Editor"><p>{title}，详见附件。</p></div><p><a href="./P0{year}.{kind}">附件</a></p></body></html>').encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HostServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        started = time.monotonic()
        portal = self.server.portal
        if portal.slow_s:
            time.sleep(portal.slow_s)
        if self.path != "/robots.txt" and not self.path.endswith("/index.html"):
            portal.wait_while_held()
        body, ctype = self._route()
        conditional = self.headers.get("If-None-Match") is not None or self.headers.get("If-Modified-Since") is not None
        status = 404 if body is None else 304 if self.headers.get("If-None-Match") == ETAG else 200
        self.send_response(status)
        self.send_header("Content-Type", ctype or "text/plain")
        if body is not None:
            self.send_header("ETag", ETAG)
        payload = body if status == 200 and body is not None else b""
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        portal.record(Hit(self.server.host, self.path, started, time.monotonic(), conditional, status))
        if status == 200 and is_document(self.path):
            portal.document_served()

    def _route(self) -> tuple[bytes | None, str]:
        if self.path == "/robots.txt":
            return b"User-agent: *\nAllow: /\n", "text/plain"
        m = ROUTE.match(self.path)
        if not m or int(m.group(1)) not in self.server.agencies:
            return None, ""
        agency = int(m.group(1))
        if m.group(2):
            return _detail(agency, int(m.group(2))), "text/html; charset=utf-8"
        if m.group(3):
            return report_bytes(agency, int(m.group(3)))[0], "application/octet-stream"
        return _listing(agency), "text/html; charset=utf-8"


class _HostServer(ThreadingHTTPServer):
    daemon_threads = True
    portal: ShardPortal
    host: str
    agencies: set[int]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client killed mid-request (the killed worker) is part of the test


class ShardPortal:
    """`hosts` maps a host's index to the agency numbers it serves; each host is its own loopback port."""

    def __init__(self, hosts: dict[int, list[int]]) -> None:
        self.hits: list[Hit] = []
        self.slow_s = 0.0
        # hold_after(n): once n documents were served, every later request but robots.txt and listings waits
        self._hold_after: int | None = None
        self._documents_served = 0
        self._released = threading.Event()
        self._released.set()
        self._lock = threading.Lock()
        self._servers: dict[int, _HostServer] = {}
        for index, agencies in hosts.items():
            server = _HostServer(("127.0.0.1", 0), _Handler)
            server.portal, server.agencies = self, set(agencies)
            server.host = f"127.0.0.1:{server.server_address[1]}"
            self._servers[index] = server

    def host(self, index: int) -> str:
        return self._servers[index].host

    def record(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def hold_after(self, documents: int) -> None:
        """Serve `documents` report files, then hold every further page and file (up to HOLD_S) until `release()`."""
        with self._lock:
            self._hold_after, self._documents_served = documents, 0
            self._released.clear()

    def release(self) -> None:
        with self._lock:
            self._hold_after = None
        self._released.set()

    def document_served(self) -> None:
        with self._lock:
            self._documents_served += 1

    def wait_while_held(self) -> None:
        with self._lock:
            held = self._hold_after is not None and self._documents_served >= self._hold_after
        if held:
            self._released.wait(HOLD_S)

    def clear(self) -> list[Hit]:
        with self._lock:
            hits, self.hits = self.hits, []
        return hits

    def registry(self, portals: list[tuple[str, int, int]]) -> str:
        """TOML of portals (id, host index, agency number): an agency number on two hosts is one agency (one
        division code and name) with two portals."""
        return "".join(
            f'[[portal]]\nid = "{pid}"\nagency = "{agency_name(agency)}"\ndivision_code = "{110000 + agency:06d}"\n'
            f'level = "department"\ncms = "trs"\nlisting = ["http://{self.host(index)}/a{agency}/index.html"]\n'
            f'hosts = ["{self.host(index)}"]\n\n'
            for pid, index, agency in portals
        )

    def __enter__(self) -> ShardPortal:
        for server in self._servers.values():
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()


def is_document(path: str) -> bool:
    """A report file the crawler loads: an attachment, or a detail page that is itself the report."""
    m = ROUTE.match(path)
    if not m:
        return False
    if m.group(3):
        return True
    return bool(m.group(2)) and report_bytes(int(m.group(1)), int(m.group(2)))[1] == "page"


def in_flight_peaks(hits: list[Hit]) -> dict[str, int]:
    """Per host, the most requests it was answering at once."""
    peaks: dict[str, int] = {}
    for host in {h.host for h in hits}:
        events = sorted([(h.started, 1) for h in hits if h.host == host] + [(h.ended, -1) for h in hits if h.host == host],
                        key=lambda e: (e[0], e[1]))  # an answer that ended as another began: not at once
        level = peak = 0
        for _, step in events:
            level += step
            peak = max(peak, level)
        peaks[host] = peak
    return peaks


def closest_starts(hits: list[Hit]) -> dict[str, float]:
    """Per host, the shortest time between two requests' arrivals."""
    gaps: dict[str, float] = {}
    for host in {h.host for h in hits}:
        starts = sorted(h.started for h in hits if h.host == host)
        gaps[host] = min((b - a for a, b in zip(starts, starts[1:], strict=False)), default=float("inf"))
    return gaps


def wait_for(check: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    """check()'s first truthy value, polled every `every` s; an AssertionError naming `what` after `timeout` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
