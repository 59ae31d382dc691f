"""Crawl benchmark: a synthetic portal of many agencies, generated from the corpus, crawled and loaded
end to end (Prefect flow, HTTP over loopback, archive, extraction, DuckDB) with politeness delays off.

    .venv/bin/python benchmarks/bench_crawl.py                     # 50, 100 and 200 agencies × 5 years
    .venv/bin/python benchmarks/bench_crawl.py --sizes 500         # the full 500 × 5 (takes a few minutes)

Each size runs in a fresh process (so peak memory is that size's own) with the portal served from a
second process. Reported: reports/s of the first nightly run, peak RSS of the crawling process, and
the time of a second, no-change nightly run (conditional requests only).

Every agency gets a TRS-style column (index.html + index_1.html) of YEARS reports; each report is
one of five corpus documents (HTML detail page, or a notice page with a PDF / DOCX / text
attachment) made unique per agency and year, so nothing is deduplicated away.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOCUMENTS = ROOT / "tests" / "corpus" / "documents"
YEARS = (2019, 2020, 2021, 2022, 2023)
PER_PAGE = 3
# (corpus file, served as: page = the detail page is the report; else an attachment of that extension)
KINDS = [("pingtan-2024.html", "page"), ("hongze-2023.pdf", "pdf"), ("shanghai-szfbgt-2019-libreoffice.docx", "docx"),
         ("zibo-stats-2023.txt", "txt"), ("shanghai-szfbgt-2019.html", "page")]
ETAG = '"bench-v1"'


@cache
def base(name: str) -> bytes:
    return (DOCUMENTS / name).read_bytes()


def unique(name: str, kind: str, agency: int, year: int) -> bytes:
    """The corpus document made distinct for one agency and year without changing what it says."""
    data, tag = base(name), f"gongkai-bench agency {agency} year {year}"
    if kind == "pdf":
        return data + f"\n%{tag}\n".encode()  # bytes after %%EOF are ignored by readers
    if kind == "docx":
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                dst.writestr(item, src.read(item.filename))
            dst.writestr("customXml/gongkai-bench.txt", tag)
        return out.getvalue()
    if kind == "txt":
        return data + f"\n{tag}\n".encode()
    return data.replace(b"</body>", f"<!-- {tag} --></body>".encode()) if b"</body>" in data else data + f"<!-- {tag} -->".encode()


def report_title(agency: int, year: int) -> str:
    return f"示例市第{agency}局{year}年政府信息公开工作年度报告"


def listing(agency: int, page: int) -> bytes:
    years = sorted(YEARS, reverse=True)[page * PER_PAGE : (page + 1) * PER_PAGE]
    pages = -(-len(YEARS) // PER_PAGE)
    rows = "".join(f'<li><a href="./{y + 1}03/t{y + 1}0301_{y}.html" title="{report_title(agency, y)}">{report_title(agency, y)}</a>'
                   f"<span>{y + 1}-03-01</span></li>" for y in years)
    return (f'<html><head><meta charset="utf-8"></head><body><ul>{rows}</ul>'
            f'<script>createPageHTML({pages}, {page}, "index", "html");</script></body></html>').encode()


def detail(agency: int, year: int) -> tuple[bytes, str]:
    name, kind = KINDS[(agency + year) % len(KINDS)]
    if kind == "page":
        return unique(name, kind, agency, year), "text/html; charset=utf-8"
    title = report_title(agency, year)
    page = (f'<html><head><meta charset="utf-8"><meta name="ArticleTitle" content="{title}"></head><body>'
            f'<div class="TRS_Editor"><p>{title}，详见附件。</p></div><p><a href="./P0{year}.{kind}">附件</a></p></body></html>')
    return page.encode(), "text/html; charset=utf-8"


ROUTE = re.compile(r"^/a(\d+)/(?:index(?:_(\d+))?\.html|\d{6}/t\d{8}_(\d{4})\.html|\d{6}/P0(\d{4})\.(pdf|docx|txt))$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body, ctype = self.route()
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        fresh = self.headers.get("If-None-Match") != ETAG
        self.send_response(200 if fresh else 304)
        self.send_header("Content-Type", ctype)
        self.send_header("ETag", ETAG)
        self.send_header("Content-Length", str(len(body) if fresh else 0))
        self.end_headers()
        if fresh:
            self.wfile.write(body)

    def route(self) -> tuple[bytes | None, str]:
        if self.path == "/robots.txt":
            return b"User-agent: *\nAllow: /\n", "text/plain"
        m = ROUTE.match(self.path)
        if not m:
            return None, ""
        agency = int(m.group(1))
        if m.group(3):
            return detail(agency, int(m.group(3)))
        if m.group(4):
            year, ext = int(m.group(4)), m.group(5)
            name = next(n for n, k in KINDS if k == ext)
            return unique(name, ext, agency, year), "application/octet-stream"
        return listing(agency, int(m.group(2) or 0)), "text/html; charset=utf-8"


def serve(port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def registry(n: int) -> str:
    return "".join(
        f'[[portal]]\nid = "bench-{i}"\nagency = "示例市第{i}局"\ndivision_code = "{110000 + i:06d}"\nlevel = "department"\n'
        f'cms = "trs"\nlisting = ["http://127.0.0.1:{{demo}}/a{i}/index.html"]\nhosts = ["127.0.0.1:{{demo}}"]\n\n'
        for i in range(n)
    )


def _live_descendants(root: int) -> dict[int, float]:
    """CPU seconds of every live process under `root` (Prefect's server subprocess, extraction workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, cpu) in stats.items():
            if ppid == parent and pid not in tree:
                tree[pid] = cpu
                frontier.append(pid)
    return tree


def cpu_seconds(exclude: int) -> float:
    """CPU used so far by this process, its reaped children, and its live descendants except `exclude`."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = sum(cpu for pid, cpu in _live_descendants(os.getpid()).items() if pid != exclude)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + live


def measure(n: int) -> dict[str, float | int]:
    """One size, in this process: start the portal in a child process, crawl twice."""
    os.environ.setdefault("GONGKAI_CRAWL_WORKERS", "8")
    from gongkai.settings import quiet_prefect

    quiet_prefect()
    from prefect import flow

    from gongkai.flows.crawl import nightly_flow

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        pass

    started = time.perf_counter()
    warm_up()  # start Prefect's ephemeral server outside the timed runs
    server_start_s = time.perf_counter() - started

    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=serve, args=(queue,), daemon=True)
    server.start()
    port = queue.get(timeout=30)
    with tempfile.TemporaryDirectory(prefix="gongkai-bench-") as tmp:
        os.environ["GONGKAI_DATA"] = tmp
        reg = Path(tmp) / "registry.toml"
        reg.write_text(registry(n), "utf-8")
        params = dict(db_url=f"duckdb:///{tmp}/bench.duckdb", archive_location=f"{tmp}/archive", registry_file=str(reg), demo_port=port,
                      state_file=f"{tmp}/state.json", politeness={"delay": 0.0, "concurrency": 16, "retries": 1, "backoff": 0.1})
        cpu_before, started = cpu_seconds(server.pid or 0), time.perf_counter()
        first = nightly_flow(**params)
        first_s = time.perf_counter() - started
        cpu_first = cpu_seconds(server.pid or 0) - cpu_before
        started = time.perf_counter()
        second = nightly_flow(**params)
        second_s = time.perf_counter() - started
    server.terminate()
    loaded = first["counts"].get("new", 0)
    return {
        "agencies": n, "reports": n * len(YEARS), "prefect_start_s": round(server_start_s, 1), "loaded": loaded, "first_run_s": round(first_s, 2),
        "cpu_s_per_report": round(cpu_first / max(loaded, 1), 3), "load_avg": os.getloadavg()[0],
        "reports_per_s": round(loaded / first_s, 1), "no_change_run_s": round(second_s, 2),
        "no_change_loaded": second["counts"].get("new", 0) + second["counts"].get("changed", 0),
        "no_change_requests": second["requests"], "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[50, 100, 200], help="agency counts")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    print(f"{'agencies':>8} {'reports':>7} {'loaded':>6} {'first s':>8} {'reports/s':>9} {'CPU s/rep':>9} {'rerun s':>8} "
          f"{'peak MB':>8} {'load':>5}")
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['agencies']:>8} {r['reports']:>7} {r['loaded']:>6} {r['first_run_s']:>8} {r['reports_per_s']:>9} "
              f"{r['cpu_s_per_report']:>9} {r['no_change_run_s']:>8} {r['peak_rss_mb']:>8} {r['load_avg']:>5.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
