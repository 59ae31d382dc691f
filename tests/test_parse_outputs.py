"""The crawler's page readers return exactly what they returned when tests/data/parse_outputs.json was written
(tests/parse_outputs.py): parse_detail and every HTML listing family, on every saved page and on the built ones. The
proof that reading pages faster changed no answer."""

from __future__ import annotations

import json
from typing import Any

import parse_outputs
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::bs4.XMLParsedAsHTMLWarning")


def fixture(part: str) -> dict[str, Any]:
    frozen: dict[str, Any] = json.loads(parse_outputs.FIXTURE.read_text("utf-8"))[part]
    return frozen


def assert_same(part: str, pages: tuple[tuple[str, str], ...], read: Any) -> None:
    frozen = fixture(part)
    # every frozen page is still built (a page only in ../shared, when there, is not frozen: it is read by the tests
    # that compare the readings themselves)
    assert set(frozen) <= {name for name, _ in pages}, "frozen pages no longer built: rewrite the fixture?"
    differ = []
    for name, text in pages:
        if name not in frozen:
            continue
        assert parse_outputs.digest(text) == frozen[name]["input"], f"{name}: not the page frozen"
        if parse_outputs.kept(read(text)) != frozen[name]["output"]:
            differ.append(name)
    assert not differ, f"{len(differ)} of {len(pages)} pages read differently: {differ[:10]}"


def test_parse_detail_returns_the_frozen_outputs() -> None:
    pages = parse_outputs.detail_pages()
    assert len(pages) >= 900 and sum(name.startswith("saved ") for name, _ in pages) >= 40
    assert_same("detail", pages, parse_outputs.detail_output)


def test_the_listing_families_return_the_frozen_outputs() -> None:
    pages = parse_outputs.listing_texts()
    assert len(pages) >= 600
    assert_same("listing", pages, parse_outputs.listing_output)


def test_the_fixture_holds_answers_not_only_errors() -> None:
    """The frozen detail outputs name titles, dates, agencies, attachments and pictures; the listing ones, items."""
    details = [entry["output"] for entry in fixture("detail").values()]
    for key in ("title", "published", "agency", "category", "attachments", "pictures", "body_is_report"):
        assert sum(bool(out.get(key)) for out in details) >= 10, key
    listings = fixture("listing").values()
    assert sum(bool(family.get("candidates")) for entry in listings for family in entry["output"].values()
               if isinstance(family, dict)) >= 500
