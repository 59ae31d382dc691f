"""Small loopback servers shared by the tests: a portal of fixed routes, and an accept loop for raw-socket servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Site:
    """A portal on 127.0.0.1: path → (bytes, Content-Type); every request's path logged in `requests`."""

    def __init__(self, routes: dict[str, tuple[bytes, str]] | None = None) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {} if routes is None else routes
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                site.requests.append(self.path)
                body, kind = site.routes.get(self.path, (b"not found", "text/plain"))
                self.send_response(200 if self.path in site.routes else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def accept_each(listener: socket.socket, serve: Callable[[socket.socket], Any]) -> None:
    """Serve each connection the listener accepts on a thread of its own, until the listener is closed."""

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
