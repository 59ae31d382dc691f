"""`gongkai browse [--warehouse URL] [--archive DIR] [--host 127.0.0.1] [--port N]`: a read-only local web site.

Agency, report, source and coverage pages over the warehouse (gongkai/browse/app.py). It serves on the
loopback address by default; the pages have no login, so another --host shows the warehouse to the network.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("browse", help="browse the warehouse in a web browser: agencies, reports, each number's source (read-only)")
    p.add_argument("--warehouse", "--db", dest="db", metavar="URL", help="warehouse URL (default: GONGKAI_DB, else data/gongkai.duckdb)")
    p.add_argument("--archive", metavar="DIR", help="the archive of the warehouse's files, a folder or s3://bucket/prefix (default: GONGKAI_ARCHIVE, else an "
                                     "'archive' folder beside a DuckDB file, else data/archive)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default %(default)s; 0: any free port, printed)")
    p.set_defaults(func=run)


def archive_for(db_url: str, explicit: str | None, settings: Any) -> Path | str:
    """The archive the warehouse's files are in: the one named (a folder or s3://…), else GONGKAI_ARCHIVE, else the
    folder `archive` beside a DuckDB file when there is one (as `gongkai demo` and the default data folder lay them out)."""
    from gongkai.warehouse.archive import is_remote

    if explicit:
        return explicit if is_remote(explicit) else Path(explicit)
    if settings.archive is not None:
        return settings.archive_dir or str(settings.archive_location)
    if db_url.startswith("duckdb://"):
        path = db_url.removeprefix("duckdb://")
        path = "/" + path.lstrip("/") if path.startswith("/") else path  # duckdb:////tmp/x names /tmp/x
        beside = Path(path).parent / "archive"
        if beside.is_dir():
            return beside
    return settings.archive_dir or str(settings.archive_location)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from gongkai.browse.app import create_app
    from gongkai.warehouse.archive import open_archive
    from gongkai.warehouse.archive_remote import redacted
    from gongkai.warehouse.query import WarehouseMissing

    url = args.db or args.settings.database_url
    archive = archive_for(url, args.archive, args.settings)
    try:
        app = create_app(url, open_archive(archive), allowed_hosts=_hosts(args.host))
    except WarehouseMissing as exc:
        print(f"gongkai browse: {exc}", file=sys.stderr)
        return 1
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as exc:
        print(f"gongkai browse: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        app.state.data.close()
        return 1
    listener.listen(128)  # connections wait in the backlog until uvicorn accepts them: the URL printed works at once
    port = listener.getsockname()[1]
    shown = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    if not _is_loopback(args.host):
        print(f"gongkai browse: warning: listening on {args.host}: anyone who reaches it reads the warehouse (no login)",
              file=sys.stderr)
    print(f"gongkai browse: http://{shown}:{port}/ (warehouse {url}, archive {redacted(str(archive))}); Ctrl-C to stop", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listener])
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _hosts(host: str) -> list[str] | None:
    """Host headers answered: the loopback names, plus the address listened on when it is another one."""
    from gongkai.browse.app import LOOPBACK_HOSTS

    if host in LOOPBACK_HOSTS:
        return None  # another loopback address (127.0.0.2) is answered by its own name too, as printed
    return ["*"] if host in ("0.0.0.0", "::") else [*LOOPBACK_HOSTS, host, f"[{host}]"]
