"""`gongkai export --format sqlite`: gongkai.sqlite and metadata.json, served by a real Datasette on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from gongkai.cli import main

DATASETTE = Path(sys.executable).parent / "datasette"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sqlite_export(demo_crawls: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sqlite-export")
    assert main(["export", "--db", demo_crawls["duckdb"], "--format", "sqlite", "--out", str(out)]) == 0
    return out


def test_sqlite_holds_typed_rows_and_keys(sqlite_export: Path, demo_crawls: dict[str, str]) -> None:
    import duckdb

    conn = sqlite3.connect(sqlite_export / "gongkai.sqlite")
    try:
        with duckdb.connect(demo_crawls["duckdb"].removeprefix("duckdb:///"), read_only=True) as duck:
            for table in ("cells_long", "report_cells_wide", "coverage", "cell_dictionary"):
                want = duck.execute(f"SELECT count(*) FROM {table}").fetchone()
                assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == want, table
        # a count is an INTEGER, money a REAL; the source of every cell is its URL
        kinds = dict(conn.execute("SELECT typeof(requests__new__total), typeof(proactive__fees__amount_wan_yuan) "
                                  "FROM report_cells_wide WHERE proactive__fees__amount_wan_yuan > 100").fetchall())
        assert kinds == {"integer": "real"}
        assert conn.execute("SELECT count(*) FROM cells_long WHERE document_url NOT LIKE 'http%'").fetchone() == (0,)
        keys = conn.execute("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('cells_long')").fetchall()
        assert ("report_index", "report_ref", "report_ref") in keys and ("cell_dictionary", "address", "address") in keys
    finally:
        conn.close()


def test_metadata_units_are_known_to_datasette(sqlite_export: Path) -> None:
    from datasette.views.base import ureg

    metadata = json.loads((sqlite_export / "metadata.json").read_text(encoding="utf-8"))
    tables = metadata["databases"]["gongkai"]["tables"]
    units = {u for t in tables.values() for u in t.get("units", {}).values()}
    assert units >= {"point"}
    for unit in units:
        ureg(unit)  # an unknown unit would break Datasette's table page
    assert "万元" in tables["report_cells_wide"]["columns"]["proactive__fees__amount_wan_yuan"]
    assert tables["agencies"]["label_column"] == "name" and tables["cells_long"]["title"]


@pytest.mark.skipif(not DATASETTE.exists(), reason="datasette not installed (dev extra)")
def test_datasette_serves_the_export(sqlite_export: Path) -> None:
    port = _free_port()
    home = sqlite_export / "home"
    proc = subprocess.Popen(
        [str(DATASETTE), "serve", str(sqlite_export / "gongkai.sqlite"), "-m", str(sqlite_export / "metadata.json"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/-/versions.json", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "datasette did not start"
            time.sleep(0.3)
        page = requests.get(f"{base}/gongkai/report_cells_wide", timeout=30)
        assert page.ok and "One row per agency and year" in page.text
        assert "本年新收政府信息公开申请数量" in page.text  # column descriptions from the dictionary
        rows = requests.get(f"{base}/gongkai/cells_long.json", params={"_shape": "objects", "_labels": "on", "_size": "5",
                                                                     "address": "requests.new.natural_person"}, timeout=30).json()["rows"]
        assert rows and all(r["document_url"].startswith("http") for r in rows)
        assert rows[0]["address"]["label"] == "本年新收政府信息公开申请数量"  # the foreign key, labelled
        html = requests.get(f"{base}/gongkai/cells_long", params={"address": "requests.new.natural_person"}, timeout=30).text
        assert f'<a href="{rows[0]["document_url"]}">' in html  # each row links to its source document
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)
