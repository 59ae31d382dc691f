"""A crawl's record at 1,000 hosts, generated (deterministic): the documents of a run and its crawl-state entries, as
bench_polite_crawl's portals make them (per host one listing of five items, five detail pages, five documents), with
Chinese titles and a few hostile values (a lone surrogate, quotes, control characters, None everywhere allowed)."""

from __future__ import annotations

import random
from typing import Any

from gongkai.crawler.adapters import Candidate
from gongkai.crawler.detail import Detail
from gongkai.warehouse.store import IngestOutcome

OUTCOMES = ("new", "unchanged", "changed", "not_a_report", "unreadable", "failed", "not_modified", "refused", "fetch_failed")
ODD = ("", "\"引号\" \\ 反斜杠", "控制\x00\x1f\x7f字符", "破损 \udc80 文本", "emoji 😀", "\u2028\u2029", "tab\tnew\nline")


def _text(rng: random.Random, base: str) -> str:
    return base + rng.choice(ODD) if rng.random() < 0.05 else base


def documents(count: int = 5000, seed: int = 1) -> list[IngestOutcome]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        host = f"http://127.0.0.1:{20000 + i // 5}"
        out.append(IngestOutcome(
            f"{rng.getrandbits(256):064x}", rng.choice(OUTCOMES), _text(rng, f"报告{i}.pdf") if i % 7 else None,
            i if i % 3 else None, rng.randint(1, 3), None if i % 4 else 2, _text(rng, f"某某县人民政府{i % 97}办公室"),
            rng.choice((None, 2019, 2023, 2024)), None if i % 5 else _text(rng, "Content-Type 不符"),
            rng.randint(0, 4), bool(i % 2), f"{host}/art/2024/{i}/报告.pdf", _text(rng, f"{2023}年政府信息公开工作年度报告"),
            f"portal-{i // 5}"))
    return out


def entries(hosts: int = 1000, seed: int = 2) -> list[tuple[str, str | None, str | None, Any]]:
    """(url, etag, last_modified, derived) as a crawl commits them: 11 a host."""
    rng = random.Random(seed)
    out: list[tuple[str, str | None, str | None, Any]] = []
    for h in range(hosts):
        host = f"http://127.0.0.1:{20000 + h}"
        lm = "Sun, 29 Nov 2026 12:00:00 GMT"
        items = [f"{host}/art/2024/{i}/art_{h}_{i}.html" for i in range(5)]
        listing = [Candidate(_text(rng, f"某某县{h}区2024年政府信息公开工作年度报告"), url, f"2025-01-2{i % 10}").to_dict()
                   for i, url in enumerate(items)]
        out.append((f"{host}/col/col{h}/index.html", None if h % 3 else f'"{h:x}-listing"', lm, listing))
        for i, url in enumerate(items):
            detail = Detail(_text(rng, f"某某县{h}区2024年政府信息公开工作年度报告"), "2025-01-20", i % 2 == 0,
                            [(f"{host}/attach/{h}_{i}.pdf", _text(rng, "附件：年度报告.pdf"))], _text(rng, f"某某县{h}区人民政府"),
                            None if i % 3 else "政府信息公开年报")
            out.append((url, f'W/"{h}-{i}"', None if i % 2 else lm, detail.to_dict()))
            out.append((f"{host}/attach/{h}_{i}.pdf", f'"{rng.getrandbits(64):x}"', lm, None))
    return out
