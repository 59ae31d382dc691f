"""Tables pasted into a report page as linked pictures (`<img src="/images/…png">`): fetched with the page over real
HTTP (loopback), archived, recorded page → pictures, read by OCR through a real crawl + ingest, and read again by
reprocess; a picture not fetched (another host, over the cap) is named in a warning, never dropped in silence."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR extra is not installed (pip install gongkai[ocr])")

from loopback_site import Site  # noqa: E402
from PIL import Image  # noqa: E402

from gongkai.crawler.adapters import Candidate  # noqa: E402
from gongkai.crawler.crawl import CrawlContext, listing_item  # noqa: E402
from gongkai.crawler.fetcher import Fetcher  # noqa: E402
from gongkai.crawler.pictures import MAX_PAGE_PICTURES  # noqa: E402
from gongkai.crawler.registry import Portal  # noqa: E402
from gongkai.crawler.state import CrawlState  # noqa: E402
from gongkai.extractors import html_reader  # noqa: E402
from gongkai.flows.crawl import _ingest_into  # noqa: E402
from gongkai.flows.pipeline import Pipeline  # noqa: E402
from gongkai.warehouse import open_warehouse  # noqa: E402
from gongkai.warehouse.archive import open_archive  # noqa: E402
from gongkai.warehouse.store import DocumentInfo, IngestOutcome  # noqa: E402

HERE = Path(__file__).parent
DOCUMENTS = HERE / "corpus" / "documents"
GOLD = HERE / "corpus" / "gold"
REPORT = "hongze-2023.pdf"


@pytest.fixture()
def sites() -> Iterator[tuple[Site, Site]]:
    portal, other = Site(), Site()
    for site in (portal, other):
        site.routes["/robots.txt"] = (b"User-agent: *\nAllow: /\n", "text/plain")
    yield portal, other
    portal.close()
    other.close()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def report_page(texts: list[str], sources: list[str]) -> bytes:
    """A TRS detail page: the report's text, its tables as linked pictures."""
    body = [f"<p>{html.escape(text)}</p>" for text in texts] + [f'<p><img src="{src}"></p>' for src in sources]
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>report</title></head><body>'
            f'<div class="TRS_Editor">{"".join(body)}</div></body></html>').encode()


def portal_of(site: Site) -> Portal:
    return Portal("test-pictures", "洪泽区人民政府", "320813", "county", "trs", (f"http://{site.host}/list.html",),
                  frozenset({site.host}))


def context(site: Site, ingest: Any) -> CrawlContext:
    fetcher = Fetcher(frozenset({site.host}), delay=0.0, timeout=(2.0, 5.0), retries=0, backoff=0.01)
    return CrawlContext(fetcher, CrawlState(None), ingest)


def test_tables_linked_as_pictures_come_back_through_crawl_ingest_and_reprocess(
    sites: tuple[Site, Site], tmp_path: Path
) -> None:
    from ocr_scans import table_pictures

    from gongkai.extractors import pdf_reader

    site, other = sites
    pdf = (DOCUMENTS / REPORT).read_bytes()
    gold = json.loads((GOLD / f"{REPORT}.json").read_text(encoding="utf-8"))["cells"]
    sources = []
    for number, picture in enumerate(table_pictures(pdf, 200), 1):
        sources.append(f"/images/2023/t{number}.png")
        site.routes[sources[-1]] = (png(picture), "image/png")
    site.routes["/images/icon.png"] = (png(Image.new("L", (16, 16), 255)), "image/png")  # an icon: skipped by its size
    foreign = f"http://{other.host}/images/elsewhere.png"
    other.routes["/images/elsewhere.png"] = site.routes[sources[0]]
    texts = [block.text for block in pdf_reader.read(pdf).blocks]
    site.routes["/art/report.html"] = (report_page(texts, [*sources, "/images/icon.png", foreign]), "text/html; charset=utf-8")

    warehouse, archive = open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}"), open_archive(tmp_path / "archive")
    pipeline = Pipeline(warehouse, archive)
    url = f"http://{site.host}/art/report.html"
    [outcome] = listing_item(context(site, _ingest_into(pipeline)), portal_of(site),
                             Candidate("洪泽区2023年政府信息公开工作年度报告", url))
    assert outcome.outcome == "new", outcome
    assert set(site.requests) >= {*sources, "/images/icon.png"} and other.requests == []  # the other host: never asked

    report_id = warehouse.current_report(outcome.sha256)
    assert report_id is not None
    cells = warehouse.cells_of(report_id)
    assert {a: cells.get(a) for a in gold} == gold
    [[warnings]] = warehouse.db.query("SELECT warnings FROM reports WHERE report_id = ?", [report_id])
    assert any("unread pictures" in w and foreign in w for w in json.loads(warnings))
    recorded = warehouse.page_pictures(outcome.sha256)
    assert set(recorded) == {*sources, "/images/icon.png"} and recorded["/images/icon.png"] is None
    assert all(recorded[src] in archive for src in sources)

    # reprocess: the page's pictures are found again from the archive, not re-fetched
    served = len(site.requests)
    doc = DocumentInfo(outcome.sha256, 0, "text/html", "report.html", url, "洪泽区人民政府", None)
    again = Pipeline(warehouse, archive).reprocess(doc, refresh=True)
    assert again.outcome == "unchanged", again  # the same cells: read with its pictures again
    cells = warehouse.cells_of(warehouse.current_report(outcome.sha256) or -1)
    assert {a: cells.get(a) for a in gold} == gold and len(site.requests) == served
    warehouse.close()


def test_at_most_the_cap_of_pictures_is_fetched_and_the_rest_are_named(sites: tuple[Site, Site]) -> None:
    site, _ = sites
    blank = png(Image.new("L", (120, 80), 255))
    sources = [f"/images/p{n}.png" for n in range(MAX_PAGE_PICTURES + 5)]
    for src in sources:
        site.routes[src] = (blank, "image/png")
    page = report_page(["洪泽区2023年政府信息公开工作年度报告"], sources)
    site.routes["/art/many.html"] = (page, "text/html; charset=utf-8")
    calls: list[dict[str, Any]] = []

    def ingest(data: bytes, **kw: Any) -> IngestOutcome:
        calls.append(kw)
        return IngestOutcome("", "new")

    listing_item(context(site, ingest), portal_of(site), Candidate("年度报告", f"http://{site.host}/art/many.html"))
    fetched = [path for path in site.requests if path.startswith("/images/")]
    assert fetched == sources[:MAX_PAGE_PICTURES]
    [call] = calls
    assert list(call["pictures"]) == sources[:MAX_PAGE_PICTURES]
    doc = html_reader.read(page, pictures={src: b"" for src in call["pictures"]})  # given, skipped: only the rest named
    [warning] = [w for w in doc.warnings if w.startswith("unread pictures")]
    assert "links 5 picture(s)" in warning and all(src in warning for src in sources[MAX_PAGE_PICTURES:])
    assert sources[0] not in warning.split(":", 2)[-1].split(", ")


def test_a_page_read_without_its_linked_pictures_names_them() -> None:
    """A page ingested from a file (or whose pictures failed to download): its linked pictures are named."""
    page = report_page(["年度报告"], ["/images/t1.png", "icons/dot.gif"]).replace(
        b'src="icons/dot.gif"', b'src="icons/dot.gif" width="12" height="12"')
    doc = html_reader.read(page)
    assert [w for w in doc.warnings if w.startswith("unread pictures")] == [
        "unread pictures: the page has no table and links 1 picture(s) not fetched with it (tables pasted as pictures?): "
        "/images/t1.png"]
