"""Label normalisation and fuzzy matching: how a printed label is compared with the schema's labels."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

# Numbering that prefixes labels: 三、 （二） (2) 1. 1． 第三、 — folded to half width before matching — and the
# 其中： that introduces sub-rows of an indicator table (其中：1.网站公开).
_NUMBERING = re.compile(r"^(?:其中:?|第?[一二三四五六七八九十]+[、.,]|\([一二三四五六七八九十\d]+\)[、.,]?|\d{1,2}[、.,](?!\d))")
_NOT_WORD = re.compile(r"[^\w]|_", re.UNICODE)
# A count unit in brackets after a label (总计（件）) says nothing about which row or column it is.
_BRACKETED_UNIT = re.compile(r"\((?:单位:)?(?:件|个|项|次|人|家|条|宗)\)")

EXACT = 1.0
CONTAINS = 0.9
CONTAINED = 0.85
FUZZY_FLOOR = 0.75


@lru_cache(maxsize=65536)
def normalize_label(text: str) -> str:
    """Fold widths, drop white space, leading numbering and punctuation: （三）1．属于国家秘密 → 属于国家秘密."""
    folded = unicodedata.normalize("NFKC", text)
    folded = re.sub(r"\s+", "", folded).replace("其它", "其他")  # both spellings are in common use
    folded = _BRACKETED_UNIT.sub("", folded)
    previous = None
    while previous != folded:
        previous = folded
        folded = _NUMBERING.sub("", folded)
    return _NOT_WORD.sub("", folded)


@lru_cache(maxsize=65536)  # a report repeats its few hundred labels against the same schema labels
def match_score(text: str, label: str) -> float:
    """How well normalised `text` matches normalised `label`: 1.0 exact, down to 0 for no match.

    Containment covers decorated or truncated labels (部分公开（区分处理的…）); a close ratio covers
    misspellings (其他法律行政止公开). Short labels (其他, 总计) must match exactly.
    """
    if not text or not label:
        return 0.0
    if text == label:
        return EXACT
    if len(label) >= 4 and label in text:
        return CONTAINS
    if len(text) >= 4 and text in label and 2 * len(text) >= len(label):  # a truncated label, not a word of one
        return CONTAINED
    if min(len(text), len(label)) < 4:
        return 0.0
    matcher = SequenceMatcher(None, text, label, autojunk=False)
    if matcher.real_quick_ratio() < FUZZY_FLOOR or matcher.quick_ratio() < FUZZY_FLOOR:
        return 0.0  # upper bounds of ratio(), far cheaper
    ratio = matcher.ratio()
    return ratio * 0.9 if ratio >= FUZZY_FLOOR else 0.0


def best_score(text: str, labels: tuple[str, ...]) -> float:
    return max((match_score(text, label) for label in labels), default=0.0)
