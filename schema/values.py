"""Printed cell text → value, by the value rules of schema/data/values.toml."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from gongkai.schema import VALUES

_NUMBER = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Parsed:
    value: int | float | None
    readable: bool  # False: text that is not a number (a footnote, 见附件): value None, warn


@lru_cache(maxsize=65536)  # a grid is read several times (header test, row test, value); cells repeat
def parse_value(raw: str, kind: str = "count", header_unit: str | None = None) -> Parsed:
    """Parse one cell. `kind` "money" converts into 万元; `header_unit` is the unit the column header names."""
    text = unicodedata.normalize("NFKC", raw)
    text = re.sub(r"\s+", "", text).replace(",", "").replace("，", "")
    text = re.sub(r"^(.+?)\(([^()\d]{1,3})\)$", r"\1\2", text)  # 12(件), 3.5(万元): a unit in brackets
    if text in VALUES.blank:
        return Parsed(None, True)
    factor = 1.0
    if kind == "money":
        factor = _unit_factor(header_unit or "万元")
        for unit, unit_factor in VALUES.money_units:
            if text.endswith(unit):
                text, factor = text[: -len(unit)], unit_factor
                break
    else:
        for unit in VALUES.count_units:
            if text.endswith(unit):
                text = text[: -len(unit)]
                break
    match = _NUMBER.match(text)
    if not match:
        return Parsed(None, False)
    try:
        number = Decimal(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    except InvalidOperation:
        return Parsed(None, False)
    if kind == "money":
        return Parsed(float(round(number * Decimal(str(factor)), 6)), True)
    if number != number.to_integral_value():
        return Parsed(float(number), True)
    return Parsed(int(number), True)


def _unit_factor(header: str) -> float:
    """The money unit a header names, e.g. 采购总金额（元） → yuan; 万元 when it names none."""
    folded = re.sub(r"\s+", "", unicodedata.normalize("NFKC", header))
    for unit, factor in VALUES.money_units:
        if re.search(rf"\((?:单位:)?{unit}\)|单位:{unit}$|(?<!万|亿){unit}$", folded):
            return factor
    return 1.0


def is_readable(text: str) -> bool:
    """A value cell's text as either kind reads it: a number, or blank."""
    return parse_value(text).readable or parse_value(text, "money").readable


def is_number(text: str) -> bool:
    """A printed number (with any unit), not a label and not a blank."""
    return any(p.readable and p.value is not None for p in (parse_value(text), parse_value(text, "money")))
