"""Helpers of the browse tests: the demo warehouse's archive, and the site served by uvicorn on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def demo_archive(demo_crawls: dict[str, str], engine: str) -> Path:
    """The archive the demo_crawls fixture filled for `engine` (beside its DuckDB file)."""
    folder = Path(demo_crawls["duckdb"].removeprefix("duckdb://")).parent
    return folder / f"archive-{engine}"


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app served by a real uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
