"""One report file → its typed ExtractionResult (extractors/result.py); `extract_report` gives the extract JSON
object of docs/common-schema.md. Pure: bytes in, result out."""

from __future__ import annotations

import hashlib
import logging
from collections import abc
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from gongkai.extractors import read_document
from gongkai.extractors.mapping import Mapping, detect_template, map_document
from gongkai.extractors.model import Document, UnreadableDocument
from gongkai.extractors.report_meta import ReportMeta, detect_meta
from gongkai.extractors.result import EXTRACTED, NO_STANDARD_TABLES, NOT_A_REPORT, ExtractionResult, Source
from gongkai.extractors.sniff import sniff_format
from gongkai.extractors.version import EXTRACTOR_VERSION
from gongkai.schema import TEMPLATES, Template
from gongkai.schema.expected import missing
from gongkai.schema.labels import normalize_label
from gongkai.schema.reconcile import Check, reconcile

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits

log = logging.getLogger(__name__)

# status of an extraction (EXTRACTED, NO_STANDARD_TABLES and NOT_A_REPORT: extractors/result.py)
PARTIAL = "partial"  # standard tables read, but rows or cells of them missing (each named in a warning)
UNREADABLE_TABLES = "unreadable_tables"  # a report whose standard tables are there but cannot be read
# Readers (HTML div tables, PDF pages with table labels but no grid) start a warning so when they saw a table
# they could not read; a report without cells that carries one is UNREADABLE_TABLES.
UNREADABLE_TABLE = "unreadable table:"
# Distinct labels of the standard tables that the running text must name for a report of unknown year to be
# taken for one whose tables are there but not readable (prose names 行政复议 or 予以公开 now and then).
LABELS_IN_TEXT = 4
# The labels are searched in the first this many characters of the text (a report runs to some 50,000; a 50 MB
# page must not be normalised whole).
LABEL_SEARCH_CHARS = 1_000_000


__all__ = ["EXTRACTED", "NOT_A_REPORT", "NO_STANDARD_TABLES", "PARTIAL", "UNREADABLE_TABLES", "ExtractionResult",
           "extract_report", "extract_result"]


def extract_report(data: bytes, name: str = "") -> dict[str, Any]:
    """The extract JSON object of one document (what `gongkai extract` prints). Raises UnreadableDocument."""
    return extract_result(data, name).as_json()


def extract_result(
    data: bytes, name: str = "", *, sha256: str | None = None, fmt: str | None = None, ocr_limits: Limits | None = None,
    pictures: abc.Mapping[str, bytes] | None = None,
) -> ExtractionResult:
    """Read, map and reconcile one document. Raises UnreadableDocument with the reason.

    `sha256` and `fmt` are what the caller already computed (the ingest path hashes and sniffs once); `ocr_limits`
    bound OCR of scans and pictures (the settings' GONGKAI_OCR_*; the defaults when None); `pictures`: an HTML
    page's linked pictures the crawler fetched, by `src` as written in the page."""
    if fmt is None:
        try:
            fmt = sniff_format(data, name)
        except ValueError as exc:
            raise UnreadableDocument(str(exc)) from exc
    doc = read_document(data, name, fmt=fmt, ocr_limits=ocr_limits, pictures=pictures)
    result = result_from_document(doc, Source(name, sha256 or hashlib.sha256(data).hexdigest(), fmt))
    log.debug("%s (%s): %s, %d cells, %d checks failing", name, fmt, result.status, len(result.cells), result.failing_checks)
    return result


def extract_from_document(doc: Document, data: bytes, name: str) -> dict[str, Any]:
    """The extract JSON object of a document already read (tests build the document model by hand)."""
    return result_from_document(doc, Source(name, hashlib.sha256(data).hexdigest(), _format(data, name))).as_json()


def result_from_document(doc: Document, source: Source) -> ExtractionResult:
    """Map and reconcile a document already read: the typed result."""
    meta = detect_meta(doc)
    chosen = _choose_template(doc, meta)
    mapping = map_document(doc, chosen) if chosen and chosen.tables else Mapping()
    cells = {a: c.value for a, c in sorted(mapping.cells.items())}
    warnings = list(doc.warnings) + mapping.warnings
    template_key: str | None = None
    if cells:
        assert chosen is not None
        gaps = missing(cells, chosen)
        status = PARTIAL if gaps else EXTRACTED
        template_key = chosen.key
        warnings += gaps
        if meta.year is not None and chosen.last_year is not None and meta.year > chosen.last_year and chosen.tables_optional:
            # read all the same: the figures are there, but not in the tables a report of that year must carry
            warnings.append(f"a report on {meta.year} prints the tables of template {chosen.key} (up to {chosen.last_year}), "
                            "not the national tables")
        if gaps and doc.pictures:
            warnings.append(f"{doc.pictures} picture(s) in the body: the missing rows may be in a table pasted as a picture")
    elif (lost := _unreadable_tables(doc, meta)) is not None:
        status = UNREADABLE_TABLES
        expected = (template_for_year(meta.year) if meta.year is not None else None) or chosen
        template_key = expected.key if expected is not None else None
        warnings.append(lost)
    elif meta.not_a_report or not meta.looks_like_report:
        status = NOT_A_REPORT
        warnings.append(f"not a report: {meta.title or 'no report title'}; no standard tables")
    else:
        status = NO_STANDARD_TABLES
        if meta.year is not None:
            in_force = template_for_year(meta.year)
            template_key = in_force.key if in_force and in_force.tables_optional else None  # e.g. pre2019
        warnings.append("no standard tables (二、三、四) found")
    checks = reconcile(cells, template_key, mapping.unreadable) if cells and template_key else []
    if doc.ocr_pages:
        warnings += ocr_doubts(mapping, checks)
    is_report = status != NOT_A_REPORT
    return ExtractionResult(
        status=status,
        source=source,
        title=meta.title,
        agency=meta.agency if is_report else None,
        year=meta.year if is_report else None,
        template=template_key,
        extractor_version=EXTRACTOR_VERSION,
        cells=dict(cells),
        provenance={a: dict(mapping.cells[a].provenance()) for a in cells},
        checks=list(checks),
        warnings=warnings,
        read_by="ocr" if doc.ocr_pages else None,
    )


def ocr_doubts(mapping: Mapping, checks: list[Check]) -> list[str]:
    """Never a silent guess: each OCR'd value the recogniser was unsure of, and each failing check over OCR'd
    values (a misread figure breaks a sum), named in a warning; the values are kept."""
    from gongkai.extractors.ocr.summary import LOW_CONFIDENCE

    out = [
        f"{address}: read by OCR as {cell.raw!r} with confidence {cell.confidence:.2f} (page {cell.page}, "
        f"table {cell.table} row {cell.row} col {cell.col}); check it against the image"
        for address, cell in sorted(mapping.cells.items())
        if cell.source is not None and cell.confidence is not None and cell.confidence < LOW_CONFIDENCE
    ]
    if any(c.source is not None for c in mapping.cells.values()):
        out += [f"check {c.rule} ({c.target}) fails on values read by OCR: a figure may be misread"
                for c in checks if c.status == "fail"]
    return out


def _unreadable_tables(doc: Document, meta: ReportMeta) -> str | None:
    """For a document without cells: the warning saying what shows that it is a report whose standard tables are
    there but cannot be read, or None. A report on a year of the national templates must carry them, so it never
    passes for a pre-2019 report without tables; for a report of unknown year the document must show them."""
    seen = [w.removeprefix(UNREADABLE_TABLE).strip() for w in doc.warnings if w.startswith(UNREADABLE_TABLE)]
    if doc.pictures:
        seen.append(f"{doc.pictures} picture(s) in the body where the tables should be (tables pasted as pictures?)")
    by_table = _table_labels_in_text(doc)
    labels = [label for found in by_table.values() for label in found]
    if len(labels) >= 2:
        named = "; ".join(f"{address}: {'、'.join(found[:4])}" for address, found in by_table.items())
        seen.append(f"the text names {len(labels)} labels of the standard tables ({named}) but no table holds them")
    national = template_for_year(meta.year) if meta.year is not None else None
    if national is not None and not national.tables_optional and not meta.not_a_report:
        reason = "; ".join(seen) or "no table of 二、三、四 in any form"
        return f"{UNREADABLE_TABLE} a report on {meta.year} must carry the standard tables (template {national.key}), none could be read: {reason}"
    # Of unknown year, the document itself must name the tables: a pagination bar of numbered <span>s is not one.
    readers_saw = any(w.startswith(UNREADABLE_TABLE) for w in doc.warnings)
    if meta.year is None and not meta.not_a_report and (len(labels) >= LABELS_IN_TEXT or (readers_saw and labels)):
        return f"{UNREADABLE_TABLE} the standard tables are there but none could be read: {'; '.join(seen)}"
    return None


def _table_labels_in_text(doc: Document) -> dict[str, list[str]]:
    """The distinct header and anchor labels of the national tables that the running text shows, by table."""
    text = normalize_label(doc.text[:LABEL_SEARCH_CHARS])
    found: dict[str, list[str]] = {}
    for template in TEMPLATES:
        if template.tables_optional:
            continue  # a pre-2019 report without its 统计表 is an ordinary report of its years
        for table in template.tables:
            for label in (*table.header_markers, *table.anchors):
                if len(label) >= 4 and label in text and label not in found.get(table.address, []):
                    found.setdefault(table.address, []).append(label)
    return found


def _choose_template(doc: Document, meta: ReportMeta) -> Template | None:
    found = detect_template(doc)
    if found is not None:
        return found
    # Tables 三 and 四 are the same in both templates: let the year decide which proactive table to expect;
    # without a year, the newest template.
    if meta.year is not None:
        return template_for_year(meta.year)
    return max((t for t in TEMPLATES if t.tables), key=lambda t: t.first_year or 0)


def template_for_year(year: int) -> Template | None:
    """The template in force for reports on `year`, by the years templates.toml gives."""
    for candidate in TEMPLATES:
        if (candidate.first_year or year) <= year <= (candidate.last_year or year):
            return candidate
    return None


def _format(data: bytes, name: str) -> str:
    """The sniffed format; for bytes the sniffer refuses, the name's suffix."""
    try:
        return sniff_format(data, name)
    except ValueError:
        return PurePath(name).suffix.lstrip(".") or "unknown"
