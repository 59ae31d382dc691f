"""Extraction speed over the real corpus: `python benchmarks/bench_extract.py [--runs N] [--check]`.

For every document in tests/corpus/documents: the median milliseconds of `extractors.read_document`
(bytes → document model) and of `extractors.extract.extract_report` (the whole extraction, once it
exists), over N runs after one warm-up. For each PDF, pdfplumber's own
`[p.extract_tables() for p in pdf.pages]` is timed in the same loop, interleaved with ours so both
see the same machine load, and the ratio ours / pdfplumber is printed.

Targets: PDF ratio ≤ 0.5 (whole extraction), HTML ≤ 30 ms, DOCX ≤ 50 ms. `--check` exits 1 when one is
missed; `--cpu` times this process's CPU instead of the wall clock, steadier on a machine busy with other work.
`--stages` also prints, for each PDF, what the page join (pdf_join) and the rule-less grid rebuild
(pdf_textgrid) cost, in ms and as a share of the whole extraction.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pdfplumber  # noqa: E402

from gongkai.extractors import read_document, sniff_format  # noqa: E402

try:
    from gongkai.extractors.extract import extract_report
except ImportError:  # the lead's whole-extraction entry point is not written yet
    extract_report = None  # type: ignore[assignment]

DOCUMENTS = ROOT / "tests" / "corpus" / "documents"
PDF_RATIO_TARGET = 0.5
MS_TARGETS = {"html": 30.0, "docx": 50.0}


@dataclass
class Result:
    name: str
    fmt: str
    read_ms: float | None = None
    extract_ms: float | None = None
    pdfplumber_ms: float | None = None
    error: str = ""

    @property
    def ours_ms(self) -> float | None:
        return self.extract_ms if self.extract_ms is not None else self.read_ms

    @property
    def ratio(self) -> float | None:
        if self.ours_ms is None or not self.pdfplumber_ms:
            return None
        return self.ours_ms / self.pdfplumber_ms

    @property
    def target(self) -> str:
        if self.fmt == "pdf":
            return f"ratio ≤ {PDF_RATIO_TARGET}"
        return f"≤ {MS_TARGETS[self.fmt]:.0f} ms" if self.fmt in MS_TARGETS else "-"

    @property
    def met(self) -> bool | None:
        if self.error:
            return False
        if self.fmt == "pdf":
            return None if self.ratio is None else self.ratio <= PDF_RATIO_TARGET
        if self.fmt in MS_TARGETS and self.ours_ms is not None:
            return self.ours_ms <= MS_TARGETS[self.fmt]
        return None


def pdfplumber_tables(data: bytes) -> None:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        [p.extract_tables() for p in pdf.pages]


def median_ms(timings: list[float]) -> float:
    return statistics.median(timings) * 1000


def bench(path: Path, runs: int, clock: Callable[[], float] = time.perf_counter) -> Result:
    data = path.read_bytes()
    try:
        fmt = sniff_format(data, path.name)
    except ValueError as exc:
        return Result(path.name, "?", error=str(exc))
    result = Result(path.name, fmt)
    contenders: dict[str, Callable[[], object]] = {"read": lambda: read_document(data, path.name)}
    if extract_report is not None:
        contenders["extract"] = lambda: extract_report(data, path.name)
    if fmt == "pdf":
        contenders["pdfplumber"] = lambda: pdfplumber_tables(data)
    timings: dict[str, list[float]] = {key: [] for key in contenders}
    try:
        for run in range(runs + 1):  # run 0 warms caches (imports, CMaps, schema) and is not counted
            for key, call in contenders.items():
                start = clock()
                call()
                if run:
                    timings[key].append(clock() - start)
    except Exception as exc:  # report the document and go on with the others
        result.error = f"{type(exc).__name__}: {exc}"[:80]
        return result
    result.read_ms = median_ms(timings["read"])
    result.extract_ms = median_ms(timings["extract"]) if "extract" in timings else None
    result.pdfplumber_ms = median_ms(timings["pdfplumber"]) if "pdfplumber" in timings else None
    return result


STAGES = ("join_across_pages", "rebuild", "continued")  # names as pdf_reader imports them


def stage_shares(path: Path, runs: int, clock: Callable[[], float]) -> str:
    """What the page join and the text-grid rebuild cost in one PDF's extraction (median over runs)."""
    from gongkai.extractors import pdf_reader

    data = path.read_bytes()
    spent: dict[str, float] = {}
    originals = {name: getattr(pdf_reader, name) for name in STAGES}

    def timed(name: str, func: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            start = clock()
            try:
                return func(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + clock() - start

        return wrapper

    totals: list[float] = []
    shares: dict[str, list[float]] = {name: [] for name in STAGES}
    try:
        for name, func in originals.items():
            setattr(pdf_reader, name, timed(name, func))
        for run in range(runs + 1):
            spent.clear()
            start = clock()
            if extract_report is not None:
                extract_report(data, path.name)
            else:
                read_document(data, path.name)
            if run:
                totals.append(clock() - start)
                for name in STAGES:
                    shares[name].append(spent.get(name, 0.0))
    finally:
        for name, func in originals.items():
            setattr(pdf_reader, name, func)
    total = median_ms(totals)
    join = median_ms(shares["join_across_pages"])
    grid = median_ms([a + b for a, b in zip(shares["rebuild"], shares["continued"], strict=True)])
    return (
        f"  {path.name}: extract {total:.1f} ms; page join {join:.2f} ms ({100 * join / total:.1f}%);"
        f" text-grid rebuild {grid:.2f} ms ({100 * grid / total:.1f}%)"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(results: list[Result], runs: int, clock: str) -> str:
    header = ("document", "format", "read ms", "extract ms", "pdfplumber ms", "ratio", "target", "met")
    rows = [header]
    for r in results:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        rows.append((r.name, r.fmt, _ms(r.read_ms), _ms(r.extract_ms), _ms(r.pdfplumber_ms), ratio, r.target, met))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"median {clock} ms over {runs} runs after one warm-up;"
        " ratio = ours (extract, else read) / pdfplumber extract_tables()"
    ]
    for row in rows:
        cells = [c.rjust(w) if 2 <= i <= 5 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines += [f"  {r.name}: {r.error}" for r in results if r.error]
    by_format: dict[str, list[float]] = {}
    for r in results:
        if r.ours_ms is not None:
            by_format.setdefault(r.fmt, []).append(r.ours_ms)
    summary = ", ".join(f"{fmt} {statistics.median(ms):.1f}" for fmt, ms in sorted(by_format.items()))
    lines.append(f"median ms per report by format: {summary}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per document (default 7)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--cpu", action="store_true", help="time this process's CPU, not the wall clock")
    parser.add_argument("--stages", action="store_true", help="print the page-join and text-grid share per PDF")
    parser.add_argument("documents", nargs="*", type=Path, help="documents to time (default: the corpus)")
    args = parser.parse_args(argv)
    paths = args.documents or sorted(p for p in DOCUMENTS.iterdir() if p.is_file())
    clock = time.process_time if args.cpu else time.perf_counter
    results = [bench(path, args.runs, clock) for path in paths]
    print(render(results, args.runs, "CPU" if args.cpu else "wall-clock"))
    if args.stages:
        print("page join and text-grid rebuild, median over the runs:")
        for path, r in zip(paths, results, strict=True):
            if r.fmt == "pdf" and not r.error:
                print(stage_shares(path, args.runs, clock))
    return 1 if args.check and any(r.met is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
