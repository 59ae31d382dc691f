"""The archive in an object store, through fsspec: `s3://bucket/prefix` (S3, MinIO, Alibaba OSS's S3 interface).

Same layout and ARCHIVE-LAYOUT marker as the local folder (<prefix>/ab/<sha256>; <prefix>/ab/cd/<sha256> in an
unmarked archive of an earlier version: warehouse/archive.py), so a local archive copied up with any S3 tool is
a valid remote one and the reverse. Several workers on several machines share it: a put of bytes already there
sends no upload (two workers racing on one file upload the same bytes under the same key: harmless), and every
get checks the bytes against their digest, so a damaged or replaced object is refused, never extracted.

Endpoint and credentials come from the standard AWS environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, or a profile), read by botocore itself: gongkai never sees, stores
or logs them. `location` is the URL without any user or password part.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from gongkai.warehouse.archive import LAYOUT_FILE, ArchiveUnavailable, key_for, layout_text, resolve_layout, sha256_of

T = TypeVar("T")

# the largest object get() reads: far above any report (GONGKAI_CRAWL_MAX_BYTES is 50 MB), far below memory
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
# A store that does not answer must not hold a worker for minutes: botocore's own retries, few and bounded.
S3_CONFIG = {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}


def redacted(url: str) -> str:
    """The URL as it may be printed: no `user:password@` part (credentials belong in the environment)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class RemoteArchive:
    """Content-addressed objects under `<url>/ab/<sha256>` (or an earlier version's `<url>/ab/cd/<sha256>`, read
    once at open from ARCHIVE-LAYOUT); thread-safe (fsspec's filesystems are)."""

    def __init__(self, url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, check: bool = True) -> None:
        self.location = redacted(url).rstrip("/")
        self.max_bytes = max_bytes
        self.protocol = urlsplit(url).scheme.lower()
        if "@" in urlsplit(url).netloc:  # a URL is printed and logged; credentials belong in the AWS environment
            raise ArchiveUnavailable(f"archive {self.location}: no credentials in the URL (use AWS_ACCESS_KEY_ID / "
                                     "AWS_SECRET_ACCESS_KEY or a profile)")
        self.fs, self.root = _filesystem(url, self.protocol, self.location)
        self.root = self.root.rstrip("/")
        if check:
            self._call("open", self._check)
        self.layout, self._unmarked = self._call("read", lambda: resolve_layout(self._read_marker, self._names, self.location))

    def key_for(self, sha256: str) -> str:
        return f"{self.root}/{key_for(sha256, self.layout)}"

    def put(self, data: bytes) -> str:
        sha256 = sha256_of(data)
        key = self.key_for(sha256)
        if not self._call("read", lambda: self.fs.exists(key)):
            if self._unmarked:  # a new archive: its marker before its first object (workers racing write the same)
                self._call("write", lambda: self.fs.pipe_file(f"{self.root}/{LAYOUT_FILE}", layout_text(self.layout).encode()))
                self._unmarked = False
            self._call("write", lambda: self.fs.pipe_file(key, data))
        return sha256

    def sync(self) -> None:
        """Each put is durable as the store's PUT returns: nothing to do."""

    def get(self, sha256: str, *, most: int | None = None) -> bytes:
        key = self.key_for(sha256)
        bound = self.max_bytes if most is None else min(most, self.max_bytes)
        size = self._call("read", lambda: self.fs.size(key))
        if size is not None and size > bound:
            raise OSError(f"archive object {sha256} is {size} bytes, more than the {bound} read at most")
        # read at most one byte past the bound: an object replaced by a larger one since `size` is refused too
        data: bytes = self._call("read", lambda: self.fs.cat_file(key, start=0, end=bound + 1))
        if len(data) > bound:
            raise OSError(f"archive object {sha256} is larger than the {bound} bytes read at most")
        if sha256_of(data) != sha256:
            raise OSError(f"archive object {sha256} is corrupt (its content no longer matches its digest)")
        return data

    def __contains__(self, sha256: object) -> bool:
        if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return False
        key = self.key_for(sha256)
        return bool(self._call("read", lambda: self.fs.exists(key)))

    def _read_marker(self) -> str | None:
        try:
            data: bytes = self.fs.cat_file(f"{self.root}/{LAYOUT_FILE}", start=0, end=1000)
        except FileNotFoundError:
            return None
        return data.decode("utf-8", errors="replace")

    def _names(self) -> list[str]:
        """The names directly under the root (one listing request; the object store has no folders to create)."""
        try:
            return [str(path).rstrip("/").rsplit("/", 1)[-1] for path in self.fs.ls(self.root, detail=False)]
        except FileNotFoundError:
            return []

    def _check(self) -> None:
        """At open time: the bucket is there and these credentials may use it (one request)."""
        if self.protocol in ("s3", "s3a"):
            bucket = self.root.split("/", 1)[0]
            self.fs.call_s3("head_bucket", Bucket=bucket)
        elif not self.fs.exists(self.root):
            self.fs.makedirs(self.root, exist_ok=True)

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """The store's answer, or one line: a missing object stays FileNotFoundError (`in` and reprocess rely on
        it); anything else (unreachable endpoint, refused credentials, missing bucket) is ArchiveUnavailable,
        without botocore's traceback."""
        try:
            return action()
        except FileNotFoundError as exc:
            if what == "open":
                raise ArchiveUnavailable(f"archive {self.location}: the bucket does not exist ({_first_line(exc)})") from None
            raise
        except ArchiveUnavailable:
            raise
        except PermissionError as exc:
            raise ArchiveUnavailable(f"archive {self.location}: access refused, check the credentials ({_first_line(exc)})") from None
        except Exception as exc:
            raise ArchiveUnavailable(f"archive {self.location}: cannot {what}: {_first_line(exc)}") from None


def _filesystem(url: str, protocol: str, shown: str) -> tuple[Any, str]:
    import fsspec

    if protocol not in fsspec.available_protocols():
        raise ArchiveUnavailable(f"archive {shown}: unknown scheme {protocol!r} (a local folder, file:// or s3://…)")
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        # no cached listings: another worker's upload must be seen at once
        options = {"config_kwargs": dict(S3_CONFIG), "use_listings_cache": False, "skip_instance_cache": True}
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError:
        extra = EXTRAS.get(protocol, protocol)
        raise ArchiveUnavailable(f"archive {shown}: needs the [{extra}] extra (pip install 'gongkai[{extra}]')") from None
    except Exception as exc:
        raise ArchiveUnavailable(f"archive {shown}: {_first_line(exc)}") from None
    if not root.strip("/"):
        raise ArchiveUnavailable(f"archive {shown}: name a bucket (s3://bucket/prefix)")
    return fs, root


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
