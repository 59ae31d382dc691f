"""The crawl, without Prefect: the listing walk of a run and its two units of work.

- `listing_page`: fetch and parse one listing page (a 304 gives back the listing remembered last run);
- `listing_item`: one report of a listing: the document itself, or its detail page and its attachments,
  each downloaded file handed to `ctx.ingest` (the one ingest path, flows.pipeline.Pipeline, in production);
- `Walk`: the state machine of one run over its portals: which pages to ask for next (paging, a 下一页 back
  to an earlier page is not followed, backfill stops below the wanted years), which items to fetch (each
  listing title classified once), when a listing was read whole (its crawl state is then committed), and
  the per-portal limits (pages, items, a deadline), recorded in the summary when hit.

Whoever runs the units (the crawl scheduler of crawler/scheduler.py for the flows, `walk_sequentially` in one thread) feeds their
results back to the Walk; the logic is the same.
"""

from __future__ import annotations

import itertools
import json
import logging
import operator
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, overload

from gongkai.crawler import noise
from gongkai.crawler.adapters import Candidate, PageRequest, first_requests, parser_for
from gongkai.crawler.detail import Detail, looks_like_document, parse_detail
from gongkai.crawler.fetcher import BODY_SINK, Fetcher, FetchError, Refused, Response
from gongkai.crawler.pictures import picture_steps
from gongkai.crawler.registry import Portal
from gongkai.crawler.state import CrawlState, validators_of
from gongkai.extractors.report_meta import TitleVerdict, classify_title
from gongkai.warehouse.archive import Archive, Incoming, LocalArchive
from gongkai.warehouse.store import IngestOutcome

log = logging.getLogger(__name__)

# ingest(data, name=, url=, agency=, year=, portal=) -> the ingest path's outcome
Ingest = Callable[..., IngestOutcome]
INGESTED = ("new", "unchanged", "changed", "not_a_report", "unreadable", "failed")
# an item's outcomes after which its detail page's state is committed (not "failed": a crashed load retries it in full)
_SETTLED = frozenset((*INGESTED[:5], "not_modified", "refused"))
# One outcome type from fetch or file to the run summary: a crawled file's outcome is an ingest outcome with
# its portal, URL and listing title; a fetch that ingested nothing has outcome not_modified / refused /
# fetch_failed (or crashed, when its task raised).
DocResult = IngestOutcome


def fetch_outcome(portal: Portal, url: str, title: str | None, outcome: str, verdict: TitleVerdict | None = None,
                  agency: str | None = None, reason: str | None = None) -> IngestOutcome:
    return IngestOutcome("", outcome, None, agency=agency, year=verdict.year if verdict else None, reason=reason, url=url,
                         title=title, portal=portal.id)


@dataclass
class PageResult:
    portal: str
    candidates: list[Candidate]
    next: list[PageRequest]
    from_cache: bool = False
    response: Response | None = None
    error: str | None = None  # the page could not be fetched: the portal failed this run


@dataclass
class CrawlContext:
    """What every task of one run shares. Not a dataclass field Prefect should look into: pass as is."""

    fetcher: Fetcher
    state: CrawlState
    ingest: Ingest
    years: frozenset[int] | None = None
    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # each file is stored in this archive as soon as it is fetched (on the fetch or parser thread), its step carries
    # the digest (Stored) to the ingest path instead of the bytes: a crawler process's (crawler/processes.py), and the
    # one-process crawl's (flows/crawl.py; its ingest reads the file back: processes.reading_back). None (tests, tools):
    # the bytes wait for the ingest path in memory, at most the scheduler's backlog and one per fetch in flight.
    # A local archive takes a file's body as it is read (fetch with `stores`: never held whole); a remote one (S3)
    # is put the body once read, as before
    archive: Archive | None = None

    def fetch(self, portal: Portal, url: str, *, validators: dict[str, str] | None = None, method: str = "GET",
              data: dict[str, str] | None = None, stores: bool = False) -> Response:
        """Every request of the crawl, logged at DEBUG (the fetcher counts them per host for the run summary).
        `stores` (a file's fetch, Fetch.stores) with a local archive: the body is written into the archive as it is
        read and named at its digest once the fetch succeeded: a StoredResponse, its content empty."""
        log.debug("%s %s%s", method, url, " (conditional)" if validators else "")
        sink = _IntoArchive(self.archive) if stores and isinstance(self.archive, LocalArchive) else None
        token = BODY_SINK.set(sink) if sink is not None else None
        try:
            resp = self.fetcher.fetch(url, allowed_hosts=portal.hosts, validators=validators, method=method, data=data)
        except BaseException as exc:
            if sink is not None:
                sink.drop()  # a body cut by the cap, a dropped connection, the deadline: nothing of it named
            if isinstance(exc, FetchError):
                log.debug("%s %s: %s", "refused" if isinstance(exc, Refused) else "failed", url, exc.reason)
            raise
        finally:
            if token is not None:
                BODY_SINK.reset(token)
        if sink is not None and sink.file is not None:
            if 200 <= resp.status < 300:  # its body is the sink's last file (_read_body writes only a 2xx body)
                resp = StoredResponse(resp.url, resp.status, resp.content, resp.headers, stored=sink.link())
            else:  # an earlier attempt's body, cut and aborted, then a retry answered 304 (or a 3xx kept): not this one
                sink.drop()
        log.debug("%s %s: %d, %d bytes", method, url, resp.status, len(resp.content))
        return resp

    def first_time(self, url: str) -> bool:
        """True once per URL per run: one attachment linked from two pages is fetched once."""
        with self.lock:
            if url in self.seen:
                return False
            self.seen.add(url)
            return True


@dataclass(frozen=True)
class Limits:
    """Bounds of one portal in one run (issue 13: a listing of 100,000 links, pages without end, a hanging portal).
    None: unbounded. A limit hit is recorded in the portal's summary; what was read so far is kept."""

    max_pages: int | None = None
    max_items: int | None = None
    deadline_s: float | None = None


@dataclass(frozen=True)
class Fetch:
    """A step of a unit of work: fetch this URL (sent back: the Response; a FetchError is raised at the yield)."""

    url: str
    validators: dict[str, str] | None = None
    method: str = "GET"
    data: dict[str, str] | None = None
    # whether the unit's next step parses the response (a page: the scheduler bounds how many are parsed at once);
    # False for a file handed to the ingest path as it is
    parses: bool = True
    # a file stored as it is read (CrawlContext.fetch with an archive): its body never held whole
    stores: bool = False


@dataclass(frozen=True)
class Stored:
    """A fetched file a crawler process stored in the shared archive itself: what goes to the parent's ingest in place
    of its bytes (crawler/processes.py). `pictures`: its linked pictures' digests by src (None: an icon skipped)."""

    sha256: str
    size: int
    pictures: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def put(cls, archive: Archive, data: bytes, pictures: Mapping[str, bytes | None] | None = None) -> Stored:
        """Store the file and its pictures (each once: the archive's put is idempotent, atomic across processes)."""
        linked = {src: (archive.put(picture) if picture else None) for src, picture in (pictures or {}).items()}
        return cls(archive.put(data), len(data), linked)


class _IntoArchive:
    """The body sink of one file's fetch (fetcher.BODY_SINK): each attempt's body into a new file of the archive (the one
    before aborted), the last named at its digest by `link` once the fetch returned, dropped by `drop` if it failed."""

    def __init__(self, archive: LocalArchive) -> None:
        self.archive = archive
        self.file: Incoming | None = None

    def __call__(self) -> Incoming:
        self.drop()
        self.file = self.archive.incoming()
        return self.file

    def drop(self) -> None:
        if self.file is not None:
            self.file.abort()
            self.file = None

    def link(self) -> Stored:
        assert self.file is not None
        file, self.file = self.file, None
        size = file.size
        return Stored(file.link(), size)


@dataclass
class StoredResponse(Response):
    """A file's response whose body went into the crawl's archive as it was read (CrawlContext.fetch): its digest and
    size in `stored`, its content empty."""

    stored: Stored | None = None


@dataclass(frozen=True)
class IngestFile:
    """A step of a unit of work: hand these bytes to the ingest path (sent back: its IngestOutcome)."""

    data: bytes
    name: str
    url: str
    agency: str | None
    year: int | None
    portal: Portal
    pictures: dict[str, bytes | None] = field(default_factory=dict)  # an HTML page's linked pictures, by src
    stored: Stored | None = None  # `data` and `pictures` are in the archive (a crawler process): `stored_in`

    def stored_in(self, archive: Archive) -> IngestFile:
        """The same step with its file and pictures in the archive and only their digests kept: nothing of it held in
        memory while it waits for the ingest path, and no bytes to send to a parent process."""
        return replace(self, data=b"", pictures={}, stored=Stored.put(archive, self.data, self.pictures))


# A unit of work as steps: it yields what it needs (a fetch, an ingest) and is sent the answer. Whoever drives it
# decides where each step runs: `run_steps` in this thread, crawler.scheduler on a host's turn and in the ingest pool.
Steps = Generator["Fetch | IngestFile", Any, Any]


def run_steps(ctx: CrawlContext, portal: Portal, steps: Steps) -> Any:
    """Drive a unit of work in this thread: each fetch through ctx.fetch, each file through ctx.ingest."""
    value: Any = None
    error: FetchError | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            return done.value
        value, error = None, None
        if isinstance(step, Fetch):
            try:
                value = ctx.fetch(portal, step.url, validators=step.validators, method=step.method, data=step.data,
                                  stores=step.stores)
            except FetchError as exc:
                error = exc
        else:
            value = ctx.ingest(step.data, name=step.name, url=step.url, agency=step.agency, year=step.year, portal=step.portal,
                               **ingest_kwargs(step))


def page_steps(ctx: CrawlContext, portal: Portal, request: PageRequest) -> Generator[Fetch, Any, PageResult]:
    """Fetch and parse one listing page. A first page that is not modified returns the listing cached last time."""
    cached = ctx.state.get(request.url) if request.is_first else None
    validators = validators_of(cached) if cached and cached.get("derived") is not None else None  # not looked up again
    resp: Response = yield Fetch(request.url, validators, request.method, request.data)
    if resp.not_modified and cached:
        return PageResult(portal.id, [Candidate(**c) for c in cached["derived"]], [], True, resp)
    page = parser_for(portal.cms)(portal, request, resp.text(), resp.url)
    return PageResult(portal.id, page.candidates, page.next, False, resp)


def listing_page(ctx: CrawlContext, portal: Portal, request: PageRequest) -> PageResult:
    """Fetch and parse one listing page, in this thread (FetchError when it cannot be fetched)."""
    result: PageResult = run_steps(ctx, portal, page_steps(ctx, portal, request))
    return result


@dataclass(frozen=True, slots=True)
class FirstPage:
    """What a listing's first page leaves for its commit: its validators and whether it came from the cache (not the
    page's Response and candidates: held for every listing of a run until its last page, they grew with the hosts)."""

    etag: str | None
    last_modified: str | None
    from_cache: bool
    fetched: bool  # a response came with it (validators to commit)

    @classmethod
    def of(cls, result: PageResult) -> FirstPage:
        resp = result.response
        return cls(resp.etag if resp else None, resp.last_modified if resp else None, result.from_cache, resp is not None)


def commit_listing(ctx: CrawlContext, url: str, first: FirstPage, candidates: Iterable[Candidate]) -> None:
    """Remember the whole listing under its first page's URL as requested (the URL looked up next run, whatever it
    redirected to), once every page of it was read."""
    if first.fetched and not first.from_cache:
        ctx.state.commit(url, etag=first.etag, last_modified=first.last_modified,
                         derived=[c.to_dict() for c in candidates])


def older_than_wanted(ctx: CrawlContext, candidates: list[Candidate]) -> bool:
    """Backfill stops paging once a whole page was published before the earliest wanted year."""
    if not ctx.years or not candidates:
        return False
    dated = [c.published for c in candidates if c.published]
    return bool(dated) and len(dated) == len(candidates) and all(int(d[:4]) < min(ctx.years) for d in dated)


def wanted(ctx: CrawlContext, verdict: TitleVerdict) -> bool:
    return verdict.is_report and (ctx.years is None or verdict.year in ctx.years)


def picture_kwargs(step: IngestFile) -> dict[str, Any]:
    """`pictures=` for ctx.ingest only when the page linked any (an ingest callable without the keyword still works)."""
    return {"pictures": step.pictures} if step.pictures else {}


def ingest_kwargs(step: IngestFile) -> dict[str, Any]:
    """ctx.ingest's keywords beyond the step's fields: `pictures=` (picture_kwargs), and `stored=` for a file already in
    the archive (a crawler process's ingest, ParentLink.ingest, takes it), each only when there is one."""
    kwargs = picture_kwargs(step)
    if step.stored is not None:
        kwargs["stored"] = step.stored
    return kwargs


def stored_if_archiving(ctx: CrawlContext, step: IngestFile) -> IngestFile:
    """The file is stored in the crawl's archive here, where it was fetched (on the fetch or parser thread: the driver is
    not held), so the ingest backlog holds its digest only; without an archive (tests, tools), or stored as it was read
    (a StoredResponse's), the step as it is."""
    return step if ctx.archive is None or step.stored is not None else step.stored_in(ctx.archive)


def take_content(resp: Response) -> bytes:
    """The response's body, no longer held by the response. A unit of work keeps its Response for the validators it
    commits last, while its file waits for the ingest path (in the archive exactly so as not to be held in memory) and its detail page's attachments are fetched: each unit held its body with it, some 380 bodies
    (5.7 MB) at once mid-crawl at 1,000 hosts. Its one holder takes the body; the headers stay."""
    content, resp.content = resp.content, b""
    return content


def _fetch_and_ingest(
    ctx: CrawlContext, portal: Portal, url: str, title: str | None, verdict: TitleVerdict, *, response: Response | None = None,
    pictures: list[tuple[str, str]] | None = None,
) -> Steps:
    agency = verdict.agency or portal.agency
    try:
        resp = response or (yield Fetch(url, ctx.state.validators(url), parses=False, stores=True))
    except Refused as exc:
        return fetch_outcome(portal, url, title, "refused", verdict, agency, exc.reason)
    except FetchError as exc:
        return fetch_outcome(portal, url, title, "fetch_failed", verdict, agency, exc.reason)
    if resp.not_modified:
        return fetch_outcome(portal, url, title, "not_modified", verdict, agency)
    linked = (yield from picture_steps(pictures)) if pictures else {}  # the page's tables may be these pictures
    # no local holds the step: while the unit waits for the ingest, its file is only where the scheduler keeps it
    stored = resp.stored if isinstance(resp, StoredResponse) else None  # in the archive as it was read: its digest
    outcome: IngestOutcome = yield stored_if_archiving(ctx, IngestFile(take_content(resp), resp.filename, resp.url, agency,
                                                                       verdict.year, portal, linked, stored))
    if outcome.outcome != "failed":  # a crashed extractor gets the file again next run
        ctx.state.commit(url, etag=resp.etag, last_modified=resp.last_modified)
    # the listing's view of the file: the URL asked for, its title, what the registry and title say
    return replace(outcome, url=url, title=title, portal=portal.id, agency=agency, year=verdict.year)


def listing_item(ctx: CrawlContext, portal: Portal, candidate: Candidate, verdict: TitleVerdict | None = None) -> list[IngestOutcome]:
    """One report of a listing, in this thread (see item_steps)."""
    results: list[IngestOutcome] = run_steps(ctx, portal, item_steps(ctx, portal, candidate, verdict))
    return results


def item_steps(ctx: CrawlContext, portal: Portal, candidate: Candidate, verdict: TitleVerdict | None = None) -> Steps:
    """One report of a listing: the document itself, or its detail page (when it is the report) and its attachments.
    `verdict`: the listing title's classification, when the caller already made it."""
    verdict = verdict or classify_title(candidate.title)
    if not ctx.first_time(candidate.url):
        return []
    if looks_like_document(candidate.url):
        return [(yield from _fetch_and_ingest(ctx, portal, candidate.url, candidate.title, verdict))]
    cached = ctx.state.get(candidate.url)
    # the validators of the state just read (ctx.state.validators would look the URL up and parse its JSON again)
    validators = validators_of(cached) if cached and cached.get("derived") else None
    try:
        resp = yield Fetch(candidate.url, validators)
    except FetchError as exc:
        outcome = "refused" if isinstance(exc, Refused) else "fetch_failed"
        return [fetch_outcome(portal, candidate.url, candidate.title, outcome, verdict, reason=exc.reason)]
    results: list[IngestOutcome] = []
    if resp.not_modified and cached:
        detail = Detail.from_dict(cached["derived"])
        results.append(fetch_outcome(portal, candidate.url, candidate.title, "not_modified", verdict))
    else:
        text, utf8 = resp.text_and_utf8()
        detail = parse_detail(text, resp.url, utf8)
        # the page's text and its UTF-8 (the body itself) are not kept in this generator's frame: it waits for the
        # page's file to be ingested and for each attachment's fetch and ingest (1,000 hosts: hundreds of units at once)
        del text, utf8
        if verdict.agency is None and detail.agency:  # a title without its agency: the page's 发布机构 / ContentSource
            verdict = replace(verdict, agency=detail.agency)
        if detail.body_is_report or not detail.attachments:  # the page's body goes with its IngestFile
            results.append((yield from _fetch_and_ingest(ctx, portal, candidate.url, candidate.title, verdict, response=resp,
                                                         pictures=detail.pictures)))
        else:
            take_content(resp)  # parsed: only its validators are kept across its attachments' fetches and ingests
    for url, _link_text in detail.attachments:
        if ctx.first_time(url):
            results.append((yield from _fetch_and_ingest(ctx, portal, url, candidate.title, verdict)))
    # a refusal (robots.txt, foreign host) is policy, not failure: it does not make the page be fetched in full again
    if not resp.not_modified and all(r.outcome in _SETTLED for r in results):
        ctx.state.commit(candidate.url, etag=resp.etag, last_modified=resp.last_modified, derived=detail.to_dict())
    return results


# --- the walk of one run ------------------------------------------------------------------------------

_FIELDS = tuple(f.name for f in fields(IngestOutcome))
# a document's line: its fields' values as a JSON array, by one encoder made once (json.dumps with an option builds a
# JSONEncoder at every call) over a tuple of the values in field order (the same text as the list it replaces)
_VALUES = operator.attrgetter(*_FIELDS)
_LINE = json.JSONEncoder(ensure_ascii=False).encode
_SHARED = frozenset({"outcome", "agency", "year", "reason", "portal"})  # values repeated across a run's documents (as_dicts)
SPOOL_BYTES = 256 * 1024  # the documents' lines kept in one buffer up to this size, then in a temporary file


class Documents(Sequence[IngestOutcome]):
    """The run's documents (IngestOutcome), streamed out as they come: one JSON line each, in a buffer and past
    SPOOL_BYTES in a temporary file, read back when the summary lists them. Kept as objects (a dataclass instance with
    its dict and strings, some 650 bytes a document: 5,000 at 1,000 hosts) they grew with the URLs crawled and, long-lived
    among the crawl's short-lived objects, kept Python's memory arenas from being given back. Reads as the list of
    IngestOutcome it replaces (iterate, len, index, ==); `as_dicts()` gives the summary's dicts. Appends are thread-safe
    (a parent's ingest threads record a child's files)."""

    def __init__(self, outcomes: Iterable[IngestOutcome] = ()) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="gongkai-documents-")
        self._count = 0
        self._lock = threading.Lock()
        self.extend(outcomes)

    def append(self, outcome: IngestOutcome) -> None:
        self._write(_line(outcome), 1)

    def _write(self, data: bytes, count: int) -> None:
        with self._lock:
            self._file.seek(0, os.SEEK_END)
            self._file.write(data)
            self._count += count

    def extend(self, outcomes: Iterable[IngestOutcome]) -> None:
        if isinstance(outcomes, Documents):
            self._write(outcomes._bytes(), len(outcomes))
            return
        lines = [_line(outcome) for outcome in outcomes]  # one write, one lock, for an item's files
        if lines:
            self._write(b"".join(lines), len(lines))

    def _bytes(self) -> bytes:
        with self._lock:
            self._file.seek(0)
            return self._file.read()

    def _rows(self) -> Iterator[list[Any]]:
        """Each document's values, read back a chunk at a time (the whole record is never in memory as objects)."""
        offset = 0
        while True:
            with self._lock:
                self._file.seek(offset)
                lines = self._file.readlines(SPOOL_BYTES)
                offset = self._file.tell()
            if not lines:
                return
            # one parse a chunk: its lines as one JSON array (each line is an array and its newline, whitespace to JSON)
            yield from json.loads((b"[" + b",".join(lines) + b"]").decode("utf-8", "surrogatepass"))

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> IngestOutcome: ...

    @overload
    def __getitem__(self, index: slice) -> list[IngestOutcome]: ...

    def __getitem__(self, index: int | slice) -> IngestOutcome | list[IngestOutcome]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("document index out of range")
        return next(itertools.islice(iter(self), index, None))

    def __iter__(self) -> Iterator[IngestOutcome]:
        return (IngestOutcome(*row) for row in self._rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Documents, list)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the list was

    def __repr__(self) -> str:
        return f"Documents({list(self)!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a crawler process's record, sent to its parent) as its lines."""
        return {"lines": self._bytes(), "count": self._count}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Documents.__init__(self)
        self._write(state["lines"], state["count"])

    def as_dicts(self) -> list[dict[str, Any]]:
        """As the run summary lists them (IngestOutcome.as_dict of each). The values a run's documents repeat (_SHARED:
        the outcome, a portal's id and agency, the year, a refusal's reason) are one object each, not one per document
        as JSON reads them back: the summary of a 1,000-host crawl (5,000 documents) is built at its end, the parent's
        largest step then, and some 15 % of it (~0.8 MB) was copies of these."""
        shared: list[tuple[int, dict[Any, Any]]] = [(i, {}) for i, name in enumerate(_FIELDS) if name in _SHARED]
        docs: list[dict[str, Any]] = []
        for row in self._rows():
            for i, seen in shared:
                value = row[i]
                row[i] = seen.setdefault(value, value)
            docs.append(dict(zip(_FIELDS, row, strict=True)))
        return docs


def _line(outcome: IngestOutcome) -> bytes:
    """A document's line in the record: its values in field order as JSON, UTF-8 (a lone surrogate kept as it is)."""
    return (_LINE(_VALUES(outcome)) + "\n").encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class PageJob:
    portal: Portal
    request: PageRequest
    root: str  # the listing URL (first page) this page belongs to


@dataclass(frozen=True, slots=True)
class ItemJob:
    portal: Portal
    candidate: Candidate
    verdict: TitleVerdict


INTERRUPTED = "the run was stopped before its listing was read; the next run reads it"


def not_crawled() -> dict[str, Any]:
    """The summary of a portal the run never started (stopped before its turn: crawler/scheduler.py's admission)."""
    return {"status": "not_crawled", "error": "the run was stopped before this portal's turn; the next run crawls it",
            "pages": 0, "listed": 0, "listing_from_cache": False}


@dataclass(slots=True)
class PortalProgress:
    portal: Portal
    started: float = field(default_factory=time.monotonic)
    candidates: dict[str, Candidate] = field(default_factory=dict)
    # per listing URL of the portal: its first page and every candidate of its pages, for conditional state (both
    # dropped, with `candidates`, once the portal has no page pending: `settle`)
    firsts: dict[str, FirstPage] = field(default_factory=dict)
    listed: dict[str, list[Candidate]] = field(default_factory=dict)
    requested: dict[tuple[str, str, tuple[tuple[str, str], ...]], PageRequest] = field(default_factory=dict)
    pages: int = 0
    items: int = 0
    pending: int = 0
    error: str | None = None
    truncated: bool = False  # paging stopped early (backfill, a limit): the listing read is not the whole listing
    limit: str | None = None  # the limit hit, if one was
    listed_count: int = 0  # len(candidates) when they were dropped
    from_cache: bool | None = None  # every listing's first page from the cache, when firsts were dropped
    # keep candidates, listings and the pages asked for after the portal's last page (tools, tests that read them)
    keep_listings: bool = False

    def settle(self) -> None:
        """No page of the portal is pending (none can come): what only paging needed is dropped, counts kept. Its items
        carry their own candidates."""
        if self.keep_listings or self.pending:
            return
        self.listed_count += len(self.candidates)
        if self.firsts:
            self.from_cache = (self.from_cache is not False) and all(f.from_cache for f in self.firsts.values())
        self.candidates, self.firsts, self.listed, self.requested = {}, {}, {}, {}

    def listed_total(self) -> int:
        return self.listed_count + len(self.candidates)

    def all_from_cache(self) -> bool:
        firsts = [f.from_cache for f in self.firsts.values()] + ([self.from_cache] if self.from_cache is not None else [])
        return bool(firsts) and all(firsts)

    def first_request(self, request: PageRequest) -> bool:
        """True the first time this run asks for a page: a 下一页 back to an earlier page does not loop."""
        key = (request.method, request.url, tuple(sorted((request.data or {}).items())))
        if key in self.requested:
            return False
        self.requested[key] = request
        return True

    def summary(self) -> dict[str, Any]:
        # a listing with nothing on it is most likely a misconfigured entry (wrong URL, wrong family). Pages still pending
        # at the end: the run was stopped (a finished run reads, fails or skips each page it asked for) while the listing
        # was read, which "ok" with what was read so far hid
        # A limit hit before any page was read (the run's deadline passed before an admitted portal's turn, or before
        # its first page's: admission starts portals as others end, deadlines count from the walk's start): nothing was
        # asked of it, which "ok" hid as a portal crawled whole
        status = ("failed" if self.error else "interrupted" if self.pending
                  else "not_crawled" if self.limit and not self.pages
                  else "empty" if self.pages and not self.listed_total() else "ok")
        error = self.error or {"empty": "no listing items", "interrupted": INTERRUPTED,
                               "not_crawled": f"{self.limit} reached before its first listing page was read; the next "
                                              "run crawls it"}.get(status)
        out = {"status": status, "error": error, "pages": self.pages, "listed": self.listed_total(),
               "listing_from_cache": self.all_from_cache()}
        if self.limit:
            out["limit"] = self.limit
        return out


class Walk:
    """The listing walk of one run over its portals. Not thread-safe: one driver thread calls it."""

    def __init__(self, ctx: CrawlContext, portals: Iterable[Portal], limits: Limits | None = None, *,
                 keep_listings: bool = False) -> None:
        self.ctx = ctx
        self.limits = limits or Limits()
        # keep_listings: each portal's candidates and listings kept after its last page (else dropped: PortalProgress.settle)
        self.keep_listings = keep_listings
        # the run's portals in the order given (flows/crawl.py: those the last run did not reach or finish first, then
        # registry order: crawler/run_history.py), one per id (the last given, as a dict by id kept them). A portal is given
        # its progress when it starts (start, start_next): one waiting for its turn (the scheduler admits a bounded
        # number at a time) holds nothing but its place in this list
        self.portals: list[Portal] = list({p.id: p for p in portals}.values())
        self._next = 0  # the first portal not started
        # every portal's deadline counts from here, as when all started with the walk: a run's length stays bounded by it
        # (crawler/processes.py bounds its children by it), and a portal admitted late gets what is left of it
        self.started = time.monotonic()
        self.progress: dict[str, PortalProgress] = {}  # the portals started, in the order they started
        self.rejected: list[dict[str, Any]] = []
        self.noted: list[tuple[str, str]] = []  # (portal, kind of listing noise): counted in the summary
        self.documents = Documents()

    def start(self) -> list[PageJob]:
        """Start every portal not started yet: their first listing pages."""
        jobs: list[PageJob] = []
        while (pages := self.start_next()) is not None:
            jobs.extend(pages)
        return jobs

    def start_next(self) -> list[PageJob] | None:
        """Start the next portal in the walk's order: its first listing pages (none: nothing to ask for, e.g. a limit), or
        None when every portal was started."""
        if self._next >= len(self.portals):
            return None
        portal = self.portals[self._next]
        self._next += 1
        state = self.progress[portal.id] = PortalProgress(portal, self.started, keep_listings=self.keep_listings)
        return self._page_jobs(state, first_requests(portal), None)

    @property
    def waiting(self) -> int:
        """Portals not started yet."""
        return len(self.portals) - self._next

    def _page_jobs(self, state: PortalProgress, requests: Iterable[PageRequest], root: str | None) -> list[PageJob]:
        jobs = []
        for request in requests:
            if not state.first_request(request):
                continue
            if self._limit_hit(state, pages=True):
                state.truncated = True
                break
            state.pending += 1
            jobs.append(PageJob(state.portal, request, root or request.url))
        return jobs

    def _limit_hit(self, state: PortalProgress, *, pages: bool = False, items: bool = False) -> bool:
        """True when the portal may take no more work of this kind; the first limit hit is recorded."""
        limits = self.limits
        hit = None
        if limits.deadline_s is not None and time.monotonic() - state.started > limits.deadline_s:
            hit = f"deadline of {limits.deadline_s:g} s"
        elif pages and limits.max_pages is not None and state.pages + state.pending >= limits.max_pages:
            hit = f"{limits.max_pages} listing pages"
        elif items and limits.max_items is not None and state.items >= limits.max_items:
            hit = f"{limits.max_items} listing items"
        if hit and state.limit is None:
            state.limit = hit
            log.warning("portal %s: limit of %s reached; the rest of its listing waits for the next run", state.portal.id, hit)
        return hit is not None

    def expired(self, portal: Portal) -> bool:
        """True once the portal is past its deadline: its waiting work is skipped (and the limit recorded)."""
        return self._limit_hit(self.progress[portal.id])

    def page_skipped(self, job: PageJob) -> None:
        state = self.progress[job.portal.id]
        state.pending -= 1
        state.truncated = True
        state.settle()

    def item_skipped(self, job: ItemJob) -> None:
        self.progress[job.portal.id].truncated = True

    def page_done(self, job: PageJob, result: PageResult | None, error: str | None = None) -> tuple[list[PageJob], list[ItemJob]]:
        """Take in one listing page (or why it failed): the next pages to ask for and the items to fetch."""
        state = self.progress[job.portal.id]
        state.pending -= 1
        error = error or (result.error if result is not None else "no result")
        if error is not None or result is None:
            state.error = state.error or error  # this portal is down for this run; the others go on
            log.warning("portal %s: listing page %s failed: %s", job.portal.id, job.request.url, error)
            state.settle()
            return [], []
        state.pages += 1
        if job.request.is_first:
            state.firsts[job.root] = FirstPage.of(result)
        state.listed.setdefault(job.root, []).extend(result.candidates)
        items: list[ItemJob] = []
        for candidate in result.candidates:
            if candidate.url in state.candidates:
                continue  # Hanweb repeats a record at each group boundary
            state.candidates[candidate.url] = candidate
            verdict = classify_title(candidate.title)  # once: the item job carries it
            if not verdict.is_report:
                kind, reason = noise.rejection(candidate.title, verdict)
                self.noted.append((job.portal.id, kind))
                self.rejected.append({"portal": job.portal.id, "title": candidate.title, "url": candidate.url, "reason": reason})
            elif wanted(self.ctx, verdict):
                self.noted.extend((job.portal.id, kind) for kind in noise.accepted(job.portal.agency, candidate.url, verdict))
                if self._limit_hit(state, items=True):
                    state.truncated = True
                    continue
                state.items += 1
                items.append(ItemJob(job.portal, candidate, verdict))
        pages: list[PageJob] = []
        if older_than_wanted(self.ctx, result.candidates):
            state.truncated = state.truncated or bool(result.next)
        elif not state.error:
            pages = self._page_jobs(state, result.next, job.root)
        log.info("portal %s: page %d read (%d items, %d wanted), %d pages pending", job.portal.id, state.pages,
                 len(result.candidates), len(items), state.pending)
        if state.pending == 0 and state.error is None and not state.truncated:
            for url, first in state.firsts.items():
                commit_listing(self.ctx, url, first, dict.fromkeys(state.listed[url]))
        state.settle()
        return pages, items

    def item_done(self, job: ItemJob, results: list[IngestOutcome] | None, error: str | None = None) -> None:
        if results is None:
            # not an ingest outcome: the run counts it with the fetch failures
            results = [fetch_outcome(job.portal, job.candidate.url, job.candidate.title, "crashed", reason=error or "no result")]
        self.documents.extend(results)

    def portal_summaries(self) -> dict[str, dict[str, Any]]:
        """Every portal of the run, in the walk's order; one never started (the run was stopped before its turn) is
        reported as not crawled, not as a portal that listed nothing."""
        return {p.id: self.progress[p.id].summary() if p.id in self.progress else not_crawled() for p in self.portals}

    def summary(self) -> dict[str, Any]:
        documents = self.documents.as_dicts()
        return {"portals": self.portal_summaries(), "rejected": self.rejected,
                "documents": documents, "noise": noise.summarise(self.noted, documents)}


def walk_sequentially(ctx: CrawlContext, portals: Iterable[Portal], *, fetch_items: bool = True, limits: Limits | None = None,
                      keep_listings: bool = False) -> Walk:
    """Run a walk in this thread, pages in the order asked for (breadth first), each item as it is found."""
    walk = Walk(ctx, portals, limits, keep_listings=keep_listings)
    queue = deque(walk.start())
    while queue:
        job = queue.popleft()
        try:
            result, error = listing_page(ctx, job.portal, job.request), None
        except FetchError as exc:
            result, error = None, str(exc)
        pages, items = walk.page_done(job, result, error)
        queue.extend(pages)
        for item in items if fetch_items else []:
            walk.item_done(item, listing_item(ctx, item.portal, item.candidate, item.verdict))
    return walk


def pages_requested(walk: Walk, portal: Portal) -> list[PageRequest]:
    """The listing pages a walk asked a portal for, in order (a walk made with keep_listings=True: else dropped with the
    portal's candidates once none of its pages is pending)."""
    return list(walk.progress[portal.id].requested.values())
