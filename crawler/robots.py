"""robots.txt: Protego (Scrapy's parser) behind the small interface the fetcher uses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from protego import Protego

DISALLOW_ALL = ["User-agent: *", "Disallow: /"]
# Parsed rules shared among hosts whose robots.txt reads the same (most portals of a platform serve one, every host
# without one has none): each host in progress held its own (~1.3 kB for three lines, with compiled patterns), 1,000 of
# them at 1,000 hosts, each parsed anew. A Protego is not changed by reading it (its only memo, the rule set matched per
# user agent, is the same for every host). Bounded: this many texts, each this short; a longer one is parsed per host
# (a text of many short wildcard rules parses to some 85 times its length: 16 of 1,024 characters pin at most ~1.4 MB,
# where 64 of 4,096 allowed ~22 MB; the robots.txt of the portals we know are a few lines, most hosts share a few)
SHARED_ROBOTS = 16
SHARED_ROBOTS_MAX_CHARS = 1024


def _product_token(user_agent: str) -> str:
    # RFC 9309 matches groups by the product token ("gongkai"), not by words elsewhere in the header
    return user_agent.split("/", 1)[0].strip().lower()


@dataclass
class Robots:
    """robots.txt read by Protego (Scrapy's parser; RFC 9309: `*` and `$` in paths, the group naming our
    product token else `*`, the longest matching rule wins, Allow on a tie).

    Matching stays linear: Protego >= 0.7 matches a wildcard rule segment by segment with str.find, leftmost
    first (exact for `*`-only patterns, one left-to-right pass), so `Disallow: /*a*a*...*b$` cannot backtrack.
    Below 0.6.2 it built `.*?` regexes that did (GHSA-wjmf-p669-5m5p), hence the bound in pyproject.toml;
    tests/test_fetcher_security.py runs the pathological rule in a subprocess with a time limit and
    benchmarks/bench_robots.py measures it."""

    parser: Protego
    unreachable: str | None = None  # why robots.txt could not be read (then nothing is allowed)

    @classmethod
    def parse(cls, lines: Iterable[str], *, unreachable: str | None = None) -> Robots:
        text = "\n".join(lines)
        return cls(_shared(text) if len(text) <= SHARED_ROBOTS_MAX_CHARS else Protego.parse(text), unreachable)

    def can_fetch(self, user_agent: str, url: str) -> bool:
        return bool(self.parser.can_fetch(url, _product_token(user_agent)))

    def crawl_delay(self, user_agent: str) -> float | None:
        return self.parser.crawl_delay(_product_token(user_agent))


@lru_cache(maxsize=SHARED_ROBOTS)
def _shared(text: str) -> Protego:
    return Protego.parse(text)
