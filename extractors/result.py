"""The one hand-off from extractors to warehouse: a typed extraction result.

`as_json()` is the extract JSON object of docs/common-schema.md (what `gongkai extract` prints);
`from_json()` reads it back (a cached result, a test's hand-made one). `status` stays a plain
string so that new statuses need no change here; `warnings` are plain strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gongkai.schema.reconcile import Check

Number = int | float

# statuses of an extraction (others may be added by the extractors; the warehouse treats unknown ones as non-reports)
EXTRACTED = "extracted"
NO_STANDARD_TABLES = "no_standard_tables"  # a report, but without the national tables (before 2019)
NOT_A_REPORT = "not_a_report"
UNREADABLE = "unreadable"  # the bytes could not be read as a document: `reason` says why


@dataclass(frozen=True, slots=True)
class Source:
    path: str
    sha256: str
    format: str


@dataclass(slots=True)
class ExtractionResult:
    status: str
    source: Source | None = None
    title: str | None = None
    agency: str | None = None
    year: int | None = None
    template: str | None = None
    extractor_version: str | None = None
    cells: dict[str, Number | None] = field(default_factory=dict)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None  # why an unreadable document could not be read
    published: str | None = None  # the publication date, when known (ISO date)
    read_by: str | None = None  # "ocr" when cells were read from images (scans, tables pasted as pictures)

    @classmethod
    def unreadable(cls, reason: str, source: Source | None = None) -> ExtractionResult:
        return cls(UNREADABLE, source, reason=reason)

    @property
    def failing_checks(self) -> int:
        return sum(1 for c in self.checks if c.status == "fail")

    @property
    def incomplete_checks(self) -> int:
        return sum(1 for c in self.checks if c.status == "incomplete")

    def as_json(self) -> dict[str, Any]:
        """The extract JSON object (keys in the documented order; `reason` only when there is one)."""
        out: dict[str, Any] = {}
        if self.source is not None:
            out["source"] = {"path": self.source.path, "sha256": self.source.sha256, "format": self.source.format}
        out |= {
            "status": self.status,
            "title": self.title,
            "agency": self.agency,
            "year": self.year,
            "template": self.template,
            "extractor_version": self.extractor_version,
            "cells": dict(self.cells),
            "provenance": {a: dict(p) for a, p in self.provenance.items()},
            "checks": [c.as_json() for c in self.checks],
            "warnings": list(self.warnings),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.published is not None:
            out["published"] = self.published
        if self.read_by is not None:
            out["read_by"] = self.read_by
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExtractionResult:
        """Read the JSON object back; missing keys take their empty values."""
        source = data.get("source")
        return cls(
            status=str(data.get("status") or EXTRACTED),
            source=Source(str(source.get("path", "")), str(source.get("sha256", "")), str(source.get("format", "")))
            if isinstance(source, Mapping) else None,
            title=data.get("title"),
            agency=data.get("agency"),
            year=data.get("year"),
            template=data.get("template"),
            extractor_version=data.get("extractor_version"),
            cells=dict(data.get("cells") or {}),
            provenance={a: dict(p or {}) for a, p in (data.get("provenance") or {}).items()},
            checks=[_check(c) for c in data.get("checks") or []],
            warnings=[str(w) for w in data.get("warnings") or []],
            reason=data.get("reason"),
            published=data.get("published"),
            read_by=data.get("read_by"),
        )


def _check(data: Mapping[str, Any]) -> Check:
    return Check(str(data.get("rule")), str(data.get("target")), data.get("expected"), data.get("actual"), str(data.get("status")))
