"""A readable view of an extraction: the three tables in schema order, failing checks marked."""

from __future__ import annotations

import unicodedata
from typing import Any

from gongkai.schema import template as get_template


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def render_tables(result: dict[str, Any]) -> str:
    source = result["source"]["path"]
    head = f"== {source}: {result.get('agency') or '?'} {result.get('year') or '?'} (template {result.get('template')}, {result['status']})"
    if not result["cells"] or not result.get("template") or result["template"] == "pre2019":
        return head + "\n(no standard tables)"
    cells = result["cells"]
    flagged: dict[str, dict[str, Any]] = {}
    for check in result["checks"]:  # several rules share a target: show the worst
        if check["status"] != "pass" and flagged.get(check["target"], {}).get("status") != "fail":
            flagged[check["target"]] = check
    lines = [head]
    for table in get_template(result["template"]).tables:
        columns = [c for c in table.columns if any(f"{table.address}.{r.key}.{c.key}" in cells for r in table.rows)]
        rows = [r for r in table.rows if any(f"{table.address}.{r.key}.{c.key}" in cells for c in table.columns)]
        if not rows:
            continue
        lines.append(f"\n[{table.address}] {table.title}")
        grid = [["", *[c.printed[0] for c in columns]]]
        for row in rows:
            line = [row.printed[0]]
            for col in columns:
                address = f"{table.address}.{row.key}.{col.key}"
                if address not in cells:
                    line.append("")
                    continue
                value = cells[address]
                text = "·" if value is None else str(value)
                if address in flagged:
                    text += " ✗" if flagged[address]["status"] == "fail" else " ?"
                line.append(text)
            grid.append(line)
        widths = [max(_width(r[i]) for r in grid) for i in range(len(grid[0]))]
        lines.extend("  ".join(_pad(cell, widths[i]) for i, cell in enumerate(r)).rstrip() for r in grid)
    if flagged:
        lines.append("\nchecks not passing (✗ fail, ? incomplete):")
        for c in result["checks"]:
            if c["status"] != "pass":
                lines.append(f"  {c['status']:<10} {c['rule']:<24} {c['target']}: expected {c['expected']}, printed {c['actual']}")
    for warning in result.get("warnings", []):
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
