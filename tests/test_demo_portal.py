"""The demo portal itself: content built from the real corpus, conditional GET, faults, the request log."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gongkai.crawler.demo_portal import DemoPortal

DOCUMENTS = Path(__file__).parent / "corpus" / "documents"


@pytest.fixture()
def demo() -> Iterator[DemoPortal]:
    with DemoPortal(slow_seconds=0.5) as portal:
        yield portal


def request(demo: DemoPortal, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None,
            timeout: float = 5) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    return resp


def test_served_documents_are_the_real_corpus_files(demo: DemoPortal) -> None:
    site = demo.site
    assert site.body("/pingtan/zwgk/zfxxgk/zfxxgknb/202503/t20250310_97791.htm") == (DOCUMENTS / "pingtan-2024.html").read_bytes()
    assert site.body("/hongze/module/download/downfile.jsp?classid=0&filename=2401201630.pdf") == (DOCUMENTS / "hongze-2023.pdf").read_bytes()
    assert site.body("/flaky/xxgknb/files/2024nb.docx") == (DOCUMENTS / "pingtan-2024-libreoffice.docx").read_bytes()
    gbk_page = site.body("/shanghai/nj_zfxxgk/202001/t20200131_1001.html")
    assert "2019年上海市人民政府办公厅政府信息公开工作年度报告".encode("gbk") in gbk_page
    assert "本年新收政府信息公开申请数量".encode("gbk") in gbk_page
    expects = sorted(d.expect for d in site.documents)
    assert expects == ["disallowed", "foreign_redirect", "rejected_title", "report", "report", "report", "report", "report",
                       "report", "report", "report", "report", "unreadable"]  # UCAP and gkmlpt serve one report each
    listing = site.body("/pingtan/zwgk/zfxxgk/zfxxgknb/index.html").decode("utf-8")
    assert "recordCount: '6'" in listing and 'ms-visible="showStatic"' in listing  # the real page, our items


def test_conditional_get_and_log(demo: DemoPortal) -> None:
    path = "/zibo/tjj/xxgknb/list.html"
    first = request(demo, "GET", path)
    etag = first.getheader("ETag")
    assert first.status == 200 and etag
    assert request(demo, "GET", path, headers={"If-None-Match": etag}).status == 304
    assert request(demo, "GET", path, headers={"If-Modified-Since": first.getheader("Last-Modified")}).status == 304
    assert request(demo, "GET", path, headers={"If-None-Match": '"other"'}).status == 200
    assert [(r.status, r.if_none_match, r.conditional) for r in demo.requests][:2] == [(200, None, False), (304, etag, True)]


def test_faults_happen_once(demo: DemoPortal) -> None:
    path = "/pingtan/zwgk/zfxxgk/zfxxgknb/202503/t20250310_97791.htm"
    assert [request(demo, "GET", path).status for _ in range(2)] == [500, 200]
    with pytest.raises(TimeoutError):
        request(demo, "GET", "/shanghai/nj_zfxxgk/index_1.html", timeout=0.2)
    assert request(demo, "GET", "/shanghai/nj_zfxxgk/index_1.html").status == 200
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, socket.error)):
        request(demo, "GET", "/hongze/module/download/downfile.jsp?classid=0&filename=2401201630.pdf")
    assert request(demo, "GET", "/hongze/module/download/downfile.jsp?classid=0&filename=2401201630.pdf").status == 200
    assert [r.status for r in demo.requests] == ["error500", 200, "timeout", 200, "reset", 200]


def test_search_api_dataproxy_robots_and_down_switch(demo: DemoPortal) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=5)
    conn.request("POST", "/pingtan/trs-search/list", body="channelid=200210&classsql=chnlid%3D1813&page=2&prepage=4",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    answer = json.loads(conn.getresponse().read())
    assert answer["pager"] == {"pageIndex": 2, "pageCount": 2, "recordCount": 6}
    assert [d["doctitle"] for d in answer["data"]["list"]] == ["平潭县人民政府2011年政府信息公开工作年度报告",
                                                               "平潭综合实验区关于印发2012年政务公开工作要点的通知"]
    conn.request("POST", "/hongze/module/web/jpage/dataproxy.jsp?startrecord=46&endrecord=50&perpage=15", body="columnid=5521")
    xml = conn.getresponse().read().decode("gbk")
    assert xml.count("<record>") == 6 and "<totalrecord>50</totalrecord>" in xml  # record 45 repeated
    conn.request("GET", "/robots.txt")
    assert b"Disallow: /pingtan/private/" in conn.getresponse().read()
    assert request(demo, "GET", "/flaky/xxgknb/list.html").status == 503
    demo.set_down(False)
    assert request(demo, "GET", "/flaky/xxgknb/list.html").status == 200
