"""One report file → the extract JSON object of docs/common-schema.md. Pure: bytes in, dict out."""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import Any

from gongkai.extractors import read_document
from gongkai.extractors.mapping import Mapping, detect_template, map_document
from gongkai.extractors.model import Document
from gongkai.extractors.report_meta import ReportMeta, detect_meta
from gongkai.extractors.sniff import sniff_format
from gongkai.extractors.version import EXTRACTOR_VERSION
from gongkai.schema import TEMPLATES, Template
from gongkai.schema.reconcile import reconcile

# status of an extraction
EXTRACTED = "extracted"
NO_STANDARD_TABLES = "no_standard_tables"  # a report, but without the national tables (before 2019)
NOT_A_REPORT = "not_a_report"


def extract_report(data: bytes, name: str = "") -> dict[str, Any]:
    """Read, map and reconcile one document. Raises UnreadableDocument with the reason."""
    doc = read_document(data, name)
    return extract_from_document(doc, data, name)


def extract_from_document(doc: Document, data: bytes, name: str) -> dict[str, Any]:
    meta = detect_meta(doc)
    chosen = _choose_template(doc, meta)
    mapping = map_document(doc, chosen) if chosen and chosen.tables else Mapping()
    cells = {a: c.value for a, c in sorted(mapping.cells.items())}
    if cells:
        status = EXTRACTED
    elif meta.not_a_report or not meta.looks_like_report:
        status = NOT_A_REPORT
    else:
        status = NO_STANDARD_TABLES
    template_key = chosen.key if status == EXTRACTED and chosen else None
    if status == NO_STANDARD_TABLES and meta.year is not None:
        in_force = template_for_year(meta.year)
        template_key = in_force.key if in_force and not in_force.tables else None  # e.g. pre2019
    warnings = list(doc.warnings) + mapping.warnings
    if status == NOT_A_REPORT:
        warnings.append(f"not a report: {meta.title or 'no report title'}; no standard tables")
    elif status == NO_STANDARD_TABLES:
        warnings.append("no standard tables (二、三、四) found")
    checks = reconcile(cells, template_key, mapping.unreadable) if status == EXTRACTED and template_key else []
    is_report = status != NOT_A_REPORT
    return {
        "source": {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "format": _format(data, name)},
        "status": status,
        "title": meta.title,
        "agency": meta.agency if is_report else None,
        "year": meta.year if is_report else None,
        "template": template_key,
        "extractor_version": EXTRACTOR_VERSION,
        "cells": cells,
        "provenance": {a: mapping.cells[a].provenance() for a in cells},
        "checks": [c.as_json() for c in checks],
        "warnings": warnings,
    }


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
    try:
        return sniff_format(data, name)
    except ValueError:
        return PurePath(name).suffix.lstrip(".") or "unknown"
