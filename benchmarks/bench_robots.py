"""robots.txt matching cost: a rule `Disallow: /*a*a*...*b$` (STARS wildcards) against a URL of N `a`s that it
does not match, the worst case for a backtracking matcher.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_robots.py

The matcher in use (Protego, via crawler.fetcher.Robots) should grow linearly in N and STARS. For contrast, the
translation to a regex that gongkai used before (`*` -> `.*`) is run with a few wildcards on a short URL, each
in a subprocess killed after TIMEOUT seconds, since such a regex holds the GIL and cannot be interrupted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gongkai.crawler.fetcher import Robots  # noqa: E402

TIMEOUT = 20.0
REGEX = """
import re, sys, time
stars, n = int(sys.argv[1]), int(sys.argv[2])
pattern = re.compile("/" + ".*a" * stars + ".*b$", re.S)  # what `Disallow: /*a...*b$` became before
started = time.perf_counter()
pattern.match("/" + "a" * n)
print(f"{time.perf_counter() - started:.3f}")
"""


def protego_seconds(stars: int, n: int, repeat: int = 5) -> float:
    robots = Robots.parse(["User-agent: *", "Disallow: /" + "*a" * stars + "*b$"])
    url = "http://h/" + "a" * n
    started = time.perf_counter()
    for _ in range(repeat):
        assert robots.can_fetch("gongkai/0.1", url)
    return (time.perf_counter() - started) / repeat


def regex_seconds(stars: int, n: int) -> str:
    try:
        done = subprocess.run([sys.executable, "-c", REGEX, str(stars), str(n)], capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"> {TIMEOUT:g} s (killed)"
    return f"{done.stdout.strip()} s"


def main() -> None:
    print("Protego (in use): seconds per can_fetch")
    for stars in (10, 40):
        for n in (1_000, 10_000, 100_000):
            print(f"  {stars:3d} wildcards, URL of {n:>7,} chars: {protego_seconds(stars, n):.5f} s")
    print("regex translation (before): seconds per match")
    for stars, n in ((4, 60), (6, 60), (8, 60)):
        print(f"  {stars:3d} wildcards, URL of {n:>7,} chars: {regex_seconds(stars, n)}")


if __name__ == "__main__":
    main()
