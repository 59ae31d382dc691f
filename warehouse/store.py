"""The warehouse: agencies, documents and report versions, each report version loaded in one transaction.

An extraction result (gongkai.extractors.result.ExtractionResult; its JSON is docs/common-schema.md's
"Extraction output") is loaded by `load`.
A document already extracted by the current extractor version is recognised by `extracted_with`
before any extraction happens, which is what makes a second ingest of the same files a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from gongkai.extractors.result import ExtractionResult
from gongkai.warehouse.agencies import city_key, identity_key, name_key
from gongkai.warehouse.db import Database, connect
from gongkai.warehouse.migrate import migrate

# Statuses whose document is the agency's report for the year; the others never supersede it.
REPORT_STATUSES = ("extracted", "partial", "unreadable_tables", "no_standard_tables")
OUTCOMES = ("new", "unchanged", "changed", "not_a_report", "unreadable", "failed")
# Test hook (kill -9 test): seconds to sleep inside the load transaction, after the report row is written.
CRASH_PAUSE_ENV = "GONGKAI_TEST_PAUSE_IN_LOAD"
_CRASH_PAUSE = float(os.environ.get(CRASH_PAUSE_ENV) or 0)  # read once: the hook is set before the process starts


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


__all__ = ["DocumentInfo", "IngestOutcome", "ShardFenced", "Warehouse", "name_key", "open_warehouse", "utcnow", "clean_name"]
MAX_NAME_CHARS = 255


def clean_name(name: str | None, limit: int | None = MAX_NAME_CHARS) -> str | None:
    """A file name or URL fit to store and print: a name that is not UTF-8 (unzip of a GBK archive gives
    surrogate escapes) is read as GB18030 when it is that, else its bad bytes become U+FFFD; NUL and other
    control characters (a Content-Disposition name) are dropped; at most MAX_NAME_CHARS characters."""
    if name is None:
        return None
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        raw = name.encode("utf-8", "surrogateescape")
        try:
            name = raw.decode("gb18030")
        except UnicodeDecodeError:
            name = raw.decode("utf-8", "replace")
    name = name.encode("utf-8", "replace").decode("utf-8")  # any lone surrogate left
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cc" or ch == " ")
    return name[:limit]


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """What is known about a file apart from its content: where it came from, and hints from the caller."""

    sha256: str
    size: int
    media_type: str
    name: str | None = None
    url: str | None = None
    agency: str | None = None
    year: int | None = None
    division_code: str | None = None
    level: str | None = None

    def __post_init__(self) -> None:
        # Names come from file systems and HTTP headers: PostgreSQL refuses NUL, neither engine takes surrogates.
        object.__setattr__(self, "name", clean_name(self.name))
        object.__setattr__(self, "url", clean_name(self.url, None))


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    sha256: str
    outcome: str  # one of OUTCOMES
    name: str | None = None
    report_id: int | None = None
    version: int | None = None
    revision: int | None = None
    agency: str | None = None
    year: int | None = None
    reason: str | None = None
    failing_checks: int = 0
    # For 'changed': whether the cells (address → value) differ from the row compared with, or only what
    # surrounds them (warnings, provenance, checks, title).
    cells_changed: bool = False
    # Where a crawled file came from (the crawler's outcomes also say not_modified / refused / fetch_failed / crashed).
    url: str | None = None
    title: str | None = None
    portal: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The outcome as the run summaries list it."""
        return asdict(self)


def fingerprint(result: ExtractionResult, agency_id: int | None, year: int | None) -> str:
    """A digest of everything a report row stores, to tell a changed re-extraction from an identical one."""
    as_json = result.as_json()
    stored = {
        key: as_json.get(key)
        for key in ("status", "reason", "template", "title", "warnings", "cells", "provenance", "checks")
    }
    stored["agency_id"], stored["year"] = agency_id, year
    text = json.dumps(stored, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReportRow(NamedTuple):
    report_id: int
    report_key: str
    version: int
    revision: int
    sha256: str
    fingerprint: str
    status: str
    template: str | None
    reason: str | None
    checks_failing: int
    claimed_by: int | None
    n_cells: int


class ShardFenced(RuntimeError):
    """A shard's load refused: its parent run gave the shard up (flows/shards.py), so it loads nothing more."""


class Warehouse:
    # A fenced shard's load is rolled back and its process stopped at once (SIGKILL, as its beat does): an exception
    # would be caught as one document's failure and the crawl would go on. False: raise ShardFenced instead.
    stop_when_fenced = True

    def __init__(self, db: Database) -> None:
        self.db = db
        self._fences: dict[int, tuple[int, str] | None] = {}  # run id -> (parent run, flow run) when a shard's run

    @property
    def url(self) -> str:
        return self.db.url

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- agencies -------------------------------------------------------------------------------
    def resolve_agency(self, name: str | None, division_code: str | None = None, level: str | None = None) -> int | None:
        """The agency's id, created if new; every name it is seen under is kept in agency_aliases.

        With a division code the agency is (code, name): a code names a region shared by all its agencies.
        A name matches an agency known under another form of it (福建省平潭综合实验区 = 平潭综合实验区管委会,
        warehouse/agency_names.toml) unless their division codes differ; a name-only agency (from a
        hand-collected file) is adopted by the registry when it later names the agency with its code.
        """
        if not name and not division_code:
            return None
        db = self.db
        with db.transaction():
            db.lock_for_update(f"agency:{identity_key(name) if name else division_code}")
            found = self.find_agency(name, division_code)
            if found is not None:
                agency_id, known_code, known_level = found
                if division_code and known_code is None:  # adopted by the registry
                    db.execute("UPDATE agencies SET division_code = ?, level = ? WHERE agency_id = ?", [division_code, level, agency_id])
                elif level and known_level is None:
                    db.execute("UPDATE agencies SET level = ? WHERE agency_id = ?", [level, agency_id])
            else:
                key = name_key(name) if name else None
                agency_id = int(
                    db.scalar(
                        "INSERT INTO agencies (name, name_key, division_code, level, created_at) VALUES (?, ?, ?, ?, ?) "
                        "RETURNING agency_id",
                        [name or division_code, key or division_code, division_code, level, utcnow()],
                    )
                )
            if name:
                self._record_alias(agency_id, name)
            return agency_id

    def find_agency(self, name: str | None, division_code: str | None = None) -> tuple[int, str | None, str | None] | None:
        """(agency_id, division_code, level) of the agency this name (and code) denotes, without creating it."""
        db = self.db
        columns = "SELECT a.agency_id, a.division_code, a.level FROM agencies a"
        if not name:
            row = db.query_one(f"{columns} WHERE a.division_code = ? ORDER BY a.agency_id LIMIT 1", [division_code])
            return None if row is None else (int(row[0]), row[1], row[2])
        key, ident, city = name_key(name), identity_key(name), city_key(name)
        aliases = f"{columns} JOIN agency_aliases s ON s.agency_id = a.agency_id"
        if division_code:
            row = db.query_one(
                f"SELECT DISTINCT{aliases[6:]} WHERE a.division_code = ? AND (a.name_key = ? OR s.name_key = ? OR s.identity_key = ?) "
                "ORDER BY a.agency_id LIMIT 1",
                [division_code, key, key, ident],
            )
            if row is not None:
                return int(row[0]), row[1], row[2]
            # else only a name-only agency can be this one: an agency under another code is another agency
            compatible = " AND a.division_code IS NULL"
        else:
            compatible = ""
        exact = db.query_one(
            f"{aliases} WHERE s.name_key = ?{compatible} "
            "ORDER BY CASE WHEN a.division_code IS NULL THEN 1 ELSE 0 END, a.agency_id LIMIT 1",
            [key],
        )
        if exact is not None:
            return int(exact[0]), exact[1], exact[2]
        # another form of the name; a city prefix dropped (淮安市洪泽区 ~ 洪泽区) only when one agency fits
        tries: list[tuple[str, list[Any]]] = [("s.identity_key = ?", [ident])]
        relaxed = ["s.city_key = ?"] + (["s.identity_key = ?"] if city else [])
        tries.append((f"({' OR '.join(relaxed)})", [ident] + ([city] if city else [])))
        for condition, params in tries:
            rows = db.query(f"SELECT DISTINCT{aliases[6:]} WHERE {condition}{compatible} ORDER BY a.agency_id LIMIT 2", params)
            if len(rows) == 1:
                return int(rows[0][0]), rows[0][1], rows[0][2]
            if rows:
                return None  # ambiguous: a new agency rather than a wrong merge
        return None

    def _record_alias(self, agency_id: int, name: str) -> None:
        self.db.execute(
            "INSERT INTO agency_aliases (name_key, agency_id, name, identity_key, city_key, first_seen) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name_key, agency_id) DO NOTHING",
            [name_key(name), agency_id, name, identity_key(name), city_key(name), utcnow()],
        )

    # --- documents ------------------------------------------------------------------------------
    def _upsert_document(self, doc: DocumentInfo, agency_id: int | None, year: int | None) -> None:
        now = utcnow()
        self.db.execute(
            "INSERT INTO documents (sha256, size, media_type, original_name, url, agency_id, year, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET last_seen = excluded.last_seen, "
            "original_name = coalesce(documents.original_name, excluded.original_name), "
            "url = coalesce(documents.url, excluded.url), "
            "agency_id = coalesce(excluded.agency_id, documents.agency_id), year = coalesce(excluded.year, documents.year)",
            [doc.sha256, doc.size, doc.media_type, doc.name, doc.url, agency_id, year, now, now],
        )

    def touch_document(self, doc: DocumentInfo, failure: str | None = None, run_id: int | None = None) -> None:
        """Seen again: move last_seen; fill in what the caller knows now and did not before. `failure`: why
        this document could not be loaded this time (shown by `gongkai status` until it loads)."""
        if failure is not None:
            self.db.execute(
                "INSERT INTO load_failures (sha256, name, reason, run_id, failed_at) VALUES (?, ?, ?, ?, ?)",
                [doc.sha256, doc.name, clean_name(failure, 2000), run_id, utcnow()],
            )
        if not (doc.agency or doc.division_code):  # one statement: atomic without a transaction of its own
            self._upsert_document(doc, None, doc.year)
            return
        with self.db.transaction():
            self._upsert_document(doc, self.resolve_agency(doc.agency, doc.division_code, doc.level), doc.year)

    def extracted_with(self, sha256: str, extractor_version: str, doc: DocumentInfo | None = None) -> IngestOutcome | None:
        """The outcome recorded when this document was extracted by this extractor version, if it was.

        With `doc`, the caller's agency and year count too: a file may be the report of several agencies
        (one PDF linked from two portals), so the outcome is the document's row for the agency and year the
        caller names, None when there is none (the caller re-keys the document, or claims it anew).
        """
        select = "SELECT r.report_id, r.version, r.revision, a.name, r.year, r.reason, r.checks_failing, r.agency_id, r.claimed_by "
        joins = "FROM reports r LEFT JOIN agencies a ON a.agency_id = r.agency_id "
        row = self.db.query_one(
            f"{select}{joins}JOIN extractions e ON e.report_id = r.report_id WHERE e.sha256 = ? AND e.extractor_version = ?",
            [sha256, extractor_version],
        )
        if row is None:
            return None
        if doc is None or (doc.agency is None and doc.year is None):
            return _unchanged(sha256, row, row[3])
        wanted = self.find_agency(doc.agency, doc.division_code) if doc.agency else None
        if doc.agency and wanted is None:
            return None  # an agency never seen: a new claim

        def fits(found: tuple[Any, ...]) -> bool:
            return (wanted is None or found[7] == wanted[0]) and (doc.year is None or found[4] == doc.year)

        if fits(row):
            return _unchanged(sha256, row, doc.agency or row[3])
        if wanted is not None:  # the latest row of this document claimed by that agency, if it is for that year
            claimed = self.db.query_one(
                f"{select}{joins}WHERE r.sha256 = ? AND r.claimed_by = ? ORDER BY r.report_id DESC LIMIT 1", [sha256, wanted[0]]
            )
            if claimed is not None and fits(claimed):
                return _unchanged(sha256, claimed, doc.agency)
        return None

    # --- loading --------------------------------------------------------------------------------
    def load(
        self, doc: DocumentInfo, result: ExtractionResult | Mapping[str, Any], extractor_version: str, run_id: int | None = None
    ) -> IngestOutcome:
        """Load one extraction result as one transaction; return what it did to the warehouse.

        `result` may also be its JSON object (a cached or hand-made result)."""
        if not isinstance(result, ExtractionResult):
            result = ExtractionResult.from_json(result)
        status = result.status
        # The registry's identity (crawler hints) wins over what the document prints about itself.
        agency_name = doc.agency or result.agency
        year = doc.year if doc.year is not None else result.year
        db = self.db
        with self._load_transaction(run_id):
            # documents keep what the caller knew (so reprocess can pass it again); reports what was concluded.
            given_agency_id = self.resolve_agency(doc.agency, doc.division_code, doc.level)
            agency_id = given_agency_id if given_agency_id is not None else self.resolve_agency(agency_name)
            self._upsert_document(doc, given_agency_id, doc.year)
            is_report = status in REPORT_STATUSES and agency_id is not None and year is not None
            report_key = f"{agency_id}:{year}" if is_report else f"doc:{doc.sha256}"
            db.lock_for_update(f"report:{report_key}")  # two loaders of one agency-year must not take one version
            digest = fingerprint(result, agency_id, year)
            # What this document last loaded as: its own report row, or the row of another file it was found to
            # duplicate (the same report in another format); a new document is compared with the key's current one.
            earlier = self._report_row(
                "FROM extractions e JOIN reports r ON r.report_id = e.report_id WHERE e.sha256 = ? ORDER BY r.report_id DESC",
                [doc.sha256],
            )
            # ... under this key: a file may be the report of several agencies, each its own row and version.
            previous = earlier if earlier is not None and earlier.report_key == report_key else self._report_row(
                "FROM reports r WHERE r.report_key = ? AND r.sha256 = ? ORDER BY r.report_id DESC", [report_key, doc.sha256]
            )
            # the same caller moving the document to another agency or year (ingest --agency/--year, a reprocess)
            moved = earlier is not None and previous is None and earlier.claimed_by in (None, given_agency_id)
            candidate = previous
            if previous is not None and previous.sha256 != doc.sha256:
                # Linked to another file's row: that file may have been re-extracted since (a new revision),
                # so compare with the latest revision of the linked version, not the row linked back then.
                candidate = self._report_row(
                    "FROM reports r WHERE r.report_key = ? AND r.version = ? ORDER BY r.revision DESC",
                    [previous.report_key, previous.version],
                )
            if candidate is None and is_report:
                candidate = self._report_row(
                    "FROM reports r WHERE r.report_key = ? ORDER BY r.version DESC, r.revision DESC", [report_key]
                )
            if candidate is not None and (
                candidate.fingerprint == digest if candidate.sha256 == doc.sha256 else self._same_cells(candidate, report_key, result)
            ):
                self._record_extraction(doc.sha256, extractor_version, candidate.report_id, "unchanged", run_id)
                reason = candidate.reason
                if candidate.sha256 != doc.sha256:
                    why = self._take_over_source(candidate, doc, result, digest, extractor_version, given_agency_id)
                    reason = (
                        f"same cells as version {candidate.version}: the report in another file or format, now the version's "
                        f"source file ({why}) in place of {candidate.sha256}"
                        if why else
                        f"same cells as version {candidate.version} ({candidate.sha256}): the report in another file or format"
                    )
                return IngestOutcome(
                    doc.sha256, "unchanged", doc.name, candidate.report_id, candidate.version, candidate.revision, agency_name,
                    year, reason, candidate.checks_failing,
                )
            if previous is not None:
                version = previous.version  # a re-extraction that differs: a new revision of the same version
                revision = int(db.scalar("SELECT max(revision) FROM reports WHERE report_key = ? AND version = ?", [report_key, version])) + 1
                found_at = db.scalar("SELECT min(found_at) FROM reports WHERE report_key = ? AND version = ?", [report_key, version])
            else:
                version = int(db.scalar("SELECT coalesce(max(version), 0) FROM reports WHERE report_key = ?", [report_key])) + 1
                revision = 1
                found_at = None
            if found_at is None:  # every version one run finds is found at the run's start: load order never counts
                found_at = (db.scalar("SELECT started_at FROM runs WHERE run_id = ?", [run_id]) if run_id is not None else None) or utcnow()
            failing, incomplete = result.failing_checks, result.incomplete_checks
            cells: Mapping[str, Any] = result.cells
            cells_changed = candidate is None or self.cells_of(candidate.report_id) != dict(cells)
            reason = result.reason
            report_id = int(
                db.scalar(
                    "INSERT INTO reports (report_key, version, revision, sha256, agency_id, year, template, status, reason, "
                    "title, warnings, n_cells, checks_failing, checks_incomplete, extractor_version, fingerprint, run_id, "
                    "loaded_at, claimed_by, found_at, published) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING report_id",
                    [
                        report_key, version, revision, doc.sha256, agency_id, year, result.template, status, reason,
                        result.title, json.dumps(list(result.warnings), ensure_ascii=False),
                        len(cells), failing, incomplete, extractor_version, digest, run_id, utcnow(),
                        given_agency_id, found_at, _date(result.published),
                    ],
                )
            )
            if _CRASH_PAUSE:
                print("gongkai: paused inside the load transaction", file=sys.stderr, flush=True)
                time.sleep(_CRASH_PAUSE)
            self._insert_what_was_read(report_id, result)
            if is_report and not cells:
                with_cells = db.scalar(
                    "SELECT max(version) FROM reports WHERE report_key = ? AND version <> ? AND n_cells > 0", [report_key, version]
                )
                if with_cells is not None:  # kept, and shown in `coverage`, but the report with cells stays current
                    reason = f"warning: kept, not current: no cells, while version {with_cells} has cells" + (f" ({reason})" if reason else "")
            if previous is not None or moved or (version > 1 and status in REPORT_STATUSES):
                outcome = "changed"  # a re-extraction that differs, or a new version of the agency's report
            elif status in ("not_a_report", "unreadable"):
                outcome = status
            else:
                outcome = "new"
            self._record_extraction(doc.sha256, extractor_version, report_id, outcome, run_id)
            return IngestOutcome(
                doc.sha256, outcome, doc.name, report_id, version, revision, agency_name, year, reason, failing, cells_changed
            )

    @contextmanager
    def _load_transaction(self, run_id: int | None) -> Iterator[None]:
        """The load's transaction; for a shard's run, closed by the fence check: in the same transaction, the parent
        run's row read FOR KEY SHARE, which the parent's fence (ShardWatch.give_up: that row FOR UPDATE) waits for,
        and which waits for the fence. So either this load commits before the fence is written (and the parent counts
        it), or it sees the fence and rolls back: a shard stalled past the fence (SIGSTOP, a long GC, a swapped-out
        VM) never lands a report after its parent counted it lost. Taken last, the lock is held only for the commit."""
        fence = self._fence_of(run_id)
        try:
            with self.db.transaction():
                yield
                if fence is not None:  # also after a `return` inside the load's `with`
                    self._refuse_if_fenced(*fence)
        except ShardFenced as exc:
            if not self.stop_when_fenced:
                raise
            print(f"gongkai: {exc}: load rolled back, stopping this shard now", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
            raise  # not reached

    def _fence_of(self, run_id: int | None) -> tuple[int, str] | None:
        """(parent run, flow run) of a shard's run, None for any other run (a plain nightly: one look per run)."""
        if run_id is None:
            return None
        if run_id not in self._fences:
            params = self.db.scalar("SELECT params FROM runs WHERE run_id = ?", [run_id])
            fields = json.loads(params) if params else {}
            parent, flow_run = fields.get("parent_run"), fields.get("flow_run")
            self._fences[run_id] = (int(parent), str(flow_run)) if parent is not None and flow_run else None
        return self._fences[run_id]

    def _refuse_if_fenced(self, parent_run: int, flow_run: str) -> None:
        lock = " FOR KEY SHARE" if self.db.dialect == "postgresql" else ""  # DuckDB: no shards across processes
        params = self.db.scalar(f"SELECT params FROM runs WHERE run_id = ?{lock}", [parent_run])
        if params is not None and flow_run in json.loads(params).get("lost_shards", []):
            raise ShardFenced(f"run {parent_run} gave shard {flow_run} up")

    def _report_row(self, from_where: str, params: list[Any]) -> ReportRow | None:
        row = self.db.query_one(
            "SELECT r.report_id, r.report_key, r.version, r.revision, r.sha256, r.fingerprint, r.status, r.template, "
            f"r.reason, r.checks_failing, r.claimed_by, r.n_cells {from_where} LIMIT 1",
            params,
        )
        return None if row is None else ReportRow(*row)

    def _take_over_source(
        self, holder: ReportRow, doc: DocumentInfo, result: ExtractionResult, digest: str, extractor_version: str,
        claimed_by: int | None,
    ) -> str | None:
        """Make `doc` the source file of `holder`'s version when it comes first by the order-free rule of
        source_preference.toml (issue 11: with the first file loaded kept, the current file depended on load
        order); return why it won, or None (the holder stays). In the caller's transaction: the row's file
        and what was read from it (title, warnings, the cells' page/bbox provenance, checks) are rewritten
        together. The holder's file stays in documents, its extraction pointing at the version: a copy of it.

        Only while each file has no other report row (revisions, other agencies' claims, a moved
        document): rewriting one of several rows would change which row of a file is live."""
        db = self.db
        row = db.query_one(
            "SELECT r.published, d.media_type, (SELECT count(*) FROM reports o WHERE o.sha256 = r.sha256), "
            "(SELECT count(*) FROM reports n WHERE n.sha256 = ?) "
            "FROM reports r LEFT JOIN documents d ON d.sha256 = r.sha256 WHERE r.report_id = ?",
            [doc.sha256, holder.report_id],
        )
        if row is None or int(row[2]) != 1 or int(row[3]) != 0:
            return None
        published = _date(result.published)
        why = _source_first((published, doc.media_type, doc.sha256), (_date(row[0]), row[1], holder.sha256))
        if why is None:
            return None
        db.execute(
            "UPDATE reports SET sha256 = ?, title = ?, reason = ?, warnings = ?, checks_failing = ?, checks_incomplete = ?, "
            "extractor_version = ?, fingerprint = ?, published = ?, claimed_by = ? WHERE report_id = ?",
            [
                doc.sha256, result.title, result.reason, json.dumps(list(result.warnings), ensure_ascii=False),
                result.failing_checks, result.incomplete_checks, extractor_version, digest, published, claimed_by,
                holder.report_id,
            ],
        )
        db.execute("DELETE FROM cells WHERE report_id = ?", [holder.report_id])
        db.execute("DELETE FROM checks WHERE report_id = ?", [holder.report_id])
        self._insert_what_was_read(holder.report_id, result)
        return why

    def _insert_what_was_read(self, report_id: int, result: ExtractionResult) -> None:
        """A report row's cells (with their provenance in the file) and checks, from one extraction."""
        if result.cells:
            self.db.insert_many("cells", CELL_COLUMNS, cell_rows(report_id, result.cells, result.provenance))
        if result.checks:
            self.db.insert_many("checks", CHECK_COLUMNS, [check_row(report_id, c.as_json()) for c in result.checks])

    def _same_cells(self, other: ReportRow, report_key: str, result: ExtractionResult) -> bool:
        """Another file carrying exactly the cells of `other` is the same report (the HTML page and its PDF
        attachment), not a correction: no new version."""
        return (
            other.report_key == report_key
            and (other.status, other.template) == (result.status, result.template)
            and self.cells_of(other.report_id) == dict(result.cells)
        )

    def _record_extraction(self, sha256: str, extractor_version: str, report_id: int, outcome: str, run_id: int | None) -> None:
        self.db.execute(
            "INSERT INTO extractions (sha256, extractor_version, report_id, outcome, run_id, extracted_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256, extractor_version) DO UPDATE SET report_id = excluded.report_id, "
            "outcome = excluded.outcome, run_id = excluded.run_id, extracted_at = excluded.extracted_at",
            [sha256, extractor_version, report_id, outcome, run_id, utcnow()],
        )

    # --- reading back ---------------------------------------------------------------------------
    def cells_of(self, report_id: int) -> dict[str, float | int | None]:
        return {address: _number(value) for address, value in self.db.query("SELECT address, value FROM cells WHERE report_id = ?", [report_id])}

    def checks_of(self, report_id: int) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT rule, target, expected, actual, status FROM checks WHERE report_id = ? ORDER BY rule, target", [report_id]
        )
        return [dict(zip(("rule", "target", "expected", "actual", "status"), row, strict=True)) for row in rows]

    def archived_documents(self) -> list[tuple[DocumentInfo, list[str]]]:
        """Every document with what its caller knew, and the extractor versions that have processed it."""
        rows = self.db.query(
            "SELECT d.sha256, d.size, d.media_type, d.original_name, d.url, a.name, d.year, a.division_code, a.level, "
            "e.extractor_version FROM documents d LEFT JOIN agencies a ON a.agency_id = d.agency_id "
            "LEFT JOIN extractions e ON e.sha256 = d.sha256 ORDER BY d.first_seen, d.sha256"
        )
        found: dict[str, tuple[DocumentInfo, list[str]]] = {}
        for *info, version in rows:
            entry = found.setdefault(info[0], (DocumentInfo(*info), []))
            if version is not None:
                entry[1].append(version)
        return list(found.values())

    def record_page_pictures(self, page_sha256: str, pictures: Mapping[str, str | None]) -> None:
        """Which pictures (src as written → archived digest, None for a skipped icon) an HTML page links."""
        now = utcnow()
        with self.db.transaction():
            for src, digest in pictures.items():
                self.db.execute(
                    "INSERT INTO page_pictures (page_sha256, src, picture_sha256, first_seen) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (page_sha256, src) DO UPDATE SET picture_sha256 = excluded.picture_sha256",
                    [page_sha256, src, digest, now],
                )

    def page_pictures(self, page_sha256: str) -> dict[str, str | None]:
        """The pictures recorded for a page (record_page_pictures), by src."""
        rows = self.db.query("SELECT src, picture_sha256 FROM page_pictures WHERE page_sha256 = ? ORDER BY src", [page_sha256])
        return {str(src): (str(digest) if digest is not None else None) for src, digest in rows}

    def current_report(self, sha256: str) -> int | None:
        """The latest report row of a document (whatever its key)."""
        value = self.db.scalar("SELECT report_id FROM reports WHERE sha256 = ? ORDER BY report_id DESC LIMIT 1", [sha256])
        return None if value is None else int(value)


def _date(value: Any) -> date | None:
    """A publication date as the extraction result may give it (ISO text or a date); anything else: unknown."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _format_rank() -> dict[str, int]:
    with open(os.path.join(os.path.dirname(__file__), "source_preference.toml"), "rb") as fh:
        return {str(k): int(v) for k, v in tomllib.load(fh)["format_rank"].items()}


FORMAT_RANK = _format_rank()


def _source_first(new: tuple[date | None, str | None, str], held: tuple[date | None, str | None, str]) -> str | None:
    """Why the file `new` (publication date, media type, sha256) comes before `held` as a version's source
    file, or None when it does not: the earlier known publication date, then the format rank, then the
    smaller sha256. A total order on the files, so the winner never depends on which was loaded first."""
    (new_date, new_type, new_sha), (held_date, held_type, held_sha) = new, held
    if new_date != held_date:
        first = held_date is None or (new_date is not None and new_date < held_date)
        return "the earlier publication date" if first else None
    new_rank, held_rank = (FORMAT_RANK.get(t or "", len(FORMAT_RANK)) for t in (new_type, held_type))
    if new_rank != held_rank:
        return f"the preferred format ({new_type})" if new_rank < held_rank else None
    return "the same date and format: the smaller sha256" if new_sha < held_sha else None


def _unchanged(sha256: str, row: tuple[Any, ...], agency: str | None) -> IngestOutcome:
    return IngestOutcome(sha256, "unchanged", None, row[0], row[1], row[2], agency, row[4], row[5], int(row[6]))


CELL_COLUMNS = ("report_id", "address", "value", "raw", "page", "table_no", "row_no", "col_no", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")
CHECK_COLUMNS = ("report_id", "rule", "target", "expected", "actual", "status")


def cell_rows(report_id: int, cells: Mapping[str, Any], provenance: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for address, value in cells.items():
        where = provenance.get(address) or {}
        bbox = list(where.get("bbox") or []) + [None] * 4
        rows.append(
            (report_id, address, value, where.get("raw"), where.get("page"), where.get("table"), where.get("row"), where.get("col"), *bbox[:4])
        )
    return rows


def check_row(report_id: int, check: Mapping[str, Any]) -> tuple[Any, ...]:
    return (report_id, check.get("rule"), check.get("target"), _float(check.get("expected")), _float(check.get("actual")), check.get("status"))


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | int | None:
    """Counts come back as the integers they were; money keeps its decimals."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def open_warehouse(url: str) -> Warehouse:
    """Connect and bring the schema up to date (the URL comes from the caller: gongkai.settings at the top)."""
    db = connect(url)
    migrate(db)
    return Warehouse(db)
