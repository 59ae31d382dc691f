"""Text clean-up shared by every reader, so that a label reads the same whatever format carried it."""

from __future__ import annotations

import re
import unicodedata

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
