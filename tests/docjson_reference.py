"""The crawl record's JSON as it was encoded before the docjson work (issue 10), kept as the reference its faster
replacement is compared with (tests/test_docjson.py, benchmarks/bench_docjson.py). Not used by gongkai."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import fields
from typing import Any

from gongkai.warehouse.store import IngestOutcome

Entry = tuple[str | None, str | None, bytes | None]
_FIELDS = tuple(f.name for f in fields(IngestOutcome))
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def document_line(outcome: IngestOutcome) -> bytes:
    """crawler.crawl.Documents.append's line."""
    line = json.dumps([getattr(outcome, name) for name in _FIELDS], ensure_ascii=False)
    return line.encode("utf-8", "surrogatepass") + b"\n"


def document_rows(data: bytes) -> list[list[Any]]:
    """crawler.crawl.Documents._rows over all its lines."""
    return [json.loads(line.decode("utf-8", "surrogatepass")) for line in data.splitlines(keepends=True)]


def as_dicts(data: bytes) -> list[dict[str, Any]]:
    return [dict(zip(_FIELDS, row, strict=True)) for row in document_rows(data)]


def _json(derived: Any) -> str | None:
    if derived is None:
        return None
    text = json.dumps(derived, ensure_ascii=False, sort_keys=True)
    if _LONE_SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def pack(etag: str | None, last_modified: str | None, derived: Any) -> Entry:
    text = _json(derived)
    return (None if etag is None else sys.intern(etag), None if last_modified is None else sys.intern(last_modified),
            None if text is None else text.encode("utf-8", "surrogatepass"))


def _text(derived: bytes) -> str:
    return derived.decode("utf-8", "surrogatepass")


def unpack(entry: Entry) -> dict[str, Any]:
    return {"etag": entry[0], "last_modified": entry[1], "derived": None if entry[2] is None else json.loads(_text(entry[2]))}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def from_json(entries: Any) -> dict[str, Entry]:
    """crawler.state._from_json (CrawlState.__init__ ran it over json.loads of the file)."""
    if not isinstance(entries, dict):
        raise ValueError("not a JSON object")
    out: dict[str, Entry] = {}
    for url, e in entries.items():
        if isinstance(e, dict) and isinstance(e.get("etag") or e.get("last_modified"), str):
            out[url] = pack(_str_or_none(e.get("etag")), _str_or_none(e.get("last_modified")), e.get("derived"))
    return out


def load(text: str) -> dict[str, Entry]:
    return from_json(json.loads(text))


def dumps(entries: dict[str, Entry]) -> str:
    """crawler.state._dumps: the state file's text (CrawlState.save writes it as UTF-8, errors=backslashreplace)."""
    def one(url: str, e: Entry) -> str:
        return (f"{json.dumps(url, ensure_ascii=False)}: {{\"derived\": {_text(e[2]) if e[2] is not None else 'null'}, "
                f"\"etag\": {json.dumps(e[0], ensure_ascii=False)}, \"last_modified\": {json.dumps(e[1], ensure_ascii=False)}}}")

    return "{" + ", ".join(one(url, entries[url]) for url in sorted(entries)) + "}"


def validators(entry: dict[str, Any] | None) -> dict[str, str]:
    """CrawlState.validators of a URL whose `get` is `entry`."""
    entry = entry or {}
    headers = {}
    if entry.get("etag"):
        headers["If-None-Match"] = entry["etag"]
    if entry.get("last_modified"):
        headers["If-Modified-Since"] = entry["last_modified"]
    return headers


# --- the old code in its classes (for a like-for-like benchmark: the same locks, buffer and file) ---------------------

def old_classes() -> tuple[type, type]:
    """(Documents, CrawlState) as they were: today's classes with the old encoding, parsing and save."""
    import os
    import tempfile
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from gongkai.crawler import crawl, state

    class OldDocuments(crawl.Documents):
        def append(self, outcome: IngestOutcome) -> None:
            self._write(document_line(outcome), 1)

        def extend(self, outcomes: Iterable[IngestOutcome]) -> None:
            if isinstance(outcomes, crawl.Documents):
                self._write(outcomes._bytes(), len(outcomes))
                return
            for outcome in outcomes:
                self.append(outcome)

        def _rows(self) -> Iterator[list[Any]]:
            offset = 0
            while True:
                with self._lock:
                    self._file.seek(offset)
                    lines = self._file.readlines(crawl.SPOOL_BYTES)
                    offset = self._file.tell()
                if not lines:
                    return
                for line in lines:
                    yield json.loads(line.decode("utf-8", "surrogatepass"))

    class OldCrawlState(state.CrawlState):
        def __init__(self, path: Path | None) -> None:
            super().__init__(None)
            self.path = path
            if path is not None and path.exists():
                self._entries = load(path.read_text("utf-8"))

        def validators(self, url: str) -> dict[str, str]:
            return validators(self.get(url))

        def commit(self, url: str, *, etag: str | None, last_modified: str | None, derived: Any = None) -> None:
            if not (etag or last_modified):
                return
            self.commit_entry(url, pack(etag, last_modified, derived))

        def save(self) -> None:
            assert self.path is not None
            with self._lock:
                text = dumps(self._entries)
                self._unsaved = 0
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
                out.write(text)
            os.replace(tmp, self.path)

    return OldDocuments, OldCrawlState
