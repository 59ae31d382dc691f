"""A fetched page is parsed from the bytes it came as when they are its text's UTF-8 (Response.text_and_utf8): the
text is not encoded back to the bytes it was decoded from. The same text, the same tree and the same answers as
parsing the text, on every saved page and on pages in other encodings, with and without a BOM or a charset."""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

from gongkai.crawler.adapters.tree import parse_html
from gongkai.crawler.detail import parse_detail
from gongkai.crawler.fetcher import Response
from gongkai.extractors.html_reader import decode_html, decode_html_utf8

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GONGKAI_SHARED") or ROOT.parent / "shared")  # ../shared beside the clone, when there
PAGE = "<html><head>{meta}<title>年报_示例</title></head><body><div id='zoom'><p>二〇二四年报告</p>" \
       "<a href='/f/1.pdf'>附件</a></div></body></html>"


def saved_pages() -> list[bytes]:
    paths = sorted((ROOT / "tests" / "corpus" / "documents").glob("*.htm*"))
    paths += sorted(p for p in (ROOT / "tests" / "portals").iterdir() if p.is_file() and "htm" in p.suffix)
    for folder in (SHARED / "corpus" / "documents", SHARED / "portals"):
        paths += sorted(folder.glob("*.htm*")) if folder.is_dir() else []
    return [p.read_bytes() for p in paths]


def encoded_pages() -> list[tuple[bytes, str]]:
    """(bytes, Content-Type): UTF-8 declared, undeclared and mis-declared; GBK; BOMs; invalid UTF-8; UTF-16."""
    page, gb_meta = PAGE.format(meta=""), PAGE.format(meta="<meta charset='gb2312'>")
    return [
        (page.encode(), "text/html; charset=utf-8"), (page.encode(), "text/html"), (page.encode(), "text/html; charset=gbk"),
        (gb_meta.encode(), "text/html"), (gb_meta.encode("gbk"), "text/html"), (page.encode("gbk"), "text/html; charset=GBK"),
        (b"\xef\xbb\xbf" + page.encode(), "text/html; charset=utf-8"), (b"\xff\xfe" + page.encode("utf-16-le"), "text/html"),
        (page.encode("utf-16-le"), "text/html"), (page.encode()[:-20] + b"\xff\xfe" + page.encode()[-20:], "text/html"),
        (page.encode(), "text/html; charset=iso-8859-1"), (b"", "text/html; charset=utf-8"),
    ]


def test_the_bytes_are_handed_over_only_when_they_are_the_texts_utf8() -> None:
    cases = [(data, "text/html") for data in saved_pages()] + encoded_pages()
    assert len(cases) >= 12 + len(encoded_pages())
    handed = 0
    for data, content_type in cases:
        resp = Response("http://h/a/t1.html", 200, data, {"content-type": content_type})
        text, utf8 = resp.text_and_utf8()
        assert text == resp.text()
        assert decode_html_utf8(data)[0] == decode_html(data)
        if utf8 is not None:
            handed += 1
            assert utf8 == text.encode("utf-8"), content_type
    assert handed >= 12  # (the saved pages are UTF-8: the comparison above is not of None only)


def test_parsing_the_bytes_gives_the_tree_and_answers_of_parsing_the_text() -> None:
    for data, content_type in [(data, "text/html") for data in saved_pages()] + encoded_pages():
        text, utf8 = Response("http://h/a/t1.html", 200, data, {"content-type": content_type}).text_and_utf8()
        for huge_tree in (False, True):
            from_text, from_bytes = parse_html(text, huge_tree=huge_tree), parse_html(text, huge_tree=huge_tree, utf8=utf8)
            assert (from_text is None) is (from_bytes is None)
            if from_text is not None:
                assert etree.tostring(from_text) == etree.tostring(from_bytes)
        old, new = parse_detail(text, "http://h/a/t1.html"), parse_detail(text, "http://h/a/t1.html", utf8)
        assert old.to_dict() == new.to_dict() and old.pictures == new.pictures
