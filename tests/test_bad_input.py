"""Bad input: a one-line error naming the file and the reason, and the other files of the call still extracted."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from conftest import DOCUMENTS
from PIL import Image

from gongkai.cli import main


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(out, fmt)
    return out.getvalue()


def _zip_bomb() -> bytes:
    """A .docx whose document.xml inflates to 300 MB of zeros (about 300 kB on disk)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(chunk)
    return out.getvalue()


def _big_html() -> bytes:
    paragraph = "<p>本年度政府信息公开工作情况说明，内容很长。</p>\n".encode()
    return b"<html><head><meta charset='utf-8'><title>big</title></head><body>" + paragraph * (50_000_000 // len(paragraph)) + b"</body></html>"


BAD = {
    "truncated.pdf": lambda: (DOCUMENTS / "hongze-2023.pdf").read_bytes()[:40_000],
    "image-only.pdf": lambda: _image("PDF"),
    "empty.pdf": lambda: b"",
    "picture.pdf": lambda: _image("PNG"),
    "bomb.docx": _zip_bomb,
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    paths = {}
    for name, make in BAD.items():
        paths[name] = folder / name
        paths[name].write_bytes(make())
    return paths


def test_each_bad_file_is_one_line_and_the_good_file_is_extracted(bad_files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    good = DOCUMENTS / "zibo-stats-2023.txt"
    code = main(["extract", *[str(p) for p in bad_files.values()], str(good)])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if "unreadable" in line]
    assert len(errors) == len(bad_files)
    reasons = {name: next(line for line in errors if str(path) in line) for name, path in bad_files.items()}
    assert "scanned: no text layer" in reasons["image-only.pdf"]
    assert "empty" in reasons["empty.pdf"]
    assert "image" in reasons["picture.pdf"]
    assert "zip bomb" in reasons["bomb.docx"]
    assert "internal error" not in captured.err
    results = json.loads(captured.out)
    assert [r["source"]["path"] for r in results] == [str(good)]
    assert results[0]["cells"]["requests.new.total"] == 77


def test_encrypted_pdf_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=io.BytesIO((DOCUMENTS / "hongze-2023.pdf").read_bytes()))
    writer.encrypt(user_password="secret", owner_password="owner")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    assert main(["extract", str(path)]) == 1
    assert "encrypted" in capsys.readouterr().err


def test_a_50_mb_html_page_without_tables_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.html"
    path.write_bytes(_big_html())
    assert main(["extract", str(path)]) == 0
    captured = capsys.readouterr()
    assert "not a report" in captured.err
    assert json.loads(captured.out)["cells"] == {}


def test_html_page_with_no_tables_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notice.html"
    path.write_text("<html><body><h1>关于召开会议的通知</h1><p>各单位：定于下周开会。</p></body></html>", encoding="utf-8")
    assert main(["extract", "--format", "table", str(path)]) == 0
    assert "not a report" in capsys.readouterr().err
