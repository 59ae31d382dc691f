"""The crawl record's JSON CPU (issue 10), before (tests/docjson_reference.py) and now, side by side in one run, in CPU
ms: 5,000 documents appended and summarised (crawler.crawl.Documents), 11,000 crawl-state entries committed, saved and
loaded (crawler.state.CrawlState with a file), the records of bench_polite_crawl at 1,000 hosts (tests/docjson_samples.py).

    python benchmarks/bench_docjson.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import docjson_reference as reference  # noqa: E402
import docjson_samples  # noqa: E402

from gongkai.crawler import state as state_module  # noqa: E402
from gongkai.crawler.crawl import Documents  # noqa: E402
from gongkai.crawler.state import CrawlState  # noqa: E402


def cpu_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    docs, entries = docjson_samples.documents(), docjson_samples.entries()
    folder = Path(tempfile.mkdtemp(prefix="bench-docjson-"))
    old_file, new_file = folder / "old.json", folder / "new.json"

    OldDocuments, OldCrawlState = reference.old_classes()

    def append(cls: type[Documents]) -> Callable[[], Documents]:
        def run() -> Documents:
            record = cls()
            for d in docs:
                record.append(d)
            return record
        return run

    def commit(cls: type[CrawlState], path: Path) -> Callable[[], CrawlState]:
        def run() -> CrawlState:
            state = cls(path)
            for url, etag, lm, derived in entries:
                state.commit(url, etag=etag, last_modified=lm, derived=derived)
            return state
        return run

    old_record, record = append(OldDocuments)(), append(Documents)()
    old_state, state = commit(OldCrawlState, old_file)(), commit(CrawlState, new_file)()
    old_state.save()
    state.save()
    assert old_file.read_bytes() == new_file.read_bytes(), "the state files differ"
    assert record.as_dicts() == old_record.as_dicts(), "the summaries differ"
    rows = [
        ("5,000 documents appended", append(OldDocuments), append(Documents)),
        ("  ... and summarised (as_dicts)", old_record.as_dicts, record.as_dicts),
        ("11,000 state entries committed", commit(OldCrawlState, folder / "none.json"), commit(CrawlState, folder / "none.json")),
        ("  ... saved to the file", old_state.save, state.save),
        ("  ... loaded from the file", lambda: OldCrawlState(old_file), lambda: CrawlState(new_file)),
    ]
    print(f"{'CPU ms (median of ' + str(args.repeat) + ')':34} {'before':>8} {'now':>8} {'ratio':>6}")
    total_old = total_new = 0.0
    for label, old, new in rows:
        o, n = cpu_ms(old, args.repeat), cpu_ms(new, args.repeat)
        total_old, total_new = total_old + o, total_new + n
        print(f"{label:34} {o:8.1f} {n:8.1f} {n / o:6.2f}")
    print(f"{'total':34} {total_old:8.1f} {total_new:8.1f} {total_new / total_old:6.2f}")
    print(f"state file {new_file.stat().st_size / 1e6:.1f} MB, {len(json.loads(new_file.read_text('utf-8')))} entries; "
          f"module {state_module.__file__}")


if __name__ == "__main__":
    main()
