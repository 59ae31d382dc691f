"""A file the crawler already stored (Pipeline.ingest(archived=…), read back from the archive by its digest) is not
put into the archive again, nor are its page's pictures: each picture is hashed for the page → picture record, which
names the same digests a store would have. A file not stored before is put, with its pictures, as always."""

from __future__ import annotations

from pathlib import Path

from gongkai.crawler.crawl import Stored
from gongkai.flows.pipeline import Pipeline
from gongkai.warehouse import open_warehouse
from gongkai.warehouse.archive import open_archive, sha256_of

PAGE = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>report</title></head><body>'
        '<div class="TRS_Editor"><p>2023年政府信息公开工作年度报告</p><p><img src="/images/t1.png"></p>'
        '<p><img src="/images/icon.png"></p></div></body></html>').encode()
PICTURES: dict[str, bytes | None] = {"/images/t1.png": b"\x89PNG not really a picture", "/images/icon.png": None}


def test_a_stored_page_and_its_pictures_are_not_put_again_and_their_links_are_recorded(tmp_path: Path) -> None:
    warehouse, archive = open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}"), open_archive(tmp_path / "archive")
    stored = Stored.put(archive, PAGE, PICTURES)  # what the crawler did where it fetched the page
    puts: list[bytes] = []
    put = archive.put
    archive.put = lambda data: (puts.append(data), put(data))[1]  # type: ignore[method-assign]

    outcome = Pipeline(warehouse, archive).ingest(PAGE, name="report.html", url="http://h/report.html",
                                                  pictures=PICTURES, archived=stored.sha256)
    assert outcome.sha256 == stored.sha256 and puts == []
    picture = PICTURES["/images/t1.png"] or b""
    assert warehouse.page_pictures(stored.sha256) == {"/images/t1.png": sha256_of(picture), "/images/icon.png": None}
    assert warehouse.page_pictures(stored.sha256) == stored.pictures
    warehouse.close()


def test_a_page_not_stored_before_is_put_with_its_pictures(tmp_path: Path) -> None:
    warehouse, archive = open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}"), open_archive(tmp_path / "archive")
    outcome = Pipeline(warehouse, archive).ingest(PAGE, name="report.html", url="http://h/report.html",
                                                  pictures=PICTURES)
    picture = PICTURES["/images/t1.png"] or b""
    assert outcome.sha256 in archive and sha256_of(picture) in archive
    assert archive.get(sha256_of(picture)) == picture
    assert warehouse.page_pictures(outcome.sha256) == {"/images/t1.png": sha256_of(picture), "/images/icon.png": None}
    warehouse.close()
