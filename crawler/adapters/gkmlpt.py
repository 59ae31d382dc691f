"""Guangdong gkmlpt (政府信息公开目录平台), used by Guangdong's province, cities, counties and departments.

Observed on real sites (shared/portals/README.md, columns.tsv, public crawler code): details
`/gkmlpt/content/<a>/<b>/post_<id>.html`, attachments `/attachment/<x>/<y>/<z>/<id>.pdf`; pages carry the site
id as `SID: '<n>'` in a script and the word gkmlpt; the listing is an API,
`/gkmlpt/api/all/<category>?page=<n>&sid=<sid>`, answering JSON `{"total": N, "articles": [{"id", "title", "url",
"create_time" (epoch seconds), "display_publish_time", "publisher"}, …]}`, 100 articles a page, pages from 1.
A site's annual-report page is `/gkmlpt/annualreport#<category>`.

Assumed, to confirm on a live site: that `post_url` (when present) is the detail URL to prefer, and that the
category of a site's 年报 is the fragment of its annualreport page (it is in 广东省文化和旅游厅's case).
Params: `category`, `sid` (read from the page when left out), `page_size` (100).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gongkai.crawler.adapters import Candidate, ListingPage, PageRequest, json_answer
from gongkai.crawler.adapters.links import iso_date, join_link
from gongkai.crawler.registry import Portal

API = re.compile(r"/gkmlpt/api/all/(\d+)")
SID = re.compile(r"""\bSID\s*[:=]\s*['"]?(\d+)""")
DETAIL = re.compile(r"/gkmlpt/content/\d+/\d+/post_\d+\.html")
ATTACHMENT = re.compile(r"/attachment/\d+/\d+/\d+/\d+\.\w+")


def api_url(base_url: str, category: str, sid: str, page: int) -> str:
    root = base_url.split("/gkmlpt/")[0]
    return f"{root}/gkmlpt/api/all/{category}?page={page}&sid={sid}"


def _date(article: dict[str, Any]) -> str | None:
    for key in ("display_publish_time", "first_publish_time", "publish_time", "create_time", "created_at"):
        value = article.get(key)
        if isinstance(value, int | float) and value > 0:
            stamp = value / 1000 if value > 1e11 else value  # milliseconds on some sites
            return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
        if isinstance(value, str) and (found := iso_date(value)):
            return found
    return None


def _api_page(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    answer = json_answer.load(text)
    articles = answer.get("articles") if isinstance(answer, dict) else None
    if not isinstance(articles, list):
        return ListingPage([], [])
    found = [
        Candidate(str(a.get("title", "")).strip(), join_link(url, str(a.get("post_url") or a.get("url"))), _date(a))
        for a in articles
        if isinstance(a, dict) and (a.get("post_url") or a.get("url"))
    ]
    query = parse_qs(urlsplit(request.url).query)
    page = int(query.get("page", ["1"])[0])
    total = int(answer.get("total") or 0)
    pages = math.ceil(total / int(portal.param("page_size", 100)))
    if page >= pages or not found:
        return ListingPage(found, [])
    m = API.search(request.url)
    category = m.group(1) if m else str(portal.param("category"))
    sid = query.get("sid", [str(portal.param("sid", ""))])[0]
    return ListingPage(found, [PageRequest(api_url(request.url, category, sid, page + 1), number=request.number + 1)])


def parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    if API.search(request.url):
        return _api_page(portal, request, text, url)
    # a site page (/gkmlpt/index, /gkmlpt/annualreport#<category>): its SID, then the API's first page
    fragment = urlsplit(request.url).fragment
    category = str(portal.param("category") or (fragment if fragment.isdigit() else ""))
    m = SID.search(text)
    sid = str(portal.param("sid") or (m.group(1) if m else ""))
    if not (category and sid):
        return ListingPage([], [])
    return ListingPage([], [PageRequest(api_url(url, category, sid, 1), number=request.number + 1)])
