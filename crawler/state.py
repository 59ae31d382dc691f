"""Per-URL crawl state: HTTP validators (ETag / Last-Modified) and what was derived from the page.

A 304 only helps if we still know what the page said: a listing's candidates, a detail page's
attachments. Both are kept here, in one JSON file under the data dir, written atomically.
Entries are committed only after the page was fully handled, so a run that failed half-way
re-fetches in full next time.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class CrawlState:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            try:
                self._entries = json.loads(path.read_text("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:  # a damaged file costs one run of full fetches, not every run
                log.warning("crawl state %s unreadable (%s): starting empty", path, exc)

    def get(self, url: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(url)
            return dict(entry) if entry else None

    def validators(self, url: str) -> dict[str, str]:
        """Conditional-request headers for a URL we have handled before."""
        entry = self.get(url) or {}
        headers = {}
        if entry.get("etag"):
            headers["If-None-Match"] = entry["etag"]
        if entry.get("last_modified"):
            headers["If-Modified-Since"] = entry["last_modified"]
        return headers

    def commit(self, url: str, *, etag: str | None, last_modified: str | None, derived: Any = None) -> None:
        if not (etag or last_modified):
            return  # nothing a server could compare against
        with self._lock:
            self._entries[url] = {"etag": etag, "last_modified": last_modified, "derived": derived}

    def forget(self, url: str) -> None:
        with self._lock:
            self._entries.pop(url, None)

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            text = json.dumps(self._entries, ensure_ascii=False, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a temp name of its own in the same directory: two runs saving at once do not write into one file
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
