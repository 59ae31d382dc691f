"""The `runs` table: each flow run, what it was asked, and what came of it.

Usable by any flow (ingest, reprocess, the crawler's nightly/backfill):

    with recorded_run(warehouse, "crawl-nightly", {"portals": 12}) as tally:
        for ... : tally.add(ingest_bytes(...))
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gongkai.warehouse.store import OUTCOMES, IngestOutcome, Warehouse, utcnow

log = logging.getLogger(__name__)


@dataclass
class RunTally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    checks_failing: int = 0
    outcomes: list[IngestOutcome] = field(default_factory=list)
    interrupted: bool = False  # stopped early on request (Ctrl-C, SIGTERM): recorded as status 'interrupted'

    def add(self, outcome: IngestOutcome) -> None:
        self.counts[outcome.outcome] = self.counts.get(outcome.outcome, 0) + 1
        self.checks_failing += outcome.failing_checks
        self.outcomes.append(outcome)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def start_run(warehouse: Warehouse, kind: str, params: Mapping[str, Any]) -> int:
    with warehouse.db.transaction():
        return int(
            warehouse.db.scalar(
                "INSERT INTO runs (kind, params, status, started_at) VALUES (?, ?, 'running', ?) RETURNING run_id",
                [kind, json.dumps(params, ensure_ascii=False, default=str, sort_keys=True), utcnow()],
            )
        )


# the crawler's outcomes that count as failures of the run (beside an ingest's 'failed')
FAILURES = ("failed", "fetch_failed", "crashed")


def finish_run(warehouse: Warehouse, run_id: int, tally: RunTally, status: str = "completed", duration_s: float | None = None) -> None:
    c = tally.counts
    with warehouse.db.transaction():
        warehouse.db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, duration_s = ?, n_new = ?, n_unchanged = ?, n_changed = ?, "
            "n_not_a_report = ?, n_unreadable = ?, n_failed = ?, checks_failing = ? WHERE run_id = ?",
            [
                status, utcnow(), duration_s, c["new"], c["unchanged"], c["changed"], c["not_a_report"],
                c["unreadable"], sum(c.get(k, 0) for k in FAILURES), tally.checks_failing, run_id,
            ],
        )


@contextmanager
def recorded_run(warehouse: Warehouse, kind: str, params: Mapping[str, Any]) -> Iterator[RecordedRun]:
    """Record a run: 'running' at start, then 'completed' with its counts, 'interrupted' when it was stopped early
    (the body set `interrupted`, or a KeyboardInterrupt left it), or 'failed' if the body raised."""
    run = RecordedRun(start_run(warehouse, kind, params))
    log.debug("run %d (%s) started", run.run_id, kind)
    started = time.perf_counter()
    status = "failed"
    try:
        yield run
        status = "interrupted" if run.interrupted else "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        finish_run(warehouse, run.run_id, run, status, time.perf_counter() - started)
        log.debug("run %d (%s) %s", run.run_id, kind, status)


class RecordedRun(RunTally):
    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
