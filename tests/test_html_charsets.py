"""A page's declared charset (HTTP Content-Type or <meta>) is honoured only when it is a label of the WHATWG Encoding
Standard, the encodings browsers know: any other name Python's codecs take (unicode-escape, utf-7, punycode, EBCDIC
cp037, palmos ...) is read as if the page declared nothing, as a browser reads it. A page declaring unicode-escape or
utf-7 was decoded by that codec into text holding lone surrogates (`\\ud800`, `+2AA-`): its parsing raised
UnicodeEncodeError, which failed the report (crashed) or the portal's whole listing, every run; the extractor read
`\\u5e74` as 年. Real HTTP over loopback for the crawl."""

from __future__ import annotations

import encodings
import encodings.aliases
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback_site import Site
from parse_outputs import listing_readers

from gongkai.cli import main
from gongkai.crawler import fetcher
from gongkai.crawler.adapters import PageRequest
from gongkai.crawler.detail import parse_detail
from gongkai.extractors import html_reader
from gongkai.extractors.html_reader import decode_html

DOCUMENTS = Path(__file__).parent / "corpus" / "documents"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
TITLE = "平潭综合实验区2024年度政府信息公开工作年度报告"
LISTING = ('<html><head><meta charset="{charset}"><title>{escape}年报</title></head><body><ul>'
           '<li><a href="./202503/t20250310_1.html">{escape}' + TITLE + '</a><span>2025-03-10</span></li>'
           '<li><a href="./P020250310.pdf">{escape}附件 2023年度报告</a></li></ul>'
           '<a href="index_1.html">下一页</a></body></html>')
# A name Python's codecs know but no browser does, with what in a page that codec reads otherwise than a browser
# (escapes it turns into lone surrogates or other characters; UTF-8 bytes it turns into mojibake).
FOREIGN = {"unicode-escape": "\\ud800\\u5e74", "UNICODE_ESCAPE": "\\udc80", "raw-unicode-escape": "\\ud800\\u5e74",
           "utf-7": "+2AA-", "UTF7": "+2AA-+ZeU-", "unicode-1-1-utf-7": "+2AA-",
           "cp037": "报告", "palmos": "报告", "mac-arabic": "报告", "hp-roman8": "报告", "kz1048": "报告",
           "ptcp154": "报告", "cp1140": "报告", "cp1006": "报告"}


def listing_page(charset: str, escape: str) -> bytes:
    """A listing page in UTF-8 (ASCII only when the codec reads only ASCII: UTF-7) declaring `charset`."""
    text = LISTING.format(charset=charset, escape=escape)
    if "utf7" in charset.lower().replace("-", "").replace("_", ""):  # UTF-7 reads ASCII only: the Chinese text as character references, as such a page has it
        return text.encode("ascii", "xmlcharrefreplace")
    return text.encode("utf-8")


def as_browsers_read(page: bytes) -> str:
    return page.decode("utf-8")  # (the pages here are UTF-8, and a browser reads an undeclared one as UTF-8)


@pytest.mark.parametrize("charset", FOREIGN)
def test_a_charset_no_browser_knows_is_read_as_undeclared(charset: str) -> None:
    """In the HTTP header or in the <meta>: the page's text as a browser shows it, no lone surrogate in it."""
    page = listing_page(charset, FOREIGN[charset])
    from_http = fetcher.decode_html(listing_page("utf-8", FOREIGN[charset]), f"text/html; charset={charset}")
    assert from_http == as_browsers_read(listing_page("utf-8", FOREIGN[charset]))
    from_meta = fetcher.decode_html(page, "text/html")
    assert from_meta == as_browsers_read(page) and FOREIGN[charset] in from_meta
    assert not LONE_SURROGATE.search(from_http + from_meta)


def every_charset_name() -> list[str]:
    """Every name Python's codec registry knows (aliases and codec modules), and some spellings of them."""
    names = set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
    names |= {module.name for module in pkgutil.iter_modules(encodings.__path__)}
    return sorted(names | {n.replace("_", "-").upper() for n in names})


PROBES = (b"<p>\\ud800 +2AA- \\udc80 abc-def</p>", "<p>平潭2024年度报告</p>".encode(), "<p>平潭2024年度报告</p>".encode("gbk"),
          bytes(range(256)), b"\xed\xa0\x80\xed\xb0\x80", b"<p>+2AA-</p>\x00" * 8)


def test_no_charset_a_page_can_declare_gives_a_lone_surrogate() -> None:
    """Whatever name a page declares (every codec name Python knows), in the header or the <meta>: text without a
    lone surrogate, never an exception."""
    for charset in every_charset_name():
        for probe in PROBES:
            for text in (decode_html(probe, charset), decode_html(f'<meta charset="{charset}">'.encode() + probe)):
                assert not LONE_SURROGATE.search(text), (charset, probe)


def detail_page(charset: str, escape: str) -> bytes:
    """A real report page (pingtan-2024.html) declaring `charset` in its <meta>, `escape` before its ArticleTitle;
    ASCII with character references, '+' written '+-' (UTF-7's '+'), so that a UTF-7 decoder reads it whole."""
    text = (DOCUMENTS / "pingtan-2024.html").read_text("utf-8").replace("+", "+-")
    text = text.replace('<meta charset="utf-8"', f'<meta charset="{charset}"', 1)
    text = text.replace(f'"ArticleTitle" content="{TITLE}"', f'"ArticleTitle" content="{escape}{TITLE}"', 1)
    return text.encode("ascii", "xmlcharrefreplace")


@pytest.mark.parametrize("charset", ["utf-7", "unicode-escape", "raw-unicode-escape"])
def test_parse_detail_and_every_listing_family_read_such_a_page(charset: str) -> None:
    """The crawler's readers of a page (parse_detail, each HTML listing family) on the text the fetcher decodes: the
    same answers as for the page without its declaration (they raised UnicodeEncodeError on a lone surrogate)."""
    escape = "+2AA-" if charset == "utf-7" else "\\ud800"
    plain = "text/html; charset=utf-8"
    for header in (f"text/html; charset={charset}", "text/html"):
        detail = parse_detail(fetcher.decode_html(detail_page(charset, escape), header), "http://127.0.0.1:9/a/1.html")
        assert detail == parse_detail(fetcher.decode_html(detail_page("utf-8", escape), plain), "http://127.0.0.1:9/a/1.html")
        assert detail.body_is_report and detail.title == escape + TITLE
        listing = listing_page(charset, escape)
        for family, parse, portal in listing_readers():
            url = "http://www.example.gov.cn/col/zfxxgknb/index.html"
            page = parse(portal, PageRequest(url), fetcher.decode_html(listing, header), url)
            same = parse(portal, PageRequest(url), as_browsers_read(listing), url)
            assert (page.candidates, page.next) == (same.candidates, same.next), family


def test_the_extractor_reads_such_a_page_as_a_browser_shows_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gongkai extract` and html_reader.read: the page's characters as written (`\\u5e74` is six characters, not 年;
    `+2AA-` five, not a lone surrogate turned into '?'), its tables read as the undeclared page's, no traceback."""
    for charset, escape in (("unicode-escape", "\\u5e74"), ("utf-7", "+2AA-")):
        page = detail_page(charset, escape)
        doc = html_reader.read(page)
        assert doc.title == escape + TITLE
        assert doc.tables == html_reader.read(detail_page("utf-8", escape)).tables
        assert doc.tables
        saved = tmp_path / f"{charset}.html"
        saved.write_bytes(page)
        code = main(["extract", str(saved)])
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err and "internal error" not in err, err
        assert json.loads(out)["title"] == escape + TITLE


# --- a crawl over loopback ------------------------------------------------------------------------------------


def _listing(items: list[tuple[str, str]], charset: str = "utf-8") -> bytes:
    rows = "".join(f'<li><a href="{href}">{title}</a><span>2025-03-10</span></li>' for href, title in items)
    return f'<html><head><meta charset="{charset}"></head><body><ul>{rows}</ul></body></html>'.encode()


@pytest.fixture()
def hostile_portal() -> Iterator[Site]:
    """Portal a: a report page and one declaring utf-7 (a lone surrogate in its title); portal b: a listing declaring
    unicode-escape (a lone surrogate in its one report's title)."""
    good = (DOCUMENTS / "pingtan-2024.html").read_bytes()
    site = Site({
        "/robots.txt": (b"User-agent: *\nAllow: /\n", "text/plain"),
        "/a/list.html": (_listing([("/a/good.html", TITLE), ("/a/utf7.html", TITLE.replace("2024", "2023"))]), "text/html"),
        "/a/good.html": (good, "text/html; charset=utf-8"),
        "/a/utf7.html": (detail_page("utf-7", "+2AA-").replace(b"2024", b"2023"), "text/html"),
        "/b/list.html": (_listing([("/b/2022.html", "\\ud800" + TITLE.replace("2024", "2022"))], "unicode-escape"),
                         "text/html"),
        "/b/2022.html": (good.replace(b"2024", b"2022"), "text/html; charset=unicode-escape"),
    })
    yield site
    site.close()


def test_a_crawl_reads_pages_declaring_foreign_codecs_and_goes_on(hostile_portal: Site, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A real crawl (run_crawl: scheduler, fetcher, DuckDB warehouse, archive): the utf-7 report and the portal whose
    listing declares unicode-escape load like the others. Before, the report was `crashed` (UnicodeEncodeError) and
    portal b `failed`, again every run."""
    from gongkai.flows.crawl import failure_message, run_crawl

    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GONGKAI_EXTRACT_PROCESSES", "0")
    registry = tmp_path / "registry.toml"
    registry.write_text("".join(
        f'[[portal]]\nid = "p{p}"\nagency = "平潭综合实验区"\ndivision_code = "350128"\nlevel = "city"\ncms = "generic"\n'
        f'listing = ["http://{hostile_portal.host}/{p}/list.html"]\nhosts = ["{hostile_portal.host}"]\n\n' for p in "ab"),
        "utf-8")
    summary = run_crawl("nightly", db_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}", archive_location=str(tmp_path / "archive"),
                        registry_file=str(registry), politeness={"delay": 0.0, "retries": 0, "read_timeout": 5.0})
    assert {pid: info["status"] for pid, info in summary["portals"].items()} == {"pa": "ok", "pb": "ok"}
    outcomes = {doc["url"].rsplit("/", 2)[-2] + "/" + doc["url"].rsplit("/", 1)[-1]: doc["outcome"] for doc in summary["documents"]}
    assert outcomes == {"a/good.html": "new", "a/utf7.html": "new", "b/2022.html": "new"}, summary["documents"]
    assert failure_message(summary) is None



def test_a_robots_txt_declaring_a_foreign_codec_is_read_and_obeyed() -> None:
    """robots.txt is decoded by decode_html too (its <meta> searched): one declaring unicode-escape with a `\\ud800` in
    a rule raised UnicodeEncodeError out of its parsing, on every request to the host (its rules never cached), which
    failed the whole portal; its rules are now read and obeyed."""
    from gongkai.crawler.fetcher import Fetcher

    site = Site({"/robots.txt": (b'<meta charset="unicode-escape">\nUser-agent: *\nDisallow: /\\ud800\nDisallow: /private\n',
                                 "text/plain; charset=unicode-escape")})
    try:
        robots = Fetcher(frozenset({site.host}), delay=0.0, timeout=(2.0, 5.0), retries=0)
        assert not robots.allowed_by_robots(f"http://{site.host}/private/2024.html")
        assert robots.allowed_by_robots(f"http://{site.host}/gk/2024.html")
    finally:
        site.close()

# --- the table (extractors/charsets.toml) ------------------------------------------------------------------------


def test_every_codec_the_table_names_decodes_without_lone_surrogates() -> None:
    """Each codec honoured, on every one- and two-byte sequence (and GB18030's four-byte ones up to U+FFFF), strictly or
    with replacement: text without a lone surrogate (what a codec added to the table must keep)."""
    codecs_named = {codec for codec in html_reader.charset_codecs().values() if codec is not None}
    assert {"utf-8", "gb18030", "big5"} <= codecs_named
    sequences = [bytes([a]) for a in range(256)] + [bytes([a, b]) for a in range(256) for b in range(256)]
    four = [bytes([a, b, c, d]) for a in range(0x81, 0x85) for b in range(0x30, 0x3A) for c in range(0x81, 0xFF)
            for d in range(0x30, 0x3A)]
    for codec in sorted(codecs_named):
        for data in sequences + (four if codec == "gb18030" else []):
            assert not LONE_SURROGATE.search(data.decode(codec, "replace")), (codec, data)


@pytest.mark.parametrize(("old", "new", "message"), [
    ('codec = "gb18030"\nlabels = ["gb18030"]', 'codec = "hex"\nlabels = ["gb18030"]', "charsets.toml: gb18030: 'hex' is no text encoding"),
    ('labels = ["gb18030"]', 'labels = ["gb18030", "gbk"]', "charsets.toml: label 'gbk' twice"),
    ('labels = ["gb18030"]', 'labels = ["GB18030"]', "charsets.toml: label 'GB18030' not in lower case"),
])
def test_a_slip_in_the_table_is_refused_when_it_is_read(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = html_reader.CHARSETS_FILE.read_text("utf-8")
    assert text.count(old) == 1
    (tmp_path / "charsets.toml").write_text(text.replace(old, new), "utf-8")
    with pytest.raises(ValueError) as refused:
        html_reader.charset_codecs(tmp_path / "charsets.toml")
    assert str(refused.value) == message
