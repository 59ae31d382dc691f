"""A report reached by two shards at once is loaded once: two writers of one file on PostgreSQL, the first held inside
its load transaction (warehouse/store.py's pause hook) while the second loads the same bytes for the same agency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gongkai.flows.ingest import ingest_bytes
from gongkai.warehouse import open_archive, open_warehouse
from gongkai.warehouse.store import CRASH_PAUSE_ENV

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "tests" / "corpus" / "documents" / "zibo-stats-2023.txt"
SOURCE = {"agency": "淄博市统计局", "division_code": "370300", "level": "department", "year": 2023}

FIRST_WRITER = f"""
import sys
from pathlib import Path
from gongkai.flows.ingest import ingest_bytes
from gongkai.warehouse import open_archive, open_warehouse
path = Path(sys.argv[3])
with open_warehouse(sys.argv[1]) as wh:
    outcome = ingest_bytes(path.read_bytes(), name=path.name, warehouse=wh, archive=open_archive(sys.argv[2]), **{SOURCE!r})
print(outcome.outcome, flush=True)
"""

pytestmark = pytest.mark.postgres


def test_two_writers_of_one_report_at_once_load_it_once(postgres_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    with open_warehouse(postgres_url):
        pass  # the schema, before two writers race to create it
    env = {**os.environ, CRASH_PAUSE_ENV: "3", "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-c", FIRST_WRITER, postgres_url, str(archive), str(DOCUMENT)], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None
        line = first.stderr.readline()  # the first writer holds its report row, uncommitted, for 3 s
        assert "paused inside the load transaction" in line, line + first.stderr.read()
        with open_warehouse(postgres_url) as wh:  # the second writer, meanwhile: waits, then finds the first's report
            second = ingest_bytes(DOCUMENT.read_bytes(), name=DOCUMENT.name, warehouse=wh, archive=open_archive(archive), **SOURCE)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
    assert first.returncode == 0, err
    assert (out.strip(), second.outcome) == ("new", "unchanged"), (out, err)
    with open_warehouse(postgres_url) as wh:
        assert wh.db.query("SELECT count(*), min(version) FROM reports") == [(1, 1)]
        assert int(wh.db.scalar("SELECT n_cells FROM reports")) == int(wh.db.scalar("SELECT count(*) FROM cells")) > 0
        assert int(wh.db.scalar("SELECT count(*) FROM documents")) == 1
        assert int(wh.db.scalar("SELECT count(*) FROM agencies")) == 1

