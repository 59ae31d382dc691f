"""`gongkai query` and `gongkai status`: read-only, on both engines; writes refused with the warehouse untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gongkai.cli import main
from gongkai.warehouse.query import QueryRefused, check_read_only, open_read_only

# Warehouses loaded with the corpus and the demo portal (DuckDB, PostgreSQL), and the PostgreSQL fixtures.

COUNTED = ("agencies", "documents", "reports", "cells", "checks", "runs", "extractions")
WRITES = [
    "DELETE FROM cells",
    "delete from cells where 1 = 1;",
    "DROP TABLE cells",
    "DROP VIEW report_cells_wide",
    "UPDATE cells SET value = 0",
    "INSERT INTO agencies (agency_id, name, name_key, created_at) VALUES (99, 'x', 'x', now())",
    "CREATE TABLE stolen AS SELECT * FROM cells",
    "TRUNCATE cells",
    "ALTER TABLE cells ADD COLUMN x INTEGER",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "COPY cells TO '{tmp}/cells.csv'",
    "COPY (SELECT * FROM cells) TO '{tmp}/cells.parquet' (FORMAT parquet)",
    "SELECT 1; DELETE FROM cells",
    "SELECT 1 ; DROP TABLE cells ;",
    "WITH gone AS (DELETE FROM cells RETURNING *) SELECT count(*) FROM gone",
    "SELECT * INTO stolen FROM cells",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA enable_profiling",
    "SET enable_external_access = true",
    "SET default_transaction_read_only = off",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT nextval('run_id_seq')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM query('DELETE FROM cells')",
    "BEGIN",
    "COMMIT; DELETE FROM cells",
    "CALL pragma_version()",
    "",
]


def counts(url: str) -> dict[str, int]:
    with open_read_only(url, allow_writable_role=True) as reader:
        return {t: int(reader.run(f"SELECT count(*) FROM {t}").rows[0][0]) for t in COUNTED}


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def writable_corpus(request: pytest.FixtureRequest, tmp_path: Path, duck_corpus: str, cached_extract: Any) -> str:
    """A corpus warehouse of its own, for tests that try to damage it."""
    if request.param == "duckdb":
        target = tmp_path / "corpus.duckdb"
        shutil.copy(duck_corpus.removeprefix("duckdb://"), target)
        return f"duckdb:///{target}"
    from research_fixtures import load_corpus

    url = str(request.getfixturevalue("postgres_url"))
    load_corpus(url, tmp_path / "archive", cached_extract)
    return url


def test_writes_are_refused_and_the_warehouse_is_untouched(writable_corpus: str, tmp_path: Path) -> None:
    before = counts(writable_corpus)
    assert before["cells"] > 700 and before["reports"] == 9  # with pingtan 2017 (issue 9)
    file_digest = None
    if writable_corpus.startswith("duckdb"):
        file_digest = hashlib.sha256(Path(writable_corpus.removeprefix("duckdb://")).read_bytes()).hexdigest()
    with open_read_only(writable_corpus, allow_writable_role=True) as reader:  # even as the warehouse's owner
        for statement in WRITES:
            with pytest.raises(QueryRefused):
                reader.run(statement.format(tmp=tmp_path))
        assert reader.run("SELECT count(*) FROM cells").rows == [(before["cells"],)]  # the reader still works
    assert counts(writable_corpus) == before
    assert not list(tmp_path.glob("cells.*")) and not (tmp_path / "other.duckdb").exists()
    if file_digest is not None:
        assert hashlib.sha256(Path(writable_corpus.removeprefix("duckdb://")).read_bytes()).hexdigest() == file_digest


@pytest.mark.parametrize(
    "statement",
    [
        'SELECT "pg_terminate_backend"(1)',
        "SELECT pg_catalog.\"pg_read_file\"('/etc/passwd')",
        'SELECT "Read_CSV" (\'/etc/passwd\')',
        # E'' strings escape a quote with a backslash: the call is outside any string
        "SELECT E'\\'', pg_read_file('/etc/passwd'), ''",
    ],
)
def test_side_effect_functions_are_refused_behind_quoted_names_and_escapes(statement: str) -> None:
    with pytest.raises(QueryRefused, match="is not allowed"):
        check_read_only(statement)


def test_quoted_names_and_escape_strings_that_only_read_are_allowed() -> None:
    for statement in ('SELECT "query" FROM t', "SELECT E'it\\'s', 'pg_read_file(1)'"):
        assert check_read_only(statement) == statement
    # A function the allow-list does not name is refused, however harmless its quoted name looks.
    with pytest.raises(QueryRefused, match='function a "b" c\\(\\) is not allowed'):
        check_read_only('SELECT "a ""b"" c"(1)')


def test_the_connection_itself_cannot_write_when_the_check_is_bypassed(writable_corpus: str, tmp_path: Path) -> None:
    before = counts(writable_corpus)
    with open_read_only(writable_corpus) as reader:
        conn = reader.connection
        attempts = ["DELETE FROM cells", "DROP TABLE checks", "SELECT 1; DELETE FROM cells"]
        if reader.dialect == "duckdb":
            attempts += [f"COPY cells TO '{tmp_path}/x.csv'", f"ATTACH '{tmp_path}/y.duckdb' AS y", "SET enable_external_access = true"]
        for statement in attempts:
            with pytest.raises(Exception):  # noqa: B017 - each engine raises its own error class
                conn.execute(statement)
            if reader.dialect == "postgresql":
                conn.rollback()
    assert counts(writable_corpus) == before
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "y.duckdb").exists()


def test_cli_refuses_a_write_with_a_clear_error(duck_corpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = counts(duck_corpus)
    assert main(["query", "--db", duck_corpus, "DELETE FROM cells"]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "read-only" in err and "DELETE" in err and "unchanged" in err
    assert main(["query", "--db", duck_corpus, "SELECT 1; DROP TABLE cells"]) == 2
    assert "one statement" in capsys.readouterr().err
    assert counts(duck_corpus) == before


@pytest.mark.parametrize(
    ("statement", "first_row"),
    [
        ("SELECT ';' AS semicolon, 'DELETE' AS word", (";", "DELETE")),
        ("SELECT 1 -- DROP TABLE cells; \n", (1,)),
        ("/* INSERT */ SELECT 2;", (2,)),
        ("WITH t AS (SELECT 3 AS x) SELECT x FROM t", (3,)),
        ('SELECT "update" FROM (SELECT 4 AS "update") q', (4,)),
        ("SELECT count(*) FROM cells WHERE address LIKE 'requests.%' AND raw <> 'DROP'", None),
        ("VALUES (5)", (5,)),
    ],
)
def test_reading_statements_that_look_like_writes_are_allowed(
    corpus_url: str, statement: str, first_row: tuple[Any, ...] | None
) -> None:
    with open_read_only(corpus_url) as reader:
        result = reader.run(statement)
    if first_row is None:
        assert result.rows[0][0] > 500
    else:
        assert result.rows[0] == first_row


def test_cli_query_formats(corpus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = (
        "SELECT agency, year, requests__new__total AS new_requests, proactive__fees__amount_wan_yuan AS fees "
        "FROM report_cells_wide WHERE year = 2023 ORDER BY agency"
    )
    assert main(["query", "--db", corpus_url, sql, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"agency": "淄博市统计局", "year": 2023, "new_requests": 77, "fees": 0},
        {"agency": "淮安市洪泽区人民政府", "year": 2023, "new_requests": 21, "fees": 7730.28},
    ]
    assert main(["query", "--db", corpus_url, sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "agency,year,new_requests,fees", "淄博市统计局,2023,77,0", "淮安市洪泽区人民政府,2023,21,7730.28",
    ]
    assert main(["query", "--db", corpus_url, sql]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["agency", "year", "new_requests", "fees"]
    assert table[3].split() == ["淮安市洪泽区人民政府", "2023", "21", "7,730.28"] and table[-1] == "(2 rows)"


def test_cli_query_list_shows_tables_and_views_with_descriptions(duck_corpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--db", duck_corpus, "--list", "--format", "json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for view in ("report_cells_wide", "cells_long", "check_results", "check_error_rates", "coverage", "year_over_year", "requests_by_outcome"):
        assert listed[view]["kind"] == "view" and listed[view]["description"]
    assert listed["cells"]["kind"] == "table"
    assert "one column per common-schema cell" in listed["report_cells_wide"]["description"]


def test_cli_query_reports_sql_errors_and_a_missing_warehouse(tmp_path: Path, duck_corpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--db", duck_corpus, "SELECT no_such_column FROM cells"]) == 1
    assert "no_such_column" in capsys.readouterr().err
    assert main(["query", "--db", duck_corpus, "SELECT * FROM cells WHERE"]) == 1  # a syntax error is an error, not a refusal
    err = capsys.readouterr().err
    assert "syntax error" in err.lower() and "refused" not in err
    assert main(["query", "--db", f"duckdb:///{tmp_path / 'none.duckdb'}", "SELECT 1"]) == 1
    assert "no warehouse at" in capsys.readouterr().err
    assert not (tmp_path / "none.duckdb").exists()


def test_status_shows_runs_coverage_and_what_failed(corpus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--db", corpus_url, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    # 2: hongze's two appeals.row_total failures; Shanghai 2019's outcome total over blank row totals is incomplete
    # by the reference's blank-subtotal clause (it counted as a third failure before that clause)
    assert status["reports"] == 7 and status["failing_checks"] == 2
    [run] = status["last runs"]
    # the blank template is not a report (issue 11): 7 new and 2 not reports (it and the letter), no longer 8 and 1
    assert (run["kind"], run["status"], run["n_new"], run["n_not_a_report"]) == ("ingest", "completed", 7, 2)
    by_year = {r["year"]: r for r in status["coverage by year"]}
    assert by_year[2023]["extracted"] == 1 and by_year[2023]["extracted_failing_checks"] == 1
    assert by_year[2013]["not_extractable"] == 1 and by_year[2020]["not_found"] == 6  # every agency: no 2020 report in the corpus
    failed = {(r["agency"], r["year"]): r["reason"] for r in status["not extracted (found, but no cells) and not reports"]}
    assert failed[("平潭综合实验区地方税务局", 2013)] == "pre-2019 report: no national standard tables"
    assert by_year[2011]["extracted"] == 1 and ("平潭县人民政府", 2011) not in failed  # its 统计表 is read
    assert any(reason.startswith("not a report") for reason in failed.values())
    assert main(["status", "--db", corpus_url]) == 0
    out = capsys.readouterr().out
    assert "coverage by year" in out and "pre-2019 report" in out and "last runs" in out


def test_status_shows_runs_that_never_finished_as_interrupted(writable_corpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import timedelta

    from gongkai.warehouse.store import open_warehouse, utcnow

    def add_running_run(started_hours_ago: float) -> None:
        with open_warehouse(writable_corpus) as wh:  # as recorded_run leaves a run killed with -9
            wh.db.execute(
                "INSERT INTO runs (kind, params, status, started_at) VALUES ('nightly', '{}', 'running', ?)",
                [utcnow() - timedelta(hours=started_hours_ago)],
            )

    def statuses() -> list[str]:
        assert main(["status", "--db", writable_corpus, "--format", "json"]) == 0
        return [run["status"] for run in json.loads(capsys.readouterr().out)["last runs"]]

    add_running_run(0.1)
    assert statuses() == ["running", "completed"]  # the newest run, started minutes ago: running
    add_running_run(7)
    assert statuses() == ["interrupted?", "interrupted?", "completed"]  # too old; not the newest


@pytest.mark.parametrize("command", [["query", "--allow-writable-role", "SELECT count(*) FROM report_cells_wide"], ["status"]])
def test_stale_views_are_read_as_they_are_with_a_warning(
    writable_corpus: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from gongkai.warehouse.store import open_warehouse

    with open_warehouse(writable_corpus) as wh:  # a warehouse whose views predate this views.sql
        wh.db.execute("DROP VIEW views_version")
        wh.db.execute("CREATE VIEW views_version AS SELECT 'old' AS digest")
    assert main([command[0], "--db", writable_corpus, *command[1:]]) == 0
    captured = capsys.readouterr()
    assert "another version of gongkai" in captured.err
    if command[0] == "query":
        assert captured.out.splitlines()[-2].split() == ["7"]
    with open_read_only(writable_corpus) as reader:  # the read-only commands left the views alone
        assert reader.views_digest() == "old"
