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
    "gongkai.commands.browse",
    "gongkai.commands.portals",
]

# the commands that write to the warehouse
WRITERS = {"ingest", "reprocess", "nightly", "backfill"}
# the commands that start processes (Prefect's temporary server, extraction workers, the demo portal)
STARTS_PROCESSES = WRITERS | {"demo", "serve"}


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
    from_command_line = argv is None
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
    if args.command in STARTS_PROCESSES and from_command_line:  # not when a program or a test calls main()
        from gongkai.reaper import start_reaper

        start_reaper()  # a kill -9 of this command leaves no orphan behind
    try:
        if args.command in WRITERS:  # a locked file, a full disk, a server gone: said before Prefect starts
            from gongkai.warehouse import open_warehouse

            open_warehouse(getattr(args, "db", None) or args.settings.database_url).close()
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"gongkai {args.command}: interrupted; what was loaded stays, the next run goes on from there", file=sys.stderr)
        return 130
    except Exception as exc:
        reason = operational_error(exc)
        if reason is None:
            raise  # a bug: the traceback is what a developer needs
        print(f"gongkai {args.command}: {reason}", file=sys.stderr)
        return 1


# Failures of the machine or the database server, not of gongkai: a full disk, a file locked by another
# process, a server gone. The operator needs one line naming it, not a traceback; the data stays consistent
# (each load is one transaction) and the next run retries.
_OPERATIONAL_ERRNOS = {"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE", "ENOMEM"}
_OPERATIONAL_CLASSES = {("duckdb", "IOException"), ("duckdb", "OutOfMemoryException"), ("duckdb", "PermissionException"),
                        ("psycopg", "OperationalError"), ("psycopg", "InsufficientPrivilege")}


def operational_error(exc: BaseException) -> str | None:
    """One line for an error of the environment (disk, lock, permissions, server), None for anything else."""
    import errno

    for error in _chain(exc):
        if isinstance(error, OSError) and errno.errorcode.get(error.errno or -1) in _OPERATIONAL_ERRNOS:
            where = f" ({error.filename})" if error.filename else ""
            return f"{error.strerror or type(error).__name__}{where}"
        for cls in type(error).__mro__:
            if (cls.__module__.lstrip("_").split(".")[0], cls.__name__) in _OPERATIONAL_CLASSES:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                return f"{type(error).__name__}: {first}"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or during (bounded: a cycle cannot loop)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


if __name__ == "__main__":
    sys.exit(main())
