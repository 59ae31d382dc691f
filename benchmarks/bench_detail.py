"""Detail-page benchmark: the CPU of crawler/detail.py's parse_detail on the 5,000 detail pages of bench_crawl.py's
portal (1,000 agencies x 5 years) and on every saved real HTML page (tests/ and ../shared), side by side with
another version of the module when one is given (the same pages, interleaved rounds, the best of each).

    .venv/bin/python benchmarks/bench_detail.py                             # this checkout's parse_detail
    git show main:crawler/detail.py > /tmp/old_detail.py
    .venv/bin/python benchmarks/bench_detail.py --against /tmp/old_detail.py  # old vs new, and their answers compared

CPU is time.process_time (this process only), so other work on the machine changes it less than wall time; the
load average is printed beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_crawl import YEARS, detail  # noqa: E402

from gongkai.crawler import detail as current  # noqa: E402

Pages = list[tuple[str, str]]


def bench_pages(agencies: int) -> Pages:
    return [(detail(agency, year)[0].decode("utf-8"), f"http://127.0.0.1/a{agency}/{year + 1}03/t{year + 1}0301_{year}.html")
            for agency in range(agencies) for year in YEARS]


def real_pages() -> Pages:
    paths = sorted((ROOT / "tests" / "corpus" / "documents").glob("*.htm*"))
    paths += sorted(p for p in (ROOT / "tests" / "portals").iterdir() if p.is_file() and "htm" in p.suffix)
    shared = Path(os.environ.get("GONGKAI_SHARED") or ROOT.parent / "shared")  # ../shared beside the clone, when there
    for folder in (shared / "corpus" / "documents", shared / "portals"):
        paths += sorted(folder.glob("*.htm*")) if folder.is_dir() else []
    return [(p.read_text("utf-8", "replace"), f"http://h/a/{p.name}") for p in paths]


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("other_detail", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_detail"] = module  # (its dataclass looks its module up)
    spec.loader.exec_module(module)
    return module


def cpu(parse: Callable[[str, str], object], pages: Pages) -> float:
    start = time.process_time()
    for text, url in pages:
        parse(text, url)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, help="another detail.py to run side by side (e.g. main's)")
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real-repeat", type=int, default=20, help="the real pages are few: each read this often")
    args = parser.parse_args()
    versions: dict[str, ModuleType] = {"this": current}
    if args.against:
        versions = {"other": load(args.against), **versions}
    sets = {"bench": bench_pages(args.agencies), "real": real_pages() * args.real_repeat}
    if args.against:  # the same answers, or the comparison means nothing
        for text, url in sets["bench"][:25] + sets["real"]:
            old, new = versions["other"].parse_detail(text, url), current.parse_detail(text, url)
            assert old.to_dict() == new.to_dict() and old.pictures == new.pictures, url
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for name, pages in sets.items():
        best = dict.fromkeys(versions, float("inf"))
        for _ in range(args.rounds):  # (rounds interleaved: a change in the machine's load touches both)
            for label, module in versions.items():
                best[label] = min(best[label], cpu(module.parse_detail, pages))
        line = "  ".join(f"{label} {seconds:.3f} s ({seconds / len(pages) * 1e3:.3f} ms/page)" for label, seconds in best.items())
        ratio = f"  new/old {best['this'] / best['other']:.2f}" if args.against else ""
        print(f"{name} ({len(pages)} pages): {line}{ratio}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
