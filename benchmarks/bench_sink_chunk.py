"""CPU of streaming a file into a body sink (a crawl's file, Fetcher._read_body) by the size of its reads (SINK_CHUNK).

    .venv/bin/python benchmarks/bench_sink_chunk.py [65536 122880 1048576]

A 290 kB report PDF (the corpus', as bench_polite_crawl serves it, with its length) fetched 300 times from a local
server per read size, three rounds; printed: the fetching thread's CPU per file (the server's threads not counted).
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gongkai.crawler import fetcher  # noqa: E402

BODY = (ROOT / "tests" / "corpus" / "documents" / "hongze-2023.pdf").read_bytes()


class _Files(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"" if self.path == "/robots.txt" else BODY
        self.send_response(404 if not body else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Discard:
    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass


def main() -> int:
    sizes = [int(x) for x in sys.argv[1:]] or [64 * 1024, fetcher.SINK_CHUNK, fetcher.READ_CHUNK]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    client = fetcher.Fetcher({host}, delay=0.0, concurrency=1, retries=0)
    client.allowed_by_robots(f"http://{host}/")
    fetcher.BODY_SINK.set(_Discard)
    for size in sizes * 3:
        fetcher.SINK_CHUNK = size  # read at call time by Fetcher._read_body
        started = time.thread_time()
        for _ in range(300):
            client.fetch(f"http://{host}/report.pdf", allowed_hosts={host})
        print(f"reads of {size // 1024:5d} kB: {(time.thread_time() - started) / 300 * 1e6:4.0f} us of CPU per {len(BODY) // 1000} kB file")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
