"""Text clean-up shared by every reader, so that a label reads the same whatever format carried it."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable

# The first line of a title set over two lines: an agency name or a year, no punctuation.
_TITLE_HEAD = re.compile(r"[\u4e00-\u9fff0-9（）()]{2,30}")
_SPACES = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef“”‘’"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")
_SPACE_NEXT_TO_CJK = re.compile(rf"(?<=[{_CJK}]) (?=[0-9A-Za-z.．、])|(?<=[0-9.．、]) (?=[{_CJK}])")


def clean_text(text: str) -> str:
    """Collapse white space (including &nbsp; and the ideographic space) and drop it between CJK characters.

    Stray spaces inside CJK labels come from PDF glyph spacing and Word-pasted HTML; they carry no meaning.
    """
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BETWEEN_CJK.sub("", text)
    return _SPACE_NEXT_TO_CJK.sub("", text)


def fold(text: str) -> str:
    """Compatibility-fold full-width forms (２１ → 21, （ → () so labels and numbers compare equal."""
    return unicodedata.normalize("NFKC", text)


def first_title_line(lines: Iterable[str], look_at: int = 5) -> str | None:
    """The first of the opening lines that reads like a report title (short, names a 报告, no sentence end).

    A title set over two lines (the agency, then 2022年政府信息公开工作年度报告; or a <br> inside it) is joined.
    """
    opening = list(itertools.islice(lines, look_at + 1))
    for i, line in enumerate(opening[:look_at]):
        if looks_like_title(line):
            return line
        following = opening[i + 1] if i + 1 < len(opening) else ""
        if _TITLE_HEAD.fullmatch(line) and len(following) <= 50 and looks_like_title(line + following):
            return line + following
    return None


def looks_like_title(line: str) -> bool:
    return (
        6 <= len(line) <= 80 and ("报告" in line or "年报" in line) and not line.endswith(("。", "；", "：", ";", ":"))
    )
