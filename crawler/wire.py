"""Reading a response head more cheaply, to the same result as http.client.

http.client parses every response's header block with the email package (a feed parser in pure Python: some 5 % of a
1,000-host crawl's CPU) and reads the socket through an 8 KB buffer (a 40 KB body took three or four recv calls, each
behind a poll and a hand-off of the GIL among the crawl's 128 threads). `Response` is http.client's response with:

- a larger read buffer (`BUFFER`, 16 kB): a head and a small body that have arrived are taken in one recv; the bytes
  read and the way they are parsed are unchanged (the request is only sent once the previous response was read to its end);
- `parse_header_lines`: a header block where every line is a plain `name: value` line (the crawl's every response)
  is turned into the very HTTPMessage email's parser builds (same headers, order, values, no defects, empty payload);
  anything else (folded lines, a line that is not a header, a `From ` line, odd line breaks, a multipart or message
  content type) goes to email's parser as before. tests/test_fetcher_wire.py compares both on generated hostile heads.

`Response.begin` is http.client's own (CPython 3.11), with `_read_headers` + `parse_header_lines` in place of
`parse_headers`. It is used only where this Python's begin is the one it was copied from (`BEGIN_SHA256`, checked
once at import): any other Python reads heads with its own begin, through the larger buffer only (`response_class`).
"""

from __future__ import annotations

import email.parser
import hashlib
import http.client
import inspect
import logging
import re
import socket
from typing import Any, Literal

import urllib3.connection
from urllib3 import HTTPHeaderDict
from urllib3.connection import _url_from_connection
from urllib3.exceptions import HeaderParsingError
from urllib3.response import HTTPResponse
from urllib3.util.response import assert_header_parsing

try:  # (urllib3 2.8's: a urllib3 without it has another getresponse, used as it is: lean_getresponse below)
    from urllib3.connection import _normalize_header_values
except ImportError:
    _normalize_header_values = None  # type: ignore[assignment]

# Each response in flight holds one such buffer from its request's send to its end (the makefile of http.client's
# response is made before the server answers): at 1,000 hosts 128 requests are in flight at all times, against ~10 at
# 100 hosts, so 64 kB here held ~8 MB more at 1,000 hosts than at 100. 16 kB takes a head and a small body (robots.txt,
# listing and detail pages, small files) in one recv as 64 kB did; a body of 16-64 kB takes two recv calls more (its
# middle read straight into the body past the buffer, its last part through it), a larger one as many as before.
# bench_fetch_wire (the crawl's mix, 64 kB against 16 kB, alternately): the same CPU per request within the noise
BUFFER = 16 * 1024
# sha256 of the source of http.client.HTTPResponse.begin that Response.begin copies (CPython 3.11)
BEGIN_SHA256 = "e06ec06b086c7ea0b9857657c435786fe031fdb272ec4080256e40ff04559a0e"
# a header line email's parser reads as exactly one header: a token-ish name (its headerRE: no space, no colon), a
# colon, a value without a line break of its own (a lone \r ends a line for email's parser; the other separators
# str.splitlines knows, \x0b \x0c \x1c-\x1e \x85, go to email's parser too: rare, and safe either way), one EOL
_PLAIN_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:[^\r\n\x0b\x0c\x1c\x1d\x1e\x85]*\r?\n")
_PLAIN_BLOCK = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n\x0b\x0c\x1c\x1d\x1e\x85]*\r?\n)*")  # _PLAIN_LINEs
_SPECIAL_TYPE = re.compile(rb"multipart|message", re.IGNORECASE)  # content types email's parser looks into


def parse_header_lines(lines: list[bytes]) -> http.client.HTTPMessage:
    """The HTTPMessage of http.client.parse_headers for the lines _read_headers returned (the blank line last)."""
    if lines and lines[-1] in (b"\r\n", b"\n"):
        # the whole block at once: every line plain (each ends at its one \n: _PLAIN_BLOCK's lines are the lines
        # _read_headers split) and no content type email's parser looks into anywhere in it; else line by line below
        block = b"".join(lines[:-1])
        if _PLAIN_BLOCK.fullmatch(block) is not None and _SPECIAL_TYPE.search(block) is None:
            message = http.client.HTTPMessage()
            message._headers = [  # type: ignore[attr-defined]
                (name, value.lstrip(" \t").rstrip("\r"))  # no \r but the last in a plain line: rstrip("\r\n") below
                for name, _, value in (line.partition(":") for line in block.decode("iso-8859-1").split("\n")[:-1])]
            message._payload = ""  # type: ignore[attr-defined]
            return message
        headers = []
        for line in lines[:-1]:
            if _PLAIN_LINE.fullmatch(line) is None:
                break
            name, _, value = line.decode("iso-8859-1").partition(":")
            if name.lower() == "content-type" and _SPECIAL_TYPE.search(line):
                break
            headers.append((name, value.lstrip(" \t").rstrip("\r\n")))  # email's compat32 header_source_parse
        else:
            message = http.client.HTTPMessage()
            message._headers = headers  # type: ignore[attr-defined]
            message._payload = ""  # type: ignore[attr-defined]  # what the parser leaves after the blank line
            return message
    parsed: http.client.HTTPMessage = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
        b"".join(lines).decode("iso-8859-1"))
    return parsed


class _Buffered:
    """The socket as http.client's response sees it: only its makefile, with a larger buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def makefile(self, mode: Literal["rb"]) -> Any:
        return self._sock.makefile(mode, BUFFER)


class BufferedResponse(http.client.HTTPResponse):
    """http.client's response, unchanged but for its larger read buffer."""

    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None,
                 url: str | None = None) -> None:
        super().__init__(_Buffered(sock), debuglevel, method, url)  # type: ignore[arg-type]


class Response(BufferedResponse):

    # http.client.HTTPResponse.begin of CPython 3.11 with the header block parsed by parse_header_lines
    def begin(self) -> None:  # noqa: C901 - kept line for line as http.client has it
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            skipped_headers = http.client._read_headers(self.fp)
            if self.debuglevel > 0:
                print("headers:", skipped_headers)
            del skipped_headers
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)

        self.headers = self.msg = parse_header_lines(http.client._read_headers(self.fp))

        if self.debuglevel > 0:
            for hdr, val in self.headers.items():
                print("header:", hdr + ":", val)

        tr_enc = self.headers.get("transfer-encoding")
        if tr_enc and tr_enc.lower() == "chunked":
            self.chunked = True
            self.chunk_left = None
        else:
            self.chunked = False

        self.will_close = self._check_close()

        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        else:
            self.length = None

        if (status == http.client.NO_CONTENT or status == http.client.NOT_MODIFIED or
                100 <= status < 200 or
                self._method == "HEAD"):
            self.length = 0

        if (not self.will_close and
                not self.chunked and
                self.length is None):
            self.will_close = True


def _begin_is_the_copied_one() -> bool:
    try:
        source = inspect.getsource(http.client.HTTPResponse.begin)
    except (OSError, TypeError):  # no source shipped: nothing to compare with
        return False
    return hashlib.sha256(source.encode()).hexdigest() == BEGIN_SHA256


# what the pinned connections read responses with (crawler/transport.py)
response_class: type[http.client.HTTPResponse] = Response if _begin_is_the_copied_one() else BufferedResponse


# --- urllib3's side of a response: its HTTPConnection.getresponse, with less done for a plainly read head -------------

# sha256 of the source of urllib3.connection.HTTPConnection.getresponse that getresponse below follows (urllib3 2.8.0)
GETRESPONSE_SHA256 = "b00fb0a4b235caa1b5faf85621a529ad356a5ad39a4ddab202f005b96e19cc4e"
_log = logging.getLogger("urllib3.connection")  # where urllib3's getresponse warns of a head it could not parse


class ResponseHeaders(HTTPHeaderDict):
    """urllib3's HTTPHeaderDict whose get finds a missing name without raising and catching a KeyError (Mapping.get):
    a response's Content-Length, Content-Encoding, Transfer-Encoding are each asked for once or twice a request by
    urllib3 and the fetcher, and mostly missing. The same answer as HTTPHeaderDict's get: the values joined by ", "."""

    def get(self, key: Any, default: Any = None) -> Any:
        if type(key) is str:
            values = self._container.get(key.lower())
            return default if values is None else ", ".join(values[1:])
        return super().get(key, default)


def _headers_of(message: http.client.HTTPMessage) -> Any:
    """urllib3's HTTPHeaderDict(_normalize_header_values(message)): the same adds in the same order, without the
    constructor's checks of what it was given (typing.Mapping, typing.Iterable: abstract-class checks, ~3 % of a
    request's CPU in the HTTP client). A value with a folded line break goes through urllib3's own normalisation."""
    items = message.items()
    if any("\r\n" in value for _, value in items):
        return HTTPHeaderDict(_normalize_header_values(message))
    headers = ResponseHeaders()
    add = headers.add
    for name, value in items:
        add(name, value)
    return headers


def getresponse(self: Any) -> Any:
    """urllib3.connection.HTTPConnection.getresponse (2.8.0) line for line, but: its HTTPResponse imported once (it
    imported it at every call, against a circular import), assert_header_parsing asked only where it can find
    something (a head with defects or text after it: email's parser's; a head parse_header_lines read has neither,
    and the check then did nothing), the headers built by _headers_of. Same response, same warning, same errors."""
    if self._response_options is None:
        raise http.client.ResponseNotReady()
    resp_options = self._response_options
    self._response_options = None
    self.sock.settimeout(self.timeout)
    _shutdown = getattr(self.sock, "shutdown", None)
    httplib_response = http.client.HTTPConnection.getresponse(self)
    message = httplib_response.msg
    unparsed = getattr(message, "_payload", None)  # email's parser leaves the text after the head here
    if message.defects or unparsed or not isinstance(message, http.client.HTTPMessage):
        try:
            assert_header_parsing(message)
        except (HeaderParsingError, TypeError) as hpe:
            _log.warning("Failed to parse headers (url=%s): %s",
                         _url_from_connection(self, resp_options.request_url), hpe, exc_info=True)
    return HTTPResponse(
        body=httplib_response,
        headers=_headers_of(message),
        status=httplib_response.status,
        version=httplib_response.version,
        version_string=getattr(self, "_http_vsn_str", "HTTP/?"),
        reason=httplib_response.reason,
        preload_content=resp_options.preload_content,
        decode_content=resp_options.decode_content,
        original_response=httplib_response,
        enforce_content_length=resp_options.enforce_content_length,
        request_method=resp_options.request_method,
        request_url=resp_options.request_url,
        sock_shutdown=_shutdown,
    )


def _getresponse_is_the_followed_one() -> bool:
    if _normalize_header_values is None:  # not the urllib3 getresponse below follows (which calls it)
        return False
    try:
        source = inspect.getsource(urllib3.connection.HTTPConnection.getresponse)
    except (OSError, TypeError):
        return False
    return hashlib.sha256(source.encode()).hexdigest() == GETRESPONSE_SHA256


# what the pinned connections get their responses with (crawler/transport.py): urllib3's own on any other urllib3
lean_getresponse: Any = getresponse if _getresponse_is_the_followed_one() else None
