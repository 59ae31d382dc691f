"""Logging inside flows: Prefect's run logger (shown with the flow run in the Prefect UI) when there is a run."""

from __future__ import annotations

import logging


def run_logger(fallback: str) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger inside a flow or task run; the module logger `fallback` outside one (tests, benchmarks,
    a command run without a Prefect server, which never imports Prefect)."""
    import sys

    if "prefect.context" not in sys.modules:
        return logging.getLogger(fallback)
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(fallback)
