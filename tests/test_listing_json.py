"""A listing API's JSON answer (TRS search, gkmlpt) whose escapes name half a surrogate pair (`"\\ud800"`): json.loads
made lone surrogates of them in titles and URLs, and the writing of the run's summary raised UnicodeEncodeError at the
end of the crawl (a traceback, the summary lost). Each is read as U+FFFD, as a browser shows it. Real HTTP over
loopback, a real crawl into DuckDB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_html_charsets import DOCUMENTS, TITLE, Site

from gongkai.crawler.adapters import PageRequest, gkmlpt, json_answer, trs
from gongkai.crawler.registry import Portal

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
URL = "http://www.example.gov.cn/gkmlpt/api/all/2629?page=1&sid=175"


def portal(cms: str, **params: object) -> Portal:
    return Portal("p", "某局", "000000", "county", cms, (URL,), frozenset({"www.example.gov.cn"}), params)


# high half alone, low half alone, at the end, a pair (one character, kept), an escaped backslash before 'ud800'
TITLES = ["\\ud800" + TITLE, TITLE + "\\udc80", "\\uDBFF\\u0041" + TITLE, "\\ud83d\\ude00" + TITLE, "\\\\ud800" + TITLE]
SHOWN = ["\ufffd" + TITLE, TITLE + "\ufffd", "\ufffdA" + TITLE, "\U0001f600" + TITLE, "\\ud800" + TITLE]


def test_each_json_family_reads_half_surrogate_escapes_as_replacement_characters() -> None:
    articles = ", ".join(f'{{"title": "{t}", "url": "/gkmlpt/content/4/4688/post_{i}\\ud800.html"}}' for i, t in enumerate(TITLES))
    gk = '{"total": 5, "articles": [' + articles + "]}"
    page = gkmlpt.parse_listing(portal("gkmlpt", category="2629", sid="175"), PageRequest(URL), gk, URL)
    assert [c.title for c in page.candidates] == SHOWN
    assert all("\ufffd" in c.url and not LONE_SURROGATE.search(c.url) for c in page.candidates)
    records = ", ".join(f'{{"doctitle": "{t}", "docpuburl": "./202403/t20240301_{i}.html", "docreltime": "2024-03-01"}}'
                        for i, t in enumerate(TITLES))
    search = '{"pager": {"pageCount": 1}, "\\ud800": {"list": [' + records + "]}}"
    found = trs.parse_listing(portal("trs", search_api="/search"), PageRequest(URL, method="POST", data={}), search, URL)
    assert [c.title for c in found.candidates] == SHOWN


def test_an_answer_without_such_escapes_is_json_loads_own() -> None:
    """(not walked again: the same objects as json.loads gives)"""
    text = json.dumps({"articles": [{"title": TITLE + "\U0001f600", "url": "/a\\ud800"}], "n": [1, 2.5, None]})
    assert json_answer.load(text) == json.loads(text)
    assert json_answer.load('"\\ud800"') == "\ufffd" and json_answer.load('[["\\udfff"], {"a\\udbff": 1}]') == [["\ufffd"], {"a\ufffd": 1}]


def test_a_crawl_of_such_an_answer_completes_and_records_its_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gkmlpt's API answering titles and a URL with half surrogates: the run ends with its summary written, the report
    loaded, the page that is not there recorded in one line (run_crawl raised before, its summary lost)."""
    from gongkai.flows.crawl import failure_message, run_crawl

    good = (DOCUMENTS / "pingtan-2024.html").read_bytes()
    articles = [{"title": "\ud800" + TITLE, "url": "/g/gkmlpt/content/4/4688/post_1.html", "create_time": 1516669200},
                {"title": TITLE.replace("2024", "2023") + "\udc80", "url": "/g/gkmlpt/content/4/4688/post_2\ud800.html"}]
    site = Site({"/robots.txt": (b"User-agent: *\nAllow: /\n", "text/plain"),
                 "/g/gkmlpt/annualreport": (b"<html><script>window._CONFIG = {SID: '175'};</script></html>", "text/html"),
                 "/g/gkmlpt/api/all/2629?page=1&sid=175": (json.dumps({"total": 2, "articles": articles}).encode(),
                                                           "application/json"),
                 "/g/gkmlpt/content/4/4688/post_1.html": (good, "text/html; charset=utf-8")})
    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GONGKAI_EXTRACT_PROCESSES", "0")
    registry = tmp_path / "registry.toml"
    registry.write_text(f'[[portal]]\nid = "g"\nagency = "平潭综合实验区"\ndivision_code = "350128"\nlevel = "city"\n'
                        f'cms = "gkmlpt"\nlisting = ["http://{site.host}/g/gkmlpt/annualreport#2629"]\nhosts = ["{site.host}"]\n',
                        "utf-8")
    try:
        summary = run_crawl("nightly", db_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}", registry_file=str(registry),
                            archive_location=str(tmp_path / "archive"), politeness={"delay": 0.0, "retries": 0})
    finally:
        site.close()
    assert summary["portals"]["g"]["status"] == "ok"
    assert sorted((d["outcome"], d["title"]) for d in summary["documents"]) == [
        ("fetch_failed", TITLE.replace("2024", "2023") + "\ufffd"), ("new", "\ufffd" + TITLE)]
    stored = list((tmp_path / "data" / "runs").glob("*-nightly.json"))  # (runs/statuses/ holds its statuses alone)
    assert len(stored) == 1 and json.loads(stored[0].read_text("utf-8"))["counts"] == {"fetch_failed": 1, "new": 1}
    message = failure_message(summary)
    assert message is not None and "\n" not in message and "post_2\ufffd.html" in message
