"""Failures of the environment (a locked warehouse, a full disk) are one line and exit 1, never a traceback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gongkai.cli import main, operational_error

CORPUS = Path(__file__).parent / "corpus" / "documents"


@pytest.fixture
def locked_duckdb(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A DuckDB file held open for writing by another process, as a running nightly holds it."""
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
         str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    yield path
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


@pytest.mark.parametrize("command", [["ingest", str(CORPUS / "zibo-stats-2023.txt")], ["reprocess", "--all"]])
def test_a_locked_warehouse_is_one_line_before_any_work(
    locked_duckdb: Path, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path / "data"))
    assert main([*command, "--db", f"duckdb:///{locked_duckdb}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"gongkai {command[0]}: IOException: ") and "lock" in err
    assert not (tmp_path / "data" / "archive").exists()  # nothing was started: the next run does it all


def test_environment_errors_are_named_and_bugs_are_not_swallowed(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "w.duckdb"))
    assert operational_error(full) == f"{os.strerror(errno.ENOSPC)} ({tmp_path / 'w.duckdb'})"
    try:  # raised while handling another error, as a flow re-raises: the chain is searched
        try:
            raise full
        except OSError as inner:
            raise RuntimeError("flow run failed") from inner
    except RuntimeError as outer:
        assert operational_error(outer) == operational_error(full)
    assert operational_error(ValueError("a bug")) is None
    assert operational_error(KeyError("x")) is None


def test_kill_9_of_a_command_leaves_no_process_behind(tmp_path: Path) -> None:
    """Prefect's temporary server, the extraction workers and the resource tracker end with a killed command."""
    import signal
    import time

    from gongkai.reaper import descendants

    folder = tmp_path / "in"
    folder.mkdir()
    pdf = (CORPUS / "hongze-2023.pdf").read_bytes()
    for i in range(200):  # distinct files, each a real extraction: the command is still busy when it is killed
        (folder / f"r{i}.pdf").write_bytes(pdf + f"%{i}".encode())
    env = {**os.environ, "GONGKAI_DATA": str(tmp_path / "data"), "GONGKAI_EXTRACT_PROCESSES": "2"}
    command = subprocess.Popen([sys.executable, "-m", "gongkai.cli", "ingest", str(folder)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        below: set[int] = set()
        while time.monotonic() - started < 120:  # until the server, the tracker and two workers run (and the watcher)
            below = descendants(command.pid)
            if len(below) >= 4:
                break
            time.sleep(0.5)
        assert len(below) >= 4, below
        time.sleep(1.5)  # the watcher notes what runs at least once more
        below = descendants(command.pid)
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in below):
            time.sleep(0.5)
        assert not [pid for pid in below if Path(f"/proc/{pid}").exists()], below
    finally:
        command.kill()
