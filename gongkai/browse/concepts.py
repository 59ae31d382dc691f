"""The agency page's main concepts (concepts.toml): each a sum of cells, per report year."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gongkai.schema import TABLES

CONCEPTS_FILE = Path(__file__).parent / "concepts.toml"


@dataclass(frozen=True)
class Concept:
    key: str
    label: str
    en: str
    addresses: tuple[str, ...]
    plot: bool = False

    def matches(self, address: str) -> bool:
        return any(_matches(pattern, address) for pattern in self.addresses)

    def value(self, cells: Mapping[str, Any]) -> float | int | None:
        """The sum of the report's cells at this concept's addresses; None when it prints none of them."""
        found = [v for a, v in cells.items() if self.matches(a) and v is not None]
        return sum(found) if found else None


def _matches(pattern: str, address: str) -> bool:
    table, row, column = pattern.split(".")
    a_table, _, rest = address.partition(".")
    a_row, _, a_column = rest.partition(".")
    if (a_table, a_column) != (table, column):
        return False
    return a_row.startswith(row[:-1]) if row.endswith("*") else a_row == row


def load_concepts(path: Path = CONCEPTS_FILE) -> tuple[Concept, ...]:
    """The concepts, each address pattern checked against the schema's tables (a slip fails at start-up)."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    concepts = []
    for entry in data.get("concept", []):
        unknown = set(entry) - {"key", "label", "en", "addresses", "plot"}
        if unknown:
            raise ValueError(f"{path.name}: concept {entry.get('key')!r}: unknown keys {sorted(unknown)}")
        concept = Concept(entry["key"], entry["label"], entry["en"], tuple(entry["addresses"]), bool(entry.get("plot")))
        for pattern in concept.addresses:
            if not any(_matches(pattern, a) for a in _all_addresses()):
                raise ValueError(f"{path.name}: concept {concept.key!r}: {pattern!r} names no cell of the schema")
        concepts.append(concept)
    return tuple(concepts)


def _all_addresses() -> Iterable[str]:
    for table in TABLES.values():
        for row in table.rows:
            for column in table.columns_of(row):
                yield f"{table.address}.{row.key}.{column.key}"
