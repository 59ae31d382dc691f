"""`gongkai` command line: each subcommand lives in gongkai/commands/<name>.py and registers itself."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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
    "gongkai.commands.worker",
]

# the commands that write to the warehouse
WRITERS = {"ingest", "reprocess", "nightly", "backfill"}
# the commands that start processes (Prefect's temporary server, extraction workers, the demo portal)
STARTS_PROCESSES = WRITERS | {"demo", "serve"}


USAGE_ERROR = 2  # a mistake in the command line: said in one line before anything starts
INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class Parser(argparse.ArgumentParser):
    """argparse with one-line mistakes: `gongkai serve: argument --cron: '99 99 * * *' is not …`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gongkai")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _add_verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    # on the top level and on every command, so `gongkai -v nightly` and `gongkai nightly -v` both work
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="more log lines: -v the run's progress (portals, documents), -vv debugging")
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="errors only")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Register every command, or only `only`: importing one command's module (Prefect, DuckDB) is the cost
    of running that command, not of `gongkai extract`."""
    parser = Parser(prog="gongkai", description="Government information-disclosure annual reports → research warehouse")
    parser.add_argument("--version", action="version", version=f"gongkai {_version()}")
    _add_verbosity(parser, None)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        name = module.rsplit(".", 1)[1]
        if only is not None and name != only:
            subparsers.add_parser(name, help=f"(gongkai {name} --help)", add_help=False)
            continue
        importlib.import_module(module).register(subparsers)
        _add_verbosity(subparsers.choices[name], argparse.SUPPRESS)
    return parser


def log_level(args: argparse.Namespace) -> int:
    """WARNING by default; -v INFO (each portal and document), -vv DEBUG, -q ERROR."""
    import logging

    if getattr(args, "quiet", None):
        return logging.ERROR
    verbose = getattr(args, "verbose", None) or 0
    return logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG


def main(argv: Sequence[str] | None = None) -> int:
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {m.rsplit(".", 1)[1] for m in COMMAND_MODULES}
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in names else None).parse_args(argv)
    from gongkai.logs import configure_logging
    from gongkai.settings import SettingsError, load_settings

    configure_logging(log_level(args), explicit=bool(getattr(args, "quiet", None) or getattr(args, "verbose", None)))  # before Prefect is imported: its loggers read the level then

    try:
        args.settings = load_settings()  # once: the commands pass what the layers below need
    except SettingsError as exc:
        print(f"gongkai: {exc}", file=sys.stderr)
        return USAGE_ERROR
    check = getattr(args, "check", None)  # what a command validates beyond its arguments (the registry's --agency)
    mistake = check(args) if check is not None else None
    if mistake:
        print(f"gongkai {args.command}: {mistake}", file=sys.stderr)
        return USAGE_ERROR
    stops_cleanly = args.command in STARTS_PROCESSES and from_command_line  # not when a program or a test calls main()
    if stops_cleanly:
        from gongkai import stopping
        from gongkai.reaper import start_reaper

        start_reaper()  # a kill -9 of this command leaves no orphan behind
        stopping.install(args.command, interrupt_main=args.command == "serve")  # the run stops, is recorded, one line says so
    try:
        if args.command in WRITERS:  # a locked file, a full disk, a server gone: said before Prefect starts
            from gongkai.warehouse import open_warehouse

            with open_warehouse(getattr(args, "db", None) or args.settings.database_url) as warehouse:
                refusal = cannot_write(warehouse)
            if refusal:
                print(f"gongkai {args.command}: {refusal}", file=sys.stderr)
                return 1
        if args.command == "serve" and from_command_line and not args.dry_run:  # the one command that needs a server
            from gongkai.prefect_server import start_temporary_server
            from gongkai.settings import quiet_prefect

            quiet_prefect()
            start_temporary_server()  # deaf to the terminal's Ctrl-C: the command decides how to stop
        code = int(args.func(args) or 0)
        if stops_cleanly and stopping.stop_requested():
            print(f"gongkai {args.command}: interrupted; the run is recorded as interrupted, what was loaded stays, "
                  "the next run goes on from there", file=sys.stderr)
            stopping.exit_now(INTERRUPTED)
        return code
    except KeyboardInterrupt:
        print(f"gongkai {args.command}: interrupted; what was loaded stays, the next run goes on from there", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `gongkai extract x.pdf | head`: the reader left; nothing more to say
        _silence_stdout()
        return 1
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
                        ("psycopg", "OperationalError"), ("psycopg", "InsufficientPrivilege"),
                        ("psycopg", "ReadOnlySqlTransaction"),
                        ("gongkai", "ArchiveUnavailable")}  # an object store unreachable, its bucket missing, credentials refused


def cannot_write(warehouse: Any) -> str | None:
    """Why this connection cannot write the warehouse (a PostgreSQL reader role, read-only by default or without
    INSERT on runs), or None. Asked before anything starts, so that a writer command run with a reader's URL
    stops in one line instead of deep inside its flow."""
    db = warehouse.db
    if db.dialect != "postgresql":
        return None  # a DuckDB file opened for writing is writable (its lock and permissions were met on opening)
    read_only, may_insert, role = db.query_one(
        "SELECT current_setting('transaction_read_only') = 'on', has_table_privilege('runs', 'INSERT'), current_user")
    if read_only or not may_insert:
        return f"role {role} cannot write to this warehouse ({'read-only' if read_only else 'no INSERT on runs'}): give a writer's URL"
    return None


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


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again on the closed pipe."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


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
