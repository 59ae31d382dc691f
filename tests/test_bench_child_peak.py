"""benchmarks/bench_polite_crawl.py's figure for a crawler process's peak (PeakFiles with `children`): read from the
crawler processes only. With --full a run has other children: Prefect's ephemeral server (a subprocess) and the
extraction pool's workers, whose peaks were reported as a crawler process's."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

from bench_portals import bench_module

MB = 1024


def _hwm_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def test_a_crawler_process_s_peak_is_read_from_the_crawler_processes_only() -> None:
    bench = bench_module()
    # another child with a larger peak (Prefect's server, an extraction worker): 120 MB written, so resident
    other = subprocess.Popen([sys.executable, "-c", "b = b'x' * (120 << 20); import time; time.sleep(60)"])
    crawler = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,), daemon=True,
                                                           name="gongkai-crawler-1-of-1")
    crawler.start()
    try:
        deadline = time.monotonic() + 30
        while _hwm_kb(other.pid) < 100 * MB and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _hwm_kb(other.pid) >= 100 * MB
        files = bench.PeakFiles(children=True)
        while files.child_peak_kb == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a few more samples, the other child among them had it counted
        files.stop()
        assert 0 < files.child_peak_kb < 100 * MB, files.child_peak_kb
        assert files.child_peak_kb == _hwm_kb(crawler.pid)
    finally:
        other.kill()
        other.wait()
        crawler.kill()
        crawler.join()
