"""The raw archive: every file stored once under its sha256, never overwritten.

Only the digest becomes a path (root/ab/cd/<sha256>), so a file name from outside never touches the
file system. `open_archive` takes a location string: a local folder (or file:// URL), or an fsspec URL such as
`s3://bucket/prefix` (warehouse/archive_remote.py, the [s3] extra), which several workers on several machines
share. Both keep the same layout and the same promises: stored once, never overwritten, checked on reading.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checked_sha256(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return sha256


_checked = checked_sha256


class ArchiveUnavailable(OSError):
    """The archive cannot be used at all (an unreachable store, a missing bucket, refused credentials, a missing
    extra): one line naming the archive (never its credentials), no library traceback."""


class Archive(Protocol):
    location: str

    def put(self, data: bytes) -> str:
        """Store the bytes (if not there yet) and return their sha256."""
        ...

    def get(self, sha256: str) -> bytes: ...

    def __contains__(self, sha256: object) -> bool: ...


class LocalArchive:
    """A folder of content-addressed files, written atomically (temp file in the same folder, then link)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def path_for(self, sha256: str) -> Path:
        sha256 = _checked(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        sha256 = sha256_of(data)
        target = self.path_for(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, target)  # fails if another writer won the race: never overwrite
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        return sha256

    def get(self, sha256: str) -> bytes:
        data = self.path_for(sha256).read_bytes()
        if sha256_of(data) != sha256:
            raise OSError(f"archive file {sha256} is corrupt (its content no longer matches its digest)")
        return data

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and bool(_SHA256.fullmatch(sha256)) and self.path_for(sha256).exists()


def is_remote(location: str | Path) -> bool:
    """An fsspec URL other than file:// (`s3://…`): no local folder behind it."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def open_archive(location: str | Path) -> Archive:
    """A local folder (path or file:// URL) or an object store's URL (`s3://bucket/prefix`), as the caller gives it
    (gongkai.settings' archive_location at the top). A remote store is asked once here whether it can be used:
    a missing bucket, refused credentials or an unreachable endpoint is one ArchiveUnavailable line."""
    text = str(location)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif is_remote(text):
        from gongkai.warehouse.archive_remote import RemoteArchive

        return RemoteArchive(text)
    return LocalArchive(text)
