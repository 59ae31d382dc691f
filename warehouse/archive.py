"""The raw archive: every file stored once under its sha256, never overwritten.

Only the digest becomes a path, so a file name from outside never touches the file system. An archive made by
this version stores a file at root/ab/<sha256> (256 folders, as git's loose objects) and says so in a small file
at its root, ARCHIVE-LAYOUT, written before its first file; an archive without it that already holds files was
written by an earlier version, root/ab/cd/<sha256> (65,536 folders), and is read and added to in that layout, so
no file is ever stored twice. `key_for` is the one place a digest becomes a path. `open_archive` takes a
location string: a local folder (or file:// URL), or an fsspec URL such as `s3://bucket/prefix`
(warehouse/archive_remote.py, the [s3] extra), which several workers on several machines share. Both keep the
same layout and marker and the same promises: stored once, never overwritten, checked on reading.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import logging
import os
import re
import stat
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checked_sha256(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return sha256


class ArchiveUnavailable(OSError):
    """The archive cannot be used at all (an unreachable store, a missing bucket, refused credentials, a missing
    extra): one line naming the archive (never its credentials), no library traceback."""


class Archive(Protocol):
    location: str

    def put(self, data: bytes) -> str:
        """Store the bytes (if not there yet) and return their sha256."""
        ...

    def get(self, sha256: str, *, most: int | None = None) -> bytes:
        """The file's bytes, checked against its digest; `most`: a larger file is refused (OSError) unread."""
        ...

    def __contains__(self, sha256: object) -> bool: ...

    def sync(self) -> None:
        """Every file put before this call is on disk when it returns (nothing to do where each put already is)."""
        ...


# The layouts an archive may have: where a file's digest puts it under the archive's root.
OLD_LAYOUT = 1  # root/ab/cd/<sha256>: gongkai before ARCHIVE-LAYOUT; 65,536 folders, a new one for most files
FLAT_LAYOUT = 2  # root/ab/<sha256>: 256 folders; creating a folder costs as much as a file on ext4
LAYOUT_FILE = "ARCHIVE-LAYOUT"
_LAYOUT_LINE = re.compile(r"gongkai archive layout (\d+)\b")
_SHAPES = {OLD_LAYOUT: "ab/cd/<sha256>", FLAT_LAYOUT: "ab/<sha256>"}
_INCOMING = ".incoming-"  # prefix of a temporary file (where O_TMPFILE is unavailable), never an archived one


def key_for(sha256: str, layout: int) -> str:
    """The path of a file under the archive's root, '/'-separated: the one place a digest becomes a path."""
    sha256 = checked_sha256(sha256)
    if layout == FLAT_LAYOUT:
        return f"{sha256[:2]}/{sha256}"
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def layout_text(layout: int) -> str:
    """ARCHIVE-LAYOUT's text: its first words name the layout, the rest is for a person looking at the folder."""
    return f"gongkai archive layout {layout}: each file at <root>/{_SHAPES[layout]}, read-only, never overwritten\n"


def resolve_layout(read_marker: Callable[[], str | None], names: Callable[[], Iterable[str]], where: str) -> tuple[int, bool]:
    """(layout, whether ARCHIVE-LAYOUT must still be written before the first file), from one look at the root.

    The marker says; without one, an archive that holds nothing yet is new (FLAT_LAYOUT, marker written by its
    first put) and one that holds files is an earlier version's (OLD_LAYOUT, never marked, so it stays so).
    Workers opening one fresh archive at once agree: all of them take FLAT_LAYOUT and write the same marker; one
    that looked before another wrote marker and files reads the marker again once it sees files."""
    text = read_marker()
    if text is None:
        if not any(name != LAYOUT_FILE and not name.startswith(_INCOMING) for name in names()):
            return FLAT_LAYOUT, True
        text = read_marker()
        if text is None:
            return OLD_LAYOUT, False
    found = _LAYOUT_LINE.match(text)
    layout = int(found.group(1)) if found else 0
    if layout not in _SHAPES:
        raise ArchiveUnavailable(f"archive {where}: {LAYOUT_FILE} names a layout this gongkai does not know "
                                 f"({text.strip()[:80]!r}; written by a newer version?)")
    return layout, False


def _tmpfile_usable() -> bool:
    """O_TMPFILE + linkat through /proc (Linux): a file with no name until it is complete, nothing to clean up."""
    return (hasattr(os, "O_TMPFILE") and os.link in os.supports_dir_fd and os.link in os.supports_follow_symlinks
            and os.path.isdir("/proc/self/fd"))


_TMPFILE = _tmpfile_usable()
# the file system refuses O_TMPFILE (older kernels open the folder itself: EISDIR); the named temp file then
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}


def write_once(folder: str, target: str, data: bytes, *, durable: bool = True) -> None:
    """Write `data` as a new read-only file `target` in `folder`, complete (and with `durable`, on disk) before it has
    its name.

    Never overwrites: if `target` appears meanwhile (another writer won the race), the file already there is kept
    (same digest, same bytes). A failure or a kill mid-write leaves nothing under the archive's names. Raises
    FileNotFoundError if `folder` does not exist. Without `durable` the bytes reach the disk at the archive's next
    `sync` (LocalArchive(sync_each=False)): a kill of the process loses nothing (the kernel holds them), only a crash
    of the machine before that sync may leave the name with fewer bytes, which the next put of them repairs."""
    if _TMPFILE:
        try:
            fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o444)
        except OSError as exc:
            if exc.errno not in _NO_TMPFILE:
                raise
        else:
            try:
                _write_all(fd, data)
                os.fchmod(fd, 0o444)  # exactly 0444 whatever the umask, as before
                if durable:
                    os.fsync(fd)  # durability: the bytes are on disk before the archive names them
                try:
                    # linkat(AT_SYMLINK_FOLLOW) via /proc gives the unnamed file its name; the source path is
                    # absolute, so the dir fd only makes os.link call linkat with the follow flag
                    os.link(f"/proc/self/fd/{fd}", target, src_dir_fd=fd, follow_symlinks=True)
                except FileExistsError:
                    pass
            finally:
                os.close(fd)
            return
    tmp = _written_aside(folder, data, durable=durable)
    try:
        try:
            os.link(tmp, target)  # fails if another writer won the race: never overwrite
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def _written_aside(folder: str, data: bytes, *, durable: bool) -> str:
    """`data` in a new read-only `.incoming-` file in `folder` (with `durable`, on disk), its path; removed if writing
    it fails."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_INCOMING)
    try:
        try:
            _write_all(fd, data)
            os.fchmod(fd, 0o444)  # exactly 0444 whatever the umask
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError, TypeError):  # not Linux (no syncfs, or no CDLL(None))
        return None


_SYNCFS = _libc_syncfs()


def syncfs(folder: str, held: int | None = None) -> None:
    """Everything written to the file system holding `folder` on disk: its files' bytes, their names, the folders
    (Linux syncfs(2): one journal commit and one cache flush for all of them; elsewhere sync(2), every file system).
    `held`: a folder on that file system opened before the files were written (open_folder). syncfs(2) reports a
    writeback error to a descriptor opened before it, once; one opened after it only while no syncfs anywhere
    reported it yet: another crawler process's syncfs on the same file system would have taken it."""
    if _SYNCFS is None:
        os.sync()
        return
    fd = open_folder(folder) if held is None else held
    try:
        if _SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs {folder}: {os.strerror(code)}")
    finally:
        if held is None:
            os.close(fd)


def open_folder(folder: str) -> int:
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _nearest_folder(path: Path) -> str:
    """`path`, or its nearest ancestor that exists: an archive not made yet is made below it, on its file system (the
    one whose writeback errors syncfs reports)."""
    while not path.is_dir() and path.parent != path:
        path = path.parent
    return str(path)


class LocalArchive:
    """A folder of content-addressed files, each written complete before it is named (O_TMPFILE, or a temp
    file in the same folder), then linked: never overwritten. Its layout is read once, at open.

    `sync_each` (the default): each put is on disk (fsync) before the file is named and put returns. Without it
    (a crawler process: some 5,000 files a minute, where one fsync each cost ~0.2 CPU-ms of kernel work, a journal
    commit and a cache flush per file) a put only writes and names the file and `sync()` makes every file put before
    it durable at once (one syncfs): whoever tells of a file as stored (a crawler process, before its message to the
    parent) calls it first. A crash of the machine between a put and its sync may leave a file's name with fewer bytes (ext4 names a file before its
    delayed blocks reach the disk): the next put of those bytes replaces it (never a file whose bytes are whole),
    and a get refuses it meanwhile (its digest)."""

    def __init__(self, root: str | Path, *, sync_each: bool = True) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)
        self.layout, self._unmarked = resolve_layout(self._read_marker, self._names, self.location)
        self.sync_each = sync_each
        # puts named so far, and how many of them a finished sync covers; one sync at a time, later callers share it
        self._puts = self._synced = 0
        self._syncing = False
        self._sync_done = threading.Condition(threading.Lock())
        # a syncfs that failed: every later sync not covered by an earlier one fails too (syncfs reports a writeback
        # error once to a descriptor: the next would succeed over a file whose bytes were lost)
        self._sync_failed: OSError | None = None
        # the archive's folder held open from before its first deferred put: its syncfs sees every writeback error
        # since, also one another process's syncfs reported first (syncfs)
        self._held: int | None = None
        if not sync_each:
            self._held = open_folder(_nearest_folder(self.root))
            weakref.finalize(self, os.close, self._held)

    def path_for(self, sha256: str) -> Path:
        return self.root / key_for(sha256, self.layout)

    def put(self, data: bytes) -> str:
        sha256 = self._store(data)
        self._counted()  # a file found already stored counts too: another process may have named it and not synced it
        return sha256

    def _counted(self) -> None:
        """A file named (or found named) since the last sync: the next `sync` covers it (nothing when each put syncs)."""
        if not self.sync_each:
            with self._sync_done:
                self._puts += 1

    def incoming(self) -> Incoming:
        """A new file to write into the archive as its bytes come (a crawl's download: never held whole in memory),
        hashed as written; `Incoming.link` names it at its digest with put's checks, `abort` drops it unnamed."""
        if self._unmarked:  # (the root: where the temporary file is made, before any file's folder exists)
            self.root.mkdir(parents=True, exist_ok=True)
        return Incoming(self)

    def _link(self, incoming: Incoming) -> str:
        """The complete `incoming` named at its digest, exactly as put names bytes (_store)."""
        sha256 = incoming.sha256
        return self._name(sha256, incoming.size,
                          holds=lambda path, found: found == incoming.size and _file_sha256(path, found) == sha256,
                          write=lambda folder, target: incoming.link_as(target, durable=self.sync_each),
                          replace=incoming.replace)

    def _store(self, data: bytes) -> str:
        return self._name(sha256_of(data), len(data),
                          holds=lambda path, found: _holds(path, data, found),
                          write=lambda folder, target: write_once(folder, target, data, durable=self.sync_each),
                          replace=lambda target: self._repair(target, data))

    def _name(self, sha256: str, size: int, *, holds: Callable[[str, int], bool], write: Callable[[str, str], None],
              replace: Callable[[str], None]) -> str:
        """Name a file of `size` bytes at its digest (put's bytes, or an Incoming's file): a file already there is kept
        when it `holds` them, else (a crash before a deferred sync left it short or unwritten) `replace`d whole; with
        none there, `write(folder, target)` names it (never over another writer's)."""
        target = os.path.join(self.location, key_for(sha256, self.layout))
        there = _stat(target)
        if there is not None:
            if not stat.S_ISREG(there.st_mode):
                return sha256
            if holds(target, there.st_size):
                if self.sync_each:
                    # a deferred writer (a crawler process) may have named it and not synced it yet: this put's
                    # caller records it as stored now (an fsync of a file already on disk costs next to nothing)
                    _fsync_file(target)
                return sha256
            log.warning("archive file %s has %d bytes, not the %d stored under its digest (a crash before it reached "
                        "the disk?): replaced by the same bytes whole", sha256, there.st_size, size)
            replace(target)
            return sha256
        if self._unmarked:
            self._mark()
            target = os.path.join(self.location, key_for(sha256, self.layout))
        folder = os.path.dirname(target)
        try:
            write(folder, target)
        except FileNotFoundError:  # a folder's first file (256 of them in FLAT_LAYOUT): one call, not one per put
            os.makedirs(folder, exist_ok=True)  # another writer may make it meanwhile: fine
            write(folder, target)
        return sha256

    def sync(self) -> None:
        """Every file put before this call is on disk when it returns: one syncfs for all of them (and for another
        process's puts on the same file system). A call while a sync runs waits for it and, if that sync began before
        the call, for the next one, which it may start itself: callers at once share one syncfs. Nothing to do when
        each put synced (`sync_each`) or nothing was put since the last sync. A syncfs that fails raises here and in
        every later call that an earlier syncfs does not cover (its waiters too): the archive's process is not told a
        file is on disk after a writeback error, whichever file it hit."""
        if self.sync_each:
            return
        with self._sync_done:
            wanted = self._puts
            while self._synced < wanted:
                if self._sync_failed is not None:
                    raise OSError(self._sync_failed.errno, f"an earlier sync of the archive failed, its files may not "
                                  f"be on disk: {self._sync_failed}") from self._sync_failed
                if self._syncing:
                    self._sync_done.wait()
                    continue
                self._syncing, covers = True, self._puts  # the puts named before this syncfs starts
                self._sync_done.release()
                try:
                    syncfs(self.location, self._held)
                except OSError as exc:
                    self._sync_failed = exc  # seen by every waiter this syncfs wakes (finally) and every later call
                    raise
                finally:
                    self._sync_done.acquire()
                    self._syncing = False
                    self._sync_done.notify_all()
                self._synced = max(self._synced, covers)

    def _repair(self, target: str, data: bytes) -> None:
        """Replace the file at `target`, which does not hold its digest's bytes `data` (fewer, or as many but not
        these): left so by a crash of the machine before a deferred sync (never by a writer, which names only whole
        files). The whole file is written and synced under a temporary name, then renamed over it (atomic: a reader
        sees one or the other)."""
        tmp = _written_aside(os.path.dirname(target), data, durable=True)
        try:
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def get(self, sha256: str, *, most: int | None = None) -> bytes:
        if most is None:
            data = self.path_for(sha256).read_bytes()
        else:  # at most one byte past the bound: a file named by another process's say-so is never read whole
            data = _read_regular(self.path_for(sha256), sha256, most)
        if sha256_of(data) != sha256:
            raise OSError(f"archive file {sha256} is corrupt (its content no longer matches its digest)")
        return data

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and bool(_SHA256.fullmatch(sha256)) and self.path_for(sha256).exists()

    def _read_marker(self) -> str | None:
        try:
            return (self.root / LAYOUT_FILE).read_text(encoding="utf-8", errors="replace")[:1000]
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _names(self) -> Iterable[str]:
        try:
            with os.scandir(self.root) as entries:
                yield from (entry.name for entry in entries)
        except (FileNotFoundError, NotADirectoryError):
            return

    def _mark(self) -> None:
        """Before the first file of a new archive: ARCHIVE-LAYOUT, written once (a concurrent writer's, if it won,
        is the same text; one in another layout is obeyed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_once(self.location, str(self.root / LAYOUT_FILE), layout_text(self.layout).encode())
        self.layout, self._unmarked = resolve_layout(self._read_marker, self._names, self.location)


class Incoming:
    """A file being written into a LocalArchive as its bytes come (LocalArchive.incoming): without a name (O_TMPFILE in
    the archive's root; else a temporary `.incoming-` file there), hashed as written, named at its digest only by
    `link` once complete (the caller's say-so: a body cut by the size cap, a dropped connection or a deadline is
    `abort`ed instead, and nothing of it ever has an archive name). A kill mid-write leaves no name (O_TMPFILE) or an
    `.incoming-` file that is never read as an archived one. Use once: `link` or `abort` closes it."""

    def __init__(self, archive: LocalArchive) -> None:
        self._archive = archive
        self._hash = hashlib.sha256()
        self.size = 0
        self._path: str | None = None  # the temporary name, where O_TMPFILE is not available
        self._fd = -1
        if _TMPFILE:
            try:
                self._fd = os.open(archive.location, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o444)
            except OSError as exc:
                if exc.errno not in _NO_TMPFILE:
                    raise
        if self._fd < 0:
            self._fd, self._path = tempfile.mkstemp(dir=archive.location, prefix=_INCOMING)

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        _write_all(self._fd, data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def link(self) -> str:
        """Name the file at its digest in the archive (stored once, never overwritten; durable as the archive's puts
        are) and return the digest; closed either way."""
        try:
            sha256 = self._archive._link(self)
            self._archive._counted()  # for the archive's next sync, as a put is
            return sha256
        finally:
            self.abort()

    def abort(self) -> None:
        """Dropped unnamed (the temporary name removed); nothing to do once closed."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            self._path = None

    def _finish(self, durable: bool) -> None:
        os.fchmod(self._fd, 0o444)  # exactly 0444 whatever the umask, as write_once
        if durable:
            os.fsync(self._fd)

    def link_as(self, target: str, *, durable: bool) -> None:
        """Give the complete file the name `target` unless another writer named it first (FileNotFoundError: its
        folder does not exist yet; the caller makes it and calls again)."""
        self._finish(durable)
        try:
            if self._path is None:  # linkat(AT_SYMLINK_FOLLOW) through /proc, as write_once
                os.link(f"/proc/self/fd/{self._fd}", target, src_dir_fd=self._fd, follow_symlinks=True)
            else:
                os.link(self._path, target)
        except FileExistsError:
            pass

    def replace(self, target: str) -> None:
        """Put the complete file, on disk, over a damaged `target` (atomic: a reader sees one or the other)."""
        self._finish(True)
        if self._path is None:  # an unnamed file cannot be renamed: a temporary name first
            aside = os.path.join(os.path.dirname(target), f"{_INCOMING}{os.urandom(8).hex()}")
            os.link(f"/proc/self/fd/{self._fd}", aside, src_dir_fd=self._fd, follow_symlinks=True)
            self._path = aside
        os.replace(self._path, target)
        self._path = None


def _file_sha256(path: str, most: int) -> str | None:
    """The digest of the archive file at `path`, read no further than `most` bytes and one past them; None when
    unreadable or longer (the caller then replaces it, as _holds)."""
    digest = hashlib.sha256()
    left = most + 1
    try:
        with open(path, "rb") as file:
            while left > 0 and (chunk := file.read(min(left, 1024 * 1024))):
                digest.update(chunk)
                left -= len(chunk)
    except OSError:
        return None
    return digest.hexdigest() if left > 0 else None


def _holds(path: str, data: bytes, size: int) -> bool:
    """Whether the archive file at `path` (`size` bytes by its lstat) holds exactly `data`. Not the size alone: a
    crash of the machine before a deferred sync may leave a file of the right size whose blocks were never written
    (zeros, or old disk contents, on ext4 without a journal), which every later get refuses by its digest; only a
    put of the same bytes finds it, and it reads no more than those bytes and one past them to say so."""
    if size != len(data):
        return False
    try:
        with open(path, "rb") as file:
            return file.read(len(data) + 1) == data
    except OSError:  # unreadable: replaced as a damaged file would be (the repair's own errors are the put's)
        return False


def _fsync_file(path: str) -> None:
    """The archive file at `path` on disk (its bytes, written by this or another process), a link not followed."""
    fd = os.open(path, os.O_RDONLY | _NO_FOLLOW_NO_WAIT)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stat(path: str) -> os.stat_result | None:
    """What is at `path` (a link itself, not followed: only a regular file of the archive's is ever repaired), or None
    where there is nothing."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


# (POSIX flags; 0 where the platform has none)
_NO_FOLLOW_NO_WAIT = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_regular(path: Path, sha256: str, most: int) -> bytes:
    """At most `most` bytes of the archive file at `path`, which must be a regular file of its own: the archive names
    only such files, and one put at a digest's path by something else (a FIFO, whose open would wait for a writer
    for ever; a symbolic link; a device) is refused unread (O_NONBLOCK: opening a FIFO does not wait)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NO_FOLLOW_NO_WAIT)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"archive file {sha256} is a symbolic link, not a file the archive wrote") from None
        raise
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"archive file {sha256} is not a regular file (mode {stat.filemode(info.st_mode)})")
        if info.st_size > most:
            raise OSError(f"archive file {sha256} is larger than the {most} bytes read at most")
        data = file.read(most + 1)  # (one byte past the bound: a file grown since fstat is refused too)
    if len(data) > most:
        raise OSError(f"archive file {sha256} is larger than the {most} bytes read at most")
    return data


def is_remote(location: str | Path) -> bool:
    """An fsspec URL other than file:// (`s3://…`): no local folder behind it."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def open_archive(location: str | Path, *, sync_each: bool = True) -> Archive:
    """A local folder (path or file:// URL) or an object store's URL (`s3://bucket/prefix`), as the caller gives it
    (gongkai.settings' archive_location at the top). A remote store is asked once here whether it can be used:
    a missing bucket, refused credentials or an unreachable endpoint is one ArchiveUnavailable line. `sync_each`:
    LocalArchive's (False: the caller calls `sync()` before it records a file as stored; a store's PUT is durable
    as it returns, so a remote archive has nothing to sync)."""
    text = str(location)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif is_remote(text):
        from gongkai.warehouse.archive_remote import RemoteArchive

        return RemoteArchive(text)
    return LocalArchive(text, sync_each=sync_each)
