"""The shard fence inside a load's transaction (warehouse/store.py), on real PostgreSQL and DuckDB, without Prefect.

A sharded run's parent gives a silent shard up by writing its flow run into its own run's `lost_shards`
(flows/shards.py, ShardWatch.give_up: the parent's `runs` row FOR UPDATE) and then counts what the shard loaded. Each of
the shard's loads reads that row FOR KEY SHARE last in its transaction: it commits before the fence, or sees the fence
and rolls back, so nothing the shard loads lands after the parent counted it. The Prefect-level test (a SIGSTOPped
shard) is in tests/test_shards.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_warehouse import doc_for, gold_result

from gongkai.flows.shards import ShardRun, ShardWatch, shard_session_name
from gongkai.warehouse.runs import start_run
from gongkai.warehouse.store import ShardFenced, Warehouse, open_warehouse

ROOT = Path(__file__).resolve().parents[1]
FLOW_RUN = "7d3c9a52-0000-4000-8000-00000000f00d"
REPORTS = ["hongze-2023.pdf", "zibo-stats-2023.txt", "shanghai-szfbgt-2019.html"]


def _runs(warehouse: Warehouse) -> tuple[int, int]:
    """A parent run and its shard's run, as flows/shards.py records them."""
    parent = start_run(warehouse, "crawl-nightly", {"shards": 1, "token": "t"})
    shard = start_run(warehouse, "crawl-nightly-shard", {"shard": "1/1", "parent_run": parent, "flow_run": FLOW_RUN})
    return parent, shard


def _load(warehouse: Warehouse, name: str, run_id: int) -> Any:
    return warehouse.load(doc_for(name), gold_result(name), "test-1", run_id)


def _reports(warehouse: Warehouse) -> int:
    return int(warehouse.db.scalar("SELECT count(*) FROM reports"))


def _fenced_warehouse(url: str) -> Warehouse:
    warehouse = open_warehouse(url)
    warehouse.stop_when_fenced = False  # raise ShardFenced here, where the shard's process would stop itself
    return warehouse


@pytest.mark.postgres
def test_a_load_after_the_fence_rolls_back_and_a_plain_run_is_not_checked(postgres_url: str) -> None:
    with _fenced_warehouse(postgres_url) as warehouse:
        parent, shard = _runs(warehouse)
        assert _load(warehouse, REPORTS[0], shard).outcome == "new"  # not fenced: loads
        ShardWatch(warehouse.db, parent).give_up(ShardRun(1, ["a1"], FLOW_RUN))
        with pytest.raises(ShardFenced, match=f"run {parent} gave shard {FLOW_RUN} up"):
            _load(warehouse, REPORTS[1], shard)
        assert _reports(warehouse) == 1
        assert warehouse.db.scalar("SELECT count(*) FROM documents WHERE original_name = ?", [REPORTS[1]]) == 0
        # a plain nightly (no parent) loads as before, the fence of another run's shard notwithstanding
        plain = start_run(warehouse, "crawl-nightly", {"portals": []})
        assert _load(warehouse, REPORTS[1], plain).outcome == "new"
        assert _reports(warehouse) == 2


@pytest.mark.postgres
def test_a_load_waiting_on_the_fence_sees_it_and_the_fence_waits_for_a_checked_load(postgres_url: str) -> None:
    with _fenced_warehouse(postgres_url) as warehouse, open_warehouse(postgres_url) as parent_side:
        parent, shard = _runs(warehouse)
        # 1. a load whose check has passed holds the parent's row until it commits: the fence waits, then counts it
        fenced = threading.Event()
        with warehouse.db.transaction():
            warehouse._refuse_if_fenced(parent, FLOW_RUN)
            thread = threading.Thread(target=lambda: (ShardWatch(parent_side.db, parent).give_up(ShardRun(1, [], FLOW_RUN)),
                                                      fenced.set()))
            thread.start()
            assert not fenced.wait(0.7), "the fence did not wait for a load past its check"
        thread.join(10)
        assert fenced.is_set()

        # 2. a load reaching its check while the fence is being written waits for it, then rolls back
        parent_side.db.execute("UPDATE runs SET params = ? WHERE run_id = ?", [json.dumps({"token": "t"}), parent])  # fence undone
        raised: list[BaseException] = []
        loading = threading.Thread(target=lambda: _catch(raised, lambda: _load(warehouse, REPORTS[2], shard)))
        with parent_side.db.transaction():
            params = json.loads(parent_side.db.scalar("SELECT params FROM runs WHERE run_id = ? FOR UPDATE", [parent]))
            loading.start()
            time.sleep(0.7)
            assert loading.is_alive(), "the load did not wait for the fence being written"
            parent_side.db.execute("UPDATE runs SET params = ? WHERE run_id = ?",
                                   [json.dumps(params | {"lost_shards": [FLOW_RUN]}), parent])
        loading.join(10)
        assert [type(e) for e in raised] == [ShardFenced]
        assert _reports(warehouse) == 0


def _catch(into: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:
        into.append(exc)


@pytest.mark.postgres
def test_a_shard_stalled_holding_the_row_is_cut_off_so_the_fence_is_written(postgres_url: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard stopped between its check and its commit holds the parent's row: the fence ends its sessions (named
    by PGAPPNAME) after FENCE_LOCK_WAIT_S instead of waiting on a process that may never run again."""
    with open_warehouse(postgres_url) as parent_side:
        parent, shard = _runs(parent_side)
    monkeypatch.setenv("PGAPPNAME", shard_session_name(FLOW_RUN))
    stalled = _fenced_warehouse(postgres_url)
    monkeypatch.delenv("PGAPPNAME")
    stalled.db.execute("BEGIN")
    stalled._refuse_if_fenced(parent, FLOW_RUN)  # ... and never commits
    with open_warehouse(postgres_url) as parent_side:
        started = time.monotonic()
        ShardWatch(parent_side.db, parent).give_up(ShardRun(1, [], FLOW_RUN))
        assert time.monotonic() - started < 10
        params = json.loads(parent_side.db.scalar("SELECT params FROM runs WHERE run_id = ?", [parent]))
        assert params["lost_shards"] == [FLOW_RUN]
        assert parent_side.db.scalar("SELECT status FROM runs WHERE run_id = ?", [shard]) == "crashed"
    with pytest.raises(Exception, match="terminat"):
        stalled.db.execute("COMMIT")


@pytest.mark.postgres
def test_a_fenced_shard_process_stops_with_one_line_and_loads_nothing(postgres_url: str) -> None:
    with open_warehouse(postgres_url) as warehouse:
        parent, shard = _runs(warehouse)
        ShardWatch(warehouse.db, parent).give_up(ShardRun(1, [], FLOW_RUN))
    script = ("import sys; sys.path.insert(0, 'tests'); from test_warehouse import doc_for, gold_result; "
              "from gongkai.warehouse.store import open_warehouse; n = sys.argv[1]; "
              "open_warehouse(sys.argv[2]).load(doc_for(n), gold_result(n), 'test-1', int(sys.argv[3])); print('loaded')")
    done = subprocess.run([sys.executable, "-c", script, REPORTS[0], postgres_url, str(shard)], capture_output=True, text=True,
                          cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == -9, done.stderr[-2000:]
    assert "loaded" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("gongkai:")]
    assert lines == [f"gongkai: run {parent} gave shard {FLOW_RUN} up: load rolled back, stopping this shard now"], done.stderr
    with open_warehouse(postgres_url) as warehouse:
        assert _reports(warehouse) == 0


def test_duckdb_keeps_its_path_a_shard_run_checks_without_row_locks(tmp_path: Path) -> None:
    with _fenced_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        parent, shard = _runs(warehouse)
        assert _load(warehouse, REPORTS[0], shard).outcome == "new"
        params = json.loads(warehouse.db.scalar("SELECT params FROM runs WHERE run_id = ?", [parent]))
        warehouse.db.execute("UPDATE runs SET params = ? WHERE run_id = ?", [json.dumps(params | {"lost_shards": [FLOW_RUN]}), parent])
        with pytest.raises(ShardFenced):
            _load(warehouse, REPORTS[1], shard)
        assert _reports(warehouse) == 1


@pytest.mark.postgres
def test_the_fence_ends_only_its_own_roles_sessions_of_the_shards_name(postgres_url: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Any client can call its session after a shard (application_name is the client's to choose): the fence ends
    only the sessions of the warehouse's role so named, never another role's (the cluster's superuser ended them)."""
    import psycopg
    from postgres_fixture import read_only_url

    with open_warehouse(postgres_url) as parent_side:
        parent, _shard = _runs(parent_side)
    monkeypatch.setenv("PGAPPNAME", shard_session_name(FLOW_RUN))
    stalled = _fenced_warehouse(postgres_url)
    with psycopg.connect(read_only_url(postgres_url), autocommit=True) as bystander:
        monkeypatch.delenv("PGAPPNAME")
        stalled.db.execute("BEGIN")
        stalled._refuse_if_fenced(parent, FLOW_RUN)
        with open_warehouse(postgres_url) as parent_side:
            ShardWatch(parent_side.db, parent).give_up(ShardRun(1, [], FLOW_RUN))
        assert bystander.execute("SELECT current_setting('application_name')").fetchone() == (
            shard_session_name(FLOW_RUN),)  # still connected
    with pytest.raises(Exception, match="terminat"):
        stalled.db.execute("COMMIT")
