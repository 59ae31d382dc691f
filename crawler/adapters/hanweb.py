"""Hanweb JCMS: /col/colNNN/index.html embeds the first records in a <datastore>; the rest come from
/module/web/jpage/dataproxy.jsp?startrecord=&endrecord=&perpage= in groups of 45, where each group
repeats one record of the previous group (deduplicated by the caller). Params: `column_id`, `unit_id`,
`web_id`, `per_page`, `group` (45)."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

from gongkai.crawler.adapters import Candidate, ListingPage, PageRequest
from gongkai.crawler.adapters.links import iso_date, join_link
from gongkai.crawler.registry import Portal

DATAPROXY = "/module/web/jpage/dataproxy.jsp"
RECORD = re.compile(r"<record>\s*<!\[CDATA\[(.*?)\]\]>\s*</record>", re.S)
COLUMN = re.compile(r"/col/col(\d+)/")
TOTAL = re.compile(r"<totalrecord>\s*(\d+)\s*</totalrecord>")


def _anchor_title(a: Tag) -> str:
    """links.anchor_title of a record's link, which BeautifulSoup's html.parser reads (a record is a fragment of a
    CDATA section, not a page: lxml's reading of it is not html.parser's)."""
    title = a.get("title")
    return (title if isinstance(title, str) and title.strip() else a.get_text(" ", strip=True)).strip()


def _records(text: str, base_url: str) -> list[Candidate]:
    out = []
    for fragment in RECORD.findall(text):
        soup = BeautifulSoup(fragment, "html.parser")
        a = soup.find("a", href=True)
        if not isinstance(a, Tag):
            continue
        out.append(Candidate(_anchor_title(a), join_link(base_url, str(a["href"])), iso_date(soup.get_text(" "))))
    return out


def _group_request(portal: Portal, request: PageRequest, start: int, total: int) -> PageRequest:
    """The proxy's group from record `start`, for the column of `request` (its /col/ page or an earlier group)."""
    group = int(portal.param("group", 45))
    end = min(start + group - 1, total)
    if request.method == "POST" and request.data:  # an earlier group: same site root, same column
        prefix, column = request.url.split(DATAPROXY)[0], request.data["columnid"]
    else:  # the column's page, not portal.listing[0]: a portal may list several columns
        m = COLUMN.search(request.url)
        prefix = request.url.split("/col/")[0]  # the site root the column lives under
        column = m.group(1) if m else str(portal.param("column_id", ""))
    query = f"?startrecord={start}&endrecord={end}&perpage={portal.param('per_page', 15)}"
    data = {
        "col": "1", "appid": "1", "webid": str(portal.param("web_id", 1)), "path": "/",
        "columnid": column, "sourceContentType": "1",
        "unitid": str(portal.param("unit_id", "")), "webname": "", "permissiontype": "0",
    }
    return PageRequest(urljoin(prefix + "/", DATAPROXY.lstrip("/")) + query, "POST", data, number=2 + start // group, record=start)


def parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    found = _records(text, url)
    m = TOTAL.search(text)
    total = int(m.group(1)) if m else len(found)
    group = int(portal.param("group", 45))
    # the first page's embedded records are group 1 again; the proxy's groups follow one another
    start = 1 if request.method == "GET" else request.record + group
    if request.method == "GET" and total <= len(found):
        return ListingPage(found, [])
    return ListingPage(found, [_group_request(portal, request, start, total)] if start <= total else [])
