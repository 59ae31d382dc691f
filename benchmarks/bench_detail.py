"""Detail-page benchmark: the CPU of crawler/detail.py's parse_detail on the 5,000 detail pages of bench_crawl.py's
portal (1,000 agencies x 5 years) and on every saved real HTML page (tests/ and ../shared), side by side with
another version of the module when one is given (the same pages, interleaved rounds, the best of each).

    .venv/bin/python benchmarks/bench_detail.py                             # this checkout's parse_detail
    git show main:crawler/detail.py > /tmp/old_detail.py
    .venv/bin/python benchmarks/bench_detail.py --against /tmp/old_detail.py  # old vs new, and their answers compared
    .venv/bin/python benchmarks/bench_detail.py --before 0460228          # detail.py and the page parse of a commit

--before REV reads crawler/detail.py and the modules whose reading it times (adapters/tree.py, adapters/links.py) from
git at REV into modules of their own, so the old reading runs beside this checkout's in one process. Besides the CPU
per page, the GIL-held share: libxml2's parse of a whole page (etree.fromstring) runs without the GIL, a fed parser
(parser.feed) holds it; one process of the crawler is bound by the GIL, so that share is what a page costs its wall.

Each page is handed over as the crawl hands it (Response.text_and_utf8): the text with its UTF-8 bytes when it came
as UTF-8; a version of parse_detail that does not take them encodes the text itself, as the crawl's did.

CPU is time.process_time (this process only), so other work on the machine changes it less than wall time; the
load average is printed beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_crawl import YEARS, detail, listing  # noqa: E402

from gongkai.crawler import detail as current  # noqa: E402
from gongkai.crawler.adapters import tree  # noqa: E402

BEFORE_AGENCIES = 20  # --before: bench_crawl's pages of 20 agencies x 5 years, each page timed on its own
# the modules --before takes from the old commit, as their import names; detail.py last (it imports the others)
BEFORE_MODULES = (("gongkai.crawler.adapters.tree", "crawler/adapters/tree.py"),
                  ("gongkai.crawler.adapters.links", "crawler/adapters/links.py"))

# (text, URL, the text's UTF-8 when the page came as such: what the crawl hands parse_detail, Response.text_and_utf8)
Pages = list[tuple[str, str, bytes | None]]
Parse = Callable[[str, str, "bytes | None"], Any]


def bench_pages(agencies: int) -> Pages:
    pages = [detail(agency, year)[0] for agency in range(agencies) for year in YEARS]
    return [(page.decode("utf-8"), f"http://127.0.0.1/a{agency}/{year + 1}03/t{year + 1}0301_{year}.html", page)
            for page, (agency, year) in zip(pages, ((a, y) for a in range(agencies) for y in YEARS), strict=True)]


def utf8_of(data: bytes) -> bytes | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if data.startswith(b"\xef\xbb\xbf") else data


def reader(module: ModuleType) -> Parse:
    """The module's parse_detail as the crawl calls it: with the page's UTF-8 when it takes it (older versions encode
    the text themselves)."""
    if "utf8" in inspect.signature(module.parse_detail).parameters:
        return module.parse_detail  # type: ignore[no-any-return]
    return lambda text, url, _utf8: module.parse_detail(text, url)


def real_pages() -> Pages:
    paths = sorted((ROOT / "tests" / "corpus" / "documents").glob("*.htm*"))
    paths += sorted(p for p in (ROOT / "tests" / "portals").iterdir() if p.is_file() and "htm" in p.suffix)
    shared = Path(os.environ.get("GONGKAI_SHARED") or ROOT.parent / "shared")  # ../shared beside the clone, when there
    for folder in (shared / "corpus" / "documents", shared / "portals"):
        paths += sorted(folder.glob("*.htm*")) if folder.is_dir() else []
    return [(p.read_text("utf-8", "replace"), f"http://h/a/{p.name}", utf8_of(p.read_bytes())) for p in paths]


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("other_detail", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_detail"] = module  # (its dataclass looks its module up)
    spec.loader.exec_module(module)
    return module


def load_source(name: str, source: str) -> ModuleType:
    module = ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module  # (its dataclass looks its module up)
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 — our own code, from git
    return module


def load_before(rev: str) -> ModuleType:
    """crawler/detail.py at `rev`, importing the old tree and links of `rev` (each loaded from git, put in
    sys.modules under the import name only while the old detail.py imports them)."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True,
                              text=True).stdout

    saved = {name: sys.modules[name] for name, _ in BEFORE_MODULES}
    try:
        for name, path in BEFORE_MODULES:
            sys.modules[name] = load_source(f"before_{name.rsplit('.', 1)[1]}", show(path))
        return load_source("before_detail", show("crawler/detail.py"))
    finally:
        sys.modules.update(saved)


class ParseClock:
    """The CPU spent inside etree.fromstring (libxml2's parse of a whole page, run without the GIL) by the modules
    given, while installed: their `etree` replaced by a namespace that times that one call (not installed while the
    CPU per page is measured: the timing costs a few microseconds a call)."""

    def __init__(self, *modules: ModuleType) -> None:
        self.seconds = 0.0
        self.modules = [m for m in modules if getattr(m, "etree", None) is etree]
        self.timed = SimpleNamespace(**{name: getattr(etree, name) for name in dir(etree) if not name.startswith("__")})
        self.timed.fromstring = self.fromstring

    def fromstring(self, *args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return etree.fromstring(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - start

    @contextmanager
    def installed(self) -> Iterator[None]:
        for module in self.modules:
            module.etree = self.timed  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module in self.modules:
                module.etree = etree  # type: ignore[attr-defined]


def cpu(parse: Parse, pages: Pages) -> float:
    start = time.process_time()
    for text, url, utf8 in pages:
        parse(text, url, utf8)
    return time.process_time() - start


READING_S = 0.0005  # a reading of a small page reads it this long (many times): one 30 us reading is mostly noise


def per_page(parse: Parse, pages: Pages, repeat: int) -> list[float]:
    """The CPU of each page, the median of `repeat` readings."""
    found = []
    for text, url, utf8 in pages:
        start = time.process_time()
        parse(text, url, utf8)
        calls = min(max(1, int(READING_S / max(time.process_time() - start, 1e-6))), 50)
        readings = []
        for _ in range(repeat):
            start = time.process_time()
            for _ in range(calls):
                parse(text, url, utf8)
            readings.append((time.process_time() - start) / calls)
        found.append(statistics.median(readings))
    return found


def unlocked(parse: Parse, pages: Pages, clock: ParseClock, repeat: int) -> list[float]:
    """The CPU of each page spent in the GIL-free parse, the median of `repeat` readings."""
    found = []
    with clock.installed():
        for text, url, utf8 in pages:
            readings = []
            for _ in range(repeat):
                before = clock.seconds
                parse(text, url, utf8)
                readings.append(clock.seconds - before)
            found.append(statistics.median(readings))
    return found


def compare_before(before: ModuleType, rounds: int, agencies: int, repeat: int) -> None:
    """Old and new per page (medians of `repeat` readings, interleaved rounds, the best round of each): the mean CPU
    and GIL-held CPU per page over the bench pages and the real ones, and the page that gained least."""
    clock = ParseClock(tree, before, sys.modules["before_tree"])
    versions = {"old": before, "new": current}
    sets = {"bench": bench_pages(agencies), "real": real_pages()}
    for text, url, utf8 in sets["bench"] + sets["real"]:  # the same answers, or the comparison means nothing
        old, new = reader(before)(text, url, utf8), current.parse_detail(text, url, utf8)
        assert old.to_dict() == new.to_dict() and old.pictures == new.pictures, url
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for name, pages in sets.items():
        best: dict[str, list[float]] = {}
        for _ in range(rounds):
            for label, module in versions.items():
                got = per_page(reader(module), pages, repeat)
                best[label] = [min(a, b) for a, b in zip(best[label], got, strict=True)] if label in best else got
        line = []
        for label, found in best.items():
            free = unlocked(reader(versions[label]), pages, clock, repeat)
            total = sum(found) / len(found) * 1e3
            held = sum(max(cpu - out, 0.0) for cpu, out in zip(found, free, strict=True)) / len(found) * 1e3
            line.append(f"{label} {total:.3f} CPU-ms/page ({held:.3f} holding the GIL)")
        ratios = sorted((new / old, i) for i, (old, new) in enumerate(zip(best["old"], best["new"], strict=True)))
        worst, index = ratios[-1]
        print(f"{name} ({len(pages)} pages): {'  '.join(line)}; least gain: page {index} ({len(pages[index][0])} chars) "
              f"new/old CPU {worst:.2f}")
    listing_parse(sys.modules["before_tree"], rounds, repeat)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def listing_parse(before_tree: ModuleType, rounds: int, repeat: int) -> None:
    """tree.parse_html as the listing adapters call it (huge_tree), old and new, over the benchmark's listing pages
    and the saved real listing pages: the same trees, and the CPU per page."""
    texts = [listing(agency, page).decode("utf-8") for agency in range(BEFORE_AGENCIES) for page in (0, 1)]
    texts += [p.read_text("utf-8", "replace") for p in sorted((ROOT / "tests" / "portals").glob("*list*.*htm*"))]
    for text in texts:
        old, new = before_tree.parse_html(text), tree.parse_html(text)
        assert etree.tostring(old) == etree.tostring(new)
    pages: Pages = [(text, "", None) for text in texts]
    best: dict[str, float] = {}
    for label, module in (("old", before_tree), ("new", tree)):
        def parse(text: str, _url: str, _utf8: bytes | None, module: ModuleType = module) -> object:
            return module.parse_html(text)

        best[label] = min(sum(per_page(parse, pages, repeat)) for _ in range(rounds))
    print(f"listing parse_html ({len(pages)} pages): " + "  ".join(f"{label} {seconds / len(pages) * 1e3:.3f} CPU-ms/page"
                                                                     for label, seconds in best.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, help="another detail.py to run side by side (e.g. main's)")
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real-repeat", type=int, default=20, help="the real pages are few: each read this often")
    parser.add_argument("--before", metavar="REV", help="time detail.py and the page parse of git revision REV beside these")
    args = parser.parse_args()
    if args.before:
        compare_before(load_before(args.before), args.rounds, BEFORE_AGENCIES, repeat=9)
        return
    versions: dict[str, ModuleType] = {"this": current}
    if args.against:
        versions = {"other": load(args.against), **versions}
    sets = {"bench": bench_pages(args.agencies), "real": real_pages() * args.real_repeat}
    if args.against:  # the same answers, or the comparison means nothing
        for text, url, utf8 in sets["bench"][:25] + sets["real"]:
            old, new = reader(versions["other"])(text, url, utf8), current.parse_detail(text, url, utf8)
            assert old.to_dict() == new.to_dict() and old.pictures == new.pictures, url
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for name, pages in sets.items():
        best = dict.fromkeys(versions, float("inf"))
        for _ in range(args.rounds):  # (rounds interleaved: a change in the machine's load touches both)
            for label, module in versions.items():
                best[label] = min(best[label], cpu(reader(module), pages))
        line = "  ".join(f"{label} {seconds:.3f} s ({seconds / len(pages) * 1e3:.3f} ms/page)" for label, seconds in best.items())
        ratio = f"  new/old {best['this'] / best['other']:.2f}" if args.against else ""
        print(f"{name} ({len(pages)} pages): {line}{ratio}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
