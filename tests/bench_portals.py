"""The polite-crawl benchmark's portal for tests: N hosts on N loopback ports served by one process of its own
(benchmarks/bench_polite_crawl.py), logging when every request arrived and was answered."""

from __future__ import annotations

import importlib
import multiprocessing
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def bench_module() -> Any:
    """benchmarks/bench_polite_crawl.py, imported by its module name (the benchmarks folder is not a package)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_polite_crawl")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


class Portal:
    """N hosts on N loopback ports in a process of their own; `log()`: (port, arrived, answered) per request."""

    def __init__(self, n: int, latency: float) -> None:
        bench = bench_module()
        self.politeness_from_log = bench.politeness_from_log
        self.registry = bench.registry
        ctx = multiprocessing.get_context("spawn")
        ports_in, ports_out = ctx.Pipe(duplex=False)
        self.control, child = ctx.Pipe()
        sys.path.insert(0, str(ROOT / "benchmarks"))  # the spawned process imports the portal by its module name
        try:
            self.process = ctx.Process(target=bench.portal, args=(n, latency, ports_out, child), daemon=True)
            self.process.start()
        finally:
            sys.path.remove(str(ROOT / "benchmarks"))
        if not ports_in.poll(60):
            raise RuntimeError("the portal did not start")
        self.ports: list[int] = ports_in.recv()

    def log(self) -> list[tuple[int, float, float]]:
        self.control.send("log")
        result: list[tuple[int, float, float]] = self.control.recv()
        return result

    def close(self) -> None:
        self.control.send("stop")
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
