"""CPU per put of the local archive: the previous version's put beside today's, in one run, on the same disk.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_archive.py [--dir /tmp] [--files 5000] [--repeats 3]

Each variant stores the same FILES new files of SIZE bytes (a report page or a small PDF; or the polite crawl's
mix of sizes, --size 293525,108909,15986,36343,11986), timed with
time.process_time (user + kernel CPU of this process; the disk's own writeback is not in it) and wall clock:
  - fresh: into an archive that holds nothing yet (a first crawl);
  - holding: into an archive already holding HELD other files (a later crawl finding new reports);
  - again: the same files once more (all present: one stat each).
Variants: `previous` is the put before ARCHIVE-LAYOUT, verbatim (root/ab/cd/<sha256>: a new folder for most files;
mkstemp, fsync, chmod, link, unlink); `previous, 256 folders` the same code at root/ab/<sha256>; `today, ab/cd`
LocalArchive on an earlier version's archive (O_TMPFILE + linkat); `today` LocalArchive on a new archive
(root/ab/<sha256>, O_TMPFILE + linkat); `today, temp file` the same where O_TMPFILE is unavailable.
The order of the variants turns from one repeat to the next and every archive of a repeat is deleted only at its
end, so each variant meets the same state of the file system (on ext4 without a journal, as on this VM, a new
inode costs more while many were deleted in the last half minute). Compare `--dir /tmp` (ext4) and
`--dir /dev/shm` (tmpfs: the Python and system-call cost alone).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gongkai.warehouse import archive as archive_module  # noqa: E402
from gongkai.warehouse.archive import FLAT_LAYOUT, OLD_LAYOUT, LocalArchive  # noqa: E402

Put = Callable[[bytes], object]


def previous_put(root: Path, flat: bool) -> Put:
    """LocalArchive.put as it was before ARCHIVE-LAYOUT (flat: the same code at root/ab/<sha256>)."""

    def put(data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = root / sha256[:2] / sha256 if flat else root / sha256[:2] / sha256[2:4] / sha256
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
                os.link(tmp, target)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        return sha256

    return put


def today_put(root: Path, *, old_layout: bool = False, tmpfile: bool = True) -> Put:
    if old_layout:  # an earlier version's archive: one file at root/ab/cd/<sha256>, no ARCHIVE-LAYOUT
        previous_put(root, flat=False)(b"held by an earlier version")
    archive = LocalArchive(root)
    assert archive.layout == (OLD_LAYOUT if old_layout else FLAT_LAYOUT)
    if tmpfile:
        return archive.put

    def put(data: bytes) -> str:
        archive_module._TMPFILE = False
        try:
            return archive.put(data)
        finally:
            archive_module._TMPFILE = TMPFILE

    return put


TMPFILE = archive_module._TMPFILE
VARIANTS: dict[str, Callable[[Path], Put]] = {
    "previous (ab/cd, mkstemp)": lambda root: previous_put(root, flat=False),
    "previous, 256 folders": lambda root: previous_put(root, flat=True),
    "today on an ab/cd archive": lambda root: today_put(root, old_layout=True),
    "today (ab/, O_TMPFILE)": lambda root: today_put(root),
    "today, temp file": lambda root: today_put(root, tmpfile=False),
}
if not TMPFILE:
    print("O_TMPFILE + /proc unavailable here: the `today` variants use the named temporary file")


def files(count: int, sizes: list[int], tag: str) -> list[bytes]:
    return [os.urandom(64) + tag.encode() + b"%d" % i + b"x" * (sizes[i % len(sizes)] - 64) for i in range(count)]


def timed(put: Put, blobs: list[bytes]) -> tuple[float, float]:
    """(CPU ms, wall ms) per put."""
    cpu, wall = time.process_time(), time.perf_counter()
    for data in blobs:
        put(data)
    return (time.process_time() - cpu) * 1e3 / len(blobs), (time.perf_counter() - wall) * 1e3 / len(blobs)


def stored(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() and not p.name.startswith(".incoming-"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the archives are made (default: $TMPDIR)")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size", type=lambda text: [int(x) for x in text.split(",")], default=[20_000],
                        help="bytes per file, or a comma-separated list taken in turn (the polite-crawl benchmark's mix: "
                             "293525,108909,15986,36343,11986)")
    parser.add_argument("--held", type=int, default=5000, help="files already in the archive for `holding`")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    new, held = files(args.files, args.size, "new"), files(args.held, args.size, "held")
    size = f"{args.size[0]:,} bytes" if len(args.size) == 1 else f"{sum(args.size) // len(args.size):,} bytes on average"
    scenarios = ("fresh", "holding", "again")
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    names = list(VARIANTS)
    print(f"{args.files} puts of {size} in {args.dir} ({os.uname().sysname}, load {os.getloadavg()[0]:.1f})")
    for repeat in range(args.repeats):
        work = Path(tempfile.mkdtemp(prefix="bench-archive-", dir=args.dir))
        try:
            order = names[repeat % len(names):] + names[: repeat % len(names)]
            for number, name in enumerate(order):
                fresh = VARIANTS[name](work / f"{number}-fresh")
                results.setdefault((name, "fresh"), []).append(timed(fresh, new))
                results.setdefault((name, "again"), []).append(timed(fresh, new))
                holding = VARIANTS[name](work / f"{number}-holding")
                for data in held:
                    holding(data)
                results.setdefault((name, "holding"), []).append(timed(holding, new))
                extra = 1 if "ab/cd archive" in name else 0
                assert stored(work / f"{number}-fresh") - extra in (args.files, args.files + 1)  # + ARCHIVE-LAYOUT
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load after {os.getloadavg()[0]:.1f}; CPU ms per put, median of {args.repeats} [min–max], then wall ms median")
    print(f"{'variant':28s}" + "".join(f"{s:>28s}" for s in scenarios))
    for name in names:
        cells = []
        for scenario in scenarios:
            cpu = [c for c, _ in results[(name, scenario)]]
            wall = statistics.median(w for _, w in results[(name, scenario)])
            cells.append(f"{statistics.median(cpu):.3f} [{min(cpu):.3f}–{max(cpu):.3f}] {wall:5.2f}")
        print(f"{name:28s}" + "".join(f"{c:>28s}" for c in cells))


if __name__ == "__main__":
    main()
