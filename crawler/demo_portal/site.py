"""The demo portal's content: pages of five CMS families (TRS, Hanweb, UCAP, gkmlpt, generic) built around real
corpus documents.

Everything is generated in memory from the package's data/ (links to tests/corpus/documents and tests/portals) (the real pingtan
listing page is the model of the TRS listing). `Site.documents` says what each served file is, so
tests can check the warehouse against it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

# links to tests/corpus/documents and tests/portals; a built wheel holds their content, so an installed wheel runs the demo
CORPUS = Path(__file__).parent / "data"
LISTING_MODEL = CORPUS / "pingtan-zfxxgknb-list.html"
LAST_MODIFIED = "Mon, 10 Mar 2025 07:35:00 GMT"

# the faults a resource can have, each on its first request only (then it recovers)
FAULTS = ("error500", "timeout", "reset")


@dataclass
class Resource:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    status: int = 200
    validators: bool = True  # ETag / Last-Modified, so a re-fetch can be a 304

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


@dataclass(frozen=True)
class ServedDocument:
    """A file the portal serves at `path`, and what the crawler must make of it."""

    path: str
    source: str | None  # corpus file it was built from
    expect: str  # report | not_a_report | unreadable | rejected_title | disallowed | foreign_redirect
    portal: str
    title: str


@dataclass
class Site:
    port: int
    resources: dict[str, Resource] = field(default_factory=dict)
    documents: list[ServedDocument] = field(default_factory=list)
    post_handlers: dict[str, Callable[[dict[str, str], dict[str, str]], Resource]] = field(default_factory=dict)
    down_prefixes: set[str] = field(default_factory=set)  # portals switched off (503 on every request)

    def add(self, path: str, resource: Resource) -> str:
        self.resources[path] = resource
        return path

    def serve_document(self, path: str, resource: Resource, source: str | None, expect: str, portal: str, title: str) -> None:
        self.add(path, resource)
        self.documents.append(ServedDocument(path, source, expect, portal, title))

    def body(self, path: str) -> bytes:
        return self.resources[path].body


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def _gbk(text: str) -> bytes:
    return text.encode("gb18030")


def _page(title: str, body: str, *, charset: str = "utf-8", meta: dict[str, str] | None = None) -> bytes:
    metas = "".join(f'<meta name="{k}" content="{html.escape(v)}"/>\n' for k, v in (meta or {}).items())
    text = (
        f'<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}"/>\n'
        f"{metas}<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return _gbk(text) if charset != "utf-8" else text.encode("utf-8")


def _text_as_html(text: str) -> str:
    """A corpus .txt (scraped page) as paragraphs, its header block (标题/发布时间 …) dropped."""
    body = text.split("==================== 正文 ====================", 1)[-1]
    return "".join(f"<p>{html.escape(line.strip())}</p>" for line in body.splitlines() if line.strip())


# --- TRS, search-API variant (modelled on www.pingtan.gov.cn) ----------------------------------------

PINGTAN = "/pingtan/zwgk/zfxxgk/zfxxgknb/"
PINGTAN_API = "/pingtan/trs-search/list"
PINGTAN_PAGE = 4


def _trs_detail(title: str, pubdate: str, source: str, body: str, url: str, *, charset: str = "utf-8", extra: str = "") -> bytes:
    meta = {"ArticleTitle": title, "PubDate": pubdate, "ContentSource": source, "Url": url}
    return _page(title, f'<div class="article"><h1>{html.escape(title)}</h1>'
                 f'<div class="TRS_Editor">{body}</div>{extra}</div>', charset=charset, meta=meta)


def _build_pingtan(site: Site) -> None:
    items: list[tuple[str, str, str]] = []  # (href relative to column, title, date)

    def item(href: str, title: str, date: str) -> None:
        items.append((href, title, date))

    path = PINGTAN + "202503/t20250310_97791.htm"
    title = "平潭综合实验区2024年度政府信息公开工作年度报告"
    site.serve_document(path, Resource(corpus("pingtan-2024.html"), fault="error500"), "pingtan-2024.html", "report", "demo-pingtan", title)
    item("./202503/t20250310_97791.htm", title, "2025-03-10")

    path = PINGTAN + "201412/t20141210_80787.htm"
    title = "关于2014年政府信息公开工作要点落实情况的函"
    letter = corpus("pingtan-han-2014-notreport.txt").decode("utf-8")
    site.serve_document(path, Resource(_trs_detail(title, "2014-12-10 00:00", "平潭县人民政府", _text_as_html(letter), path)),
                        "pingtan-han-2014-notreport.txt", "rejected_title", "demo-pingtan", title)
    item("./201412/t20141210_80787.htm", title, "2014-12-10")

    path = PINGTAN + "201402/t20140225_80774.htm"
    title = "平潭综合实验区地方税务局2013年信息公开年度报告"
    text = corpus("pingtan-dishuiju-2013.txt").decode("utf-8")
    site.serve_document(path, Resource(_trs_detail(title, "2014-02-25 00:00", "平潭综合实验区地方税务局", _text_as_html(text), path)),
                        "pingtan-dishuiju-2013.txt", "report", "demo-pingtan", title)
    item("./201402/t20140225_80774.htm", title, "2014-02-25")

    # robots.txt disallows /pingtan/private/: listed, but never to be requested
    path = "/pingtan/private/201303/t20130301_80750.htm"
    title = "平潭综合实验区2012年政府信息公开工作年度报告"
    site.serve_document(path, Resource(_trs_detail(title, "2013-03-01", "", "<p>内部预览</p>", path)), None, "disallowed", "demo-pingtan", title)
    item(path, title, "2013-03-01")

    path = PINGTAN + "201204/t20120418_80716.htm"
    title = "平潭县人民政府2011年政府信息公开工作年度报告"
    site.serve_document(path, Resource(corpus("pingtan-county-2011.html")), "pingtan-county-2011.html", "report", "demo-pingtan", title)
    item("./201204/t20120418_80716.htm", title, "2012-04-18")

    item("./201203/t20120301_80700.htm", "平潭综合实验区关于印发2012年政务公开工作要点的通知", "2012-03-01")
    site.add(PINGTAN + "201203/t20120301_80700.htm", Resource(_trs_detail(items[-1][1], "2012-03-01", "", "<p>各单位：……</p>", "")))

    # the static first page: the real listing page with our first items in place of its own
    model = LISTING_MODEL.read_text("utf-8")
    start = model.index('<div class="rules_tabs_01 rules_tabs_no_bg" ms-visible="showStatic">')
    end = model.index('<div class="rules_tabs_01 rules_tabs_no_bg" ms-visible="!showStatic"')
    rows = "".join(
        f'<dl><dd class="trt-col-sm-24 slb-trt-col-24 text_align_left"><a href="{href}" target="_blank" title="{html.escape(t)}">'
        f'{html.escape(t)}</a></dd><dd class="trt-col-4 trt-col-sm-24 slb-trt-col-24 text_align_left">{d}</dd></dl>\n'
        for href, t, d in items[:PINGTAN_PAGE]
    )
    page = model[:start] + '<div class="rules_tabs_01 rules_tabs_no_bg" ms-visible="showStatic">\n' + rows + "</div>\n" + model[end:]
    page = re.sub(r"recordCount: '\d+'", f"recordCount: '{len(items)}'", page)
    page = re.sub(r"prepage: \d+", f"prepage: {PINGTAN_PAGE}", page)
    page = page.replace("https://www.pingtan.gov.cn/", "/pingtan/")
    site.add(PINGTAN + "index.html", Resource(page.encode("utf-8")))

    def search(form: dict[str, str], query: dict[str, str]) -> Resource:
        n = int(form.get("page", "1"))
        size = int(form.get("prepage", PINGTAN_PAGE))
        if form.get("classsql") != "chnlid=1813":
            return Resource(json.dumps({"data": [], "pager": {"pageCount": 0}}).encode(), "application/json", validators=False)
        chunk = items[(n - 1) * size : n * size]
        docs = [{"doctitle": t, "chnldocurl": PINGTAN + href.removeprefix("./") if href.startswith("./") else href,
                 "docreltime": f"{d} 00:00:00"} for href, t, d in chunk]
        pages = -(-len(items) // size)
        answer = {"data": {"list": docs}, "pager": {"pageIndex": n, "pageCount": pages, "recordCount": len(items)}}
        return Resource(json.dumps(answer, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8", validators=False)

    site.post_handlers[PINGTAN_API] = search


# --- TRS, classic index_N.html paging, GBK (modelled on Shanghai) ------------------------------------

SHANGHAI = "/shanghai/nj_zfxxgk/"


def _trs_listing(title: str, rows: list[tuple[str, str, str]], n_pages: int, current: int) -> bytes:
    links = "".join(f'<li><a href="{h}" target="_blank" title="{html.escape(t)}">{html.escape(t)}</a><span>{d}</span></li>\n'
                    for h, t, d in rows)
    body = (f'<div class="list"><ul>{links}</ul></div>\n'
            f'<script type="text/javascript">createPageHTML({n_pages}, {current}, "index", "html");</script>')
    return _page(title, body, charset="gbk")


def _build_shanghai(site: Site) -> None:
    report_title = "2019年上海市人民政府办公厅政府信息公开工作年度报告"
    path = SHANGHAI + "202001/t20200131_1001.html"
    fragment = corpus("shanghai-szfbgt-2019.html").decode("utf-8")
    site.serve_document(path, Resource(_trs_detail(report_title, "2020-01-31", "上海市人民政府办公厅", fragment, path, charset="gbk"),
                                       "text/html; charset=GBK"),
                        "shanghai-szfbgt-2019.html", "report", "demo-shanghai", report_title)
    notice = "关于做好2019年政府信息公开工作年度报告编制工作的通知"
    site.add(SHANGHAI + "201912/t20191210_1000.html", Resource(_trs_detail(notice, "2019-12-10", "", "<p>各区人民政府……</p>", "", charset="gbk")))
    page1 = [("./202001/t20200131_1001.html", report_title, "2020-01-31"), ("./201912/t20191210_1000.html", notice, "2019-12-10")]

    # a report whose page redirects off the registry's hosts: the crawler must not follow
    redirect_title = "2018年上海市人民政府办公厅政府信息公开工作年度报告"
    path = SHANGHAI + "201901/t20190131_900.html"
    site.serve_document(path, Resource(b"", status=302, headers={"Location": f"http://localhost:{site.port}/foreign/2018.html"},
                                       validators=False), None, "foreign_redirect", "demo-shanghai", redirect_title)
    site.add("/foreign/2018.html", Resource(_page(redirect_title, "<p>境外镜像</p>")))
    other = "上海市人民政府办公厅关于印发2019年政务公开工作要点的通知"
    site.add(SHANGHAI + "201903/t20190301_950.html", Resource(_trs_detail(other, "2019-03-01", "", "<p>……</p>", "", charset="gbk")))
    page2 = [("./201903/t20190301_950.html", other, "2019-03-01"), ("./201901/t20190131_900.html", redirect_title, "2019-01-31")]

    fmt = "关于印发政府信息公开工作年度报告格式的通知"
    site.add(SHANGHAI + "201812/t20181201_800.html",
             Resource(_trs_detail(fmt, "2018-12-01", "", '<p>附件：<a href="./P020181201.docx">格式</a></p>', "", charset="gbk")))
    site.add(SHANGHAI + "201812/P020181201.docx", Resource(corpus("template-blank-2021.docx"), "application/octet-stream"))
    page3 = [("./201812/t20181201_800.html", fmt, "2018-12-01")]

    site.add(SHANGHAI + "index.html", Resource(_trs_listing("年度报告", page1, 3, 0), "text/html; charset=GBK"))
    site.add(SHANGHAI + "index_1.html", Resource(_trs_listing("年度报告", page2, 3, 1), "text/html; charset=GBK", fault="timeout"))
    site.add(SHANGHAI + "index_2.html", Resource(_trs_listing("年度报告", page3, 3, 2), "text/html; charset=GBK"))


# --- Hanweb JCMS, GBK ------------------------------------------------------------------------------------

HONGZE = "/hongze"
HONGZE_COLUMN = "5521"
GROUP = 45


def _hanweb_record(href: str, title: str, date: str) -> str:
    return (f'<record><![CDATA[<li><a href="{href}" title="{html.escape(title)}" target="_blank">{html.escape(title)}</a>'
            f"<span>{date}</span></li>]]></record>")


def _build_hongze(site: Site) -> None:
    records: list[tuple[str, str, str]] = []

    def article(n: int, date: str, title: str, body: str) -> str:
        y, m, d = (int(x) for x in date.split("-"))
        path = f"{HONGZE}/art/{y}/{m}/{d}/art_{HONGZE_COLUMN}_{n}.html"
        site.add(path, Resource(_page(title, f'<div id="zoom">{body}</div>', charset="gbk"), "text/html; charset=GBK"))
        records.append((path, title, date))
        return path

    title = "淮安市洪泽区人民政府2023年政府信息公开工作年度报告"
    pdf_path = f"{HONGZE}/module/download/downfile.jsp?classid=0&filename=2401201630.pdf"
    article(3001, "2024-01-20", title, f'<p>详见附件。</p><p><a href="{pdf_path}">附件：{title}.pdf</a></p>')
    name = quote(f"{title}.pdf")
    site.serve_document(pdf_path, Resource(corpus("hongze-2023.pdf"), "application/octet-stream",
                                           {"Content-Disposition": f"attachment; filename*=UTF-8''{name}"}, fault="reset"),
                        "hongze-2023.pdf", "report", "demo-huaian", title)
    for i in range(45):
        article(2900 - i, f"2023-{12 - i // 4:02d}-{28 - i % 4 * 5:02d}", f"洪泽区关于开展第{i + 1}批政务公开专项检查的通知", "<p>各镇……</p>")
    title22 = "淮安市洪泽区人民政府2022年政府信息公开工作年度报告"
    bad_path = f"{HONGZE}/module/download/downfile.jsp?classid=0&filename=2301181200.pdf"
    article(2001, "2023-01-18", title22, f'<p>详见附件。</p><p><a href="{bad_path}">附件</a></p>')
    good = corpus("hongze-2023.pdf")
    corrupt = good[:1500] + bytes(range(256)) * 8  # a download cut short: a PDF header, then garbage
    # the file name as raw GBK bytes in the header, as Hanweb sends it (http.server writes latin-1)
    raw_name = f"{title22}.pdf".encode("gbk").decode("latin-1")
    site.serve_document(bad_path, Resource(corrupt, "application/pdf", {"Content-Disposition": f'attachment; filename="{raw_name}"'}),
                        None, "unreadable", "demo-huaian", title22)
    for i in range(3):
        article(1990 - i, f"2022-12-{20 - i:02d}", f"洪泽区2022年第{i + 1}季度政务公开工作通报", "<p>……</p>")

    total = len(records)
    embedded = "".join(_hanweb_record(*r) for r in records[:15])
    column = (f'<div class="default_pgContainer"><script type="text/xml"><datastore><nextgroup><![CDATA[<a href="/module/web/jpage/'
              f'dataproxy.jsp?page=1&columnid={HONGZE_COLUMN}"></a>]]></nextgroup><totalrecord>{total}</totalrecord>'
              f"<recordset>{embedded}</recordset></datastore></script></div>")
    site.add(f"{HONGZE}/col/col{HONGZE_COLUMN}/index.html", Resource(_page("政府信息公开年报", column, charset="gbk"), "text/html; charset=GBK"))

    def dataproxy(form: dict[str, str], query: dict[str, str]) -> Resource:
        start, end = int(query.get("startrecord", 1)), int(query.get("endrecord", GROUP))
        if form.get("columnid") != HONGZE_COLUMN:
            return Resource(b"<datastore><totalrecord>0</totalrecord></datastore>", "text/xml", validators=False)
        first = start - 1 if start > 1 else start  # each group repeats the last record of the one before
        body = "".join(_hanweb_record(*r) for r in records[first - 1 : end])
        xml = f'<?xml version="1.0" encoding="GBK"?><datastore><totalrecord>{total}</totalrecord><recordset>{body}</recordset></datastore>'
        return Resource(_gbk(xml), "text/xml; charset=GBK", validators=False)

    site.post_handlers[f"{HONGZE}/module/web/jpage/dataproxy.jsp"] = dataproxy


# --- Generic 下一页/尾页 ----------------------------------------------------------------------------------

def _generic_listing(rows: list[tuple[str, str, str]], nxt: str | None, last: str) -> bytes:
    links = "".join(f'<tr><td><a href="{h}">{html.escape(t)}</a></td><td>{d}</td></tr>\n' for h, t, d in rows)
    pager = '<a href="list.html">首页</a> '
    if nxt:
        pager += f'<a href="{nxt}">下一页</a> '
    pager += f'<a href="{last}">尾页</a>'
    return _page("信息公开年报", f'<table class="list">{links}</table><div class="pager">{pager}</div>')


def _build_generic(site: Site, prefix: str, portal: str, report: tuple[str, str, str, str], fillers: list[str]) -> None:
    """Three listing pages; the report is a notice page on page 2 whose only content is its attachment."""
    title, attachment_name, source, content_type = report
    notice = prefix + "2024/0120/c1.html"
    attachment = prefix + "files/" + attachment_name
    site.add(notice, Resource(_page(title, f'<div class="article-content"><p>现将{html.escape(title)}予以公开。</p>'
                                           f'<p>附件：<a href="../../files/{attachment_name}">{html.escape(title)}</a></p></div>')))
    site.serve_document(attachment, Resource(corpus(source), content_type), source, "report", portal, title)
    filler_rows = []
    for i, t in enumerate(fillers):
        path = prefix + f"2024/0{i + 2}01/c{i + 2}.html"
        site.add(path, Resource(_page(t, f'<div class="article-content"><p>{html.escape(t)}……</p></div>')))
        filler_rows.append((path.removeprefix(prefix), t, f"2024-0{i + 2}-01"))
    site.add(prefix + "list.html", Resource(_generic_listing(filler_rows[:2], "list_2.html", "list_3.html")))
    site.add(prefix + "list_2.html", Resource(_generic_listing([("2024/0120/c1.html", title, "2024-01-20")], "list_3.html", "list_3.html")))
    site.add(prefix + "list_3.html", Resource(_generic_listing(filler_rows[2:], None, "list_3.html")))


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# --- UCAP 集约化 (modelled on the README's 宿迁 / 哈尔滨 / 新疆 shapes) ------------------------------------------

UCAP = "/sqxx/sqsrmzf/c108374/"


def _ucap_detail(title: str, agency: str, date: str, content: str) -> bytes:
    meta = (f'<table class="xxgk_table"><tr><td><span>名</span><span>称</span>：</td><td colspan="3">{html.escape(title)}</td></tr>'
            f"<tr><td>索引号：</td><td>014123456/{date[:4]}-00012</td><td><span>分</span><span>类</span>：</td><td>信息公开年报</td></tr>"
            f"<tr><td>发布机构：</td><td>{html.escape(agency)}</td><td>公开日期：</td><td>{date}</td></tr></table>")
    return _page(title, f"{meta}<h1><ucaptitle>{html.escape(title)}</ucaptitle></h1><ucapcontent>{content}</ucapcontent>")


def _ucap_listing(rows: list[tuple[str, str, str]], pages: int, current: int) -> bytes:
    links = "".join(f'<li><a href="{h}" target="_blank" title="{html.escape(t)}">{html.escape(t)}</a><span class="date">{d}</span></li>'
                    for h, t, d in rows)
    return _page("政府信息公开年报_示例市人民政府", f'<ul class="list">{links}</ul><div id="page_div"></div>'
                 f"<script>createPageHTML('page_div', {pages}, {current}, 'index', 'shtml', 5);</script>")


def _article(name: str) -> str:
    """The article body of a corpus page (its .article_content), to re-serve inside another family's page."""
    from bs4 import BeautifulSoup

    found = BeautifulSoup(corpus(name), "lxml").select_one(".article_content")
    return "".join(map(str, found.contents)) if found is not None else ""


def _build_ucap(site: Site) -> None:
    # a pre-2019 report (its 统计表 read into stats.*), so that the demo's 2019+ research outputs stay as documented
    title = "示例市人民政府2011年政府信息公开工作年度报告"
    # published in 2012, filed under a 2012n folder: the year is the title's, never the folder's
    path = UCAP + "2012n/201204/9d0c6f1e2b3a4c5d8e7f60718293a4b5.shtml"
    site.serve_document(path, Resource(_ucap_detail(title, "示例市人民政府办公室", "2012-04-18", _article("pingtan-county-2011.html"))),
                        "pingtan-county-2011.html", "report", "demo-ucap", title)
    explain = "《示例市人民政府2011年政府信息公开工作年度报告》解读"
    news = "示例市召开2012年政务公开工作推进会"
    notice = "示例市关于做好2011年政府信息公开工作年度报告编制工作的通知"
    for hexid, t in (("1a2b3c4d5e6f708192a3b4c5d6e7f809", explain), ("7f8091a2b3c4d5e6f708192a3b4c5d6e", news),
                     ("0a1b2c3d4e5f60718293a4b5c6d7e8f9", notice)):
        site.add(UCAP + f"201204/{hexid}.shtml", Resource(_ucap_detail(t, "示例市人民政府办公室", "2012-04-18", "<p>……</p>")))
    page1 = [(path, title, "2012-04-18"), (UCAP + "201204/1a2b3c4d5e6f708192a3b4c5d6e7f809.shtml", explain, "2012-04-18"),
             (UCAP + "201204/7f8091a2b3c4d5e6f708192a3b4c5d6e.shtml", news, "2012-04-10")]
    page2 = [(UCAP + "201204/0a1b2c3d4e5f60718293a4b5c6d7e8f9.shtml", notice, "2011-12-01")]
    site.add(UCAP + "index.shtml", Resource(_ucap_listing(page1, 2, 1)))
    site.add(UCAP + "index_1.shtml", Resource(_ucap_listing(page2, 2, 2)))


# --- Guangdong gkmlpt (a site page with its SID, then the JSON API) --------------------------------------------

GKMLPT = "/gdwhly"
GKMLPT_SID, GKMLPT_CATEGORY, GKMLPT_PAGE = "175", "2629", 2


def _build_gkmlpt(site: Site) -> None:
    site.add(GKMLPT + "/gkmlpt/annualreport", Resource(_page("政府信息公开年报 - 示例省文化和旅游厅",
             f"<script>window._CONFIG = {{SID: '{GKMLPT_SID}', THEME: 'gkmlpt'}};</script><div id=\"app\"></div>")))
    # another agency's report in the department's column, loaded under the agency its title names; pre-2019, as
    # the UCAP one (the report's page is the report; gkmlpt's /attachment/ PDFs are parsed in tests/test_portals_adapters.py)
    title = "示例省文物局2017年政府信息公开工作年度报告"
    post = GKMLPT + "/gkmlpt/content/4/4688/post_4688993.html"
    site.serve_document(post, Resource(_page(title, f'<div class="article-content">{_article("pingtan-2017.html")}</div>',
                                             meta={"ArticleTitle": title, "ContentSource": "示例省文物局"})),
                        "pingtan-2017.html", "report", "demo-gkmlpt", title)
    articles = [
        {"id": 4688993, "title": title, "url": post, "create_time": 1516669200},
        {"id": 4689001, "title": "《示例省文物局2017年政府信息公开工作年度报告》解读", "url": GKMLPT + "/gkmlpt/content/4/4689/post_4689001.html",
         "create_time": 1516755600},
        {"id": 4680000, "title": "示例省文化和旅游厅关于做好2017年政府信息公开工作年度报告编制工作的通知",
         "url": GKMLPT + "/gkmlpt/content/4/4680/post_4680000.html", "display_publish_time": "2017-12-02 10:00:00"},
    ]
    for n in range(1, -(-len(articles) // GKMLPT_PAGE) + 1):
        chunk = articles[(n - 1) * GKMLPT_PAGE : n * GKMLPT_PAGE]
        answer = {"total": len(articles), "articles": chunk, "classify": {"id": int(GKMLPT_CATEGORY), "name": "政府信息公开年报"}}
        site.add(f"{GKMLPT}/gkmlpt/api/all/{GKMLPT_CATEGORY}?page={n}&sid={GKMLPT_SID}",
                 Resource(json.dumps(answer, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"))


def build_site(port: int) -> Site:
    site = Site(port)
    site.add("/robots.txt", Resource(b"User-agent: *\nDisallow: /pingtan/private/\n", "text/plain; charset=utf-8"))
    site.add("/", Resource(_page("gongkai demo portal", "<p>gongkai demo portal</p>")))
    _build_pingtan(site)
    _build_shanghai(site)
    _build_hongze(site)
    _build_generic(site, "/zibo/tjj/xxgknb/", "demo-zibo",
                   ("淄博市统计局２０２３年政府信息公开工作年度报告", "2023nb.txt", "zibo-stats-2023.txt", "text/plain; charset=utf-8"),
                   ["淄博市统计局关于2024年统计开放日活动的通知", "淄博市统计局2024年政务公开工作要点", "淄博市统计局关于2023年统计执法检查情况的通报"])
    _build_generic(site, "/flaky/xxgknb/", "demo-flaky",
                   ("示例县人民政府2024年政府信息公开工作年度报告", "2024nb.docx", "pingtan-2024-libreoffice.docx", DOCX),
                   ["示例县关于2024年政务公开工作的通知", "示例县2024年政务公开工作要点", "示例县关于政务公开检查情况的通报"])
    _build_ucap(site)
    _build_gkmlpt(site)
    return site
