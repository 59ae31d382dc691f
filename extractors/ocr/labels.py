"""OCR'd labels snapped to the schema's labels (属F国家秘密 → 属于国家秘密, 白然人 → 自然人, 尚未重结 → 尚未审结).

The tolerance is the mapping's for misspellings (schema/labels.py: a SequenceMatcher ratio of FUZZY_FLOOR), with
one allowance for labels too short for a ratio to mean anything: three or four characters of which exactly one
differs, and no other label as close. A cell that is a figure, or already matches a label, is left as read; a
label cell that matches nothing is named in a warning (it may be a misread label the mapping then cannot place).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from difflib import SequenceMatcher

from gongkai.extractors.model import Table
from gongkai.schema import TABLES, TEMPLATES
from gongkai.schema.labels import CONTAINED, FUZZY_FLOOR, best_score, normalize_label
from gongkai.schema.values import is_number

SHORT = 4  # labels up to this long snap only with one character wrong
MAX_NAMED = 12  # unmatched labels quoted in the warning


@functools.cache
def _labels() -> tuple[str, ...]:
    found: set[str] = set()
    for table in TABLES.values():
        found.update(table.anchors, table.header_markers, table.units)
        for key in (*table.rows, *table.columns):
            found.update(key.labels)
            found.update(key.sole_labels)
            if key.group:
                found.add(key.group)
    for template in TEMPLATES:
        found.update(template.markers)
    return tuple(sorted(label for label in found if len(label) >= 2))


def _one_off(text: str, label: str) -> bool:
    return len(text) == len(label) and sum(a != b for a, b in zip(text, label, strict=True)) == 1


def snap(text: str) -> str | None:
    """The schema label an OCR'd label stands for, or None when it matches one as read or none at all."""
    labels = _labels()
    if len(text) < 2 or best_score(text, labels) >= CONTAINED:
        return None
    if len(text) <= SHORT:
        close = [label for label in labels if _one_off(text, label)]
        return close[0] if len(close) == 1 else None
    scored = sorted(((SequenceMatcher(None, text, label, autojunk=False).ratio(), label) for label in labels), reverse=True)
    if scored and scored[0][0] >= FUZZY_FLOOR and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][1]
    return None


def is_label(text: str) -> bool:
    """Whether an OCR'd text is one of the schema's labels, as read or once snapped."""
    norm = normalize_label(text)
    return len(norm) >= 2 and (best_score(norm, _labels()) >= CONTAINED or snap(norm) is not None)


# Not labels: article references that title a section of table 二 (第二十条第（一）项), and bracketed notes.
_NOT_A_LABEL = re.compile(r"^第[一二三四五六七八九十百]+条|^[（(].*[）)]$")


def snap_table(table: Table, warnings: list[str], where: str) -> None:
    """Snap the table's label cells in place; name in one warning those matching no label (`where`: its page
    or picture)."""
    unmatched: list[str] = []
    snapped: dict[tuple[int, int], str] = {}
    for row in table.rows:
        for cell in row:
            if not cell.is_anchor or not cell.text or is_number(cell.text):
                continue
            norm = normalize_label(cell.text)
            if not norm or norm.isdigit():
                continue
            label = snap(norm)
            if label is not None:
                snapped[cell.origin] = label
            elif len(norm) >= 2 and not _NOT_A_LABEL.match(cell.text.strip()) and best_score(norm, _labels()) < CONTAINED:
                unmatched.append(cell.text)
    if snapped:
        table.rows = [[dataclasses.replace(c, text=snapped[c.origin]) if c.origin in snapped else c for c in row]
                      for row in table.rows]
    if unmatched:
        shown = ", ".join(repr(t) for t in unmatched[:MAX_NAMED]) + (" …" if len(unmatched) > MAX_NAMED else "")
        warnings.append(f"OCR: table {table.index} ({where}): {len(unmatched)} label(s) match no schema label: {shown}")
