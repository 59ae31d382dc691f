"""Argument types of the command line: each refuses a bad value with one line (argparse then exits 2).

Nothing here imports Prefect, DuckDB or the extractors: a mistake is answered before anything starts.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime


def _number(kind: type[int] | type[float], minimum: float, what: str) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value or value < minimum or value in (float("inf"), float("-inf")):  # NaN, negative, infinite
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, 1, "a whole number ≥ 1")
non_negative_int = _number(int, 0, "a whole number ≥ 0")
positive_float = _number(float, 1e-9, "a number of seconds > 0")
non_negative_float = _number(float, 0, "a number ≥ 0")


def port(text: str) -> int:
    value = non_negative_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1–65535)")
    return int(value)


def report_year(text: str) -> int:
    """The year a report covers: from 2008 (the regulation's first reports) to next year."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year") from None
    last = datetime.now(UTC).year + 1
    if not 2008 <= value <= last:
        raise argparse.ArgumentTypeError(f"{value} is not a report year (2008–{last})")
    return value


_VERSION = re.compile(r"\d+(\.\d+){0,3}")


def extractor_version(text: str) -> str:
    """An extractor version such as 0.3 or 0.3.1 (numbers and dots), compared number by number."""
    if not _VERSION.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not an extractor version (e.g. 0.3.0)")
    return text.strip()


def cron_expression(text: str) -> str:
    """A five-field cron expression, checked by cronsim (the library Prefect's schedules use)."""
    from cronsim import CronSim, CronSimError

    if len(text.split()) != 5:
        raise argparse.ArgumentTypeError(f"{text!r} is not a cron expression (five fields: minute hour day month weekday)")
    try:
        next(CronSim(text, datetime.now(UTC)))
    except (CronSimError, StopIteration) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a cron expression: {exc}") from None
    return text


def time_zone(text: str) -> str:
    """An IANA time zone name (Asia/Shanghai, UTC)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time zone (an IANA name such as Asia/Shanghai)") from None
    return text
