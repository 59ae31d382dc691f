"""warehouse/db.py on both engines: parameters travel as parameters, and nested transactions keep the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gongkai.warehouse.db import Database, TransactionRolledBack, connect, postgres_placeholders


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else f"duckdb:///{tmp_path / 'db.duckdb'}"
    database = connect(url)
    database.execute("CREATE TABLE agencies (name TEXT, year INTEGER)")
    yield database
    database.close()


def test_literal_percent_and_question_marks_next_to_parameters(db: Database) -> None:
    db.execute("INSERT INTO agencies (name, year) VALUES (?, ?)", ["洪泽区人民政府办公室?", 2023])
    db.execute("INSERT INTO agencies (name, year) VALUES (?, ?)", ["100%局", 2023])
    db.execute("INSERT INTO agencies (name, year) VALUES (?, ?)", ["淄博市统计局", 2022])
    assert db.query("SELECT name FROM agencies WHERE name LIKE '%局' AND year = ? ORDER BY name", [2023]) == [("100%局",)]
    assert db.scalar("SELECT count(*) FROM agencies WHERE name LIKE '%?' AND year = ?", [2023]) == 1
    # a '?' in a comment, a quoted name or a dollar-quoted string (PostgreSQL) is not a placeholder either
    assert db.scalar('SELECT count(*) AS "how many?" FROM agencies /* which? */ WHERE year = ? -- ?\n', [2022]) == 1
    # the value is a parameter: a quote in it is data, not SQL
    db.execute("INSERT INTO agencies (name, year) VALUES (?, ?)", ["x'); DROP TABLE agencies; --", 1])
    assert db.scalar("SELECT count(*) FROM agencies WHERE name = ?", ["x'); DROP TABLE agencies; --"]) == 1


def test_postgres_placeholders_come_from_postgresqls_lexer() -> None:
    sql = "SELECT '%?' || $$?$$, \"a?\" FROM t WHERE x = ? AND y IN (?, ?) AND E'\\'?' <> ? -- ?"
    assert postgres_placeholders(sql) == (
        "SELECT '%?' || $$?$$, \"a?\" FROM t WHERE x = $1 AND y IN ($2, $3) AND E'\\'?' <> $4 -- ?", 4,
    )
    with pytest.raises(ValueError, match="put spaces around"):
        postgres_placeholders("SELECT 1 WHERE x=?")


def test_placeholder_and_parameter_counts_must_agree_on_postgres(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("DuckDB counts them itself")
    with pytest.raises(ValueError, match="1 placeholders but 2 parameters"):
        db.query("SELECT ?", [1, 2])


def test_a_failed_inner_transaction_rolls_back_the_outer_one_on_both_engines(db: Database) -> None:
    with pytest.raises(TransactionRolledBack), db.transaction():
        db.execute("INSERT INTO agencies (name, year) VALUES ('outer before', 1)")
        try:
            with db.transaction():
                db.execute("INSERT INTO agencies (name, year) VALUES ('inner', 2)")
                raise RuntimeError("the inner step fails")
        except RuntimeError:
            pass  # the caller goes on as if nothing happened
        db.execute("INSERT INTO agencies (name, year) VALUES ('outer after', 3)")
    assert db.query("SELECT name FROM agencies") == []
    with db.transaction():  # the connection is usable again, and nesting that succeeds commits once
        db.execute("INSERT INTO agencies (name, year) VALUES ('a', 1)")
        with db.transaction():
            db.execute("INSERT INTO agencies (name, year) VALUES ('b', 2)")
    assert sorted(db.query("SELECT name FROM agencies")) == [("a",), ("b",)]


def test_an_exception_through_both_levels_rolls_back_everything(db: Database) -> None:
    with pytest.raises(KeyError), db.transaction():
        db.execute("INSERT INTO agencies (name, year) VALUES ('outer', 1)")
        with db.transaction():
            db.execute("INSERT INTO agencies (name, year) VALUES ('inner', 2)")
            raise KeyError("x")
    assert db.query("SELECT name FROM agencies") == []
