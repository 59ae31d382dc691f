"""One reading of a URL: the form the HTTP client sends, judged as it will be sent.

The host allow-list is only as good as the agreement between the parser that checks a URL and the one
that connects. `urlsplit` and urllib3 read `http://a\\@b/` differently (b for one, a for the other), and
WHATWG parsers silently drop tabs and newlines. So a URL is normalised once by requests' own
`PreparedRequest.prepare_url` (what `Session.send` transmits), the result is checked, and the fetcher
sends exactly that string. Anything two parsers could read differently is refused with a one-line reason:
backslashes, control characters, whitespace or `%` outside the path, userinfo, zone ids, bad brackets,
numeric hosts that are not dotted-quad IPv4, ports out of range, non-http(s) schemes.
A space (or other non-control character) inside the path or query is not ambiguous: every parser keeps it
in the path, and requests percent-encodes it as UTF-8 (%20) like any Chinese file name, because real attachment names carry spaces and refusing them would lose reports.
Most URLs are already in the form requests sends (a lower-case http(s) URL, a plain host, nothing to re-encode): those
skip prepare_url and the agreement check (`_settled`), which give them back unchanged; tests/test_urls_fast.py proves
the fast path judges exactly as the full one on every URL of the tests and saved pages and on generated hostile ones.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urldefrag, urljoin, urlsplit

from requests.exceptions import RequestException
from requests.models import PreparedRequest
from requests.utils import UNRESERVED_SET
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

MAX_URL = 4096
# URLs remembered parsed (~160 bytes each): more than a crawl has in flight (a host's next request and its queued items
# are parsed when queued, again when sent). 16,384 held every URL of a 1,000-host crawl (11,000: 1.7 MB at its end,
# growing with the hosts); at 4,096 the same crawl parses 5,400 URLs again, 30 ms of its 18 CPU-s (5.5 us each)
PARSED_CACHE = 4096
DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1
# ASCII: under Unicode IGNORECASE "ſ" (U+017F) matches "s", and "httpſ://h:80/" passed as an http(s) URL
_SHAPE = re.compile(r"(?i)(https?)://([^/?#]*)(.*)", re.S | re.A)
_AUTHORITY = re.compile(r"(?:(\[[^\]]*\])|([A-Za-z0-9.-]+))(?::(\d{1,5}))?")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# The rest of a URL that requests' prepare_url leaves exactly as written: a path, then an optional non-empty query, of
# the characters both urllib3 (_PATH_CHARS, _QUERY_CHARS: RFC 3986 unreserved, sub-delims, ":", "@", "/", and "?" in
# the query) and requote_uri (its safe set) keep as they are; "%" only as an escape checked by _KEPT_ESCAPES.
_SETTLED_REST = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/%-]*(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?%-]+)?")
# %XX escapes both keep: upper-case hex (urllib3 upper-cases), not an unreserved character (requote_uri decodes those)
_KEPT_ESCAPES = frozenset(f"{byte:02X}" for byte in range(256) if chr(byte) not in UNRESERVED_SET)


class BadURL(ValueError):
    """A URL refused before any request; `reason` is one line."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url[:200]!r}: {reason}")
        self.url, self.reason = url, reason


@dataclass(frozen=True, slots=True)
class SafeURL:
    """Made by `safe` (its scheme, host and port shared among the URLs of a host): PARSED_CACHE of them are kept, one
    per URL of a crawl of thousands of hosts (with a __dict__ each and a host, scheme and port of its own: ~380 bytes)."""

    url: str  # exactly what is sent
    scheme: str
    host: str  # lower case; an IPv6 address without brackets
    port: int
    # host[:port] as the registry writes it (default port dropped, IPv6 in brackets): the politeness key, asked for
    # several times a request. Made once (it was made at every call) and shared: one string per host, however many
    # requests keep it (slots' request log, counters)
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        key = host if self.port == DEFAULT_PORTS[self.scheme] else _shared(f"{host}:{self.port}")
        object.__setattr__(self, "key", key)  # frozen

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.key}"

    @property
    def is_ip_literal(self) -> bool:
        return _ip(self.host) is not None


_PORTS: dict[int, int] = {}  # one int per port (those above 256 are not shared by Python): at most 65,535
# the scheme, host and host:port strings the SafeURLs of a host share: a table of our own, emptied when it is full (the
# strings then stay only as long as a URL holds them), not sys.intern: on Python 3.12 an interned string is immortal
# (PEP 683), and every host of every link a page gave (a hostile page: thousands of made-up ones) was kept for good
MAX_SHARED = PARSED_CACHE
_SHARED: dict[str, str] = {}


def _shared(text: str) -> str:
    kept = _SHARED.get(text)
    if kept is None:
        if len(_SHARED) >= MAX_SHARED:  # (threads: a clear racing a put loses some sharing, never a string)
            _SHARED.clear()
        kept = _SHARED.setdefault(text, text)
    return kept


def safe(url: str, scheme: str, host: str, port: int) -> SafeURL:
    """A SafeURL whose scheme, host and port are those of the URLs before it with the same (shared: _shared)."""
    return SafeURL(url, _shared(scheme), _shared(host), _PORTS.setdefault(port, port))


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _raw_checks(url: str) -> None:
    if len(url) > MAX_URL:
        raise BadURL(url, f"URL longer than {MAX_URL} characters")
    if _CONTROL.search(url):
        raise BadURL(url, "control character in URL")
    if "\\" in url:
        raise BadURL(url, "backslash in URL")


def _authority(url: str, authority: str) -> tuple[str, int | None]:
    """(host, port) of an authority that every parser reads the same way, else BadURL."""
    if "@" in authority:
        raise BadURL(url, "credentials (userinfo) in URL")
    if "%" in authority:
        raise BadURL(url, "percent-encoded host or IPv6 zone id")
    if any(c.isspace() for c in authority):
        raise BadURL(url, "whitespace in host")
    m = _AUTHORITY.fullmatch(authority)
    if not m:
        raise BadURL(url, f"malformed host {authority[:80]!r}")
    bracketed, name, port_text = m.groups()
    if bracketed:
        address = _ip(bracketed[1:-1])
        if not isinstance(address, ipaddress.IPv6Address):
            raise BadURL(url, f"malformed IPv6 host {bracketed[:80]!r}")
        host = address.compressed
    else:
        host = name.lower()
        labels = host.split(".")
        if labels[-1].isdigit() or re.fullmatch(r"0x[0-9a-f]*", labels[-1]):
            # 127.1, 2130706433, 0x7f.1: resolvers read these as IPv4 in several ways; only dotted-quad is plain
            if not isinstance(_ip(host), ipaddress.IPv4Address):
                raise BadURL(url, f"ambiguous numeric host {host!r}")
        elif not all(_LABEL.fullmatch(label) for label in labels):
            raise BadURL(url, f"malformed host name {host!r}")
    port = None
    if port_text is not None:
        port = int(port_text)
        if not 0 < port < 65536:
            raise BadURL(url, f"port {port} out of range")
    return host, port


def _split(url: str) -> tuple[str, str, int, str]:
    m = _SHAPE.fullmatch(url)
    if not m:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme in DEFAULT_PORTS:
            raise BadURL(url, f"malformed {scheme} URL (no //host)")
        raise BadURL(url, f"not an http(s) URL (scheme {scheme[:20]!r})" if scheme else "not an absolute http(s) URL")
    scheme = m.group(1).lower()
    host, port = _authority(url, m.group(2))
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme], m.group(3)


def parse(url: str) -> SafeURL:
    """The URL as requests will send it, checked; BadURL (with a one-line reason) if it is ambiguous.

    A pure function of the string, and about 0.1 ms of CPU: a crawl asks for the same URL several times (the
    scheduler's queue, the fetcher's checks, robots.txt), so accepted URLs are remembered (a bounded LRU); a refusal
    is judged again each time (exceptions are not cached)."""
    if not isinstance(url, str):
        raise BadURL(repr(url), "not a string")
    return _parse_cached(url)


@lru_cache(maxsize=PARSED_CACHE)
def _parse_cached(url: str) -> SafeURL:
    return parse_uncached(url)


def parse_uncached(url: str) -> SafeURL:
    _raw_checks(url)
    if "#" in url:  # urldefrag returns a URL without one as it is
        url = _defragment(url)
    scheme, host, port, rest = _split(url)
    if _settled(url, scheme, host, port, rest):
        return safe(url, scheme, host, port)
    # requests' own normalisation (IDNA, dot segments, percent-encoding), until it no longer changes the URL:
    # the fixed point is what Session.send transmits for it
    sent = url
    for _ in range(4):
        prepared = PreparedRequest()
        try:
            prepared.prepare_url(sent, None)
        except (RequestException, LocationParseError, ValueError) as exc:
            raise BadURL(url, f"{type(exc).__name__}: {exc}") from None
        assert prepared.url is not None
        if prepared.url == sent:
            break
        sent = prepared.url
    else:
        raise BadURL(url, "URL does not settle under the HTTP client's normalisation")
    _agree(url, sent, scheme, host, port)
    return safe(sent, scheme, host, port)


def _defragment(url: str) -> str:
    try:
        return urldefrag(url).url
    except ValueError as exc:  # urlsplit's bracket checks ("http://[::1/#x"): a ValueError every caller let through
        _split(url)  # the reason the URL would get without its fragment
        raise BadURL(url, f"malformed URL ({exc})") from None


def _settled(url: str, scheme: str, host: str, port: int, rest: str) -> bool:
    """Whether requests' normalisation would send `url` exactly as written (then the parsers agree on it too), so the
    slow half of parse_uncached (prepare_url, 40 µs; then urllib3 and urlsplit) can be skipped: the common case of a
    lower-case http(s) URL with a host name or dotted quad, a canonical port, a path without dot segments and only
    characters nobody re-encodes. Anything else, however harmless, takes the full path. That both give the same result
    on every URL is tested against the full path kept as a reference (tests/test_urls_fast.py).
    Each condition is one reason prepare_url could change the URL:"""
    if ":" in host or not url.startswith(scheme):  # IPv6 (compressed by us, not by urllib3); upper-case scheme
        return False
    authority = url[len(scheme) + 3:len(url) - len(rest)]
    if authority != host and authority != f"{host}:{port}":  # upper-case host, port with leading zeros
        return False
    if "/." in rest or not _SETTLED_REST.fullmatch(rest):  # dot segments removed; empty path becomes "/"; encoding
        return False
    return "%" not in rest or all(escape[:2] in _KEPT_ESCAPES for escape in rest.split("%")[1:])


def _agree(original: str, sent: str, scheme: str, host: str, port: int) -> None:
    """The URL to send must read the same to our strict split, to urllib3 (which connects) and to urlsplit."""
    if not sent.isascii() or any(c.isspace() for c in sent) or "\\" in sent or _CONTROL.search(sent):
        raise BadURL(original, "URL not plain ASCII after normalisation")
    again = _split(sent)[:3]
    u3 = parse_url(sent)
    u3_host = (u3.host or "").strip("[]").lower()
    u3_host = ipaddress.ip_address(u3_host).compressed if _ip(u3_host) else u3_host
    parts = urlsplit(sent)
    readings = {
        again,
        (u3.scheme, u3_host, u3.port or DEFAULT_PORTS.get(u3.scheme or "", 0)),
        (parts.scheme, _compressed(parts.hostname or ""), parts.port or DEFAULT_PORTS.get(parts.scheme, 0)),
    }
    if readings != {(scheme, host, port)} or u3.auth or parts.username is not None:
        raise BadURL(original, "parsers disagree on the host of this URL")


def _compressed(host: str) -> str:
    address = _ip(host)
    return address.compressed if address is not None else host


def resolve(base: str, reference: str) -> SafeURL:
    """A link or a redirect's Location, taken relative to `base`, checked raw (before urljoin, which silently
    drops tabs and newlines) and after."""
    reference = reference.strip(" ")
    if not reference:
        raise BadURL(base, "empty link or Location")
    _raw_checks(reference)
    try:
        joined = urljoin(base, reference)
    except ValueError as exc:
        raise BadURL(reference, f"malformed URL ({exc})") from None
    return parse(joined)
