"""Log lines of the command line: one format, with the date, time and time zone (`nightly.log` under cron reads
`2026-11-29T02:00:03+0800 WARNING gongkai.flows.crawl: portal demo-down: failed …`).

The console shows WARNING and above by default (-v: INFO, each portal and document; -vv: DEBUG; -q: ERROR).
Prefect's run logger always records INFO, so the Prefect UI shows each run's portals and documents whatever
the console shows: Prefect reads these variables when it is imported (after this has run), and an operator's
own PREFECT_LOGGING_* values win.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Prefect's console formatter (prefect/logging/logging.yml), overridden through its PREFECT_LOGGING_* variables
PREFECT_FORMATS = {
    "PREFECT_LOGGING_FORMATTERS_STANDARD_DATEFMT": DATE_FORMAT,
    "PREFECT_LOGGING_FORMATTERS_STANDARD_FORMAT": LINE_FORMAT,
    "PREFECT_LOGGING_FORMATTERS_STANDARD_FLOW_RUN_FMT": "%(asctime)s %(levelname)s flow run %(flow_run_name)s: %(message)s",
    "PREFECT_LOGGING_FORMATTERS_STANDARD_TASK_RUN_FMT": "%(asctime)s %(levelname)s task run %(task_run_name)s: %(message)s",
}


def now_iso() -> str:
    """The current time as ISO 8601 with its UTC offset, as run records and summaries give it."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def configure_logging(console_level: int, explicit: bool = False) -> None:
    """Our handler until Prefect is imported; Prefect's console handler (same format, same level) after.
    `explicit`: the level was asked for (-v, -q) and replaces a PREFECT_LOGGING_* level already set."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(console_level, logging.WARNING) if console_level > logging.DEBUG else logging.DEBUG)  # libraries' chatter at -vv only
    logging.getLogger("gongkai").setLevel(min(console_level, logging.INFO))  # the flows' INFO lines reach Prefect's API
    handler.setLevel(console_level)
    for name, value in PREFECT_FORMATS.items():
        os.environ.setdefault(name, value)
    levels = {"PREFECT_LOGGING_LEVEL": logging.getLevelName(min(console_level, logging.INFO)),
              "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": logging.getLevelName(console_level)}
    for name, value in levels.items():
        if explicit:
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
