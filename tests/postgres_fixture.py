"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl as the `postgres` OS user, on loopback.

Fixtures: `postgres_server` (session: the server's admin URL) and `postgres_url` (per test: a fresh,
empty database on it). Without server binaries the tests skip — unless GONGKAI_REQUIRE_POSTGRES=1
(as .ci/run sets), when they fail, so CI cannot pass without having run them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["postgres_server", "postgres_url"]

OS_USER = "postgres"


def _unavailable(reason: str) -> None:
    if os.environ.get("GONGKAI_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL required (GONGKAI_REQUIRE_POSTGRES=1) but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def _bin_dir() -> Path | None:
    if os.environ.get("GONGKAI_PG_BIN"):  # a chosen server version's bin folder
        return Path(os.environ["GONGKAI_PG_BIN"])
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server binaries as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if runuser:
        return [runuser, "-u", OS_USER, "--", *args]
    return ["su", OS_USER, "-s", "/bin/sh", "-c", " ".join(shlex.quote(a) for a in args)]


class PostgresUnavailable(RuntimeError):
    pass


@contextmanager
def throwaway_postgres(durable: bool = False) -> Iterator[str]:
    """Start a cluster in a temp folder, yield its admin URL, stop and delete it (also used by benchmarks/).

    Tests run it without fsync (faster, nothing to keep); `durable` keeps PostgreSQL's defaults, for timing."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("no pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(OS_USER)
        except KeyError:
            raise PostgresUnavailable(f"running as root and there is no {OS_USER!r} OS user to run the server as") from None
    root = Path(tempfile.mkdtemp(prefix="gongkai-pg-"))
    data = root / "data"
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    try:
        for args in (
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "start",
             "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {root}" + ("" if durable else " -c fsync=off -c full_page_writes=off")],
        ):
            subprocess.run(_as_server_user(args), check=True, capture_output=True, text=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = (getattr(exc, "stderr", "") or "")[-2000:]
        log = (root / "server.log").read_text(errors="replace")[-2000:] if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"{exc} {detail} {log}") from exc
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    try:
        server = throwaway_postgres()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
        return
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database per test, dropped afterwards."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def read_only_url(admin_url: str, role: str = "gongkai_reader") -> str:
    """The URL of `role`, created by the statements `gongkai query --reader-role-sql` prints (run as the admin),
    able to read this database and nothing else: as researchers are meant to connect."""
    import psycopg

    from gongkai.warehouse.reader_role import reader_role_sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        for statement in reader_role_sql(conn, role).split(";\n"):
            code = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip().rstrip(";")
            if code and not (exists and code.startswith("CREATE ROLE")):  # roles are cluster-wide
                conn.execute(code)  # type: ignore[arg-type]
    return admin_url.replace("://postgres@", f"://{role}@", 1)
