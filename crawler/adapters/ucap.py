"""UCAP 集约化 platforms (开普云; Jiangsu 宿迁 and its counties, Heilongjiang, Xinjiang, Hainan).

Observed on real sites (shared/portals/README.md, columns.tsv): detail pages
`/<site>/<col>/YYYYMM/<32 hex>.shtml` or `/<site>/c<colid>/YYYYMM/<32 hex>.shtml` (哈尔滨: `c01_<n>.shtml`, 新疆:
`.html`); the title in `<ucaptitle>`, the body in `<ucapcontent>`, and a metadata table 名称 / 索引号 / 分类
(信息公开年报) / 发布机构 / 公开日期 / 文号 / 文件下载 / 时效 (read by crawler.detail for title, agency and date).

Assumed, to confirm on a live site: the listing markup (`<li><a href title>…</a><span>YYYY-MM-DD</span></li>`)
and its pager, a script call `createPageHTML('page_div', pages, current, 'index', 'shtml', records)` whose page n
(n ≥ 2) is `index_{n-1}.shtml` beside the first (the TRS convention this platform's templates copy); the
pager's name and extension are read from the call, so `list`/`html` variants work too. Param `page_offset`
(default 1): page n is `<name>_{n - page_offset}` — set 0 for a site whose page 2 is `index_2`.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from gongkai.crawler.adapters import ListingPage, PageRequest
from gongkai.crawler.adapters.links import candidates_from_anchors
from gongkai.crawler.adapters.tree import parse_html
from gongkai.crawler.registry import Portal

DETAIL = re.compile(r"/\d{6}/(?:[0-9a-f]{32}|c\d+_\d+)\.s?html?(?:$|\?)", re.I)
PAGER = re.compile(r"createPageHTML\(\s*['\"][\w-]*['\"]\s*,\s*(\d+)\s*,\s*\d+\s*,\s*['\"](\w+)['\"]\s*,\s*['\"](\w+)['\"]")


def page_url(request: PageRequest, number: int, name: str, ext: str, offset: int) -> str:
    return urljoin(request.url, f"{name}.{ext}" if number == 1 else f"{name}_{number - offset}.{ext}")


def parse_listing(portal: Portal, request: PageRequest, text: str, url: str) -> ListingPage:
    found = candidates_from_anchors(parse_html(text), url, DETAIL)
    m = PAGER.search(text)
    if m is None or request.number >= int(m.group(1)):
        return ListingPage(found, [])
    nxt = page_url(request, request.number + 1, m.group(2), m.group(3), int(portal.param("page_offset", 1)))
    return ListingPage(found, [PageRequest(nxt, number=request.number + 1)])
