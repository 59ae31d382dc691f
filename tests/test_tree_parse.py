"""tree.parse_html reads a page in one call to libxml2 (which parses without the GIL: a fed parser held it for the
whole parse, half of reading a large detail page in a crawler that is bound by the GIL), into the tree the fed parser
built; where the two differ (a node past libxml2's 10 MB limit without huge_tree) the page is fed as before.
tests/test_parse_outputs.py holds the readers' answers on every saved and built page."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gongkai.crawler.adapters import tree

ROOT = Path(__file__).resolve().parents[1]
REPORT_PAGE = ROOT / "tests" / "corpus" / "documents" / "pingtan-2024.html"


def fed(text: str, huge_tree: bool) -> Any:
    """The page as parse_html read it before: fed whole to a recovering parser."""
    parser = etree.HTMLParser(recover=True, huge_tree=huge_tree)
    parser.feed(text)
    return parser.close()


def test_a_page_is_parsed_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    whole = etree.fromstring

    def counted(data: Any, parser: Any = None) -> Any:
        calls.append(len(data))
        return whole(data, parser)

    monkeypatch.setattr(etree, "fromstring", counted)
    text = REPORT_PAGE.read_text("utf-8")
    for huge_tree in (True, False):
        root = tree.parse_html(text, huge_tree=huge_tree)
        assert etree.tostring(root) == etree.tostring(fed(text, huge_tree))
    assert calls == [len(text.encode("utf-8"))] * 2  # the whole page, once per parse, as UTF-8


def test_a_node_past_libxml2s_limit_is_read_as_fed() -> None:
    """Without huge_tree, libxml2's one-call parse drops a text node over 10 MB where the fed parser kept what it had
    read: such a page is fed, and reads as before (a detail page's agency from that cell)."""
    text = "<table><tr><td>发布机构</td><td>" + "某" * 3_400_000 + "</td></tr></table>"  # 10.2 MB as UTF-8
    root = tree.parse_html(text, huge_tree=False)
    assert etree.tostring(root) == etree.tostring(fed(text, False))
    assert len("".join(root.itertext())) > 1_000_000


BODY = "<p>政府信息公开工作年度报告 é</p>"
SELF_DECLARING = {  # pages that name an encoding of their own, or carry what an encoding sniffer reacts to
    "meta charset": f'<html><head><meta charset="gbk"></head><body>{BODY}</body></html>',
    "meta http-equiv": f'<head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>{BODY}',
    "meta utf-16": f'<meta charset="utf-16">{BODY}',
    "meta unknown": f'<meta charset="x-nonsense">{BODY}',
    "meta in the body": f"{BODY}<meta charset=big5>{BODY}",
    "xml prolog": f'<?xml version="1.0" encoding="gbk"?><html><body>{BODY}</body></html>',
    "xml prolog utf-16": f'<?xml version="1.0" encoding="UTF-16"?>{BODY}',
    "byte order mark inside": f"<html><body>\ufeff{BODY}</body></html>",
    "nul characters": f"<p>a\x00b</p>\x00{BODY}",
    "latin-1 bom look-alike": f"\xff\xfe{BODY}",
    "deep": "<div>" * 300 + BODY,
    "many attributes": "<p " + " ".join(f"a{i}='{i}'" for i in range(3000)) + f">{BODY}</p>",
}


@pytest.mark.parametrize("huge_tree", [True, False])
@pytest.mark.parametrize("name", sorted(SELF_DECLARING))
def test_a_page_declaring_its_own_encoding_reads_as_fed(name: str, huge_tree: bool) -> None:
    """The one call hands libxml2 UTF-8 bytes with the encoding given: a page's own declaration (meta, XML prolog)
    must not make it decode them otherwise, as the fed text never was."""
    text = SELF_DECLARING[name]
    root = tree.parse_html(text, huge_tree=huge_tree)
    assert etree.tostring(root) == etree.tostring(fed(text, huge_tree))
    if huge_tree or name != "deep":  # (past 256 levels without huge_tree libxml2 stops, fed or not)
        assert "政府信息公开工作年度报告" in "".join(root.itertext())


def test_a_lone_surrogate_fails_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        tree.parse_html("<p>a\ud800b</p>")


def test_each_thread_parses_with_a_parser_of_its_own() -> None:
    """lxml locks a parser while it parses: one shared by the crawler's threads would parse one page at a time."""
    text = REPORT_PAGE.read_text("utf-8")
    found: dict[str, Any] = {}

    def parse(name: str) -> None:
        found[name] = (tree._whole_page_parser(False), etree.tostring(tree.parse_html(text, huge_tree=False)))

    threads = [threading.Thread(target=parse, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parse("main")
    assert len({id(parser) for parser, _ in found.values()}) == 3
    assert len({page for _, page in found.values()}) == 1
