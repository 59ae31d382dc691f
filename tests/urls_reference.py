"""crawler/urls.py as it was before its fast path (commit 9c0652f), kept verbatim as the reference the fast path is
compared against (tests/test_urls_fast.py, benchmarks/bench_urls.py). Do not edit: it is the definition of "the same
result"; the only change is this docstring."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urldefrag, urljoin, urlsplit

from requests.exceptions import RequestException
from requests.models import PreparedRequest
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

MAX_URL = 4096
PARSED_CACHE = 16384  # URLs remembered parsed (a few MB): more than a crawl of thousands of hosts has in flight
DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1
_SHAPE = re.compile(r"(?i)(https?)://([^/?#]*)(.*)", re.S)
_AUTHORITY = re.compile(r"(?:(\[[^\]]*\])|([A-Za-z0-9.-]+))(?::(\d{1,5}))?")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class BadURL(ValueError):
    """A URL refused before any request; `reason` is one line."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url[:200]!r}: {reason}")
        self.url, self.reason = url, reason


@dataclass(frozen=True)
class SafeURL:
    url: str  # exactly what is sent
    scheme: str
    host: str  # lower case; an IPv6 address without brackets
    port: int

    @property
    def key(self) -> str:
        """host[:port] as the registry writes it (default port dropped, IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.key}"

    @property
    def is_ip_literal(self) -> bool:
        return _ip(self.host) is not None


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
    url = urldefrag(url).url
    scheme, host, port, _rest = _split(url)
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
    return SafeURL(sent, scheme, host, port)


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
