"""A curious researcher against `gongkai query` (issue 13): crafted SQL on the real engines, as the CLI runs it.

Each attack is tried as the CLI runs it (the same command a researcher types), on a real DuckDB file and on a
real PostgreSQL server: with the read-only role researchers are meant to use, and with the superuser's URL
(refused outright, or, with --allow-writable-role, still held by the parser and the READ ONLY transaction).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gongkai.cli import main

ROOT = Path(__file__).parent.parent
PASSWD_LINE = "root:"  # what /etc/passwd would print


def admin_of(reader_url: str) -> str:
    return reader_url.replace("://gongkai_reader@", "://postgres@", 1)


def query(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["query", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def server_queries(admin_url: str, needle: str) -> list[str]:
    """What `gongkai query` sessions are still running on the server (DECLARE … then FETCH: the text shows the
    FETCH, so they are found by their application name)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE state = 'active' AND application_name = 'gongkai query' "
            "AND (query LIKE %s OR query LIKE 'FETCH%%')",
            [f"%{needle}%"],
        ).fetchall()
    return [r[0] for r in rows]


def sessions_of(admin_url: str) -> list[tuple[Any, ...]]:
    """Every client session on the server (for a failure's message)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SELECT pid, usename, application_name, state, backend_start, left(query, 80) "
                            "FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchall()


def server_now(admin_url: str) -> Any:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]


def started_query(proc: subprocess.Popen[bytes], admin_url: str, since: Any, timeout: float = 120) -> None:
    """Wait until the command's query runs on the server: a `gongkai query` session that connected after `since`
    (not one a test before left) running its cursor's FETCH (not yet its DECLARE, which only plans it: a client gone
    then is seen by the server as it answers). A command that exits first fails at once with what it said; one that
    never gets there fails after `timeout` s (generous: a loaded CI machine starts Python slowly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            if conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND application_name = 'gongkai query' "
                "AND backend_start >= %s AND query LIKE 'FETCH%%'", [since],
            ).fetchone():
                return
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: the stack of each of its threads, on stderr
    out, err = proc.communicate(timeout=30)
    pytest.fail(f"the query never started: exit {proc.returncode}, stdout {out[-2000:]!r}, "
                f"stderr {err.decode(errors='replace')[-6000:]}, sessions {sessions_of(admin_url)}")


def ended(proc: subprocess.Popen[bytes], timeout: float, admin_url: str, what: str) -> tuple[bytes, bytes]:
    """The command's output once it exits within `timeout` s; else a failure naming `what`, with its output, the
    stack of each of its threads (PYTHONFAULTHANDLER: SIGABRT dumps them) and the server's sessions."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"{what}: exit {proc.returncode}, stdout {out[-2000:]!r}, stderr {err.decode(errors='replace')[-6000:]}, "
                    f"sessions {sessions_of(admin_url)}")


def none_running(admin_url: str, needle: str, within: float = 10) -> bool:
    """True once no `gongkai query` session runs a query (a query left running goes on until its --timeout, minutes
    here: waiting a few seconds for its session's state to change cannot hide one)."""
    deadline = time.monotonic() + within
    while server_queries(admin_url, needle):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def query_command(*args: str) -> subprocess.Popen[bytes]:
    """`gongkai query ARGS` as a researcher starts it from a terminal."""
    from ctrl_c import as_from_a_terminal

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen([sys.executable, "-m", "gongkai.cli", "query", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, preexec_fn=as_from_a_terminal)  # noqa: PLW1509


# --- PostgreSQL: server functions with effects outside the query ----------------------------------------------

PG_ATTACKS = [
    ("pg_read_file", "SELECT U&\"pg\\005fread\\005ffile\"('/etc/passwd')"),
    ("pg_read_file", "SELECT pg_catalog.U&\"pg\\005fread\\005ffile\"('/etc/passwd', 0, 100000)"),
    ("pg_ls_dir", "SELECT * FROM U&\"pg\\005fls\\005fdir\"('.')"),
    ("lo_import", "SELECT U&\"lo\\005fimport\"('/etc/passwd')"),
    ("pg_terminate_backend", "SELECT U&\"pg\\005fterminate\\005fbackend\"(pid) FROM pg_stat_activity WHERE datname = 'none'"),
    ("pg_create_physical_replication_slot", "SELECT pg_create_physical_replication_slot('gongkai_attack_slot', true)"),
    ("pg_sleep_for", "SELECT pg_sleep_for('30 seconds')"),
    ("pg_logical_emit_message", "SELECT pg_logical_emit_message(false, 'gongkai', 'hello')"),
    ("pg_stat_reset", "SELECT pg_stat_reset()"),
    ("pg_switch_wal", "SELECT pg_switch_wal()"),
    ("set_config", "SELECT set_config('default_transaction_read_only', 'off', false)"),
    ("dblink", "SELECT * FROM dblink('host=127.0.0.1', 'DELETE FROM cells') AS t(x int)"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("function", "sql"), PG_ATTACKS, ids=[f"{f}-{i}" for i, (f, _s) in enumerate(PG_ATTACKS)])
@pytest.mark.parametrize("who", ["reader", "superuser"])
def test_server_functions_are_refused_however_they_are_spelt(
    pg_corpus: str, who: str, function: str, sql: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = admin_of(pg_corpus)
    url, extra = (pg_corpus, []) if who == "reader" else (admin, ["--allow-writable-role"])
    started = time.monotonic()
    code, out, err = query(capsys, "--db", url, *extra, sql)
    assert (code, out) == (2, "") and f"{function}() is not allowed" in err and "refused" in err, err
    assert time.monotonic() - started < 10  # pg_sleep_for never ran
    with psycopg.connect(admin, autocommit=True) as conn:  # nothing persisted past the rollback
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)


@pytest.mark.postgres
def test_a_superuser_or_writable_role_is_refused_and_a_reader_is_not(pg_corpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    admin = admin_of(pg_corpus)
    code, out, err = query(capsys, "--db", admin, "SELECT count(*) FROM cells")
    assert (code, out) == (2, "") and "role 'postgres' is not read-only" in err and "superuser" in err
    assert "--reader-role-sql" in err and "--allow-writable-role" in err
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS gongkai_writer")
        conn.execute("CREATE ROLE gongkai_writer LOGIN")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO gongkai_writer")
        conn.execute("GRANT INSERT ON cells TO gongkai_writer")
        conn.execute("DROP ROLE IF EXISTS gongkai_file_reader")
        conn.execute("CREATE ROLE gongkai_file_reader LOGIN IN ROLE pg_read_server_files")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO gongkai_file_reader")
    try:
        writer = admin.replace("://postgres@", "://gongkai_writer@")
        code, out, err = query(capsys, "--db", writer, "SELECT count(*) FROM cells")
        assert code == 2 and "can write or owns table public.cells" in err
        file_reader = admin.replace("://postgres@", "://gongkai_file_reader@")
        code, out, err = query(capsys, "--db", file_reader, "SELECT count(*) FROM cells")
        assert code == 2 and "member of pg_read_server_files" in err
        code, out, err = query(capsys, "--db", writer, "--allow-writable-role", "--format", "csv", "SELECT count(*) AS n FROM cells")
        assert code == 0 and int(out.splitlines()[1]) > 700  # told explicitly: it runs, still READ ONLY
        code, out, err = query(capsys, "--db", pg_corpus, "--format", "csv", "SELECT count(*) AS n FROM cells")
        assert code == 0 and int(out.splitlines()[1]) > 700
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for role in ("gongkai_writer", "gongkai_file_reader"):
                conn.execute(f"DROP OWNED BY {role}")  # type: ignore[arg-type]
                conn.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]


@pytest.mark.postgres
def test_reader_role_sql_makes_a_role_the_check_accepts(pg_corpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = query(capsys, "--db", admin_of(pg_corpus), "--reader-role-sql", "researcher")
    assert code == 0
    assert "CREATE ROLE researcher LOGIN NOSUPERUSER" in out and "GRANT SELECT ON ALL TABLES IN SCHEMA public TO researcher" in out
    assert "ALTER DEFAULT PRIVILEGES FOR ROLE postgres" in out
    # the fixture's role (pg_corpus' URL) was made by running these statements: it passes the check (above)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    ["SELECT 1; DELETE FROM cells", "SELECT * INTO stolen FROM cells", "SELECT * FROM cells FOR UPDATE",
     "WITH gone AS (DELETE FROM cells RETURNING *) SELECT count(*) FROM gone", "COPY cells TO STDOUT",
     "EXPLAIN ANALYZE SELECT 1", "SELECT 1 FROM cells WHERE '%s' = '%s'; SELECT pg_sleep(9)"],
)
def test_statements_that_are_not_one_plain_select_are_refused_on_postgres(
    pg_corpus: str, sql: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = query(capsys, "--db", admin_of(pg_corpus), "--allow-writable-role", sql)
    assert (code, out) == (2, "") and "refused" in err
    with psycopg.connect(admin_of(pg_corpus), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('stolen')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM cells").fetchone()[0] > 700


# --- limits: time, rows, bytes, memory; cancelled on the server ------------------------------------------------

@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("duck_corpus" if request.param == "duckdb" else "pg_corpus"))


def series(url: str, n: str) -> str:
    # PostgreSQL materialises a set-returning function in FROM before the first row; in the select list it streams
    return f"range({n})" if url.startswith("duckdb") else f"(SELECT generate_series(1, {n}) AS n) AS s"


def test_an_endless_query_is_stopped_at_the_time_limit(engine_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = f"SELECT count(*) FROM {series(engine_url, '100000000000000')}"
    started = time.monotonic()
    code, out, err = query(capsys, "--db", engine_url, "--timeout", "1", sql)
    assert time.monotonic() - started < 8
    assert (code, out) == (1, "") and "stopped after 1 s (the time limit, --timeout)" in err
    if engine_url.startswith("postgres"):
        assert not server_queries(admin_of(engine_url), "100000000000000")  # cancelled, not left running


def test_an_endless_result_is_cut_at_the_row_limit_and_streamed(engine_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = f"SELECT * FROM {series(engine_url, '100000000000000')}"
    started = time.monotonic()
    code, out, err = query(capsys, "--db", engine_url, "--max-rows", "1000", "--format", "csv", sql)
    assert time.monotonic() - started < 8
    assert code == 3 and len(out.splitlines()) == 1001 and "stopped after 1,000 rows" in err and "incomplete" in err
    if engine_url.startswith("postgres"):
        assert not server_queries(admin_of(engine_url), "100000000000000")


def test_a_huge_value_is_cut_at_the_byte_limit(engine_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = f"SELECT repeat('x', 1000) AS x FROM {series(engine_url, '1000000')}"
    code, out, err = query(capsys, "--db", engine_url, "--max-bytes", "50000", "--format", "csv", sql)
    assert code == 3 and len(out.splitlines()) == 1 + 50 and "50,000 bytes (--max-bytes)" in err


def _peak_rss_of(command: list[str], limit_mb: int, timeout: float) -> tuple[subprocess.CompletedProcess[str], int, bool]:
    """Run `command`; kill it if its resident memory passes `limit_mb` (so an old, unbounded version cannot take
    the machine). Returns the process, its peak RSS in MB and whether it was killed for memory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, killed = 0, False
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/status", encoding="ascii") as fh:
                rss = next(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            rss = 0
        peak = max(peak, rss)
        if rss > limit_mb:
            proc.kill()
            killed = True
            break
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(command, proc.returncode, out, err), peak, killed


def test_repeat_3e9_is_refused_by_the_memory_cap_not_by_the_machine(engine_url: str) -> None:
    # DuckDB builds the 3 GB string outside its memory_limit; PostgreSQL sends 300 MB values one after another
    sql = ("SELECT repeat('x', 3000000000)" if engine_url.startswith("duckdb")
           else "SELECT repeat('x', 300000000) FROM generate_series(1, 20)")
    command = [sys.executable, "-m", "gongkai.cli", "query", "--db", engine_url, "--max-memory", "1024", "--format", "csv", sql]
    done, peak, killed = _peak_rss_of(command, limit_mb=2500, timeout=120)
    assert not killed, f"gongkai query grew past 2.5 GB ({peak} MB)"
    assert done.returncode in (1, 3) and len(done.stdout) < 2**20, done.stderr[-500:]
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "memory" in done.stderr.lower() or "bytes (--max-bytes)" in done.stderr


@pytest.mark.postgres
def test_a_closed_pipe_cancels_the_query_on_the_server(pg_corpus: str) -> None:
    sql = "SELECT n, md5(n::text) FROM (SELECT generate_series(1, 100000000000000) AS n) AS s WHERE n % 3 = 0"
    admin = admin_of(pg_corpus)
    proc = query_command("--db", pg_corpus, "--format", "csv", "--max-rows", "100000000", sql)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    if not first.startswith(b"n,md5"):  # it ended without a row, or wrote something else: say what it said
        proc.kill()
        pytest.fail(f"no header but {first!r}: exit {proc.wait()}, stderr {proc.stderr.read()[-2000:]!r}")
    proc.stdout.close()  # like `| head -1`
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: its threads' stacks on stderr
        proc.wait(timeout=30)
    err = proc.stderr.read()
    assert proc.returncode == 0 and b"Traceback" not in err, (proc.returncode, err[-6000:], sessions_of(admin))
    assert none_running(admin, "100000000000000"), sessions_of(admin)


@pytest.mark.postgres
def test_ctrl_c_cancels_the_query_on_the_server(pg_corpus: str) -> None:
    # a query that never returns a row and writes nothing: the set-returning function in the select list streams (in
    # FROM it was materialised, writing some 150 MB of temporary files a second until it was cancelled)
    sql = "SELECT count(*) FROM (SELECT generate_series(1, 100000000000000) AS n) AS s"
    admin = admin_of(pg_corpus)
    since = server_now(admin)
    proc = query_command("--db", pg_corpus, "--timeout", "600", sql)
    started_query(proc, admin, since)
    proc.send_signal(signal.SIGINT)
    _out, err = ended(proc, 60, admin, "no exit within 60 s of Ctrl-C")
    assert proc.returncode == 130, err
    assert err.decode().strip() == "gongkai query: interrupted; the query was cancelled and nothing was changed"
    assert none_running(admin, "100000000000000"), sessions_of(admin)  # cancelled, not left running until --timeout


@pytest.mark.postgres
def test_a_killed_command_leaves_no_query_running_on_the_server(pg_corpus: str) -> None:
    """kill -9 (or a Ctrl-C whose cancel request did not get through in time): the server notices its client is gone
    and ends the query, instead of running it until --timeout (PostgreSQL 14+: client_connection_check_interval)."""
    import psycopg

    with psycopg.connect(admin_of(pg_corpus)) as conn:
        if conn.info.server_version < 140000:
            pytest.skip("PostgreSQL before 14 cannot check that a client is still there")
    sql = "SELECT count(*) FROM (SELECT generate_series(1, 100000000000000) AS n) AS s"
    admin = admin_of(pg_corpus)
    since = server_now(admin)
    proc = query_command("--db", pg_corpus, "--timeout", "600", sql)
    started_query(proc, admin, since)
    proc.kill()
    proc.communicate(timeout=30)
    assert none_running(admin, "100000000000000"), sessions_of(admin)


@pytest.mark.postgres
def test_a_server_that_refuses_the_client_check_still_answers_with_its_other_limits(
    pg_corpus: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """client_connection_check_interval is refused on some servers ("must be set to 0 on this platform": Windows, 14 off
    Linux; managed services that fix it): gongkai query answers there as before, its time limit still set. (Refused
    here by an out-of-range value: a real refusal by a real server.)"""
    from gongkai.warehouse import query as query_module

    monkeypatch.setattr(query_module, "CLIENT_CHECK", "SET LOCAL client_connection_check_interval = -5")
    code, out, err = query(capsys, "--db", pg_corpus, "--format", "csv", "SELECT 40 + 2 AS answer")
    assert (code, out.split()) == (0, ["answer", "42"]), err
    started = time.monotonic()
    code, out, err = query(capsys, "--db", pg_corpus, "--timeout", "1",
                           f"SELECT count(*) FROM {series(pg_corpus, '100000000000000')}")
    assert time.monotonic() - started < 8
    assert (code, out) == (1, "") and "stopped after 1 s (the time limit, --timeout)" in err


# --- DuckDB: files, URLs and settings ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "function read_csv() is not allowed"),
        ("SELECT * FROM read_text('/etc/passwd')", "function read_text() is not allowed"),
        ("SELECT content FROM read_blob('/etc/passwd')", "function read_blob() is not allowed"),
        ("SELECT * FROM '/etc/passwd'", "is a file or URL"),
        ("SELECT * FROM glob('/etc/*')", "function glob() is not allowed"),
        ("SELECT current_setting('enable_external_access')", "function current_setting() is not allowed"),
        ("SELECT * FROM duckdb_settings()", "function duckdb_settings() is not allowed"),
        ("SELECT * INTO stolen FROM cells", "SELECT INTO is not allowed"),
        ("SELECT 1; SELECT 2", "only one statement"),
    ],
)
def test_duckdb_files_urls_and_settings_are_refused(duck_corpus: str, sql: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = query(capsys, "--db", duck_corpus, sql)
    assert (code, out) == (2, "") and says in err and PASSWD_LINE not in err


def test_duckdb_connection_cannot_read_files_even_past_the_parser(duck_corpus: str) -> None:
    from gongkai.warehouse.query import open_read_only

    with open_read_only(duck_corpus) as reader:
        for sql in ("SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'",
                    "SET memory_limit = '100GB'", "SET threads = 64"):
            with pytest.raises(Exception, match="(?i)permission|external access|locked|configuration|does not exist"):  # noqa: B017
                reader.connection.execute(sql).fetchall()
        settings = dict(reader.connection.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', 'memory_limit', 'enable_external_access')"
        ).fetchall())
    assert settings["threads"] == "2" and settings["enable_external_access"] == "false"
    assert settings["memory_limit"].startswith(("1.8 GiB", "1.9 GiB", "2.0 GiB", "1862"))


def test_the_documented_queries_run_as_the_reader(demo_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every `gongkai query` of docs/research.md passes the parser and the allow-list, through the CLI."""
    from research_fixtures import research_examples

    for heading, sql, _output in research_examples():
        code, out, err = query(capsys, "--db", demo_url, sql)
        assert code == 0 and out.strip(), f"{heading}: {err}"


def test_watchdog_threads_do_not_pile_up(duck_corpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = threading.active_count()
    for _ in range(5):
        assert query(capsys, "--db", duck_corpus, "SELECT 1")[0] == 0
    assert threading.active_count() <= before + 1


@pytest.mark.postgres
def test_strings_are_read_by_the_server_as_the_parser_read_them(postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A server whose default is standard_conforming_strings = off reads a backslash in '…' as an escape, so it
    could see as code what the check read as a string: the query sets it back on for its transaction."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {postgres_url.rsplit('/', 1)[1]} SET standard_conforming_strings = off")  # type: ignore[arg-type]
    code, out, err = query(capsys, "--db", postgres_url, "--allow-writable-role", "--format", "csv",
                           "SELECT '\\' AS backslash, 'it''s' AS quote")
    assert (code, out.splitlines()) == (0, ["backslash,quote", "\\,it's"]), err


def test_a_reader_goes_on_after_a_query_was_cut_short_or_stopped(engine_url: str) -> None:
    from gongkai.warehouse.query import QueryLimits, QueryStopped, open_read_only

    with open_read_only(engine_url, QueryLimits(max_rows=5, timeout_s=1)) as reader:
        cut = reader.run(f"SELECT * FROM {series(engine_url, '100000000000000')}")
        assert len(cut.rows) == 5 and "row limit" in cut.stopped
        with pytest.raises(QueryStopped, match="time limit"):
            reader.run(f"SELECT count(*) FROM {series(engine_url, '100000000000000')}")
        whole = reader.run("SELECT count(*) FROM cells")
        assert whole.rows[0][0] > 700 and whole.stopped == ""
