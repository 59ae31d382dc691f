"""What the crawler's page readers return, frozen: parse_detail and every HTML listing family on every saved page and
on built ones (tests/test_parse_outputs.py asserts the code still returns exactly these; benchmarks/bench_detail.py
times the detail reading on the same pages).

    .venv/bin/python tests/parse_outputs.py     # rewrite tests/data/parse_outputs.json from the code as it stands

Only rewrite the fixture from code whose outputs are known good: it is the proof that a rewrite for speed changed
nothing. Inputs are stored as digests (the pages are in tests/ or built here), outputs in full."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import listing_pages  # noqa: E402
import test_detail  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "parse_outputs.json"
FULL_OUTPUT = 20_000  # characters of JSON: a larger output is kept as its digest
DETAIL_URL = "http://www.example.gov.cn/col/zfxxgknb/202403/t20240301_1.html"
LISTING_URLS = (("http://www.example.gov.cn/col/zfxxgknb/index.html", 1),
                ("http://www.example.gov.cn/jyj/zfxxgknb/1.html", 2))
# pieces of detail pages: metadata labels in cells, meta tags, titles, content containers, pictures, attachments
DETAIL_WORDS = (
    "<table>", "</table>", "<tr>", "<td>", "</td>", "<th>", "<dl>", "<dt>", "<dd>", "<span>", "</span>", "<b>", "<strong>",
    "<label>", "<p>", "</p>", "<div>", "</div>", "<br>", "<article>", "<section>", "<main>", "<ucapcontent>", "<ucaptitle>",
    "<div class='TRS_Editor'>", "<div class='x trs_editor_view'>", "<div id='zoom'>", "<div id='Zoom'>", "<div class='content'>",
    "<div id='content'>", "<div class='article'>", "<div class='bt_content'>", "<title>", "</title>",
    "<meta name='ArticleTitle' content='某局{n}年年报'>", "<meta name='PubDate' content='2024-0{n}-01'>",
    "<meta name='ContentSource' content=' 某局 '>", "<meta name='PubDate' content=' '>",
    "名称", "名 称：", "标题:", "发布机构", "发文机关：", "公开日期", "发布日期", "成文日期", "分类", "组配分类", "主题分类", "：", ":",
    "某县人民政府", "2024-0{n}-1{n}", "信息公开年报", "政府信息公开工作年度报告", "字" * 40, "表" * 120, "&nbsp;", "\u3000", " ",
    "<a href='./P0{n}.pdf'>", "<a href='/attachment/0/1/{n}/x.docx'>", "<a href='down.jsp?id={n}'>", "<a href='./{n}.html'>",
    "<a href='./{n}/'>", "<a href='javascript:void(0)'>", "<a href='#top'>", "<a href=' downfile.jsp?f={n} '>", "<a title='附件{n}' href='f{n}'>",
    "<a href='http://[::1/x.pdf'>", "<a>", "</a>", "附件", "下载", "附：", "<img src='/img/t{n}.png'>", "<img src='data:image/png;base64,AAAA'>",
    "<img src='i{n}.gif' width='1' height='1'>", "<img>", "<script>", "</script>", "<style>", "</style>", "<template>",
    "</template>", "<!--", "-->", "<?x ", "?>", "<", ">", "'", '"', "=", "</",
)


def _detail_soup(rng: random.Random) -> str:
    return "".join(rng.choice(DETAIL_WORDS).replace("{n}", str(rng.randrange(1, 10))) for _ in range(rng.randrange(1, 160)))


def _many_attachments() -> str:
    links = "".join(f"<li><a href='./files/P{i}.{('pdf', 'docx', 'html', 'xls')[i % 4]}'>附件{i}</a>"
                    f"<a href='./{i}/'>下载{i}</a><img src='/p/{i % 50}.png'></li>" for i in range(2000))
    return f"<html><head><title>多附件_某局</title></head><body><div class='TRS_Editor'><ul>{links}</ul></div></body></html>"


@cache
def detail_pages() -> tuple[tuple[str, str], ...]:
    """(name, text) of the pages parse_detail is frozen on: every saved page (as the decoder hands it over), the
    listing tests' built pages, test_detail's, and detail-shaped ones built here (random soup of metadata tables,
    containers, pictures and links; real pages cut anywhere; many attachments; deep and huge pages)."""
    from gongkai.crawler.fetcher import decode_html

    pages = [(f"saved {name}", decode_html(body, ctype)) for name, body, ctype in listing_pages.saved_pages()]
    pages += [(f"encoded {name}", decode_html(body, ctype)) for name, body, ctype in listing_pages.hostile_encoded()]
    pages += [(f"listing {name}", text) for name, text in listing_pages.hostile_pages()]
    pages += [(f"test_detail built {i}", text) for i, text in enumerate(test_detail.BUILT + test_detail.EMPTY_CELLS)]
    pages += [(f"test_detail hostile {i}", text) for i, text in enumerate(test_detail.hostile_pages())]
    for name in ("corpus/pingtan-2024.html", "corpus/shanghai-szfbgt-2019.html", "portals/gkmlpt-detail.html",
                 "portals/ucap-detail.shtml"):
        whole = ROOT.joinpath("tests", name.replace("corpus/", "corpus/documents/")).read_text("utf-8")
        pages += [(f"cut {name} at {n}", whole[:n]) for n in range(len(whole) // 23, len(whole), len(whole) // 11)]
    rng = random.Random(20261130)
    pages += [(f"detail soup {i}", _detail_soup(rng)) for i in range(300)]
    pages += [("many attachments", _many_attachments()),
              ("no rules", "<html><body>" + "".join(f"<p>第{i}段，没有任何已知的结构。</p>" for i in range(400)) + "</body></html>"),
              ("deep unclosed", "<html><body>" + "<div><span>层" * 1500 + "名称<td>深处</td>" + "<a href='d.pdf'>附件</a>"),
              ("huge body", "<html><body><div class='content'>" + "<p>" + "报告正文" * 600_000 + "</p></div></body></html>"),
              ("huge cell", "<table><tr><td>发布机构</td><td>" + "某" * 11_000_000 + "</td></tr></table>")]
    return tuple(pages)


@cache
def listing_texts() -> tuple[tuple[str, str], ...]:
    """(name, text) of the pages the listing families are frozen on: the saved and built pages of test_adapters_lxml."""
    from gongkai.crawler.fetcher import decode_html

    pages = [(f"saved {name}", decode_html(body, ctype)) for name, body, ctype in listing_pages.saved_pages()]
    pages += [(f"encoded {name}", decode_html(body, ctype)) for name, body, ctype in listing_pages.hostile_encoded()]
    return tuple(pages + [(f"listing {name}", text) for name, text in listing_pages.hostile_pages()])


def listing_readers() -> list[tuple[str, Callable[..., Any], Any]]:
    """(family, parse_listing, portal): every family that reads HTML, with the parameters that change the reading."""
    from gongkai.crawler.adapters import generic as gen
    from gongkai.crawler.adapters import gkmlpt, hanweb, trs, ucap
    from gongkai.crawler.registry import Portal

    def portal(cms: str, **params: Any) -> Portal:
        return Portal("p", "某局", "000000", "county", cms, (LISTING_URLS[0][0],), frozenset({"www.example.gov.cn"}), params)

    return [("trs", trs.parse_listing, portal("trs")),
            ("trs search", trs.parse_listing, portal("trs", search_api="/search", page_size=10)),
            ("ucap", ucap.parse_listing, portal("ucap")), ("generic", gen.parse_listing, portal("generic")),
            ("generic item_pattern", gen.parse_listing, portal("generic", item_pattern=r"\.s?html?$")),
            ("generic next_text", gen.parse_listing, portal("generic", next_text="2")),
            ("hanweb", hanweb.parse_listing, portal("hanweb")), ("gkmlpt", gkmlpt.parse_listing, portal("gkmlpt"))]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def detail_output(text: str, url: str = DETAIL_URL) -> Any:
    """Detail.to_dict and the pictures (not in to_dict: a 304 does not remember them), or what parse_detail raised."""
    from gongkai.crawler.detail import parse_detail

    try:
        found = parse_detail(text, url)
    except Exception as exc:  # noqa: BLE001 — frozen as the error's type: a page that failed must fail the same way
        return {"raises": type(exc).__name__}
    return {**found.to_dict(), "pictures": [list(p) for p in found.pictures]}


def listing_output(text: str) -> dict[str, Any]:
    """Every family's candidates and next pages from each URL and page number, or the type of what it raised."""
    from gongkai.crawler.adapters import PageRequest

    out: dict[str, Any] = {}
    for url, number in LISTING_URLS:
        request = PageRequest(url, number=number)
        for family, parse, portal in listing_readers():
            try:
                page = parse(portal, request, text, url)
                found: Any = {"candidates": [[c.title, c.url, c.published] for c in page.candidates],
                              "next": [[r.url, r.method, r.data, r.number, r.record] for r in page.next]}
            except Exception as exc:  # noqa: BLE001 — frozen as the error's type
                found = {"raises": type(exc).__name__}
            out[f"{family} {number}"] = found
    return out


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def kept(output: Any) -> Any:
    """An output as the fixture keeps it: in full, or as its digest and size when its JSON is over FULL_OUTPUT
    characters (the pages built huge: a few pages, most of the fixture's size otherwise)."""
    text = canonical(output)
    return output if len(text) <= FULL_OUTPUT else {"sha256": digest(text), "chars": len(text)}


def outputs() -> dict[str, Any]:
    return {"detail": {name: {"input": digest(text), "output": kept(detail_output(text))} for name, text in detail_pages()},
            "listing": {name: {"input": digest(text), "output": kept(listing_output(text))} for name, text in listing_texts()}}


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(outputs(), ensure_ascii=False, sort_keys=True, indent=0) + "\n", "utf-8")
    print(FIXTURE, FIXTURE.stat().st_size, "bytes")
