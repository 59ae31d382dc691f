"""The demo portal's HTTP server: threaded http.server on 127.0.0.1, logging every request.

Faults (each on a resource's first request, then it recovers): a 500, a response slower than the
client's timeout, a connection reset. Conditional GET is answered with 304 when ETag or
Last-Modified still hold, so tests can tell a conditional request from a full one.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from gongkai.crawler.demo_portal.site import LAST_MODIFIED, Resource, Site, build_site


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    host: str
    path: str  # with its query string
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str | None
    status: int | str  # HTTP status, or the fault injected

    @property
    def conditional(self) -> bool:
        return bool(self.if_none_match or self.if_modified_since)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # the server keeps its own log
        pass

    def _log(self, status: int | str) -> None:
        self.server.portal.record(LoggedRequest(
            self.command, self.headers.get("Host", ""), self.path, self.headers.get("If-None-Match"),
            self.headers.get("If-Modified-Since"), self.headers.get("User-Agent"), status,
        ))

    def _send(self, resource: Resource, head_only: bool = False, log: bool = True) -> None:
        not_modified = resource.validators and self._still_valid(resource)
        status = 304 if not_modified else resource.status
        if log:
            self._log(status)
        self.send_response(status)
        headers = {"Content-Type": resource.content_type, **resource.headers}
        if resource.validators:
            headers |= {"ETag": resource.etag, "Last-Modified": LAST_MODIFIED}
        for key, value in headers.items():
            self.send_header(key, value)
        body = b"" if status == 304 or head_only else resource.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _still_valid(self, resource: Resource) -> bool:
        etag = self.headers.get("If-None-Match")
        if etag is not None:
            return resource.etag in [e.strip() for e in etag.split(",")]
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return parsedate_to_datetime(since) >= parsedate_to_datetime(LAST_MODIFIED)
            except (TypeError, ValueError):
                return False
        return False

    def _fault(self, path: str, resource: Resource) -> bool:
        """Inject the resource's fault if this is its first request; True when the response is done."""
        if not resource.fault or not self.server.portal.first_request(path):
            return False
        self._log(resource.fault)
        if resource.fault == "error500":
            self._send(Resource(b"<h1>500 Internal Server Error</h1>", status=500, validators=False), log=False)
        elif resource.fault == "timeout":
            time.sleep(self.server.portal.slow_seconds)
            self.close_connection = True
            return True
        elif resource.fault == "reset":
            # SO_LINGER 0: close() sends an RST, the client sees "connection reset by peer"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        return True

    def _route(self, head_only: bool = False, form: dict[str, str] | None = None) -> None:
        parts = urlsplit(self.path)
        portal = self.server.portal
        site = portal.site
        if any(parts.path.startswith(prefix) for prefix in site.down_prefixes):
            self._send(Resource(b"<h1>503 Service Unavailable</h1>", status=503, validators=False))
            return
        if form is not None:
            handler = site.post_handlers.get(parts.path)
            if handler is None:
                self._send(Resource(b"not found", status=404, validators=False))
                return
            self._send(handler(form, dict(parse_qsl(parts.query))))
            return
        key = self.path if self.path in site.resources else parts.path
        resource = site.resources.get(key)
        if resource is None:
            self._send(Resource(b"<h1>404 Not Found</h1>", status=404, validators=False), head_only)
            return
        if self._fault(key, resource):
            return
        self._send(resource, head_only)

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route(head_only=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", errors="replace")
        self._route(form=dict(parse_qsl(raw)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    portal: DemoPortal

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # resets and client timeouts are part of the show


class DemoPortal:
    """Start with `with DemoPortal() as demo:` (or start()/stop()); `demo.port` fills the registry's {demo}."""

    def __init__(self, port: int = 0, *, slow_seconds: float = 3.0, down: bool = True) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.portal = self
        self.port: int = self._server.server_address[1]
        self.site: Site = build_site(self.port)
        self.slow_seconds = slow_seconds
        self.requests: list[LoggedRequest] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.set_down(down)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_down(self, down: bool) -> None:
        """Switch the demo-flaky portal off (every request a 503) or on."""
        if down:
            self.site.down_prefixes.add("/flaky/")
        else:
            self.site.down_prefixes.discard("/flaky/")

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def first_request(self, path: str) -> bool:
        with self._lock:
            if path in self._seen:
                return False
            self._seen.add(path)
            return True

    def reset_faults(self) -> None:
        with self._lock:
            self._seen.clear()

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def start(self) -> DemoPortal:
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-portal", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> DemoPortal:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
