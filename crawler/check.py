"""`portals check` and `portals add`: detect a column page's family, read its first listing pages as a dry run and
judge each item as the walk would (report / not a report and why / another agency's / the year it is for), without
fetching an item or loading anything. Online, every request goes through the polite fetcher to the one host the URL
names, exactly as sent; offline, a saved page is read with the URL it was saved from."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gongkai.crawler import noise
from gongkai.crawler.adapters import Candidate, PageRequest, parser_for
from gongkai.crawler.adapters.detect import Detection, detect
from gongkai.crawler.fetcher import Fetcher, FetchError
from gongkai.crawler.registry import Portal, host_of, load_registry
from gongkai.extractors.report_meta import classify_title

MAX_CHECK_PAGES = 10
# Characters a terminal obeys rather than shows (C0, DEL, C1: escape sequences that retitle, clear or rewrite the
# screen; the bidi overrides that reorder a line): a listing page's titles, links and a server's redirect target
# reach the operator's terminal, so they are printed as escapes
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TOML_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # not allowed raw in a TOML string


def printable(text: str) -> str:
    """`text` with every character a terminal would act on written as its Python escape (\\x1b, \\u202e)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass
class CheckedItem:
    title: str
    url: str
    published: str | None
    is_report: bool
    year: int | None
    agency: str | None
    reason: str  # why not a report, or "annual report"
    notes: list[str] = field(default_factory=list)  # other_agency, year_folder_differs

    def line(self) -> str:
        if not self.is_report:
            return f"  not a report        {self.title}  ({self.reason})  {self.url}"
        notes = "".join(f"  [{noise.KINDS[n]}: {self.agency}]" if n == "other_agency" else f"  [{noise.KINDS[n]}]" for n in self.notes)
        return f"  report        {self.year}  {self.title}  {self.url}{notes}"


@dataclass
class CheckResult:
    url: str
    detection: Detection
    pages: list[str] = field(default_factory=list)  # listing pages read
    unread: list[str] = field(default_factory=list)  # next pages left for the crawl
    items: list[CheckedItem] = field(default_factory=list)
    error: str | None = None

    @property
    def reports(self) -> list[CheckedItem]:
        return [i for i in self.items if i.is_report]

    def lines(self) -> list[str]:
        d = self.detection
        out = [f"{self.url}", f"family: {d.family} ({'; '.join(d.evidence)})", f"params: {d.params or '-'}"]
        out += [f"missing: {m}" for m in d.missing]
        for n, page in enumerate(self.pages, 1):
            out.append(f"page {n}: {page}")
        out += [item.line() for item in self.items]
        out += [f"next page (not read): {u}" for u in self.unread]
        if self.error:
            out.append(f"stopped: {self.error}")
        out.append(f"{len(self.items)} items on {len(self.pages)} pages: {len(self.reports)} reports, "
                   f"{len(self.items) - len(self.reports)} not reports; nothing fetched beyond the listing, nothing loaded")
        return [printable(line) for line in out]


def entry_toml(portal_id: str, agency: str, division_code: str, level: str, url: str, detection: Detection, *,
               verified: bool, evidence: str) -> str:
    def q(value: Any) -> str:  # a TOML basic string holding exactly `value`: no value given can add a line or a key
        if isinstance(value, int):
            return str(value)
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return '"' + _TOML_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + '"'

    lines = ["[[portal]]", f"id = {q(portal_id)}", f"agency = {q(agency)}", f"division_code = {q(division_code)}", f"level = {q(level)}",
             f"cms = {q(detection.family)}", f"listing = [{q(url)}]", f"hosts = [{q(host_of(url))}]",
             f"verified = {'true' if verified else 'false'}", f"evidence = {q(evidence)}"]
    if detection.missing:
        lines.append(f"missing = {q('; '.join(detection.missing))}")
    if detection.params:
        lines.append("[portal.params]")
        lines += [f"{k} = {q(v)}" for k, v in detection.params.items()]
    return "\n".join(lines) + "\n"


def portal_for(url: str, detection: Detection, agency: str = "", division_code: str = "") -> Portal:
    """The registry entry the detection amounts to, validated like any other."""
    text = entry_toml("check", agency or "(not given)", division_code, "county", url, detection, verified=False, evidence="check")
    return load_registry(text=text)[0]


def judge(agency: str, candidates: list[Candidate]) -> list[CheckedItem]:
    """Each item as the walk judges it; without the column's agency, no report is called another agency's."""
    out = []
    for c in candidates:
        verdict = classify_title(c.title)
        if verdict.is_report:
            notes = [n for n in noise.accepted(agency, c.url, verdict) if agency or n != "other_agency"]
            out.append(CheckedItem(c.title, c.url, c.published, True, verdict.year, verdict.agency, verdict.reason, notes))
        else:
            _kind, reason = noise.rejection(c.title, verdict)
            out.append(CheckedItem(c.title, c.url, c.published, False, verdict.year, None, reason))
    return out


Fetch = Callable[[PageRequest], tuple[str, str]]  # a listing request -> (text, URL after redirects)


def _walk(url: str, text: str, final_url: str, detection: Detection, fetch: Fetch | None, pages: int, agency: str) -> CheckResult:
    portal = portal_for(url, detection, agency)
    parse = parser_for(portal.cms)
    result = CheckResult(url, detection)
    seen: set[str] = set()
    asked = {_page_key(PageRequest(url))}  # a 下一页 back to a page already read ends the listing, as in the walk
    queue = [(PageRequest(url), text, final_url)]
    while queue:
        request, body, where = queue.pop(0)
        result.pages.append(request.url if request.method == "GET" else f"{request.method} {request.url} {request.data}")
        try:
            page = parse(portal, request, body, where)
        except Exception as exc:  # an API page that is not the JSON it should be, or JSON of another shape: as the crawl
            # flow takes it (flows/crawl.py), this listing stops here with the reason, never a traceback
            result.error = f"page {len(result.pages)} unreadable: {type(exc).__name__}: {exc}"
            break
        fresh = [c for c in page.candidates if c.url not in seen]
        seen.update(c.url for c in fresh)
        result.items += judge(agency, fresh)
        for nxt in page.next:
            if _page_key(nxt) in asked:
                continue
            asked.add(_page_key(nxt))
            if fetch is None or len(result.pages) >= min(pages, MAX_CHECK_PAGES):
                result.unread.append(nxt.url if nxt.method == "GET" else f"{nxt.method} {nxt.url} {nxt.data}")
                continue
            try:
                queue.append((nxt, *fetch(nxt)))
            except FetchError as exc:
                result.error = f"{nxt.url}: {exc.reason}"
    return result


def _page_key(request: PageRequest) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A listing page as the walk tells pages apart (crawler.crawl's first_request)."""
    return request.method, request.url, tuple(sorted((request.data or {}).items()))


def check_text(url: str, text: str, *, agency: str = "") -> CheckResult:
    """A saved column page, read with the URL it came from: the family, its items and the next pages, offline."""
    return _walk(url, text, url, detect(url, text), None, 1, agency)


def check_url(url: str, fetcher: Fetcher, *, pages: int = 2, agency: str = "") -> CheckResult:
    """Fetch a column page (only from the host its URL names), detect, read up to `pages` listing pages."""
    hosts = frozenset({host_of(url)})

    def fetch(request: PageRequest) -> tuple[str, str]:
        resp = fetcher.fetch(request.url, allowed_hosts=hosts, method=request.method, data=request.data)
        return resp.text(), resp.url

    try:
        text, final = fetch(PageRequest(url))
    except FetchError as exc:
        return CheckResult(url, Detection("unknown"), error=exc.reason)
    return _walk(url, text, final, detect(url, text), fetch, pages, agency)  # the URL as given: the entry holds it, fragment too


def mark_verified(path: Path, url: str, evidence: str) -> str | None:
    """Set `verified = true` on the entry of `path` that lists `url`; its id, or None when no unverified entry does."""
    text = path.read_text("utf-8")
    blocks = re.split(r"(?m)^(?=\[\[portal\]\])", text)
    for i, block in enumerate(blocks):
        if f'"{url}"' in block and re.search(r"(?m)^verified\s*=\s*false\s*$", block):
            block = re.sub(r"(?m)^verified\s*=\s*false\s*$", "verified = true", block)
            block = re.sub(r'(?m)^(evidence\s*=\s*")', lambda m: m.group(1) + evidence.replace('"', "'") + "; ", block, count=1)
            blocks[i] = block
            new = "".join(blocks)
            load_registry(path, text=new)  # still valid, or nothing is written
            path.write_text(new, "utf-8")
            found = re.search(r'(?m)^id\s*=\s*"([^"]+)"', block)
            return found.group(1) if found else None
    return None
