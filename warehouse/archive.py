"""The raw archive: every file stored once under its sha256, never overwritten.

Only the digest becomes a path (root/ab/cd/<sha256>), so a file name from outside never touches the
file system. `open_archive` takes a location string so that an object store can take the local
folder's place later: implement `Archive` for its scheme and dispatch on it there.
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


def _checked(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return sha256


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


def open_archive(location: str | Path) -> Archive:
    """A local folder (path or file:// URL), as the caller gives it (gongkai.settings at the top)."""
    text = str(location)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif "://" in text:
        raise ValueError(f"unsupported archive location {text!r}: only local folders for now")
    return LocalArchive(text)
