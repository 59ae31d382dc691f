"""OCR speed and memory: `python benchmarks/bench_ocr.py [--dpi 150 200 300] [--report hongze-2023.pdf]`.

A corpus report is scanned (tests/ocr_scans.py: rendered at each dpi, turned 1.2°, noise, JPEG) and read back by
OCR, each dpi in a fresh subprocess so that its peak memory (ru_maxrss: model, page images, ONNX arenas) is its
own. Printed per dpi: seconds per page (wall and CPU of the process, model load excluded), the model's load time,
peak resident memory, and gold cells read right. `--threads N`: ONNX threads (GONGKAI_OCR_THREADS; default 2).
Pages are rendered at the default GONGKAI_OCR_DPI (200) whatever the scan's own resolution, as a report is read.

Measured on 2 shared cores (load 1.6-5), 2 threads: scanned at 150 / 200 / 300 dpi, 2.7 / 4.6 / 8.0 s a page wall,
4.4 / 4.7 / 5.8 CPU-s a page, peak 755 / 614 / 638 MB, 186/186 gold cells each (before detection was scaled to
1280 px: ~10.5 CPU-s a page and ~1.1 GB, 183/186 at 300 dpi).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from ocr_scans import scanned_pdf
import pypdfium2 as pdfium
from gongkai.extractors.extract import extract_result
from gongkai.extractors.ocr import Limits
from gongkai.extractors.ocr.engine import _engine, configure
name, dpi, cache, threads = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
configure(threads)
scan = scanned_pdf((Path(sys.argv[1]) / "tests/corpus/documents" / name).read_bytes(), dpi, cache)
pages = len(pdfium.PdfDocument(scan))
t = time.perf_counter(); _engine(); load = time.perf_counter() - t
wall, cpu = time.perf_counter(), time.process_time()
result = extract_result(scan, name, ocr_limits=Limits(threads=threads))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
gold = json.loads((Path(sys.argv[1]) / "tests/corpus/gold" / f"{name}.json").read_text(encoding="utf-8"))["cells"]
right = sum(1 for a, v in gold.items() if result.cells.get(a) == v)
print(json.dumps({"pages": pages, "wall": wall, "cpu": cpu, "load": load, "right": right, "gold": len(gold),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, nargs="+", default=[150, 200, 300])
    parser.add_argument("--report", default="hongze-2023.pdf")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"{args.report}, {args.threads} ONNX thread(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'dpi':>4} {'pages':>5} {'s/page':>7} {'cpu s/page':>10} {'load s':>6} {'peak MB':>8} {'gold cells':>10}")
    with tempfile.TemporaryDirectory() as cache:
        for dpi in args.dpi:
            done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), args.report, str(dpi), cache, str(args.threads)], env=env,
                                  capture_output=True, text=True, timeout=1800, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{dpi:>4} {r['pages']:>5} {r['wall'] / r['pages']:>7.1f} {r['cpu'] / r['pages']:>10.1f} {r['load']:>6.2f} "
                  f"{r['peak_mb']:>8.0f} {r['right']:>4}/{r['gold']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
