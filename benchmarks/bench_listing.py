"""Listing-page CPU, old against new in one run: each adapter's parse_listing (lxml's tree against BeautifulSoup's), the
HTML decoding (each encoding tried once against UTF-8 twice) and the title classifier (one normalisation against
three), over every saved page (tests/listing_pages.saved_pages: the adapter tests' pages, ../shared/portals, the corpus
HTML, the demo portal's and the polite-crawl benchmark's pages) and the titles listed on them.

    .venv/bin/python benchmarks/bench_listing.py              # 5 repeats, the best of each
    .venv/bin/python benchmarks/bench_listing.py --repeats 9

CPU time (time.process_time) of this process, old and new alternating within each repeat so that the machine's load
falls on both alike; the reference implementations are the tests' (tests/adapters_reference.py,
tests/test_html_decode.py, tests/test_title_classifier.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import adapters_reference as ref  # noqa: E402
from listing_pages import saved_pages  # noqa: E402
from test_html_decode import reference_decode_html  # noqa: E402
from test_title_classifier import reference_classify_title  # noqa: E402

from gongkai.crawler import fetcher  # noqa: E402
from gongkai.crawler.adapters import PageRequest, generic, trs, ucap  # noqa: E402
from gongkai.crawler.registry import Portal  # noqa: E402
from gongkai.extractors.html_reader import decode_html  # noqa: E402
from gongkai.extractors.report_meta import classify_title  # noqa: E402

URL = "http://www.example.gov.cn/col/zfxxgknb/index.html"


def portal(cms: str) -> Portal:
    return Portal("p", "某局", "0", "county", cms, (URL,), frozenset({"www.example.gov.cn"}))


def http_charset(content_type: str) -> str | None:
    """The charset the fetcher hands decode_html for a Content-Type (crawler.fetcher.decode_html)."""
    msg = Message()
    msg["content-type"] = content_type or "text/html"
    charset = msg.get_param("charset")
    return str(charset) if charset else None


def cpu(call: Callable[[], Any]) -> float:
    start = time.process_time()
    call()
    return time.process_time() - start


def host_case() -> tuple[str, Callable[[], Any], Callable[[], Any], int]:
    """One host of benchmarks/bench_polite_crawl.py as the crawler reads it: its two TRS listing pages decoded and
    parsed, their five titles classified, its five detail pages decoded (the detail pages' parsing is not this work)."""
    import bench_crawl

    hosts = range(1, 41)
    listings = [bench_crawl.listing(agency, page) for agency in hosts for page in (0, 1)]
    details = [bench_crawl.detail(agency, year)[0] for agency in hosts for year in bench_crawl.YEARS]
    entry, request = portal("trs"), PageRequest(URL)

    def run(decode: Callable[..., str], parse: Callable[..., Any], classify: Callable[[str], Any]) -> None:
        for body in listings:
            for candidate in parse(entry, request, decode(body, "utf-8"), URL).candidates:
                classify(candidate.title)
        for body in details:
            decode(body, "utf-8")

    return (f"one benchmark host's listing work ({len(hosts)} hosts)", lambda: run(reference_decode_html, ref.trs_parse_listing,
            reference_classify_title), lambda: run(decode_html, trs.parse_listing, classify_title), len(hosts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # BeautifulSoup's warnings on the XML-looking pages
    pages = saved_pages()
    texts = [fetcher.decode_html(body, ctype) for _name, body, ctype in pages]
    listings = [(name, text) for (name, _b, _c), text in zip(pages, texts, strict=True) if len(text) < 60_000]
    request = PageRequest(URL)
    titles = [c.title for _name, text in listings for c in generic.parse_listing(portal("generic"), request, text, URL).candidates]
    http = [http_charset(ctype) for _name, _b, ctype in pages]

    def adapters(family: str, now: Callable[..., Any], before: Callable[..., Any]) -> tuple[str, Callable[[], Any], Callable[[], Any], int]:
        entry = portal(family)
        return (f"parse_listing {family} ({len(listings)} pages)", lambda: [before(entry, request, t, URL) for _n, t in listings],
                lambda: [now(entry, request, t, URL) for _n, t in listings], len(listings))

    bodies = [(body, charset) for (_n, body, _c), charset in zip(pages, http, strict=True)]
    cases = [
        adapters("trs", trs.parse_listing, ref.trs_parse_listing),
        adapters("ucap", ucap.parse_listing, ref.ucap_parse_listing),
        adapters("generic", generic.parse_listing, ref.generic_parse_listing),
        (f"decode_html ({len(bodies)} pages, {sum(len(b) for b, _ in bodies) // 1024} KiB)",
         lambda: [reference_decode_html(b, c) for b, c in bodies], lambda: [decode_html(b, c) for b, c in bodies], len(bodies)),
        (f"classify_title ({len(titles)} titles)", lambda: [reference_classify_title(t) for t in titles],
         lambda: [classify_title(t) for t in titles], len(titles)),
    ]
    cases.append(host_case())
    load = os.getloadavg()[0]
    results = []
    for name, old, new, count in cases:
        best_old, best_new = float("inf"), float("inf")
        for _ in range(args.repeats):
            best_old = min(best_old, cpu(old))
            best_new = min(best_new, cpu(new))
        results.append({"case": name, "old_cpu_ms": round(best_old * 1000, 2), "new_cpu_ms": round(best_new * 1000, 2),
                        "old_us_each": round(best_old / count * 1e6, 1), "new_us_each": round(best_new / count * 1e6, 1),
                        "speedup": round(best_old / best_new, 1) if best_new else None})
    width = max(len(r["case"]) for r in results)
    print(f"{'case':<{width}}  {'old CPU ms':>10}  {'new CPU ms':>10}  {'old µs each':>11}  {'new µs each':>11}  speedup")
    for r in results:
        print(f"{r['case']:<{width}}  {r['old_cpu_ms']:>10}  {r['new_cpu_ms']:>10}  {r['old_us_each']:>11}  {r['new_us_each']:>11}  "
              f"{r['speedup']}x")
    print(json.dumps({"repeats": args.repeats, "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                      "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
