"""Pages the listing adapters and the HTML decoder are compared on (tests/test_adapters_lxml.py) and timed on
(benchmarks/bench_listing.py): every saved page (the adapter tests' pages, ../shared/portals, the corpus and
../shared/corpus HTML, the demo portal's pages, the polite-crawl benchmark's pages) as bytes with the Content-Type
they are served with, and generated hostile pages."""

from __future__ import annotations

import codecs
import os
import random
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GONGKAI_SHARED") or ROOT.parent / "shared")  # ../shared beside the clone, when there
HTML = "text/html; charset=utf-8"


def _files() -> list[Path]:
    paths = sorted((ROOT / "tests" / "portals").glob("*.*htm*")) + sorted((ROOT / "tests" / "corpus" / "documents").glob("*.htm*"))
    for folder in (SHARED / "portals", SHARED / "corpus" / "documents"):
        paths += sorted(folder.glob("*.htm*")) if folder.is_dir() else []
    return paths


@cache
def saved_pages() -> tuple[tuple[str, bytes, str], ...]:
    """(name, body, Content-Type) of every saved HTML page."""
    pages = [(str(p.relative_to(p.parents[1])), p.read_bytes(), "text/html") for p in _files()]
    from gongkai.crawler.demo_portal.site import build_site

    site = build_site(8000)
    pages += [(f"demo{path}", r.body, r.content_type) for path, r in sorted(site.resources.items())
              if r.content_type.startswith("text/html")]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_crawl

    pages += [(f"bench/listing{page}", bench_crawl.listing(7, page), HTML) for page in (0, 1)]
    pages += [(f"bench/detail{year}", *bench_crawl.detail(7, year)) for year in bench_crawl.YEARS]
    return tuple(pages)


LISTING_ROWS = (
    '<li><a href="./202403/t20240301_1.html" title="某局2023年政府信息公开工作年度报告">某局2023年…</a><span>2024-03-01</span></li>',
    '<a href="/a/202401/t20240102_2.html">2023年度报告</a> 2024年1月2日<br>',
    '<div><a href="./202301/t20230105_3.shtml">某县2022年政府信息公开年报</a>2023-1-5</div>',
    '<p><a href="x/202201/t20220101_4.html">2021年报告</a><a href="y.pdf">附件2021年</a> 2022-01-01</p>',
    '<table><tr><td><a href="/ucap/202312/0123456789abcdef0123456789abcdef.shtml">二〇二三年年度报告（表）</a></td>'
    '<td>2023/12/30</td></tr></table>',
    '<dl><dt><a href="c/202105/c01_77.shtml">２０２０年年度报告</a></dt><dd>2021.05.06</dd></dl>',
    '<li><a href="javascript:void(0)">2019年年度报告</a></li><li><a href="#top">2019年报</a></li><li><a href="mailto:a@b">2019年</a></li>',
    '<li><a href=" ./202402/t20240202_5.html ">  <!-- 2020-01-01 -->有注释的2020年报告 </a><!-- 2021-02-03 -->  </li>',
    '<li><a href="./202402/t20240203_6.html"><script>var d="2019-01-01"</script>脚本2024年政府信息公开年度报告</a>'
    '<style>p{}</style><script>2020-02-02</script></li>',
    '<template><li><a href="./202402/t20240204_7.html">模板里的2024年年度报告</a>2024-02-04</li></template>',
    '<li><ruby>年<rt>2024-02-05</rt></ruby><a href="./202402/t20240205_8.html">注音2024年年度报告书</a></li>',
    '<li><a href="./202402/t20240206_9.html" title="   ">空标题2024年年度报告</a><?php echo "2024-02-06"; ?></li>',
    '<a href="index_1.html">下一页</a><a href="index_9.html">尾页</a> 2020-03-04 <a href="list.jsp?page=3">3</a>',
    '<a href="./202402/t20240207_10.html">套<a href="./202402/t20240207_11.html">套娃2024年年度报告</a></a>2024-02-07',
    '<li><a href="./202402/t20240208_12.html">&nbsp;实体&amp;2024年&#x5e74;度报告&bogus;</a>&nbsp;2024-02-08</li>',
    '<a href="">2018年年度报告空链接</a><a href>2018年年度报告无值</a><A HREF="./202402/T20240209_13.HTML">大写2024年年度报告</A>',
    '<a href="http://[::1/x.html">2017年年度报告坏链接</a><a href="http://h:99999/202402/t20240210_14.html">端口2024年报告</a>',
    '<a href="首页.html">首页</a><span><a href="./202402/t20240211_15.html">下一页</a></span> 2024-02-11',
    '<ul><li><a href="./202402/t20240212_16.html">无闭合2024年年度报告<li>2024-02-12<li><a href="./202402/t20240213_17.html">x</a>',
    '<div><a href="./202402/t20240214_18.html">2024年年度报告块</a><p>2024-02-14</p><span><a href="z.html">z</a></span></div>',
)
PAGERS = ('<script>createPageHTML(5, 0, "index", "html");</script>', "<script>var countPage = 3//共多少页</script>",
          "<script>createPageHTML('page_div', 4, 1, 'index', 'shtml', 40);</script>",
          '<a href="list.jsp?page=2">2</a><a href="list.jsp?page=9">尾页</a>', '<a href="2.html">2</a>',
          "recordCount: '35', prepage: 10")


def _nested_tables(depth: int) -> str:
    cells = "".join(f'<table><tr><td><a href="./2024{depth:02d}/t2024{level:04d}_{level}.html">第{level}层2024年年度报告</a>'
                    f"</td><td>2024-{1 + level % 12:02d}-{1 + level % 28:02d}" for level in range(depth))
    return f"<html><body>{cells}{'</td></tr></table>' * depth}</body></html>"


WORDS = ("<a href='./202403/t20240301_{n}.html'>", '<a href="list_{n}.html">', "<a href='{n}.html' title='2024年第{n}号报告书'>",
         "<a>", "</a>", "<li>", "</li>", "<ul>", "</ul>", "<div>", "</div>", "<p>", "</p>", "<br>", "<tr>", "<td>", "</td>",
         "<table>", "</table>", "<dl>", "<dt>", "<dd>", "<span>", "</span>", "<b>", "</b>", "<script>", "</script>",
         "<style>", "</style>", "<template>", "</template>", "<ruby>", "<rt>", "</rt>", "<!--", "-->", "<?x ", "?>",
         "2023年政府信息公开工作年度报告", "2024-0{n}-1{n}", "2022年{n}月{n}日", " ", "\n", "\u3000", "&nbsp;", "&amp;", "&#x4e00;",
         "下一页", "尾页", "首页", "2", "某局", "<", ">", "'", '"', "=", "</", "<a href=", "javascript:", "#")


def _random_page(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS).replace("{n}", str(rng.randrange(1, 10))) for _ in range(rng.randrange(1, 90)))


def _encoded(text: str) -> list[tuple[str, bytes, str]]:
    """One page in the encodings and declarations sites send: the decoder's output is what the adapters read."""
    gbk = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>{text}</body></html>'
    return [
        ("gbk+meta", gbk.encode("gb18030"), "text/html"),
        ("gbk, utf-8 in the header", gbk.encode("gb18030"), HTML),
        ("utf-8 declared gbk", gbk.encode("utf-8"), "text/html; charset=GBK"),
        ("utf-8 BOM", codecs.BOM_UTF8 + text.encode("utf-8"), "text/html; charset=gbk"),
        ("utf-16-le BOM", codecs.BOM_UTF16_LE + text.encode("utf-16-le"), HTML),
        ("utf-16-be, no BOM", ("<html><body>" + text).encode("utf-16-be"), "text/html"),
        ("big5 meta", f'<meta charset="big5">{text}'.encode("big5", "replace"), "text/html"),
        ("latin-1 header", text.encode("utf-8"), "text/html; charset=ISO-8859-1"),
        ("unknown charset", text.encode("utf-8"), 'text/html; charset="x-unknown"; q=1'),
        ("quoted header charset", text.encode("gb18030"), 'text/html; Charset="GB2312"'),
        ("xml declaration", f'<?xml version="1.0" encoding="gbk"?>{text}'.encode("gb18030"), "application/xhtml+xml"),
        ("broken utf-8", text.encode("utf-8")[:-1] + b"\xff\xfe<a href='./202403/t20240301_9.html'>", "text/html"),
    ]


@cache
def hostile_pages() -> tuple[tuple[str, str], ...]:
    """(name, text) of built pages: the listing shapes above in one page and one by one, nested tables, huge
    attributes, markup cut anywhere, BOMs and meta charsets inside the text, control characters, random tag soup."""
    rows = "".join(LISTING_ROWS)
    pages = [("all rows", f"<html><body>{rows}{''.join(PAGERS)}</body></html>")]
    pages += [(f"row {i}", f"<html><body><ul>{row}</ul>{PAGERS[i % len(PAGERS)]}</body></html>") for i, row in enumerate(LISTING_ROWS)]
    pages += [(f"cut at {n}", pages[0][1][:n]) for n in range(0, len(pages[0][1]), 97)]
    pages += [("nested tables", _nested_tables(60)), ("empty", ""), ("spaces", " \n\t"), ("comment only", "<!-- 2024-01-01 -->"),
              ("doctype only", "<!DOCTYPE html>"), ("text only", "2024年年度报告 2024-01-01"),
              ("BOM", "\ufeff" + pages[0][1]), ("two BOMs", "\ufeff\ufeff" + pages[0][1]),
              ("meta gbk in text", '<meta charset="gbk">' + rows), ("meta utf-16 in text", '<meta charset="utf-16">' + rows),
              ("xml declaration in text", '<?xml version="1.0" encoding="big5"?>' + rows),
              ("control characters", rows.replace("年", "年\x00\x01\x0c\r", 3)),
              ("huge title", f'<li><a href="./202403/t20240301_1.html" title="{"长" * 300_000}2024年">x</a>2024-03-01</li>'),
              ("huge href", f'<li><a href="./202403/t20240301_1.html?{"q" * 300_000}">2024年年度报告</a></li>{rows}'),
              ("huge text", f'<li><a href="./202403/t20240301_1.html">{"字" * 200_000}2024年</a>{"2" * 100_000}</li>'),
              ("many links in one block", "<div>" + "".join(f'<a href="./2024{i % 12 + 1:02d}/t2024010{i % 9}_{i}.html">'
                                                            f"{i}2024年年度报告</a> 2024-01-0{i % 9 + 1}" for i in range(3000)) + "</div>")]
    rng = random.Random(20261129)
    pages += [(f"random {i}", _random_page(rng)) for i in range(400)]
    return tuple(pages)


@cache
def hostile_encoded() -> tuple[tuple[str, bytes, str], ...]:
    """(name, body, Content-Type) of built pages in odd encodings and declarations."""
    texts = ["".join(LISTING_ROWS), "二〇二四年年度报告 &nbsp; <a href='./202403/t20240301_1.html'>下一页</a>", ""]
    return tuple((f"{name} {i}", body, ctype) for i, text in enumerate(texts) for name, body, ctype in _encoded(text))
