"""Legacy Word (.doc), Kingsoft WPS (.wps), OpenDocument (.odt) and RTF files, read by converting them to DOCX
with LibreOffice.

This is the one reader with side effects (a temporary directory and a child process); it stays at the edge:
bytes in, the DOCX reader's model out. Without LibreOffice a .doc falls back to antiword's plain text.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from gongkai.extractors import docx_reader
from gongkai.extractors.model import Document, TextBlock, UnreadableDocument
from gongkai.extractors.textnorm import clean_text

if TYPE_CHECKING:
    from gongkai.extractors.ocr import Limits

OFFICE_COMMANDS = ("soffice", "libreoffice")
CONVERT_TIMEOUT_SECONDS = 120.0
# Kingsoft WPS writes the Word binary format (an OLE2 "WordDocument" stream); Microsoft Works' .wps does not.
_WORD_STREAM = "WordDocument".encode("utf-16-le")


CONVERTED = ("doc", "wps", "odt", "rtf")


def read(data: bytes, fmt: str, timeout: float = CONVERT_TIMEOUT_SECONDS, ocr_limits: Limits | None = None) -> Document:
    """Read a .doc, .wps, .odt or .rtf file; raise UnreadableDocument when no converter is installed or it fails."""
    if fmt not in CONVERTED:
        raise UnreadableDocument(f"convert reads {', '.join('.' + f for f in CONVERTED)} files, not {fmt}")
    if fmt == "doc" and _WORD_STREAM not in data:
        # An OLE2 file without a Word stream (a renamed spreadsheet, a broken download): LibreOffice would
        # import its bytes as plain text rather than fail.
        raise UnreadableDocument("not a Word document: the OLE2 file holds no WordDocument stream")
    if fmt == "odt":  # a zip like a DOCX: refuse a bomb before LibreOffice inflates it
        docx_reader.refuse_unsafe_zip(data, "content.xml", "text document")
    office = find_office()
    if office is not None:
        document = docx_reader.read(to_docx(data, fmt, office, timeout), ocr_limits)
        document.format = fmt
        document.warnings.append(f"read from a LibreOffice conversion of the .{fmt} file to DOCX")
        return document
    antiword = shutil.which("antiword")
    if fmt == "doc" and antiword is not None:
        return _read_with_antiword(data, antiword, timeout)
    raise UnreadableDocument(f"unsupported format: install LibreOffice to read .doc/.wps/.odt/.rtf files (this is .{fmt})")


def find_office() -> str | None:
    """The LibreOffice command on PATH, if any."""
    for command in OFFICE_COMMANDS:
        path = shutil.which(command)
        if path is not None:
            return path
    return None


def to_docx(data: bytes, fmt: str, office: str, timeout: float = CONVERT_TIMEOUT_SECONDS) -> bytes:
    """Convert with a headless LibreOffice that has its own profile, so that conversions can run side by side."""
    with tempfile.TemporaryDirectory(prefix="gongkai-convert-") as tmp:
        # LibreOffice picks its import filter partly by extension: a Word-format .wps reads best as .doc.
        suffix = "doc" if fmt == "doc" or (fmt == "wps" and _WORD_STREAM in data) else fmt
        source = Path(tmp, f"input.{suffix}")
        source.write_bytes(data)
        outdir = Path(tmp, "out")
        command = [
            office,
            f"-env:UserInstallation={Path(tmp, 'profile').as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            "docx:MS Word 2007 XML",
            "--outdir",
            str(outdir),
            str(source),
        ]
        _, stderr = _run(command, timeout, what="LibreOffice")
        result = outdir / "input.docx"
        if not result.is_file():
            raise UnreadableDocument(f"LibreOffice could not convert the .{fmt} file{_detail(stderr)}")
        return result.read_bytes()


def _run(command: list[str], timeout: float, what: str) -> tuple[bytes, bytes]:
    """Run a converter in its own process group, so a timeout kills it with every helper it started."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(process.pid)
        process.communicate()
        raise UnreadableDocument(f"{what} did not finish within {timeout:g} s") from exc
    return stdout, stderr


def _detail(stderr: bytes) -> str:
    """The converter's complaint, without its start-up warnings (LibreOffice's javaldx notice)."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines()]
    errors = [line for line in lines if line and not line.startswith("Warning:")]
    return f": {errors[-1][:300]}" if errors else ""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_with_antiword(data: bytes, antiword: str, timeout: float) -> Document:
    """Text only: antiword loses the tables' structure (no tables come out; title and year still do)."""
    with tempfile.TemporaryDirectory(prefix="gongkai-antiword-") as tmp:
        source = Path(tmp, "input.doc")
        source.write_bytes(data)
        stdout, stderr = _run([antiword, "-m", "UTF-8.txt", "-w", "0", str(source)], timeout, what="antiword")
    if not stdout.strip():
        raise UnreadableDocument(f"antiword could not read the .doc file{_detail(stderr)}")
    lines = (clean_text(line) for line in stdout.decode("utf-8", errors="replace").splitlines())
    document = Document(format="doc", blocks=[TextBlock(line) for line in lines if line])
    document.warnings.append("read as plain text with antiword (install LibreOffice to keep the tables)")
    return document
