"""`gongkai extract FILE... [--format json|table]`: the cells of the three standard tables, reconciled."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gongkai.extractors.extract import NO_STANDARD_TABLES, NOT_A_REPORT, PARTIAL, UNREADABLE_TABLES, extract_result
from gongkai.extractors.model import UnreadableDocument
from gongkai.tableview import render_tables


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("extract", help="extract the standard tables of report files (no warehouse)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--format", choices=["json", "table"], default="json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    failed = 0
    for path in args.files:
        try:
            result = extract_result(path.read_bytes(), str(path), ocr_limits=args.settings.ocr_limits())
        except (UnreadableDocument, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"gongkai: {path}: unreadable: {reason}", file=sys.stderr)
            failed += 1
            continue
        except Exception as exc:  # a reader bug must not lose the other files of the call
            print(f"gongkai: {path}: unreadable: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if result.status == NOT_A_REPORT:
            print(f"gongkai: {path}: not a report (no standard tables): {result.title or ''}", file=sys.stderr)
        elif result.status == UNREADABLE_TABLES:
            print(f"gongkai: {path}: {result.warnings[-1]}", file=sys.stderr)
        elif result.status == PARTIAL:
            lost = [w for w in result.warnings if w.endswith(" not found")]
            print(f"gongkai: {path}: partial: {len(lost)} row(s) or cell(s) not found: {'; '.join(lost[:3])}", file=sys.stderr)
        elif result.status == NO_STANDARD_TABLES:
            print(f"gongkai: {path}: a report without the standard tables (template {result.template})", file=sys.stderr)
        results.append(result.as_json())
    if args.format == "json":
        payload: Any = results[0] if len(args.files) == 1 and results else results
        json.dump(payload, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        for result in results:
            sys.stdout.write(render_tables(result) + "\n")
    return 1 if failed else 0
