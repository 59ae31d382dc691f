"""The crawl record's JSON, made cheaper (issue 10): the documents' lines, the crawl-state entries, the state file and
what `get` returns are the same as the old code's (tests/docjson_reference.py) on a 1,000-host record with hostile
values, and a detail page's state is looked up (its JSON parsed) once per visit."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import docjson_reference as reference
import docjson_samples
import pytest
from bench_portals import Portal

from gongkai.crawler.crawl import CrawlContext, Documents, walk_sequentially
from gongkai.crawler.fetcher import Fetcher
from gongkai.crawler.registry import all_hosts, load_registry
from gongkai.crawler.state import CrawlState, validators_of
from gongkai.warehouse import IngestOutcome, open_archive

HOSTILE_DERIVED: list[Any] = [
    {"z": 1, "a": [1.5, -0.0, 1e300, True, False, None], "中": {"y": "\udc80", "b": "\"\\\x00\u2028"}},
    [{"title": "破损 \ud83d", "url": "http://127.0.0.1/报告.pdf", "published": None}],
    float("nan"), float("inf"), 0, "", [], {}, "emoji 😀 \ud83d\ude00", [[["深"]]], 10**30,
]


@pytest.fixture(scope="module")
def records() -> tuple[list[IngestOutcome], list[tuple[str, str | None, str | None, Any]]]:
    entries = docjson_samples.entries(300)
    entries += [(f"http://127.0.0.1:1/odd/{i}\udc81", '"e"' if i % 2 else None, "Mon, 1 Jan 2024 00:00:00 GMT", d)
                for i, d in enumerate(HOSTILE_DERIVED)]
    return docjson_samples.documents(1500), entries


def test_documents_lines_and_summary_are_the_old_ones(records: Any) -> None:
    docs, _ = records
    appended, extended = Documents(), Documents()
    for doc in docs:
        appended.append(doc)
    extended.extend(docs[:700])
    extended.extend(iter(docs[700:]))  # a generator, as the walk's item results may be
    old = b"".join(reference.document_line(doc) for doc in docs)
    assert appended._bytes() == old
    assert extended._bytes() == old
    assert len(extended) == len(docs)
    assert appended.as_dicts() == reference.as_dicts(old) == [doc.as_dict() for doc in docs]
    assert list(appended) == docs  # across several chunks of SPOOL_BYTES
    assert appended[-1] == docs[-1] and appended[3:5] == docs[3:5]


def test_state_entries_file_and_get_are_the_old_ones(records: Any, tmp_path: Path) -> None:
    _, entries = records
    state = CrawlState(tmp_path / "new.json")
    for url, etag, last_modified, derived in entries:
        state.commit(url, etag=etag, last_modified=last_modified, derived=derived)
    old = {url: reference.pack(etag, last_modified, derived) for url, etag, last_modified, derived in entries}
    assert state._entries == old
    state.save()
    old_text = reference.dumps(old)
    assert (tmp_path / "new.json").read_bytes() == old_text.encode("utf-8", "backslashreplace")
    loaded = CrawlState(tmp_path / "new.json")
    assert loaded._entries == reference.load((tmp_path / "new.json").read_text("utf-8"))
    for url, *_ in entries[::7]:
        old_get = reference.unpack(old[url])
        assert json.dumps(loaded.get(url)) == json.dumps(old_get)  # (NaN != NaN: compared as text)
        assert loaded.validators(url) == validators_of(loaded.get(url)) == reference.validators(old_get)


def test_a_state_file_in_another_layout_reads_and_saves_as_before(records: Any, tmp_path: Path) -> None:
    """A file not written by this code (ASCII escapes, its own key order and spacing, malformed entries) is normalised
    as before."""
    _, entries = records
    raw: dict[str, Any] = {url: {"last_modified": lm, "derived": d, "etag": etag} for url, etag, lm, d in entries[:200]}
    raw.update({"http://x/1": "junk", "http://x/2": {"etag": 5, "derived": [1]}, "http://x/3": {"etag": "\"e\"", "last_modified": 7}})
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(raw, indent=1), "utf-8")
    state = CrawlState(path)
    assert state._entries == reference.load(path.read_text("utf-8"))
    state.save()
    assert path.read_bytes() == reference.dumps(reference.load(json.dumps(raw))).encode("utf-8", "backslashreplace")


def test_validators_of_as_before() -> None:
    for entry in (None, {}, {"etag": None, "last_modified": None}, {"etag": '"e"', "last_modified": None},
                  {"etag": "", "last_modified": "Mon, 1 Jan 2024 00:00:00 GMT"}, {"etag": 'W/"1"', "last_modified": "x", "derived": [1]}):
        assert validators_of(entry) == reference.validators(entry)


class CountingState(CrawlState):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.looked_up: Counter[str] = Counter()

    def get(self, url: str) -> dict[str, Any] | None:
        self.looked_up[url] += 1
        return super().get(url)


def test_a_pages_state_is_looked_up_once_per_visit(tmp_path: Path) -> None:
    """The old page_steps and item_steps read a listing's or a detail page's state twice (get, then validators: a second lookup, its JSON parsed
    again; a warehouse state's lookup of a URL outside its hosts is a query)."""
    served = Portal(2, 0.0)
    try:
        reg = tmp_path / "registry.toml"
        reg.write_text(served.registry(served.ports), "utf-8")
        portals = load_registry(reg)
        archive = open_archive(tmp_path / "archive")

        def archived(data: bytes, *, name: str, url: str, agency: str | None, year: int | None, portal: Any) -> IngestOutcome:
            return IngestOutcome(archive.put(data), "new", name, agency=agency, year=year, url=url, portal=portal.id)

        outcomes = []
        for _ in range(2):
            state = CountingState(tmp_path / "state.json")
            fetcher = Fetcher(all_hosts(portals), delay=0.01, concurrency=2, retries=1, backoff=0.01)
            walk = walk_sequentially(CrawlContext(fetcher, state, archived), portals)
            state.save()
            outcomes.append(Counter(doc.outcome for doc in walk.documents))
    finally:
        served.close()
    assert outcomes[1]["not_modified"] > 0, outcomes  # the second run's detail pages were asked conditionally
    kinds = Counter(type(reference.unpack(state._entries[url])["derived"]).__name__ for url in state.looked_up)
    assert kinds["list"] and kinds["dict"], kinds  # listings and detail pages among the URLs looked up
    assert state.looked_up and max(state.looked_up.values()) == 1, state.looked_up.most_common(3)


def test_the_state_file_is_written_a_piece_at_a_time_not_built_whole(tmp_path: Path) -> None:
    """CrawlState.save writes the file in pieces of SAVE_PIECE entries: the whole text, its parts and its UTF-8 copy
    held at once (some 5 MB each at 1,000 hosts) were the peak of a crawl's parent as it saved at the end. The file is
    the old one byte for byte; what Python holds during the save stays under the file's size (half of it here; on the old
    code nearly four times the file: the text as a str, two bytes a character with Chinese in it, its parts, its UTF-8)."""
    import tracemalloc

    state = CrawlState(tmp_path / "state.json")
    derived = [{"title": f"示例市第{i}局2023年政府信息公开工作年度报告", "url": f"http://127.0.0.1:1/a/t{i}.html", "year": 2023}
               for i in range(8)]
    for i in range(5000):
        state.commit(f"http://127.0.0.1:{i % 50 + 1}/a/{i}.html", etag=f'"e{i}"', last_modified=None, derived=derived)
    expected = reference.dumps(dict(state._entries)).encode("utf-8", "backslashreplace")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        state.save()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    written = (tmp_path / "state.json").read_bytes()
    assert written == expected
    assert peak < len(written), (peak, len(written))
