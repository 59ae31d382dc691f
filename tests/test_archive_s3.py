"""The archive in an S3-compatible store (moto's server on loopback, tests/s3_fixture.py): the local archive's
promises kept over HTTP, and the commands that read the archive working from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DOCUMENTS
from s3_fixture import S3Server

from gongkai.warehouse.archive import FLAT_LAYOUT, ArchiveUnavailable, layout_text, open_archive, sha256_of

ROOT = Path(__file__).resolve().parent.parent
REPORT = "hongze-2023.pdf"


def _bucket_and_prefix(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


def test_put_get_contains_on_s3_in_the_local_layout_and_a_second_put_uploads_nothing(
        s3_server: S3Server, s3_archive_url: str) -> None:
    bucket = s3_server.make_bucket(versioned=True)  # every upload a version of its own: uploads can be counted
    url = f"s3://{bucket}/archive"
    archive = open_archive(url)
    assert archive.location == url
    data = (DOCUMENTS / REPORT).read_bytes()
    sha = archive.put(data)
    assert sha == sha256_of(data) and sha in archive and archive.get(sha) == data
    assert archive.put(data) == sha
    versions = s3_server.client().list_object_versions(Bucket=bucket)["Versions"]
    # the file uploaded once, at ab/<sha256> as in a new local archive, after the layout marker (uploaded once too)
    stored = {f"archive/{sha[:2]}/{sha}": len(data), "archive/ARCHIVE-LAYOUT": len(layout_text(FLAT_LAYOUT))}
    assert sorted((v["Key"], v["Size"]) for v in versions) == sorted(stored.items())
    assert s3_server.objects(url) == stored
    # another worker's archive object (a fresh filesystem, as on another machine) sees the same file
    assert sha in open_archive(url) and open_archive(url).get(sha) == data
    missing = sha256_of(b"never stored")
    assert missing not in archive
    with pytest.raises(FileNotFoundError):
        archive.get(missing)
    for hostile in ("../../etc/passwd", "A" * 64, sha[:63], None):
        assert hostile not in archive
    with pytest.raises(ValueError):
        archive.get("../" + sha[3:])


def test_an_earlier_versions_s3_archive_is_read_and_added_to_in_its_layout_and_never_twice(
        s3_server: S3Server, s3_archive_url: str) -> None:
    """Objects at <prefix>/ab/cd/<sha256> with no ARCHIVE-LAYOUT, as gongkai uploaded them before (put by hand)."""
    bucket = s3_server.make_bucket(versioned=True)
    url = f"s3://{bucket}/archive"
    data = b"an old report"
    sha = sha256_of(data)
    s3_server.client().put_object(Bucket=bucket, Key=f"archive/{sha[:2]}/{sha[2:4]}/{sha}", Body=data)
    archive = open_archive(url)
    assert sha in archive and archive.get(sha) == data and archive.put(data) == sha
    new = archive.put(b"a new report")
    assert s3_server.objects(url) == {f"archive/{sha[:2]}/{sha[2:4]}/{sha}": len(data),
                                      f"archive/{new[:2]}/{new[2:4]}/{new}": len(b"a new report")}
    assert len(s3_server.client().list_object_versions(Bucket=bucket)["Versions"]) == 2  # no second upload


def test_an_object_changed_in_the_store_is_refused_in_one_line(s3_server: S3Server, s3_archive_url: str) -> None:
    archive = open_archive(s3_archive_url)
    sha = archive.put(b"the report's bytes")
    bucket, prefix = _bucket_and_prefix(s3_archive_url)
    s3_server.client().put_object(Bucket=bucket, Key=f"{prefix}/{sha[:2]}/{sha}", Body=b"tampered")
    with pytest.raises(OSError, match="corrupt") as refused:
        archive.get(sha)
    assert "\n" not in str(refused.value)


def test_get_is_bounded_in_size(s3_archive_url: str) -> None:
    from gongkai.warehouse.archive_remote import RemoteArchive

    archive = RemoteArchive(s3_archive_url, max_bytes=10)
    sha = archive.put(b"more than ten bytes")
    with pytest.raises(OSError, match="more than the 10"):
        archive.get(sha)
    assert archive.get(archive.put(b"ten bytes!")) == b"ten bytes!"


def test_get_reads_no_more_than_the_callers_bound(s3_archive_url: str) -> None:
    """get(most=): what a crawler process's parent reads of a file the child says it stored (crawler/processes.py)."""
    archive = open_archive(s3_archive_url)
    sha = archive.put(b"eleven byte")
    assert archive.get(sha, most=11) == archive.get(sha, most=1000) == b"eleven byte"
    with pytest.raises(OSError, match="more than the 10 read at most") as refused:
        archive.get(sha, most=10)
    assert "\n" not in str(refused.value)


def test_a_missing_bucket_or_an_unreachable_store_is_one_line_at_open_time(
        s3_archive_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ArchiveUnavailable, match="bucket does not exist") as missing:
        open_archive("s3://gongkai-no-such-bucket/archive")
    assert "\n" not in str(missing.value)
    with pytest.raises(ArchiveUnavailable, match="name a bucket"):
        open_archive("s3://")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(ArchiveUnavailable, match="cannot open") as unreachable:
        open_archive(s3_archive_url)
    assert time.monotonic() - started < 30 and "\n" not in str(unreachable.value)
    assert s3_archive_url in str(unreachable.value)


def test_refused_credentials_are_one_line_at_open_time(s3_archive_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from s3_fixture import running_s3_server

    with running_s3_server(check_credentials=True) as strict:
        monkeypatch.setenv("AWS_ENDPOINT_URL", strict.endpoint)
        with pytest.raises(ArchiveUnavailable, match="access refused, check the credentials") as refused:
            open_archive(s3_archive_url)
    assert "\n" not in str(refused.value) and os.environ["AWS_SECRET_ACCESS_KEY"] not in str(refused.value)


def test_no_credentials_are_printed(s3_archive_url: str, tmp_path: Path) -> None:
    """A URL carrying credentials is refused as a setting, and the refusal does not repeat them."""
    env = _env(tmp_path) | {"GONGKAI_ARCHIVE": "s3://AKIDSECRET:hunter2@bucket/archive"}
    done = subprocess.run([sys.executable, "-m", "gongkai.cli", "status"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "no credentials in the archive URL" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "AKIDSECRET" not in done.stderr + done.stdout
    with pytest.raises(ArchiveUnavailable, match="no credentials in the URL") as refused:  # --archive URL alike
        open_archive("s3://AKIDSECRET:hunter2@bucket/archive")
    assert "hunter2" not in str(refused.value) and "AKIDSECRET" not in str(refused.value)


def test_an_unreachable_store_stops_a_command_in_one_line(s3_archive_url: str, tmp_path: Path) -> None:
    env = _env(tmp_path) | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}", "GONGKAI_ARCHIVE": s3_archive_url}
    done = subprocess.run([sys.executable, "-m", "gongkai.cli", "reprocess", "--all", "--db", f"duckdb:///{tmp_path / 'w.duckdb'}"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "botocore" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.strip()]
    assert line.startswith("gongkai reprocess: ArchiveUnavailable: archive " + s3_archive_url)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_a_report_ingested_into_the_s3_archive_is_reprocessed_from_it_by_worker_processes(
        engine: str, s3_archive_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The ingest archives a real report in the store, an older extractor's wrong cells stand in the warehouse;
    `gongkai reprocess` (a new process, two extraction workers, the store reached through the environment only)
    reads it back from the store and corrects them. Nothing is written to a local archive folder."""
    from gongkai.extractors.extract import extract_report
    from gongkai.flows.ingest import ingest_bytes
    from gongkai.warehouse.store import DocumentInfo, open_warehouse

    url = f"duckdb:///{tmp_path / 'w.duckdb'}" if engine == "duckdb" else request.getfixturevalue("postgres_url")
    archive = open_archive(s3_archive_url)
    name, old = "shanghai-szfbgt-2019.html", "zibo-stats-2023.txt"
    with open_warehouse(url) as wh:
        assert ingest_bytes((DOCUMENTS / name).read_bytes(), name=name, warehouse=wh, archive=archive).outcome == "new"
        data = (DOCUMENTS / old).read_bytes()
        wrong = extract_report(data, old)
        wrong["cells"] = {**wrong["cells"], "requests.new.natural_person": 7}
        assert wh.load(DocumentInfo(archive.put(data), len(data), "text/plain", old), wrong, "0.0.9").outcome == "new"
    env = _env(tmp_path) | {"GONGKAI_ARCHIVE": s3_archive_url, "GONGKAI_EXTRACT_PROCESSES": "2"}
    done = subprocess.run([sys.executable, "-m", "gongkai.cli", "reprocess", "--db", url, "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [outcome] = json.loads(done.stdout)["documents"]
    assert (outcome["name"], outcome["outcome"], outcome["cells_changed"]) == (old, "changed", True)
    with open_warehouse(url) as wh:
        right = extract_report(data, old)["cells"]["requests.new.natural_person"]
        assert wh.cells_of(outcome["report_id"])["requests.new.natural_person"] == right != 7
    assert not (tmp_path / "data" / "archive").exists()


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "GONGKAI_DATA": str(tmp_path / "data")}


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nothing listens there
