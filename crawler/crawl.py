"""The crawl, without Prefect: one listing page, one listing item (detail page + attachments).

flows/crawl.py wraps these two functions as tasks; the benchmark and unit tests call them directly.
Every downloaded file goes through `ingest` (flows.ingest.ingest_bytes in production).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from gongkai.crawler.adapters import Candidate, PageRequest, parser_for
from gongkai.crawler.detail import Detail, looks_like_document, parse_detail
from gongkai.crawler.fetcher import Fetcher, FetchError, Refused, Response
from gongkai.crawler.registry import Portal
from gongkai.crawler.state import CrawlState
from gongkai.extractors.report_meta import TitleVerdict, classify_title

# ingest(data, name=, url=, agency=, year=, portal=) -> (outcome, reason, report_id, failing_checks)
Ingest = Callable[..., tuple[str, str | None, int | None, int]]
INGESTED = ("new", "unchanged", "changed", "not_a_report", "unreadable", "failed")


@dataclass
class DocResult:
    portal: str
    url: str
    title: str | None
    outcome: str  # an ingest outcome, or not_modified / refused / fetch_failed
    year: int | None = None
    agency: str | None = None
    reason: str | None = None
    report_id: int | None = None
    failing_checks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def first_time(self, url: str) -> bool:
        """True once per URL per run: one attachment linked from two pages is fetched once."""
        with self.lock:
            if url in self.seen:
                return False
            self.seen.add(url)
            return True


def listing_page(ctx: CrawlContext, portal: Portal, request: PageRequest) -> PageResult:
    """Fetch and parse one listing page. A first page that is not modified returns the listing cached last time."""
    cached = ctx.state.get(request.url) if request.is_first else None
    validators = ctx.state.validators(request.url) if cached and cached.get("derived") is not None else None
    resp = ctx.fetcher.fetch(request.url, allowed_hosts=portal.hosts, validators=validators,
                             method=request.method, data=request.data)
    if resp.not_modified and cached:
        return PageResult(portal.id, [Candidate(**c) for c in cached["derived"]], [], True, resp)
    page = parser_for(portal.cms)(portal, request, resp.text(), resp.url)
    return PageResult(portal.id, page.candidates, page.next, False, resp)


def commit_listing(ctx: CrawlContext, url: str, first: PageResult, candidates: Iterable[Candidate]) -> None:
    """Remember the whole listing under its first page's URL as requested (the URL looked up next run, whatever it
    redirected to), once every page of it was read."""
    resp = first.response
    if resp is not None and not first.from_cache:
        ctx.state.commit(url, etag=resp.etag, last_modified=resp.last_modified,
                         derived=[c.to_dict() for c in candidates])


def older_than_wanted(ctx: CrawlContext, candidates: list[Candidate]) -> bool:
    """Backfill stops paging once a whole page was published before the earliest wanted year."""
    if not ctx.years or not candidates:
        return False
    dated = [c.published for c in candidates if c.published]
    return bool(dated) and len(dated) == len(candidates) and all(int(d[:4]) < min(ctx.years) for d in dated)


def wanted(ctx: CrawlContext, verdict: TitleVerdict) -> bool:
    return verdict.is_report and (ctx.years is None or verdict.year in ctx.years)


def _fetch_and_ingest(
    ctx: CrawlContext, portal: Portal, url: str, title: str | None, verdict: TitleVerdict, *, response: Response | None = None
) -> DocResult:
    agency = verdict.agency or portal.agency
    base = DocResult(portal.id, url, title, "", verdict.year, agency)
    try:
        resp = response or ctx.fetcher.fetch(url, allowed_hosts=portal.hosts, validators=ctx.state.validators(url))
    except Refused as exc:
        base.outcome, base.reason = "refused", exc.reason
        return base
    except FetchError as exc:
        base.outcome, base.reason = "fetch_failed", exc.reason
        return base
    if resp.not_modified:
        base.outcome = "not_modified"
        return base
    outcome, reason, report_id, failing = ctx.ingest(
        resp.content, name=resp.filename, url=resp.url, agency=agency, year=verdict.year, portal=portal
    )
    base.outcome, base.reason, base.report_id, base.failing_checks = outcome, reason, report_id, failing
    if outcome != "failed":  # a crashed extractor gets the file again next run
        ctx.state.commit(url, etag=resp.etag, last_modified=resp.last_modified)
    return base


def listing_item(ctx: CrawlContext, portal: Portal, candidate: Candidate) -> list[DocResult]:
    """One report of a listing: the document itself, or its detail page (when it is the report) and its attachments."""
    verdict = classify_title(candidate.title)
    if not ctx.first_time(candidate.url):
        return []
    if looks_like_document(candidate.url):
        return [_fetch_and_ingest(ctx, portal, candidate.url, candidate.title, verdict)]
    cached = ctx.state.get(candidate.url)
    validators = ctx.state.validators(candidate.url) if cached and cached.get("derived") else None
    try:
        resp = ctx.fetcher.fetch(candidate.url, allowed_hosts=portal.hosts, validators=validators)
    except FetchError as exc:
        outcome = "refused" if isinstance(exc, Refused) else "fetch_failed"
        return [DocResult(portal.id, candidate.url, candidate.title, outcome, verdict.year, reason=exc.reason)]
    results: list[DocResult] = []
    if resp.not_modified and cached:
        detail = Detail.from_dict(cached["derived"])
        results.append(DocResult(portal.id, candidate.url, candidate.title, "not_modified", verdict.year))
    else:
        detail = parse_detail(resp.text(), resp.url)
        if detail.body_is_report or not detail.attachments:
            results.append(_fetch_and_ingest(ctx, portal, candidate.url, candidate.title, verdict, response=resp))
    for url, _link_text in detail.attachments:
        if ctx.first_time(url):
            results.append(_fetch_and_ingest(ctx, portal, url, candidate.title, verdict))
    # a refusal (robots.txt, foreign host) is policy, not failure: it does not make the page be fetched in full again
    if all(r.outcome in (*INGESTED[:5], "not_modified", "refused") for r in results) and not resp.not_modified:
        ctx.state.commit(candidate.url, etag=resp.etag, last_modified=resp.last_modified, derived=detail.to_dict())
    return results
