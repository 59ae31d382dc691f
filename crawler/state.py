"""Per-URL crawl state: HTTP validators (ETag / Last-Modified) and what was derived from the page.

A 304 only helps if we still know what the page said: a listing's candidates, a detail page's
attachments. Both are kept here. Entries are committed only after the page was fully handled (a document's
validators only once its load was committed to the warehouse: crawler/crawl.py), and reach storage on `save()`:
at the end of a run, and during it through `autosave()` (every `SAVE_EVERY` updates or `interval_s` seconds, in a
thread of its own), so a crawl killed half-way keeps what it had loaded and re-fetches only the rest in full.

Two stores: `WarehouseCrawlState`, the crawls' (the warehouse's crawl_state table, shared by every worker that
writes the warehouse, on any machine), and `CrawlState`, one JSON file (or memory only, with no path) for tools
and tests that crawl without a warehouse. A JSON file left by an older gongkai is imported into the warehouse
once, then renamed `*.imported`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

log = logging.getLogger(__name__)

SAVE_EVERY = 500  # updates waiting that wake the autosave before its interval (one statement's worth of rows)
SAVE_INTERVAL_S = 10.0  # default seconds between autosaves: what a killed crawl may lose at most
SAVE_PIECE = 500  # entries per write of the state file (some 250 kB of text), not the whole file's text at once

# One URL's entry as kept in memory: (etag, last_modified, derived as JSON in UTF-8). A tuple, not a dict holding the
# parsed listing or detail page (a list of dicts of strings): at 1,000 hosts the parsed form was 6-7 MB of a crawl's
# memory. Bytes, not str: a str with one Chinese character takes two bytes for every character, URLs included. The
# JSON is parsed again only for the URL looked up (`get`), once or twice per run.
Entry = tuple[str | None, str | None, bytes | None]


# json.dumps with options builds a JSONEncoder at every call (some 40 % of a small entry's encoding): one, made once
_ENCODE_SORTED = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_QUOTE = json.encoder.encode_basestring  # a str as json.dumps(s, ensure_ascii=False) writes it (the C function)


def pack(etag: str | None, last_modified: str | None, derived: Any) -> Entry:
    """An entry as kept: validators interned (a portal's pages often share one Last-Modified, a CDN one ETag)."""
    return (None if etag is None else sys.intern(etag), None if last_modified is None else sys.intern(last_modified),
            None if derived is None else _json_bytes(derived))


def _json_bytes(derived: Any) -> bytes:
    """Derived data as sorted JSON in UTF-8, as kept; strict UTF-8 fails only on a lone surrogate (a page's broken
    text), written as its JSON escape (\\udXXX, read back as the same character): PostgreSQL refused it raw."""
    text = _ENCODE_SORTED(derived)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def validators_of(entry: dict[str, Any] | None) -> dict[str, str]:
    """Conditional-request headers for a URL whose state (`get`) is `entry`."""
    headers = {}
    if entry:
        if entry.get("etag"):
            headers["If-None-Match"] = entry["etag"]
        if entry.get("last_modified"):
            headers["If-Modified-Since"] = entry["last_modified"]
    return headers


def unpack(entry: Entry) -> dict[str, Any]:
    """An entry as `get` gives it: {"etag", "last_modified", "derived"} (derived parsed)."""
    return {"etag": entry[0], "last_modified": entry[1], "derived": None if entry[2] is None else json.loads(_text(entry[2]))}


def _text(derived: bytes) -> str:
    """Kept JSON back as text; a lone surrogate (a page's broken text) round-trips as it did in the str kept before."""
    return derived.decode("utf-8", "surrogatepass")


def _packed(members: Iterable[tuple[str, Any]]) -> dict[str, Entry]:
    """A state file's members as entries; an entry that is not an object with a validator is left out (it cannot
    make a request conditional), counted in a warning."""
    out: dict[str, Entry] = {}
    left_out: set[str] = set()  # URLs whose last member is malformed (a repeated URL is one entry: the last counts)
    for url, e in members:
        etag, last_modified = (e.get("etag"), e.get("last_modified")) if isinstance(e, dict) else (None, None)
        if isinstance(etag or last_modified, str):
            out[url] = pack(etag if isinstance(etag, str) else None,
                            last_modified if isinstance(last_modified, str) else None, e.get("derived"))
            left_out.discard(url)
        else:
            out.pop(url, None)  # as json.loads reads a repeated key: the last one counts
            left_out.add(url)
    if left_out:
        log.warning("crawl state: %d malformed entr(ies) left out", len(left_out))
    return out


_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
STATE_READ = 64 * 1024  # characters of a state file read at a time (its members parsed as they come)
_DECODE = json.JSONDecoder().raw_decode
_STRING = json.decoder.scanstring  # type: ignore[attr-defined]  # the C scanner's string reader, json's own


def _space(text: str, i: int) -> int:
    """Past JSON's whitespace from `i`."""
    match = _SPACE.match(text, i)  # it matches the empty string too: always a match
    return match.end() if match else i


def _members(file: TextIO) -> Iterator[tuple[str, Any]]:
    """The members of the JSON object in `file` one at a time, each as json.loads reads it (a ValueError where it
    would raise one), read STATE_READ characters at a time. Read whole, the file's bytes, its text and the object parsed
    from it (every entry's derived JSON as lists and dicts) sat beside the packed entries: some 7-9 MB more at 1,000
    hosts, the peak of a crawl's parent as a second run started in it (bench_polite_crawl.py)."""
    text, eof = "", False
    # whitespace is dropped piece by piece as it is passed, never scanned again (a file's whole leading whitespace
    # scanned again at each piece read was quadratic: 20 MB of it took 2.9 CPU-s)
    while (i := _space(text, 0)) == len(text) and not eof:  # to the opening brace
        text = file.read(STATE_READ)
        eof = not text
    if text[i:i + 1] != "{":
        raise ValueError("not a JSON object")
    while (pos := _space(text, i + 1)) == len(text) and not eof:  # to the first member's name, or the closing brace
        text, i = file.read(STATE_READ), -1
        eof = not text
    closed = text[pos:pos + 1] == "}"
    pos += closed
    while not closed:
        try:
            key, value, pos_after, closed = _member(text, pos)
        except ValueError:
            if eof:
                raise
            # the buffer ended inside the member (or before the separator after it): read on, parse it again
            piece = file.read(max(STATE_READ, len(text) - pos))  # twice the text held: a huge member is read in O(n)
            text, eof = text[pos:] + piece, not piece
            pos = _space(text, 0)  # the piece may have ended in the whitespace after a comma: the next name follows it
            continue
        yield key, value
        pos = pos_after
    while True:  # after the closing brace: whitespace only
        if _space(text, pos) != len(text):
            raise ValueError(f"extra data after the object: {text[pos:pos + 20]!r}")
        text, pos = file.read(STATE_READ), 0
        if not text:
            return


def _member(text: str, i: int) -> tuple[str, Any, int, bool]:
    """The member at `i`: its name, its value, where what follows its separator begins, and whether that separator
    closed the object. A ValueError where the text is not one (or ends first)."""
    if text[i:i + 1] != '"':
        raise ValueError(f"a member's name expected at character {i}")
    key, i = _STRING(text, i + 1)
    if text.startswith(": ", i) and not text[i + 2:i + 3].isspace():  # as `save` writes it (else the general case)
        i += 2
    else:
        i = _space(text, i)
        if text[i:i + 1] != ":":
            raise ValueError(f"':' expected at character {i}")
        i = _space(text, i + 1)
    value, i = _DECODE(text, i)
    if text.startswith(', "', i):
        return key, value, i + 2, False
    i = _space(text, i)
    if text[i:i + 1] == ",":
        return key, value, _space(text, i + 1), False
    if text[i:i + 1] == "}":
        return key, value, i + 1, True
    raise ValueError(f"',' or '}}' expected at character {i}")


def _quote(value: Any) -> str:
    """A validator as json.dumps(value, ensure_ascii=False) writes it (a str or None, cheaply)."""
    if value is None:
        return "null"
    return _QUOTE(value) if type(value) is str else json.dumps(value, ensure_ascii=False)


def _dumps(entries: dict[str, Entry]) -> str:
    """The entries as json.dumps(..., ensure_ascii=False, sort_keys=True) wrote their unpacked form (the same text: the
    derived JSON was written with the same options), without parsing each entry's derived JSON again."""
    return "".join(_pieces(entries))


def _pieces(entries: dict[str, Entry]) -> Iterator[str]:
    """`_dumps`'s text in pieces of at most SAVE_PIECE entries, in order, for `save` to write one at a time: the whole
    text at once (some 5 MB at 1,000 hosts, with its UTF-8 copy and the list of its parts) was the peak of a crawl's
    parent when it saved at the end."""
    items = sorted(entries.items(), key=_url)
    yield "{"
    for start in range(0, len(items), SAVE_PIECE):
        yield (", " if start else "") + ", ".join([
            f"{_QUOTE(url)}: {{\"derived\": {'null' if e[2] is None else e[2].decode('utf-8', 'surrogatepass')}, "
            f"\"etag\": {_quote(e[0])}, \"last_modified\": {_quote(e[1])}}}"
            for url, e in items[start:start + SAVE_PIECE]])
    yield "}"


def _url(item: tuple[str, Entry]) -> str:
    return item[0]


class CrawlState:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._unsaved = 0  # commits and forgets since the last save began
        self._wake: threading.Event | None = None  # set by the autosave while it runs: enough updates wake it
        if path is not None and path.exists():
            try:
                with path.open(encoding="utf-8") as file:
                    self._entries = _packed(_members(file))
            # a damaged file costs one run of full fetches, not every run (RecursionError: JSON nested deeper than
            # Python's recursion limit, as json raises it)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                log.warning("crawl state %s unreadable (%s): starting empty", path, exc)

    def get(self, url: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(url)
        return unpack(entry) if entry else None

    def validators(self, url: str) -> dict[str, str]:
        """Conditional-request headers for a URL we have handled before."""
        return validators_of(self.get(url))

    def commit(self, url: str, *, etag: str | None, last_modified: str | None, derived: Any = None) -> None:
        if not (etag or last_modified):
            return  # nothing a server could compare against
        self.commit_entry(url, pack(etag, last_modified, derived))

    def commit_entry(self, url: str, entry: Entry) -> None:
        """Commit an entry already packed (a crawler process's, sent to the parent as it was kept)."""
        with self._lock:
            self._entries[url] = entry
            self._updated()

    def entries(self, hosts: frozenset[str]) -> dict[str, Entry]:
        """The entries of these hosts, as kept (what was read at the start, with this run's commits not yet saved)."""
        with self._lock:
            entries = dict(self._entries)
        return {url: e for url, e in entries.items() if host_key(url) in hosts}

    def forget(self, url: str) -> None:
        with self._lock:
            self._entries.pop(url, None)
            self._updated()

    def _updated(self) -> None:
        """Count one update (under `_lock`); enough of them wake the autosave."""
        self._unsaved += 1
        if self._wake is not None and self._unsaved >= SAVE_EVERY:
            self._wake.set()

    def unsaved(self) -> int:
        """Updates not yet saved (or being saved)."""
        with self._lock:
            return self._unsaved

    def __len__(self) -> int:
        return len(self._entries)

    @contextmanager
    def autosave(self, interval_s: float = SAVE_INTERVAL_S) -> Iterator[None]:
        """Save in a thread of its own every `interval_s` seconds, or sooner once `SAVE_EVERY` updates wait, while the
        block runs: the crawl's threads only count their commits, they never wait on a save. A failed save is logged
        and retried at the next turn (the final `save()`, the caller's, raises as usual). Only committed entries are
        saved, so the order in which the crawl commits (after a document's load) is the order kept in storage."""
        wake, stop = threading.Event(), threading.Event()
        with self._lock:
            self._wake = wake

        def loop() -> None:
            while not stop.is_set():
                wake.wait(interval_s)
                wake.clear()
                if stop.is_set() or not self.unsaved():
                    continue
                try:
                    self.save()
                except Exception as exc:  # a busy or unreachable store: the next turn (or the end of the run) saves
                    log.warning("crawl state: periodic save failed (%s: %s); retried later", type(exc).__name__, exc)

        saver = threading.Thread(target=loop, name="crawl-state-autosave", daemon=True)
        saver.start()
        try:
            yield
        finally:
            stop.set()
            wake.set()
            saver.join(timeout=max(60.0, interval_s))  # bounded: a save stuck on a dead server does not hang the run
            with self._lock:
                self._wake = None

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            entries = dict(self._entries)  # a snapshot (entries are immutable tuples): committers wait only for the copy
            saving, self._unsaved = self._unsaved, 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a temp name of its own in the same directory: two runs saving at once do not write into one file
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            # a lone surrogate (a page's broken text) written as the JSON escape it is (\udXXX), which reads back the
            # same: strict UTF-8 refused it and so failed the whole save, every validator of the run with it
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
                for piece in _pieces(entries):
                    out.write(piece)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            with self._lock:
                self._unsaved += saving  # still to be saved
            raise
        log.debug("crawl state: %d update(s) saved to %s", saving, self.path)


class Database(Protocol):
    """What the warehouse's connection (gongkai.warehouse.db.Database) offers: thread-safe statements under its lock."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def transaction(self) -> Any: ...


CHUNK = 500  # rows per statement: PostgreSQL takes 65,535 parameters at most, DuckDB's statements stay small
_UPSERT = ("INSERT INTO crawl_state (url, host, etag, last_modified, derived, updated_at) VALUES {rows} "
           "ON CONFLICT (url) DO {action}")
_UPDATE = ("UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, derived = excluded.derived, "
           "updated_at = excluded.updated_at")


def host_key(url: str) -> str:
    """host[:port] as the crawler's politeness keys it (a URL it would refuse: its plain network location)."""
    from urllib.parse import urlsplit

    from gongkai.crawler import urls

    try:
        # not the crawler's cache of parsed URLs (urls.parse): a state's every URL through it (a crawl's parent splits the
        # state between its processes, a save keys each row) filled it with URLs nothing fetches there, some 2 MB
        # held for the process's life at 1,000 hosts; parsing anew is some 5 µs a URL
        return urls.parse_uncached(url).key
    except urls.BadURL:
        return urlsplit(url).netloc.lower()


class WarehouseCrawlState(CrawlState):
    """The crawl state in the warehouse's `crawl_state` table, through the warehouse's own connection (one
    DuckDB writer, its lock shared with the loads: never a second connection to the file).

    The rows of `hosts` (the portals this crawl visits) are read once at the start; a URL on another host is
    looked up on first use. Commits and forgets wait in memory until `save()`, which upserts each URL (sorted,
    so that two workers saving at once always lock rows in one order and never deadlock) and deletes forgotten
    ones: other workers' rows are never touched, and another worker's committed state is what this one reads
    at its next start."""

    def __init__(self, db: Database, *, hosts: Iterable[str] = (), legacy_file: Path | None = None) -> None:
        super().__init__(None)
        self.db = db
        self._pending: dict[str, Entry | None] = {}  # since the last save; None: forgotten
        self._absent: set[str] = set()  # looked up, not there
        # committed by this run and saved: in the table, no longer in memory (a crawl asks for a URL's state before it
        # fetches it, once per run, so what it committed is not read again: keeping it grew with every URL crawled)
        self._saved: set[str] = set()
        self._hosts = frozenset(hosts)
        if legacy_file is not None:
            import_json_state(db, legacy_file)
        self._read_hosts(sorted(self._hosts))

    def _read_hosts(self, hosts: list[str]) -> None:
        for start in range(0, len(hosts), CHUNK):
            chunk = hosts[start:start + CHUNK]
            rows = self.db.query("SELECT url, etag, last_modified, derived FROM crawl_state WHERE host IN "
                                 f"({', '.join('?' * len(chunk))})", chunk)
            with self._lock:
                self._entries.update((row[0], _entry(row)) for row in rows)

    def get(self, url: str) -> dict[str, Any] | None:
        with self._lock:
            if url in self._pending:
                pending = self._pending[url]
                return unpack(pending) if pending else None
            if url in self._entries:
                return unpack(self._entries[url])
            if url in self._absent or (url not in self._saved and host_key(url) in self._hosts):
                return None  # read at the start: not there
        rows = self.db.query("SELECT url, etag, last_modified, derived FROM crawl_state WHERE url = ?", [url])
        with self._lock:
            if not rows:
                self._absent.add(url)
                return None
            entry = self._entries.setdefault(url, _entry(rows[0]))
        return unpack(entry)

    def commit_entry(self, url: str, entry: Entry) -> None:
        with self._lock:
            self._pending[url] = entry
            self._updated()

    def entries(self, hosts: frozenset[str]) -> dict[str, Entry]:
        with self._lock:
            entries = dict(self._entries)
            pending = dict(self._pending)
        for url, entry in pending.items():
            if entry is None:
                entries.pop(url, None)
            else:
                entries[url] = entry
        return {url: e for url, e in entries.items() if host_key(url) in hosts}

    def forget(self, url: str) -> None:
        with self._lock:
            self._pending[url] = None
            self._entries.pop(url, None)
            self._updated()

    def unsaved(self) -> int:
        with self._lock:
            return len(self._pending)

    def __len__(self) -> int:
        """Entries in the warehouse, with this state's unsaved commits and forgets."""
        with self._lock:
            pending = dict(self._pending)
        stored = {url for url, in self._query_in("SELECT url FROM crawl_state WHERE url IN ({marks})", sorted(pending))}
        total = int(self.db.query("SELECT count(*) FROM crawl_state")[0][0])
        return total + sum(1 for url, entry in pending.items() if entry and url not in stored) - sum(
            1 for url, entry in pending.items() if entry is None and url in stored)

    def save(self) -> None:
        with self._lock:
            pending = dict(self._pending)
            self._unsaved = 0
        if not pending:
            return
        now = datetime.now(UTC).replace(tzinfo=None)  # the warehouse's times: UTC, no zone
        upserts = [(url, host_key(url), e[0], e[1], None if e[2] is None else _text(e[2]), now)
                   for url, e in sorted(pending.items()) if e is not None]
        forgotten = sorted(url for url, e in pending.items() if e is None)
        with self.db.transaction():
            _upsert(self.db, upserts, _UPDATE)
            for start in range(0, len(forgotten), CHUNK):
                chunk = forgotten[start:start + CHUNK]
                self.db.execute(f"DELETE FROM crawl_state WHERE url IN ({', '.join('?' * len(chunk))})", chunk)
        with self._lock:
            for url, entry in pending.items():
                if self._pending.get(url, _GONE) is entry:  # not committed again while saving
                    del self._pending[url]
                self._entries.pop(url, None)
                if entry is not None:
                    self._saved.add(url)
                    self._absent.discard(url)
        log.debug("crawl state: %d update(s) saved to the warehouse", len(pending))

    def _query_in(self, sql: str, values: list[str]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(values), CHUNK):
            chunk = values[start:start + CHUNK]
            rows += self.db.query(sql.format(marks=", ".join("?" * len(chunk))), chunk)
        return rows


_GONE = object()


def import_json_state(db: Database, path: Path) -> int:
    """A crawl-state JSON file of an older gongkai, into the warehouse once: rows already there (written since by a
    worker) win; the file is then renamed `<name>.imported` (an unreadable one `<name>.unreadable`). Returns the
    number of entries read. Two workers importing one file at once insert the same rows; one of them renames it."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return 0
    try:
        entries = json.loads(text)
        if not isinstance(entries, dict):
            raise ValueError("not a JSON object")
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [(url, host_key(url), e.get("etag"), e.get("last_modified"), _json(e.get("derived")), now)
                for url, e in sorted(entries.items()) if isinstance(e, dict) and (e.get("etag") or e.get("last_modified"))]
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        log.warning("crawl state %s unreadable (%s): not imported, renamed %s.unreadable", path, exc, path.name)
        _rename(path, ".unreadable")
        return 0
    with db.transaction():
        _upsert(db, rows, "NOTHING")
    _rename(path, ".imported")
    log.info("crawl state %s: %d entries imported into the warehouse (the file is now %s.imported)", path, len(rows), path.name)
    return len(rows)


def _upsert(db: Database, rows: list[tuple[Any, ...]], action: str) -> None:
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
        db.execute(_UPSERT.format(rows=values, action=action), [value for row in chunk for value in row])


def _rename(path: Path, suffix: str) -> None:
    try:
        os.replace(path, path.with_name(path.name + suffix))
    except FileNotFoundError:  # another worker renamed it first
        pass


def _json(derived: Any) -> str | None:
    """Derived data as JSON text that any UTF-8 store takes (a lone surrogate written as its escape: `_json_bytes`)."""
    return None if derived is None else _json_bytes(derived).decode("utf-8")


def _entry(row: tuple[Any, ...]) -> Entry:
    """A crawl_state row as kept: its derived JSON as stored (parsed when the URL is looked up)."""
    etag, last_modified, _ = pack(row[1], row[2], None)
    return etag, last_modified, None if row[3] is None else str(row[3]).encode("utf-8", "surrogatepass")
