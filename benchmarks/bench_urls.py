"""URL judging cost: crawler/urls.parse_uncached (the gate every URL passes once per run) against its full path of
before (tests/urls_reference.py), side by side in one run, in CPU µs per URL.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_urls.py [--repeat 5]

URL sets: `crawl` the URLs a polite-crawl benchmark host is sent (robots.txt, listing, detail pages, attachments, on a
loopback port); `portals` the accepted URLs of the repository's tests and saved pages (real government links, with
their odd ones: bare hosts, upper case, Chinese file names, which take the full path); `links` every href of the saved
pages joined against its page (the listing walk's urljoin, crawler/adapters/links.join_link) and, for contrast, that
join plus the judgement (urls.resolve, as for a redirect). CPU time (time.process_time), the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import url_samples  # noqa: E402
import urls_reference as reference  # noqa: E402

from gongkai.crawler import urls  # noqa: E402


def crawl_urls(hosts: int = 200) -> list[str]:
    """What benchmarks/bench_polite_crawl.py's portal is asked, per host (bench_crawl's TRS column of 5 reports)."""
    out = []
    for i in range(hosts):
        base = f"http://127.0.0.1:{20000 + i}"
        out += [f"{base}/robots.txt", f"{base}/a{i}/index.html", f"{base}/a{i}/index_1.html"]
        for year in range(2019, 2024):
            out += [f"{base}/a{i}/{year + 1}03/t{year + 1}0301_{year}.html", f"{base}/a{i}/{year + 1}03/P0{year}.docx"]
    return out


def accepted(candidates: Sequence[str]) -> list[str]:
    out = []
    for url in candidates:
        try:
            reference.parse_uncached(url)
        except (ValueError, KeyError):  # KeyError: the reference's (?i) scheme also matches 'httpſ' (long s), then fails
            continue
        out.append(url)
    return out


def cpu_us(work: Callable[[], object], n: int, repeat: int) -> tuple[float, float]:
    """(best, median) CPU µs per item over `repeat` runs of `work` (which handles n items)."""
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        runs.append((time.process_time() - started) / n * 1e6)
    return min(runs), statistics.median(runs)


def judge_all(parse: Callable[[str], object], bad: type[Exception], items: Sequence[str]) -> Callable[[], None]:
    def run() -> None:
        for url in items:
            try:
                parse(url)
            except bad:
                pass
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    shared = os.environ.get("GONGKAI_SHARED")
    found, links = url_samples.repository_urls(*([Path(shared) / "portals", Path(shared) / "corpus"] if shared else []))
    sets = {"crawl": crawl_urls(), "portals": accepted(found)}
    print(f"load average {os.getloadavg()[0]:.2f}; CPU µs per URL, best / median of {args.repeat}")
    print(f"{'set':<10}{'URLs':>7}{'before':>18}{'now':>18}{'speed-up':>10}")
    for name, items in sets.items():
        old = cpu_us(judge_all(reference.parse_uncached, reference.BadURL, items), len(items), args.repeat)
        new = cpu_us(judge_all(urls.parse_uncached, urls.BadURL, items), len(items), args.repeat)
        print(f"{name:<10}{len(items):>7}{old[0]:>10.1f} / {old[1]:<5.1f}{new[0]:>10.1f} / {new[1]:<5.1f}"
              f"{old[0] / new[0]:>9.1f}×")
    join = cpu_us(lambda: [url_samples.joined(base, href) for base, href in links], len(links), args.repeat)
    print(f"links {len(links)}: urljoin alone {join[0]:.1f} µs per link (the walk's join_link)")
    for label, module in (("before", reference), ("now", urls)):
        resolve = module.resolve
        bad = module.BadURL

        def resolve_all(resolve: Callable[[str, str], object] = resolve, bad: type[Exception] = bad) -> None:
            for base, href in links:
                try:
                    resolve(base, href)
                except (bad, ValueError):
                    pass
        forget = module._parse_cached.cache_clear  # each link judged afresh, as a new page's links are
        best = cpu_us(lambda forget=forget: (forget(), resolve_all()), len(links), args.repeat)
        print(f"links: urljoin + judgement (resolve, uncached) {label}: {best[0]:.1f} µs per link")


if __name__ == "__main__":
    main()
