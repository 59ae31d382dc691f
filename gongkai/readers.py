"""Readers while a run writes: a DuckDB file has one writer, and while `gongkai nightly` (or ingest) holds it no
other process may open it, not even to read. `gongkai status` and `gongkai query` wait a little for the file (a
short ingest ends), saying so once, then stop with one line saying why and what to use instead: PostgreSQL serves
many readers while a run writes."""

from __future__ import annotations

import sys
import time
from typing import Any

WAIT_S = 10.0
POLL_S = 0.5


def is_lock_conflict(exc: BaseException) -> bool:
    return type(exc).__name__ == "IOException" and "lock" in str(exc).lower()


class WarehouseBusy(RuntimeError):
    pass


def open_when_free(command: str, opener: Any, *args: Any, wait_s: float = WAIT_S, **kwargs: Any) -> Any:
    """opener(*args, **kwargs) (warehouse.query.open_read_only), retried while another process holds the DuckDB file."""
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        try:
            return opener(*args, **kwargs)
        except Exception as exc:
            if not is_lock_conflict(exc):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse is being written by another gongkai run (a DuckDB file has one writer at a time; "
                    f"waited {wait_s:g} s): try again when it ends, or use PostgreSQL (GONGKAI_DB=postgresql://…) "
                    "where many read while a run writes") from None
            if not said:
                print(f"gongkai {command}: the warehouse is being written by another run; waiting up to {wait_s:g} s",
                      file=sys.stderr, flush=True)
                said = True
            time.sleep(POLL_S)
