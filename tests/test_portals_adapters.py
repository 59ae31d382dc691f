"""Adapters on saved pages, as city-scrapers tests its spiders: the two real listing pages of ../shared/portals and,
for UCAP and gkmlpt, pages built to the shapes the portals README describes (tests/portals/README.md), each parsed
to its exact item list (titles, URLs, dates) and next pages; detail pages to title, agency, date and attachments."""

from __future__ import annotations

from pathlib import Path

import pytest

from gongkai.crawler.adapters import PageRequest, parser_for
from gongkai.crawler.adapters.paging import next_page
from gongkai.crawler.adapters.tree import parse_html
from gongkai.crawler.detail import parse_detail
from gongkai.crawler.registry import Portal, load_registry
from gongkai.extractors.report_meta import classify_title

PAGES = Path(__file__).parent / "portals"


def portal(cms: str, listing: str, params: str = "", agency: str = "示例") -> Portal:
    host = listing.split("/")[2]
    return load_registry(text=f'[[portal]]\nid = "t"\nagency = "{agency}"\ndivision_code = "350128"\nlevel = "city"\n'
                              f'cms = "{cms}"\nlisting = ["{listing}"]\nhosts = ["{host}"]\n{params}')[0]


def parse(p: Portal, request: PageRequest, name: str) -> tuple[list[tuple[str, str, str | None]], list[PageRequest]]:
    page = parser_for(p.cms)(p, request, (PAGES / name).read_text("utf-8"), request.url)
    return [(c.title, c.url, c.published) for c in page.candidates], page.next


# --- the real pages -----------------------------------------------------------------------------------------------

PINGTAN = "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/"


def test_pingtan_real_listing_parses_to_its_ten_static_items_and_the_search_api_page() -> None:
    # the page's own script: searchId 200210, classsql "chnlid=1813", prepage 10, recordCount '20'; the API path
    # is not in the page (the browser's network tab gives it): an assumed one here
    p = portal("trs", PINGTAN, '[portal.params]\nsearch_api = "/trs-search/list"\nchannel_id = "1813"\nsearch_channel = "200210"')
    items, nxt = parse(p, PageRequest(PINGTAN), "pingtan-zfxxgknb-list.html")
    dates = ["2026-03-10", "2025-03-10", "2024-03-08", "2023-02-20", "2022-02-08", "2021-03-05", "2020-01-20", "2019-01-10",
             "2018-01-23", "2017-01-18"]
    paths = ["202603/t20260313_105587", "202503/t20250310_97791", "202403/t20240308_87885", "202302/t20230220_80629",
             "202202/t20220208_80613", "202103/t20210305_80595", "202001/t20200120_80576", "201901/t20190110_80529",
             "201801/t20180123_80506", "201701/t20170118_80485"]
    assert items == [(f"平潭综合实验区{2025 - i}年度政府信息公开工作年度报告", f"{PINGTAN}{paths[i]}.htm", dates[i]) for i in range(10)]
    assert nxt == [PageRequest("https://www.pingtan.gov.cn/trs-search/list", "POST", {
        "channelid": "200210", "classsql": "chnlid=1813", "sortfield": "-docorderpri,-docreltime", "page": "2", "prepage": "10"}, 2)]


ORDOS = "http://egb.example.cn/xxgk/xxgknb/"  # the page's own host is not in it; any base gives the same paths


def test_ordos_real_listing_parses_to_its_exact_items_news_and_other_agencies_included() -> None:
    items, nxt = parse(portal("trs", ORDOS + "index.html"), PageRequest(ORDOS + "index.html"), "ordos-engebei-xxgknb-list-2020.html")
    assert items == [
        ("鄂尔多斯市2019年政府信息公开工作年度报告", ORDOS + "202009/t20200903_2748784.html", "2020-09-03"),
        ("恩格贝生态示范区召开2020年度工作会暨党风廉政建设会议", ORDOS + "202005/t20200506_2633371.html", "2020-05-06"),
        ("鄂尔多斯市人民政府办公室2019年政府信息公开工作年度报告", ORDOS + "202003/t20200311_2593126.html", "2020-03-11"),
        ("恩格贝生态示范区召开目标责任制考核表彰大会", ORDOS + "201906/t20190614_2389850.html", "2019-06-14"),
        ("鄂尔多斯市2018年政府信息公开年度报告", ORDOS + "201905/t20190530_2380968.html", "2019-05-30"),
        ("内蒙古自治区2018年政府信息公开工作年度报告", ORDOS + "201905/t20190530_2380967.html", "2019-05-30"),
        # the page prints dates that are not the URL's (2018-03-26 for t20181102): the page's own are kept
        ("恩格贝生态示范区召开2018年度工作会议暨党风廉政建设会议", ORDOS + "201811/t20181102_2290635.html", "2018-03-26"),
        ("恩格贝生态示范区：栽下梧桐引凤来", ORDOS + "201811/t20181102_2290607.html", "2018-01-05"),
        ("一图读懂示范区2017年重点工作", ORDOS + "201805/t20180525_2166460.html", "2017-03-22"),
        ("2016，恩格贝，精彩继续！", ORDOS + "201802/t20180205_2082017.html", "2017-01-07"),
    ]
    assert nxt == [PageRequest(ORDOS + "index_1.html", number=2)]  # var countPage = 2
    verdicts = [classify_title(t) for t, _, _ in items]
    assert [(v.agency, v.year) for v in verdicts if v.is_report] == [
        ("鄂尔多斯市", 2019), ("鄂尔多斯市人民政府办公室", 2019), ("鄂尔多斯市", 2018), ("内蒙古自治区", 2018)]
    # the generic fallback reads the same page to the same reports and the same next page
    generic, gnext = parse(portal("generic", ORDOS + "index.html"), PageRequest(ORDOS + "index.html"), "ordos-engebei-xxgknb-list-2020.html")
    assert [i for i in generic if classify_title(i[0]).is_report] == [i for i in items if classify_title(i[0]).is_report]
    assert gnext == nxt


# --- UCAP 集约化 -------------------------------------------------------------------------------------------------

UCAP = "https://ucap.example.cn/sqsrmzf/c108374/"


def test_ucap_listing_pages_parse_to_their_items_and_pager() -> None:
    p = portal("ucap", UCAP + "index.shtml")
    first, nxt = parse(p, PageRequest(UCAP + "index.shtml"), "ucap-list-index.shtml")
    assert first == [
        ("示例市人民政府2025年政府信息公开工作年度报告", UCAP + "202601/9d0c6f1e2b3a4c5d8e7f60718293a4b5.shtml", "2026-01-20"),
        ("《示例市人民政府2025年政府信息公开工作年度报告》解读", UCAP + "202601/1a2b3c4d5e6f708192a3b4c5d6e7f809.shtml", "2026-01-20"),
        ("示例市人民政府2024年政府信息公开工作年度报告", UCAP + "202501/c3d4e5f60718293a4b5c6d7e8f901a2b.shtml", "2025-01-21"),
        ("示例市宿城区人民政府2024年政府信息公开工作年度报告", UCAP + "202501/e5f60718293a4b5c6d7e8f901a2b3c4d.shtml", "2025-01-17"),
        ("示例市召开2024年政务公开工作推进会", UCAP + "202412/7f8091a2b3c4d5e6f708192a3b4c5d6e.shtml", "2024-12-05"),
        ("示例市人民政府2023年政府信息公开工作年度报告", UCAP + "202401/0a1b2c3d4e5f60718293a4b5c6d7e8f9.shtml", "2024-01-19"),
    ]
    assert nxt == [PageRequest(UCAP + "index_1.shtml", number=2)]  # createPageHTML('page_div', 2, 1, 'index', 'shtml', 9)
    second, last = parse(p, nxt[0], "ucap-list-index_1.shtml")
    assert second == [
        ("示例市人民政府2022年政府信息公开工作年度报告", UCAP + "202301/5c6d7e8f901a2b3c4d5e6f708192a3b4.shtml", "2023-01-30"),
        ("示例市人民政府2021年政府信息公开工作年度报告", UCAP + "2022n/202201/b4c5d6e7f8091a2b3c4d5e6f70819203.shtml", "2022-01-28"),
        ("示例市人民政府2020年政府信息公开工作年度报告", UCAP + "202103/c01_163889.shtml", "2021-03-01"),
    ]
    assert last == []
    # a site whose page 2 is index_2.shtml says so in one parameter
    shifted = portal("ucap", UCAP + "index.shtml", "[portal.params]\npage_offset = 0")
    assert parse(shifted, PageRequest(UCAP + "index.shtml"), "ucap-list-index.shtml")[1] == [PageRequest(UCAP + "index_2.shtml", number=2)]


def test_ucap_detail_metadata_table_gives_title_agency_date_and_category() -> None:
    detail = parse_detail((PAGES / "ucap-detail.shtml").read_text("utf-8"), UCAP + "202501/c3d4e5f60718293a4b5c6d7e8f901a2b.shtml")
    assert (detail.title, detail.agency, detail.published, detail.category) == (
        "示例市人民政府2024年政府信息公开工作年度报告", "示例市人民政府办公室", "2025-01-21", "信息公开年报")
    assert detail.body_is_report  # <ucapcontent> holds the report's tables
    assert detail.attachments == [(UCAP + "202501/P020250121389012345678.pdf", "示例市人民政府2024年政府信息公开工作年度报告.pdf")]


# --- Guangdong gkmlpt -------------------------------------------------------------------------------------------

GK = "http://gkmlpt.example.cn/gkmlpt/"


def test_gkmlpt_annualreport_page_leads_to_the_api_and_its_pages() -> None:
    p = portal("gkmlpt", GK + "annualreport#2629")
    items, nxt = parse(p, PageRequest(GK + "annualreport#2629"), "gkmlpt-annualreport.html")
    assert items == [] and nxt == [PageRequest(GK + "api/all/2629?page=1&sid=175", number=2)]  # SID from the page
    first, nxt = parse(p, nxt[0], "gkmlpt-api-2629-page1.json")
    assert len(first) == 100 and first[:3] == [
        ("示例省文化和旅游厅2025年政府信息公开工作年度报告", GK + "content/4/4688/post_4688996.html", "2026-01-20"),
        ("《示例省文化和旅游厅2025年政府信息公开工作年度报告》解读", GK + "content/4/4689/post_4689001.html", "2026-01-21"),
        ("示例省文物局2025年政府信息公开工作年度报告", GK + "content/4/4688/post_4688995.html", "2026-01-21"),
    ]
    assert first[-1] == ("示例省博物馆2001年度工作总结", GK + "content/4/4688/post_4688898.html", "2002-01-22")
    assert nxt == [PageRequest(GK + "api/all/2629?page=2&sid=175", number=3)]  # total 103, 100 a page
    second, last = parse(p, nxt[0], "gkmlpt-api-2629-page2.json")
    assert second == [
        ("示例省图书馆2001年度工作总结", GK + "content/4/4688/post_4688897.html", "2002-01-23"),
        ("示例省文化和旅游厅2000年度工作总结", GK + "content/4/4688/post_4688896.html", "2001-01-24"),
        ("示例省文物局2000年度工作总结", GK + "content/4/4600/post_4600001.html", "2001-01-25"),  # post_url, text date
    ]
    assert last == []
    reports = [t for t, _, _ in first + second if classify_title(t).is_report]
    assert len(reports) == 4 * 18 and not any("解读" in t for t in reports)  # 2008–2025, four units


def test_gkmlpt_detail_yields_its_attachment() -> None:
    detail = parse_detail((PAGES / "gkmlpt-detail.html").read_text("utf-8"), GK + "content/4/4688/post_4688993.html")
    assert (detail.title, detail.agency, detail.category) == ("示例省文化和旅游厅2024年政府信息公开工作年度报告", "示例省文化和旅游厅", "政府信息公开年报")
    assert not detail.body_is_report  # a notice pointing at its PDF
    assert detail.attachments == [("http://gkmlpt.example.cn/attachment/0/523/523456/4688993.pdf", "示例省文化和旅游厅2024年政府信息公开工作年度报告.pdf")]


# --- the generic fallback on its own ---------------------------------------------------------------------------

MOUXIAN = "http://www.mouxian.example.cn/gk/nb/list.asp"


def test_generic_reads_a_listing_of_an_unknown_cms_made_only_of_anchors() -> None:
    items, nxt = parse(portal("generic", MOUXIAN), PageRequest(MOUXIAN), "unknown-cms-list.html")
    assert items == [
        ("2024年全县经济运行情况通报会召开", "http://www.mouxian.example.cn/news/2024/0301/1234.html", None),
        ("某县人民政府2024年政府信息公开工作年度报告", "http://www.mouxian.example.cn/gk/nb/show.asp?id=311", "2025-01-15"),
        ("某县人民政府2024年政府信息公开工作年度报告解读", "http://www.mouxian.example.cn/gk/nb/show.asp?id=302", "2025-01-15"),
        ("某县教育局2024年政府信息公开工作年度报告", "http://www.mouxian.example.cn/gk/nb/show.asp?id=287", "2025-01-10"),
        ("某县人民政府2023年政府信息公开工作年度报告", "http://www.mouxian.example.cn/upload/2024/nb2023.pdf", "2024-01-19"),
        ("关于做好2023年政府信息公开工作年度报告编制工作的通知", "http://www.mouxian.example.cn/gk/nb/show.asp?id=250", "2023-12-01"),
    ]
    assert nxt == [PageRequest(MOUXIAN + "?page=2", number=2)]
    accepted = [(t, classify_title(t).year) for t, _, _ in items if classify_title(t).is_report]
    assert accepted == [("某县人民政府2024年政府信息公开工作年度报告", 2024), ("某县教育局2024年政府信息公开工作年度报告", 2024),
                        ("某县人民政府2023年政府信息公开工作年度报告", 2023)]


def _next(html: str, url: str, number: int = 1) -> str | None:
    found = next_page(parse_html(html), html, url, PageRequest(url, number=number))
    return found.url if found else None


@pytest.mark.parametrize(
    ("html", "url", "number", "expected"),
    [
        ('<a href="list_2.html">下一页</a>', "http://h/a/list.html", 1, "http://h/a/list_2.html"),
        ('<a href="javascript:void(0)">下一页</a><a href="index_3.html">尾页</a>', "http://h/a/index_3.html", 4, None),
        ('<script>createPageHTML(5, 0, "index", "html");</script>', "http://h/a/index.html", 1, "http://h/a/index_1.html"),
        ('<script>createPageHTML(5, 4, "index", "html");</script>', "http://h/a/index_4.html", 5, None),
        ("<script>var countPage = 3//共多少页</script>", "http://h/a/index_1.shtml", 2, "http://h/a/index_2.shtml"),
        ('<a href="iList.jsp?node_id=7&cur_page=2">2</a><a href="iList.jsp?node_id=7&cur_page=3">3</a>',
         "http://h/iList.jsp?node_id=7&cur_page=1", 1, "http://h/iList.jsp?node_id=7&cur_page=2"),
        ('<a href="list.aspx?pageIndex=3">3</a>', "http://h/list.aspx?pageIndex=2", 2, "http://h/list.aspx?pageIndex=3"),
        # only a 尾页 link: the next page is one more than ours, never the last (the pages between are not skipped)
        ('<a href="list.jsp?id=4&page=9">尾页</a>', "http://h/list.jsp?id=4", 1, "http://h/list.jsp?id=4&page=2"),
        ('<a href="list_9.html">尾页</a>', "http://h/a/list_3.html", 3, "http://h/a/list_4.html"),
        ('<a href="index_9.html">尾页</a>', "http://h/a/index.html", 1, "http://h/a/index_1.html"),
        ('<a href="list_9.html">尾页</a>', "http://h/a/list.html", 1, "http://h/a/list_2.html"),
        ('<a href="index_1.html">2</a><a href="index_2.html">3</a>', "http://h/a/index.html", 1, "http://h/a/index_1.html"),
        ('<a href="index_1.html">1</a>', "http://h/a/index_1.html", 2, None),
        ('<a href="2.html">2</a><a href="9.html">尾页</a>', "http://h/jyj/zfxxgknb/1.html", 1, "http://h/jyj/zfxxgknb/2.html"),
        ('<a href="8.html">8</a>', "http://h/jyj/zfxxgknb/9.html", 9, None),
        # a malformed link among the pager's is skipped, not an error that fails the listing
        ('<a href="http://[::1/list.jsp?page=3">3</a><a href="list.jsp?page=2">2</a>', "http://h/list.jsp", 1, "http://h/list.jsp?page=2"),
        ('<a href="http://[::1/list_2.html">2</a>', "http://h/a/list.html", 1, None),
    ],
)
def test_pagination_patterns_of_unknown_cms(html: str, url: str, number: int, expected: str | None) -> None:
    assert _next(html, url, number) == expected


def test_detail_body_by_largest_text_block_and_attachments_by_link_text() -> None:
    body = "<p>" + "本机关2023年政府信息公开工作情况如下。" * 30 + "</p>"
    html = (f'<html><body><div class="nav"><a href="/">首页</a> <a href="/gk/">政务公开</a></div>'
            f'<div class="x-main"><div class="x-text">{body}</div>'
            f'<p><a href="/servlet/Download?fileid=88">点击下载</a> <a href="/xz/">下载中心</a> <a href="/a.html">附件说明</a></p></div>'
            f'<div class="foot">版权所有</div></body></html>')
    detail = parse_detail(html, "http://h/gk/show.asp?id=1")
    assert detail.body_is_report
    assert detail.attachments == [("http://h/servlet/Download?fileid=88", "点击下载")]
    notice = parse_detail('<html><body><div class="foot">版权</div><div><p>见附件。</p></div></body></html>', "http://h/1")
    assert not notice.body_is_report

