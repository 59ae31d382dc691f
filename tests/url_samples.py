"""URLs to judge: every URL the repository's tests and saved pages hold, and generated hostile ones.

Shared by tests/test_urls_fast.py (the fast path against the reference) and benchmarks/bench_urls.py (CPU per URL)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

TESTS = Path(__file__).resolve().parent
TEXT_SUFFIXES = {".py", ".html", ".shtml", ".htm", ".json", ".toml", ".md", ".txt", ".tsv", ".xml", ".csv"}
_URL_IN_TEXT = re.compile(r"""(?i)\b(?:https?|ftp|javascript|file|mailto|data)\s*:[^\s"'<>`]*""")
_ATTRIBUTE = re.compile(r"""(?is)\b(?:href|src|action)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_CHARSET = re.compile(rb"""(?i)charset\s*=\s*["']?([a-z0-9_-]+)""")

# the URL each saved page was served at (as the tests that read it say), for joining its links
PAGE_URLS = {
    "pingtan-zfxxgknb-list.html": "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/",
    "ordos-engebei-xxgknb-list-2020.html": "http://egb.example.cn/xxgk/xxgknb/index.html",
    "unknown-cms-list.html": "http://www.mouxian.example.cn/gk/nb/list.asp",
    "ucap-list-index.shtml": "https://ucap.example.cn/sqsrmzf/c108374/index.shtml",
    "ucap-list-index_1.shtml": "https://ucap.example.cn/sqsrmzf/c108374/index_1.shtml",
    "ucap-detail.shtml": "https://ucap.example.cn/sqsrmzf/c108374/202501/c3d4e5f60718293a4b5c6d7e8f901a2b.shtml",
    "gkmlpt-annualreport.html": "http://www.gd.example.gov.cn/gkmlpt/annualreport#2629",
    "gkmlpt-detail.html": "http://www.gd.example.gov.cn/gkmlpt/content/4/4688/post_4688993.html",
}
DEFAULT_PAGE_URL = "http://www.pingtan.gov.cn/zfxxgk/xxgknb/202401/t20240115_123.html"


def _decode(data: bytes) -> str:
    m = _CHARSET.search(data[:4096])
    for encoding in ((m.group(1).decode(),) if m else ()) + ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")


def text_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_dir():
            yield from sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)


def urls_in_text(*roots: Path) -> list[str]:
    """Every URL-looking string in the files (test sources with their hostile literals, registries, pages, tables)."""
    found: dict[str, None] = {}
    for path in text_files(*roots):
        text = _decode(path.read_bytes())
        for m in _URL_IN_TEXT.finditer(text):
            url = m.group(0)
            found[url] = None
            found[url.rstrip(".,;:)]}")] = None
    return list(found)


def page_links(*roots: Path) -> list[tuple[str, str]]:
    """(page URL, href as written) for every href/src/action of every saved HTML page."""
    links: dict[tuple[str, str], None] = {}
    for path in text_files(*roots):
        if path.suffix not in (".html", ".shtml", ".htm", ".json", ".xml"):
            continue
        base = PAGE_URLS.get(path.name, DEFAULT_PAGE_URL)
        for m in _ATTRIBUTE.finditer(_decode(path.read_bytes())):
            href = next(g for g in m.groups() if g is not None)
            links[(base, href.replace("&amp;", "&"))] = None
    return list(links)


def joined(base: str, href: str) -> str:
    """The href made absolute as the listing walk does (crawler/adapters/links.join_link)."""
    try:
        return urljoin(base, href.strip())
    except ValueError:
        return href


def repository_urls(*extra_roots: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(URLs, (page URL, href) links) of tests/ and of any further folders (the shared portals and corpus)."""
    roots = (TESTS, *extra_roots)
    links = page_links(*roots)
    urls = dict.fromkeys(urls_in_text(*roots))
    urls.update(dict.fromkeys(joined(base, href) for base, href in links))
    urls.update(dict.fromkeys(PAGE_URLS.values()))
    return list(urls), links


# --- generated hostile URLs ---------------------------------------------------------------------------------------

SCHEMES = ["http", "https", "http", "https", "HTTP", "Https", "hTtP", "ftp", "javascript", "file", "", "htt", "httpx"]
SEPARATORS = ["://"] * 12 + [":/", ":", ":///", "//", ":\\\\", ": //", "://\t", ":%2F%2F", "：//"]
USERINFO = [""] * 12 + ["u@", "u:p@", "@", "a%40b@", "évil@", ":@", "good.cn@", "u@v@"]
PORTS = [""] * 8 + [":80", ":443", ":8080", ":1", ":65535", ":0", ":080", ":00080", ":65536", ":99999", ":123456",
                    ":", ":8o", ":８０", ": 80", ":-1", ":+80", ":80:80", ":0x50"]
HOSTS = [
    "127.0.0.1", "10.0.0.1", "255.255.255.255", "0.0.0.0", "127.1", "2130706433", "0x7f.0.0.1", "0X7F.0.0.1",
    "127.000.0.1", "01.2.3.4", "256.1.1.1", "1.2.3", "1.2.3.4.", "1.2.3.4.5", "1.2.3.a", "a.1.2.3", "1.2.3.0x",
    "0x", "123", "www.1", "[::1]", "[::FFFF:1.2.3.4]", "[::ffff:102:304]", "[0:0::1]", "[0000::1]", "[fe80::1%25eth0]",
    "[fe80::1%eth0]", "[::1", "::1", "[v1.x]", "[1::2::3]", "[::1]]", "[]", "[127.0.0.1]", "[::]", "[2001:DB8::1]",
    "", ".", "..", "a..b", "-a.cn", "a-.cn", "*.a.cn", "a_b.cn", "a" * 63 + ".cn", "a" * 64 + ".cn", "example.cn.",
    "EXAMPLE.cn", "Www.Gov.CN", "a%2eb.cn", "%67ood", "a b.cn", "a\tb.cn", "中文.cn", "www.政府.cn", "bücher.de",
    "ＥＸＡＭＰＬＥ.cn", "a．b.cn", "xn--fiqs8s.cn", "xn--", "xn--zz.cn", "xn--abc", "ß.de", "good\\@evil",
    "evil\\.good", "a\u200b.cn", "a\u3000.cn", "localhost", "LOCALHOST", "www.gov.cn", "gk.tj.gov.cn", "a.b-c.d",
]
PATH_ATOMS = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 4
    + [chr(c) for c in range(0x21, 0x7f)]  # every printable ASCII character
    + [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x00", "\x7f", "\x85", "\x9f", "\xa0", "\u3000", "\u2028", "\ufeff",
       "\u200b", "\ud800", "中", "文", "é", "ß", "\\", "/", "/", "/", ".", "..", "/./", "/../", "%", "%2", "%G1", "%2e",
       "%2E", "%2E%2E", "%2F", "%5C", "%00", "%20", "%e4%b8%ad", "%E4%B8%AD", "%41", "%7e", "%7E", "%25", "%%", "?",
       "#", "&", "=", ";", ":", "@", "[", "]", "~", ".html", ".pdf", "index", "t20240101_1"]
)


def _escape(rnd: random.Random) -> str:
    text = f"%{rnd.randrange(256):02x}"
    return text.upper() if rnd.random() < 0.6 else text


def _chars(rnd: random.Random, length: int, atoms: list[str]) -> str:
    return "".join(_escape(rnd) if rnd.random() < 0.08 else rnd.choice(atoms) for _ in range(length))


def _host(rnd: random.Random) -> str:
    if rnd.random() < 0.4:
        return rnd.choice(HOSTS)
    labels = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789-" + "A" * (rnd.random() < 0.1))
                      for _ in range(rnd.randint(1, 12))) for _ in range(rnd.randint(1, 4))]
    return ".".join(labels)


def _plain_path(rnd: random.Random) -> str:
    """Mostly characters nobody re-encodes, sometimes one that is: the border of the fast path."""
    safe = list("abcdefghijklmnopqrstuvwxyz0123456789._-~/") * 6 + list("!$&'()*+,;=:@ABCXYZ")
    atoms = safe + ([rnd.choice(PATH_ATOMS)] if rnd.random() < 0.5 else [])
    path = "/" + _chars(rnd, rnd.randint(0, 30), atoms)
    if rnd.random() < 0.4:
        path += "?" + _chars(rnd, rnd.randint(0, 20), atoms + ["?", "=", "&"])
    if rnd.random() < 0.15:
        path += "#" + _chars(rnd, rnd.randint(0, 8), atoms)
    return path


def hostile_urls(count: int, seed: int = 10) -> list[str]:
    """Seeded: the same URLs every run. Half near the fast path's border, half anything."""
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        if rnd.random() < 0.5:
            url = f"{rnd.choice(['http', 'https'])}://{_host(rnd)}{rnd.choice(PORTS)}{_plain_path(rnd)}"
        else:
            path = "".join(rnd.choice(["/", "/", ""]) + _chars(rnd, rnd.randint(0, 10), PATH_ATOMS)
                           for _ in range(rnd.randint(0, 4)))
            url = (f"{rnd.choice(SCHEMES)}{rnd.choice(SEPARATORS)}{rnd.choice(USERINFO)}{_host(rnd)}"
                   f"{rnd.choice(PORTS)}{path}")
            if rnd.random() < 0.1:
                url = rnd.choice([" ", "\t", "\n", "\x00", "\ufeff"]) + url
        out.append(url)
    return out


def mutations(urls: list[str], count: int, seed: int = 11) -> list[str]:
    """Real URLs with one to three characters inserted, replaced or deleted."""
    rnd = random.Random(seed)
    out: list[str] = []
    while urls and len(out) < count:
        url = rnd.choice(urls)
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(url) + 1)
            atom = _escape(rnd) if rnd.random() < 0.1 else rnd.choice(PATH_ATOMS)
            url = rnd.choice([url[:i] + atom + url[i:], url[:i] + atom + url[i + 1:], url[:i] + url[i + 1:]])
        out.append(url)
    return out


def systematic_urls() -> list[str]:
    """Each single character, each escape, each dot segment and port form, at each place of a plain URL."""
    out = []
    for c in [chr(b) for b in range(0x100)] + ["中", "\u3000", "\ud800", "\ufeff"]:
        out += [f"http://a.cn/x{c}y", f"http://a.cn/x?q{c}y", f"http://a.cn/{c}", f"http://a.cn{c}/",
                f"http://a{c}b.cn/", f"https://a.cn:80{c}/x", f"http://a.cn/x?{c}", f"http://a.cn/x#{c}"]
    for b in range(256):
        for escape in (f"%{b:02X}", f"%{b:02x}"):
            out += [f"http://a.cn/{escape}", f"http://a.cn/p?q={escape}", f"http://a.cn/{escape}/x%41"]
    for path in ["", "/", "/.", "/..", "/./", "/../", "/a/.", "/a/..", "/a/./b", "/a/../b", "/.a", "/..a", "/a.",
                 "/a..", "//", "//a", "///a", "/a//b", "/%2e/", "/%2E%2E/", "/a?", "/a?#", "/a#", "/a;p", "/a;",
                 "/a;#f", "/a;p?q#f", "/a?b?c", "?q", "#f", "/a?q=1&r=2", "/a/b.html?x=%E4%B8%AD"]:
        for host in ["a.cn", "127.0.0.1:8080", "[::1]:8080", "A.cn", "a.cn:080", "a.cn:443"]:
            for scheme in ["http", "https", "HTTP"]:
                out.append(f"{scheme}://{host}{path}")
    return out
