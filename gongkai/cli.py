"""`gongkai` command line: each subcommand lives in gongkai/commands/<name>.py and registers itself."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines register(subparsers) -> None and sets a handler via parser.set_defaults(func=...).
COMMAND_MODULES = [
    "gongkai.commands.extract",
    "gongkai.commands.ingest",
    "gongkai.commands.reprocess",
    "gongkai.commands.nightly",
    "gongkai.commands.backfill",
    "gongkai.commands.serve",
    "gongkai.commands.demo",
    "gongkai.commands.query",
    "gongkai.commands.export",
    "gongkai.commands.status",
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Register every command, or only `only`: importing one command's module (Prefect, DuckDB) is the cost
    of running that command, not of `gongkai extract`."""
    parser = argparse.ArgumentParser(prog="gongkai", description="Government information-disclosure annual reports → research warehouse")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        name = module.rsplit(".", 1)[1]
        if only is not None and name != only:
            subparsers.add_parser(name, help=f"(gongkai {name} --help)", add_help=False)
            continue
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {m.rsplit(".", 1)[1] for m in COMMAND_MODULES}
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in names else None).parse_args(argv)
    from gongkai.settings import SettingsError, load_settings

    try:
        args.settings = load_settings()  # once: the commands pass what the layers below need
    except SettingsError as exc:
        print(f"gongkai: {exc}", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
