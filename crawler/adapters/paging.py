"""Next-page discovery for a listing of any CMS, from the usual patterns, in this order:

1. a 下一页 / 下页 / 后页 link (its text configurable);
2. `createPageHTML(n, …)` / `var countPage = n` scripts (TRS and its imitators): page n+1 is `index_n.html` beside
   the first (name and extension from the call when it names them);
3. a link to the same path whose `page=` / `cur_page=` / `pageNo=` / `pageIndex=` query value is one more than ours;
4. `index_N` / `list_N` file names: the link whose N follows ours (the first page is `index.html`, N absent);
5. a page number as the file name (`…/1.html`, `…/2.html`): the next number, when a link to it or a 尾页 link to a
   later one is on the page.

Every candidate must be an http(s) URL other than the page itself; the walk refuses a page it already asked for.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urldefrag, urlencode, urlsplit, urlunsplit

from gongkai.crawler.adapters import PageRequest
from gongkai.crawler.adapters.links import join_link
from gongkai.crawler.adapters.tree import Element, get_text
from gongkai.crawler.adapters.tree import links as tree_links

NEXT_TEXTS = ("下一页", "下页", "后页", "下一頁")
NAV_TEXTS = (*NEXT_TEXTS, "尾页", "末页", "最后一页", "上一页", "上页", "前页", "首页", "第一页")
PAGE_COUNT = re.compile(r"createPageHTML\(\s*(?:['\"][\w-]*['\"]\s*,\s*)?['\"]?(\d+)['\"]?\s*,\s*['\"]?\d+['\"]?"
                        r"(?:\s*,\s*['\"](\w+)['\"]\s*,\s*['\"](\w+)['\"])?|countPage\s*=\s*['\"]?(\d+)")
PAGE_PARAMS = ("page", "cur_page", "curpage", "pageNo", "pageno", "pageIndex", "pageindex", "currentPage", "pageNum")
SERIES = re.compile(r"^(?P<stem>index|list|default)(?:_(?P<n>\d+))?\.(?P<ext>s?html?|jsp|php|aspx?)$", re.I)
NUMBERED = re.compile(r"^(?P<n>\d{1,4})\.(?P<ext>s?html?)$", re.I)


def _followable(target: str, current: str) -> bool:
    try:
        return urlsplit(target).scheme in ("http", "https") and urldefrag(target).url != urldefrag(current).url
    except ValueError:  # a malformed link: this listing ends here, its items are kept
        return False


def _links(anchors: list[tuple[Element, str]], url: str) -> list[tuple[str, str]]:
    """(text, absolute URL) of the page's links; a link that does not parse (`http://[::1`) is no page of the listing
    (its item, if it is one, is refused by the fetcher with its reason)."""
    out = []
    for a, text in anchors:
        href = str(a.get("href")).strip()
        if href and not href.startswith(("javascript:", "#", "mailto:")):
            target = join_link(url, href)
            try:
                urlsplit(target)
            except ValueError:
                continue
            out.append((text, target))
    return out


def _folder_and_file(url: str) -> tuple[str, str]:
    path = urlsplit(url).path
    folder, _, name = path.rpartition("/")
    return folder, name


def link_texts(anchors: list[Element]) -> list[tuple[Element, str]]:
    """Each link with its text (get_text(strip=True)), read once for the pager and the navigation links."""
    return [(a, get_text(a)) for a in anchors]


def next_page(root: Element | None, text: str, url: str, request: PageRequest, next_text: str | None = None, *,
              anchors: list[tuple[Element, str]] | None = None) -> PageRequest | None:
    """The listing's next page after `request` (read from `url`, the page as fetched, `root` its tree.parse_html), or
    None on the last page. `anchors`: the page's links with their text, when the caller read them already."""
    number = request.number + 1
    anchors = link_texts(tree_links(root)) if anchors is None else anchors
    links = _links(anchors, url)
    texts = (next_text,) if next_text else NEXT_TEXTS
    named = [a for a, a_text in anchors if a_text in texts]
    if named:  # a 下一页 link decides alone: javascript:void(0) or "#" on the last page means there is none
        target = join_link(url, str(named[0].get("href")).strip())
        return PageRequest(target, number=number) if _followable(target, url) else None
    folder, name = _folder_and_file(url)
    m = PAGE_COUNT.search(text)
    if m:
        count = int(m.group(1) or m.group(4))
        if request.number >= count:
            return None
        series = SERIES.match(name)
        stem = m.group(2) or (series.group("stem") if series else "index")
        ext = m.group(3) or (series.group("ext") if series else "html")
        return PageRequest(join_link(url, f"{stem}_{request.number}.{ext}"), number=number)
    ours, path = dict(parse_qsl(urlsplit(url).query)), urlsplit(url).path
    for param in PAGE_PARAMS:
        mine = ours.get(param, "")
        current = int(mine) if mine.isdigit() else 1
        # links to later pages of the same path (a pager may show only 尾页): the next is one more than ours
        later = [(int(v), target) for _text, target in links if urlsplit(target).path == path
                 and (v := dict(parse_qsl(urlsplit(target).query)).get(param, "")).isdigit() and int(v) > current]
        if later:
            _n, model = min(later)
            query = urlencode([(k, str(current + 1) if k == param else v) for k, v in parse_qsl(urlsplit(model).query)])
            target = urlunsplit(urlsplit(model)._replace(query=query))
            return PageRequest(target, number=number) if _followable(target, url) else None
    series = SERIES.match(name)
    if series:  # TRS numbers index.html, index_1, index_2 …; others list.html, list_2 …
        ours_n = int(series.group("n") or 0)
        later = sorted(
            int(o.group("n")) for _t, target in links
            if _folder_and_file(target)[0] == folder and (o := SERIES.match(_folder_and_file(target)[1])) is not None
            and o.group("stem") == series.group("stem") and o.group("n") and int(o.group("n")) > ours_n
        )
        if not later:
            return None
        if ours_n:
            n = ours_n + 1  # never the 尾页's number: the pages between are not skipped
        else:  # from the first page: _1 or _2, whichever the pager shows; only a 尾页: TRS's index_1, others' _2
            n = later[0] if later[0] <= 2 else 1 if series.group("stem").lower() == "index" else 2
        return PageRequest(join_link(url, f"{series.group('stem')}_{n}.{series.group('ext')}"), number=number)
    numbered = NUMBERED.match(name)
    if numbered:
        n = int(numbered.group("n"))
        later = [int(o.group("n")) for _t, target in links
                 if _folder_and_file(target)[0] == folder and (o := NUMBERED.match(_folder_and_file(target)[1])) is not None
                 and int(o.group("n")) > n]
        if later:
            return PageRequest(join_link(url, f"{n + 1}.{numbered.group('ext')}"), number=number)
    return None
