"""decode_html tries each encoding once and reads the <meta> only when the HTTP charset does not decide: the same text
as before (the reference below, the code as it was) on every saved page and on built pages in odd encodings; and a
charset naming a codec that is no text encoding is ignored instead of raising out of the crawler's reading."""

from __future__ import annotations

import codecs

import pytest
from listing_pages import hostile_encoded, hostile_pages, saved_pages

from gongkai.crawler import fetcher
from gongkai.extractors import html_reader, sniff
from gongkai.extractors.html_reader import _BOM_ENCODINGS, _META_CHARSET, _normalise_charset, _strict, decode_html
from gongkai.extractors.sniff import utf16_without_bom


def reference_utf16_without_bom(data: bytes) -> str | None:
    """sniff.utf16_without_bom as it was (commit 9c0652f): the text characters counted by a Python loop."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF8)) or len(data) < 8:
        return None
    sample = data[: sniff._UTF16_SAMPLE - sniff._UTF16_SAMPLE % 2]
    if b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            return None
        except UnicodeDecodeError as exc:
            if exc.start >= len(sample) - 3:
                return None
    best: tuple[float, str | None] = (sniff._UTF16_TEXT_SHARE, None)
    for encoding in ("utf-16-le", "utf-16-be"):
        text = sample.decode(encoding, errors="replace")
        share = sum(1 for ch in text if sniff._texty(ch)) / max(len(text), 1)
        if share >= best[0]:
            best = (share, encoding)
    return best[1]


def reference_decode_html(data: bytes, http_charset: str | None = None) -> str:
    """decode_html as it was (commit 9c0652f): UTF-8 decoded up front, a page declared UTF-8 decoded a second time."""
    for bom, encoding in _BOM_ENCODINGS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    utf16 = reference_utf16_without_bom(data)
    if utf16 is not None:
        return data.decode(utf16, errors="replace")
    meta = _META_CHARSET.search(data[:65536])
    declared = [_normalise_charset(http_charset), _normalise_charset(meta.group(1).decode("ascii") if meta else None)]
    utf8 = _strict(data, "utf-8")
    for charset in declared:
        if charset is None:
            continue
        if charset == "gb18030" and utf8 is not None:
            return utf8
        text = _strict(data, charset)
        if text is not None:
            return text
    if utf8 is not None:
        return utf8
    return data.decode("gb18030", errors="replace")


CHARSETS = (None, "utf-8", "UTF8", "gbk", "gb2312", "GB18030", "big5", "iso-8859-1", "latin-1", "utf-16", "shift_jis",
            "x-unknown", "", " utf-8 ", '"gbk"', "euc-kr", "cp1252", "koi8-r")


def bodies() -> list[bytes]:
    pages = [body for _name, body, _ctype in saved_pages()] + [body for _name, body, _ctype in hostile_encoded()]
    texts = [text for _name, text in hostile_pages()[:60]]
    pages += [text.encode(encoding, "replace") for text in texts for encoding in ("utf-8", "gb18030", "big5")]
    built = '<html><head><meta charset="{}"></head><body>平潭2024年年度报告 &nbsp; é</body></html>'
    pages += [built.format(c or "").encode(e, "replace") for c in CHARSETS for e in ("utf-8", "gb18030", "big5", "latin-1")]
    pages += [b"", b"\xef\xbb\xbf", codecs.BOM_UTF16_LE, b"\x00" * 9, b"\xff" * 100, "年".encode()[:2] * 50]
    return pages


def test_decode_gives_the_text_it_gave() -> None:
    """Every saved page and built page (BOMs, UTF-16 without one, GBK and Big5 with and without <meta>, UTF-8 declared
    GBK, broken UTF-8, cut characters), under every HTTP charset: the same text as before."""
    compared = 0
    for data in bodies():
        for charset in CHARSETS:
            assert decode_html(data, charset) == reference_decode_html(data, charset), (data[:60], charset)
            compared += 1
        assert utf16_without_bom(data) == reference_utf16_without_bom(data)
    assert compared > 5000


def test_a_page_declared_utf8_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A UTF-8 page declared UTF-8 (in the header or only in its <meta>) is decoded once, its <meta> not searched when
    the header decided; a GBK page declared GBK is tried as UTF-8 once, then as GB18030."""
    calls: list[str] = []
    real = html_reader._strict

    def counting(data: bytes, encoding: str) -> str | None:
        calls.append(encoding)
        return real(data, encoding)

    monkeypatch.setattr(html_reader, "_strict", counting)
    page = '<html><head><meta charset="utf-8"></head><body>平潭2024年年度报告</body></html>'
    for header in ("text/html; charset=utf-8", "text/html"):
        calls.clear()
        assert fetcher.decode_html(page.encode(), header) == page and calls == ["utf-8"], header
    calls.clear()
    assert fetcher.decode_html(page.replace("utf-8", "gbk").encode("gbk"), "text/html; charset=gbk") == page.replace("utf-8", "gbk")
    assert calls == ["utf-8", "gb18030"]  # (UTF-8 first: pages declared GB but really UTF-8 are read as UTF-8)


@pytest.mark.parametrize("charset", ["hex", "rot13", "base64", "zlib", "undefined", "uu", "quopri"])
def test_a_charset_that_is_no_text_encoding_is_ignored(charset: str) -> None:
    """charset=hex (or any codec that is no text encoding) in the header or a <meta> raised LookupError or UnicodeError
    out of the page's reading; it is ignored like an unknown charset."""
    page = "<html><body>平潭2024年年度报告</body></html>".encode("gb18030")
    assert decode_html(page, charset) == decode_html(page, "x-unknown") == "<html><body>平潭2024年年度报告</body></html>"
    meta = f'<meta charset="{charset}">平潭2024年年度报告'.encode()
    assert fetcher.decode_html(meta, "text/html") == meta.decode()


def test_utf16_sniffing_counts_the_same_characters() -> None:
    """utf16_without_bom counts a sample's text characters with one character class instead of a Python loop (2 ms a
    page for every GBK page): the class accepts exactly the characters _texty accepts, over all of Unicode."""
    every = "".join(map(chr, range(0x110000)))
    assert [m.group() for m in sniff._TEXTY.finditer(every)] == [ch for ch in every if sniff._texty(ch)]


CONTENT_TYPES = ("text/html; charset=utf-8", "text/html;charset=GBK", 'text/html; Charset="gb2312"', "text/html", "",
                 "text/plain; charset=", "text/html; charset*=utf-8''gbk", "text/html; charset=utf-8; charset=gbk",
                 "text/html; charset=\"x\\\"y\"", "text/html; q=1; charset = big5 ", ";;;charset=hex", "charset=utf-8")


def test_the_content_type_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The charset of a Content-Type, as email's parser reads it (parsing it for every response was most of the
    decoding's CPU), is read once per Content-Type: the same charset as parsing it every time."""
    from email.message import Message

    def parsed(content_type: str) -> str | None:
        msg = Message()
        msg["content-type"] = content_type or "text/html"
        charset = msg.get_param("charset")
        return str(charset) if charset else None

    fetcher.content_type_charset.cache_clear()
    for content_type in CONTENT_TYPES:
        assert fetcher.content_type_charset(content_type) == parsed(content_type), content_type
    built: list[str] = []
    real_init = Message.__init__

    def counting(self: Message, *args: object, **kwargs: object) -> None:
        built.append("message")
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Message, "__init__", counting)
    page = "<html><body>平潭2024年年度报告</body></html>"
    for _ in range(3):
        assert fetcher.decode_html(page.encode("gbk"), "text/html;charset=GBK") == page
    assert built == []  # (parsed above already)
