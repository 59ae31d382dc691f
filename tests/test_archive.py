"""The local archive's layout and its promises under races, failures and kills: a new archive stores
root/ab/<sha256> and says so in ARCHIVE-LAYOUT; an earlier version's root/ab/cd/<sha256> archive is read and
added to in its own layout, never given a second copy; two writers of one file keep one; files are read-only;
a write that fails or is killed halfway leaves nothing under the archive's names."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gongkai.warehouse import archive as archive_module
from gongkai.warehouse.archive import (
    FLAT_LAYOUT,
    LAYOUT_FILE,
    OLD_LAYOUT,
    ArchiveUnavailable,
    LocalArchive,
    layout_text,
    open_archive,
    resolve_layout,
    sha256_of,
)

ROOT = Path(__file__).resolve().parent.parent


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under the archive's root (relative path → bytes), hidden temporary ones included."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o444


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that would strip the group and other bits from a new file: the archive's files are 0444 anyway."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_archive_stores_ab_sha256_under_a_layout_marker_and_opening_it_writes_nothing(
        tmp_path: Path, strict_umask: None) -> None:
    root = tmp_path / "archive"
    archive = open_archive(root)
    assert not root.exists()  # opening (as browse does, read-only) creates nothing
    data = b"%PDF-1.7 a report"
    sha = archive.put(data)
    assert sha == sha256_of(data) and sha in archive and archive.get(sha) == data
    assert files_under(root) == {LAYOUT_FILE: layout_text(FLAT_LAYOUT).encode(), f"{sha[:2]}/{sha}": data}
    assert read_only(root / sha[:2] / sha) and read_only(root / LAYOUT_FILE)
    assert layout_text(FLAT_LAYOUT).startswith("gongkai archive layout 2: each file at <root>/ab/<sha256>")
    again = LocalArchive(root)  # read from the marker at open
    assert again.layout == FLAT_LAYOUT and again.put(data) == sha and again.get(sha) == data
    assert len(files_under(root)) == 2


def test_an_earlier_versions_archive_is_read_and_added_to_in_its_own_layout_never_twice(tmp_path: Path) -> None:
    """An archive as gongkai wrote it before ARCHIVE-LAYOUT (built by hand): root/ab/cd/<sha256>, no marker."""
    root = tmp_path / "archive"
    held = {sha256_of(data): data for data in (b"an old report", b"another old report")}
    for sha, data in held.items():
        path = root / sha[:2] / sha[2:4] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o444)
    before = files_under(root)
    archive = open_archive(root)
    assert isinstance(archive, LocalArchive) and archive.layout == OLD_LAYOUT
    for sha, data in held.items():
        assert sha in archive and archive.get(sha) == data
        assert archive.put(data) == sha  # already held: no second copy under the new layout
        assert archive.path_for(sha) == root / sha[:2] / sha[2:4] / sha
    assert files_under(root) == before
    new = archive.put(b"a new report")
    assert files_under(root) == before | {f"{new[:2]}/{new[2:4]}/{new}": b"a new report"}  # no marker either
    assert LocalArchive(root).layout == OLD_LAYOUT and new in LocalArchive(root)


def test_a_layout_this_version_does_not_know_is_one_line_at_open(tmp_path: Path) -> None:
    (tmp_path / LAYOUT_FILE).write_text("gongkai archive layout 9: something newer\n")
    with pytest.raises(ArchiveUnavailable, match="does not know") as refused:
        open_archive(tmp_path)
    assert "\n" not in str(refused.value)


def test_a_worker_that_looked_before_another_made_the_archive_reads_the_marker_again() -> None:
    """Worker B found no marker; worker A then wrote marker and files; B, seeing files, must not take the
    earlier version's layout."""
    answers = iter([None, layout_text(FLAT_LAYOUT)])
    assert resolve_layout(lambda: next(answers), lambda: [LAYOUT_FILE, "ab"], "x") == (FLAT_LAYOUT, False)
    # an empty folder (or only a marker's temporary file) is a new archive; files without a marker an old one
    assert resolve_layout(lambda: None, lambda: [".incoming-x1"], "x") == (FLAT_LAYOUT, True)
    assert resolve_layout(lambda: None, lambda: ["ab"], "x") == (OLD_LAYOUT, False)


@pytest.mark.parametrize("tmpfile", [True, False], ids=["O_TMPFILE", "named-temp-file"])
def test_two_writers_of_one_file_into_one_fresh_archive_keep_one_read_only_copy(
        tmp_path: Path, strict_umask: None, monkeypatch: pytest.MonkeyPatch, tmpfile: bool) -> None:
    """Both writers opened the archive while it was empty and both pass `exists` before either names its file:
    each fsync waits for the other, so both markers and both files race to their link."""
    monkeypatch.setattr(archive_module, "_TMPFILE", tmpfile and archive_module._TMPFILE)
    root = tmp_path / "archive"
    writers = [LocalArchive(root), LocalArchive(root)]
    both_written = threading.Barrier(2, timeout=10)
    real_fsync = os.fsync

    def fsync_together(fd: int) -> None:
        both_written.wait()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_together)
    data = os.urandom(4096)
    results: list[str] = []
    threads = [threading.Thread(target=lambda a=a: results.append(a.put(data))) for a in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    sha = sha256_of(data)
    assert results == [sha, sha]
    assert files_under(root) == {LAYOUT_FILE: layout_text(FLAT_LAYOUT).encode(), f"{sha[:2]}/{sha}": data}
    assert read_only(root / sha[:2] / sha)


WRITER = """
import sys
from gongkai.warehouse.archive import open_archive
root, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
while not __import__("os").path.exists(start):  # all writers open the fresh archive at once
    pass
archive = open_archive(root)
for i in range(count):
    archive.put(b"file %d " % i * 200)
print(archive.layout)
"""


def test_writer_processes_opening_one_fresh_archive_at_once_agree_on_its_layout(tmp_path: Path) -> None:
    root, start, count = tmp_path / "archive", tmp_path / "start", 150
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(start), str(count)], env=env,
                                stdout=subprocess.PIPE, text=True) for _ in range(3)]
    start.touch()
    layouts = [w.communicate(timeout=120)[0].strip() for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0] and layouts == [str(FLAT_LAYOUT)] * 3
    expected = {sha256_of(b"file %d " % i * 200): b"file %d " % i * 200 for i in range(count)}
    stored = files_under(root)
    assert stored.pop(LAYOUT_FILE) == layout_text(FLAT_LAYOUT).encode()
    assert stored == {f"{sha[:2]}/{sha}": data for sha, data in expected.items()}


def test_a_bounded_get_reads_only_a_regular_file_the_archive_wrote_and_never_waits(tmp_path: Path) -> None:
    """get(most=) reads a file named by another process's say-so (a crawler process's digest, crawler/processes.py):
    something else at a digest's path (a FIFO, whose open waits for a writer for ever; a symbolic link, even to the
    right bytes; a link to a device) is one line, unread, at once; a file larger than the bound is refused unread."""
    archive = LocalArchive(tmp_path / "archive")
    right = b"the bytes the digest names"
    stored = archive.put(b"stored")
    outside = tmp_path / "outside"
    outside.write_bytes(right)
    digests = {"fifo": sha256_of(b"fifo"), "link": sha256_of(right), "device": sha256_of(b"device")}
    for sha in digests.values():
        archive.path_for(sha).parent.mkdir(exist_ok=True)
    os.mkfifo(archive.path_for(digests["fifo"]))
    archive.path_for(digests["link"]).symlink_to(outside)
    archive.path_for(digests["device"]).symlink_to("/dev/zero")
    answers: dict[str, str] = {}

    def read(name: str, sha: str) -> None:
        try:
            archive.get(sha, most=100)
            answers[name] = "read"
        except OSError as exc:
            answers[name] = str(exc)

    readers = [threading.Thread(target=read, args=item, daemon=True) for item in digests.items()]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(5)
    assert set(answers) == set(digests), f"waiting on {set(digests) - set(answers)}"
    assert "not a regular file" in answers["fifo"]
    assert "symbolic link" in answers["link"] and "symbolic link" in answers["device"]
    assert all("\n" not in line for line in answers.values())
    with pytest.raises(OSError, match="larger than the 5 bytes"):
        archive.get(stored, most=5)
    assert archive.get(stored, most=6) == archive.get(stored) == b"stored"
    assert archive.get(digests["link"]) == right  # the unbounded get (the archive's own reading) is as it was


@pytest.mark.parametrize("tmpfile", [True, False], ids=["O_TMPFILE", "named-temp-file"])
def test_a_write_that_fails_before_it_is_durable_leaves_nothing_and_the_next_put_stores_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmpfile: bool) -> None:
    monkeypatch.setattr(archive_module, "_TMPFILE", tmpfile and archive_module._TMPFILE)
    archive = LocalArchive(tmp_path / "archive")
    archive.put(b"first file")  # the marker and a folder exist: only the failing file is at stake
    before = files_under(tmp_path / "archive")
    real_write, real_fsync = os.write, os.fsync

    def short_writes(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[: max(1, len(data) // 2)]))  # a short write: the loop goes on

    def io_error(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    data = os.urandom(50_000)
    monkeypatch.setattr(os, "write", short_writes)
    monkeypatch.setattr(os, "fsync", io_error)  # the bytes were written but cannot be made durable
    with pytest.raises(OSError, match="Input/output error"):
        archive.put(data)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sha256_of(data) not in archive and files_under(tmp_path / "archive") == before
    assert archive.get(archive.put(data)) == data  # short writes (as the patched os.write gives) are completed
    monkeypatch.setattr(os, "write", real_write)


def test_a_file_system_refusing_o_tmpfile_gets_a_named_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def no_tmpfile(path: str, flags: int, mode: int = 0o777, **kw: object) -> int:
        if hasattr(os, "O_TMPFILE") and flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, mode, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_tmpfile)
    archive = LocalArchive(tmp_path)
    sha = archive.put(b"stored all the same")
    assert files_under(tmp_path) == {LAYOUT_FILE: layout_text(FLAT_LAYOUT).encode(), f"{sha[:2]}/{sha}": b"stored all the same"}
    assert read_only(tmp_path / sha[:2] / sha)


def assert_killed_leaving_its_first_put_only(script: str, root: Path) -> None:
    """Run `script` on the archive at `root` in a new process, which it kills (SIGKILL) mid-write after one put: the
    archive holds that put's file and its marker, nothing else (no partial file, no temporary one)."""
    killed = subprocess.run([sys.executable, "-c", script, str(root)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    kept = sha256_of(b"stored before the kill")
    assert files_under(root) == {LAYOUT_FILE: layout_text(FLAT_LAYOUT).encode(), f"{kept[:2]}/{kept}": b"stored before the kill"}


KILLED = """
import os, signal, sys
from gongkai.warehouse.archive import open_archive
archive = open_archive(sys.argv[1])
archive.put(b"stored before the kill")
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed with the bytes written, before their name
archive.put(b"never stored" * 1000)
"""


@pytest.mark.skipif(not archive_module._TMPFILE, reason="O_TMPFILE and /proc (Linux) only")
def test_a_writer_killed_mid_write_leaves_no_partial_or_temporary_file(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    assert_killed_leaving_its_first_put_only(KILLED, root)
    assert sha256_of(b"never stored" * 1000) not in LocalArchive(root)


def test_a_deferred_archive_syncs_its_puts_at_once_on_sync_and_each_put_is_whole_and_read_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict_umask: None) -> None:
    """A crawler process's archive (sync_each=False): no fsync per put, one syncfs for every file put before `sync`,
    none when nothing was put since; the files are the same whole, read-only files as a synced put's."""
    fsyncs: list[int] = []
    syncs: list[str] = []
    real_fsync, real_syncfs = os.fsync, archive_module.syncfs
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr(archive_module, "syncfs", lambda folder, held=None: (syncs.append(folder), real_syncfs(folder, held))[1])
    root = tmp_path / "archive"
    archive = open_archive(root, sync_each=False)
    files = [os.urandom(1000 + i) for i in range(40)]
    digests = [archive.put(data) for data in files]
    assert len(fsyncs) == 1 and syncs == []  # only the ARCHIVE-LAYOUT marker's, once for the archive's life
    fsyncs.clear()
    archive.sync()
    archive.sync()  # nothing put since: no second syncfs
    assert syncs == [str(root.resolve())]
    assert all(archive.get(sha) == data and read_only(root / sha[:2] / sha) for sha, data in zip(digests, files, strict=True))
    other = LocalArchive(root, sync_each=False)  # another crawler process, which fetched one of the same files
    other.put(files[0])  # found stored, by a writer that may not have synced it yet: its sync covers it all the same
    other.sync()
    assert len(syncs) == 2
    durable = open_archive(root)  # the default: each put synced, `sync` has nothing to do
    durable.put(b"synced on its own")
    durable.sync()
    assert len(fsyncs) == 1 and len(syncs) == 2


def test_callers_of_sync_at_once_share_a_syncfs_and_each_waits_for_one_begun_after_its_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = LocalArchive(tmp_path / "archive", sync_each=False)
    archive.put(b"first")
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []
    real_syncfs = archive_module.syncfs

    def slow_syncfs(folder: str, held: int | None = None) -> None:
        calls.append(archive._puts)  # the puts named when this syncfs began
        started.set()
        release.wait(10)
        real_syncfs(folder, held)

    monkeypatch.setattr(archive_module, "syncfs", slow_syncfs)
    first = threading.Thread(target=archive.sync)
    first.start()
    assert started.wait(10)
    archive.put(b"second")  # named while the first syncfs runs: that one may not cover it
    waiting = [threading.Thread(target=archive.sync) for _ in range(8)]
    for thread in waiting:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in [first, *waiting]:
        thread.join(10)
    assert not any(t.is_alive() for t in [first, *waiting])
    assert calls == [1, 2]  # eight callers, one more syncfs, begun after "second" was named
    assert archive._synced == 2


def test_a_file_a_crash_cut_short_or_left_unwritten_is_made_whole_by_the_next_put_and_a_whole_file_is_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What a crash of the machine between a deferred put and its sync may leave on ext4: the file's name, fewer bytes
    (none, or those that reached the disk), or as many bytes that are not these (blocks allocated, never written). The next put of those bytes replaces it, atomically, read-only; a get
    refuses it until then; a file whose bytes are whole is kept as it is (same inode)."""
    root = tmp_path / "archive"
    archive = LocalArchive(root, sync_each=False)
    data = os.urandom(70_000)
    sha = archive.put(data)
    path = root / sha[:2] / sha
    unwritten = bytes(len(data))  # ext4 without a journal may name a file of the right size whose blocks hold zeros
    for left in (b"", data[:4096], unwritten, data[:-1] + bytes([data[-1] ^ 1])):
        path.unlink()
        path.write_bytes(left)
        path.chmod(0o444)
        with pytest.raises(OSError, match="corrupt"):
            archive.get(sha)
        with caplog.at_level("WARNING", logger="gongkai.warehouse.archive"):
            assert LocalArchive(root).put(data) == sha
        assert archive.get(sha) == data and read_only(path)
        assert f"{len(left)} bytes, not the {len(data)} stored" in caplog.text
        caplog.clear()
        assert [p.name for p in path.parent.iterdir()] == [sha]  # no temporary file left beside it
    inode = path.stat().st_ino
    caplog.clear()
    archive.put(data)
    assert path.stat().st_ino == inode and archive.get(sha) == data and not caplog.text


def test_a_failed_syncfs_fails_every_sync_after_it_that_is_not_already_covered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """syncfs(2) reports a writeback error once (to the first call after it): a second syncfs succeeds over a file whose
    bytes never reached the disk. So neither a caller that waited on the failed syncfs nor one that comes after it may
    be told its files are on disk by a later one (a crawler process would send the parent a file not on disk)."""
    archive = LocalArchive(tmp_path / "archive", sync_each=False)
    archive.put(b"covered by the sync that fails")
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def failing_once(folder: str, held: int | None = None) -> None:
        calls.append(archive._puts)
        if len(calls) == 1:
            started.set()
            release.wait(10)
            raise OSError(errno.EIO, f"syncfs {folder}: Input/output error")

    monkeypatch.setattr(archive_module, "syncfs", failing_once)
    errors: list[BaseException | None] = []

    def sync() -> None:
        try:
            archive.sync()
            errors.append(None)
        except OSError as exc:
            errors.append(exc)

    first = threading.Thread(target=sync)
    first.start()
    assert started.wait(10)
    waiter = threading.Thread(target=sync)  # its put is the first one: covered by the syncfs that fails
    waiter.start()
    time.sleep(0.2)
    release.set()
    for thread in (first, waiter):
        thread.join(10)
    assert len(errors) == 2 and all(isinstance(e, OSError) for e in errors), errors
    archive.put(b"put after the failure")
    with pytest.raises(OSError, match="failed"):
        archive.sync()  # a later syncfs would succeed; the first file's loss would go unreported
    assert calls == [1]


def test_a_synced_put_that_finds_its_file_named_by_a_deferred_writer_makes_it_durable_before_it_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A put of the default archive (sync_each) is on disk when it returns, also where it finds its file already there:
    a crawler process (sync_each=False) may have named it and not synced it yet, and the caller (an ingest of the same
    report from another source, another run on the same archive) records it as stored at once."""
    root = tmp_path / "archive"
    data = b"the same report, fetched by a crawler process first" * 100
    sha = LocalArchive(root, sync_each=False).put(data)  # named, not synced
    path = root / sha[:2] / sha
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    assert LocalArchive(root).put(data) == sha
    assert path.stat().st_ino in synced


def test_a_deferred_archive_syncs_through_its_folder_held_open_from_before_its_first_put(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """syncfs(2) reports a writeback error to a descriptor opened before it; to one opened after it only if no syncfs
    reported it yet. Two crawler processes share the archive's file system: a folder opened afresh at each sync missed
    an error the other process's syncfs took first (its file then reached the parent though its bytes were lost)."""
    root = tmp_path / "archive"
    archive = LocalArchive(root, sync_each=False)
    opened = set(os.listdir("/proc/self/fd"))  # its folder (or the nearest one on its file system) held from here
    given: list[int | None] = []
    real_syncfs = archive_module.syncfs

    def recording(folder: str, held: int | None = None) -> None:
        given.append(held)
        real_syncfs(folder, held)

    monkeypatch.setattr(archive_module, "syncfs", recording)
    for data in (b"one", b"two"):
        archive.put(data)
        archive.sync()
    assert len(given) == 2 and given[0] is not None and given[0] == given[1]
    assert str(given[0]) in opened and os.fstat(given[0]).st_dev == os.stat(root).st_dev
    held = given[0]
    del archive
    import gc
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(held)  # closed with the archive


# --- a file written into the archive as it comes (LocalArchive.incoming: a crawl's download, never held whole) ---------

def write_incoming(archive: LocalArchive, data: bytes, piece: int = 7_000) -> archive_module.Incoming:
    incoming = archive.incoming()
    for start in range(0, len(data), piece):
        incoming.write(data[start:start + piece])
    return incoming


@pytest.mark.parametrize("tmpfile", [True, False], ids=["O_TMPFILE", "named-temp-file"])
def test_a_file_written_as_it_comes_is_named_at_its_digest_once_read_only_as_put_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict_umask: None, tmpfile: bool) -> None:
    monkeypatch.setattr(archive_module, "_TMPFILE", tmpfile and archive_module._TMPFILE)
    root = tmp_path / "archive"
    archive = LocalArchive(root)  # a fresh archive: its root, marker and first folder made on the way
    data = os.urandom(100_000)
    incoming = write_incoming(archive, data)
    assert incoming.size == len(data) and incoming.sha256 == sha256_of(data)
    assert sha256_of(data) not in archive  # complete, but not named before `link`
    sha = incoming.link()
    assert sha == sha256_of(data) and archive.get(sha) == data and read_only(root / sha[:2] / sha)
    assert files_under(root) == {LAYOUT_FILE: layout_text(FLAT_LAYOUT).encode(), f"{sha[:2]}/{sha}": data}  # no temp
    inode = (root / sha[:2] / sha).stat().st_ino
    assert write_incoming(archive, data, 50_000).link() == sha and archive.put(data) == sha  # stored once
    assert (root / sha[:2] / sha).stat().st_ino == inode and len(files_under(root)) == 2
    other = b"another file"
    assert write_incoming(archive, other).link() == archive.put(other) == sha256_of(other)
    assert write_incoming(archive, b"").link() == sha256_of(b"")  # an empty body is a file too, as put stores it


def test_a_file_written_as_it_comes_into_an_earlier_versions_archive_keeps_its_layout(tmp_path: Path) -> None:
    old = sha256_of(b"stored by an earlier version")
    (tmp_path / old[:2] / old[2:4]).mkdir(parents=True)
    (tmp_path / old[:2] / old[2:4] / old).write_bytes(b"stored by an earlier version")
    archive = LocalArchive(tmp_path)
    assert archive.layout == OLD_LAYOUT
    sha = write_incoming(archive, b"a new file" * 3000).link()
    assert (tmp_path / sha[:2] / sha[2:4] / sha).read_bytes() == b"a new file" * 3000
    assert not (tmp_path / LAYOUT_FILE).exists()  # never marked: an earlier version's archive stays so
    assert write_incoming(archive, b"stored by an earlier version").link() == old and len(files_under(tmp_path)) == 2


@pytest.mark.parametrize("tmpfile", [True, False], ids=["O_TMPFILE", "named-temp-file"])
def test_a_file_given_up_mid_write_leaves_nothing_and_a_linked_one_is_synced_with_the_puts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmpfile: bool) -> None:
    monkeypatch.setattr(archive_module, "_TMPFILE", tmpfile and archive_module._TMPFILE)
    syncs: list[str] = []
    real_syncfs = archive_module.syncfs
    monkeypatch.setattr(archive_module, "syncfs", lambda folder, held=None: (syncs.append(folder), real_syncfs(folder, held))[1])
    root = tmp_path / "archive"
    archive = LocalArchive(root, sync_each=False)  # a crawler process's
    archive.put(b"first file")
    archive.sync()
    before = files_under(root)
    cut = write_incoming(archive, os.urandom(30_000))  # a body cut by the cap, a connection dropped: given up
    cut.abort()
    cut.abort()  # (twice: nothing more to do)
    assert files_under(root) == before
    archive.sync()
    assert len(syncs) == 1  # nothing named since the last sync
    data = os.urandom(30_000)
    sha = write_incoming(archive, data).link()
    archive.sync()  # the linked file counts as a put: covered by the next syncfs
    assert len(syncs) == 2 and archive.get(sha) == data and len(files_under(root)) == len(before) + 1


@pytest.mark.parametrize("tmpfile", [True, False], ids=["O_TMPFILE", "named-temp-file"])
def test_a_damaged_file_at_the_digest_is_replaced_whole_by_the_file_written_as_it_comes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmpfile: bool) -> None:
    """As put repairs it (a crash before a deferred sync left the name with fewer or other bytes): replaced atomically,
    read-only, no temporary file left; a whole file is kept as it is."""
    monkeypatch.setattr(archive_module, "_TMPFILE", tmpfile and archive_module._TMPFILE)
    root = tmp_path / "archive"
    archive = LocalArchive(root, sync_each=False)
    data = os.urandom(70_000)
    sha = archive.put(data)
    path = root / sha[:2] / sha
    for left in (b"", data[:4096], bytes(len(data)), data + b"x"):
        path.unlink()
        path.write_bytes(left)
        path.chmod(0o444)
        with caplog.at_level("WARNING", logger="gongkai.warehouse.archive"):
            assert write_incoming(archive, data).link() == sha
        assert archive.get(sha) == data and read_only(path)
        assert f"{len(left)} bytes, not the {len(data)} stored" in caplog.text
        caplog.clear()
        assert [p.name for p in path.parent.iterdir()] == [sha]
    inode = path.stat().st_ino
    assert write_incoming(archive, data).link() == sha and path.stat().st_ino == inode and not caplog.text


KILLED_INCOMING = """
import os, signal, sys
from gongkai.warehouse.archive import open_archive
archive = open_archive(sys.argv[1])
archive.put(b"stored before the kill")
incoming = archive.incoming()
incoming.write(b"half of a download" * 1000)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not archive_module._TMPFILE, reason="O_TMPFILE and /proc (Linux) only")
def test_a_download_killed_mid_write_leaves_no_partial_or_temporary_file(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    assert_killed_leaving_its_first_put_only(KILLED_INCOMING, root)
