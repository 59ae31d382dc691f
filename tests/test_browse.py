"""gongkai browse over plain HTTP: every page on the demo warehouse (DuckDB and PostgreSQL), bad ids, nothing written."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browse_support import demo_archive, served
from bs4 import BeautifulSoup

from gongkai.browse import app as browse_app
from gongkai.browse.app import create_app
from gongkai.browse.layout import report_layouts
from gongkai.browse.plot import line_plot, nice_ticks
from gongkai.schema import CONCEPTS
from gongkai.warehouse.archive import open_archive
from gongkai.warehouse.query import open_read_only

REPO = Path(__file__).resolve().parent.parent
HONGZE = "淮安市洪泽区人民政府"


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with open_read_only(url, allow_writable_role=True) as reader:
        return reader.run(sql).rows


@pytest.fixture()
def site(demo_url: str, demo_crawls: dict[str, str]) -> Iterator[tuple[Any, str]]:
    """A TestClient of the site over the demo warehouse of each engine, and the warehouse URL."""
    from fastapi.testclient import TestClient

    engine = "duckdb" if demo_url.startswith("duckdb") else "postgres"
    app = create_app(demo_url, open_archive(demo_archive(demo_crawls, engine)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, demo_url


def _soup(response: Any) -> BeautifulSoup:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return BeautifulSoup(response.text, "html.parser")


def _hongze_2023(url: str) -> int:
    return int(_rows(url, f"SELECT report_id FROM report_index WHERE agency = '{HONGZE}' AND year = 2023")[0][0])


def test_report_page_lays_out_the_tables_and_highlights_failing_checks(site: tuple[Any, str]) -> None:
    client, url = site
    report_id = _hongze_2023(url)
    page = _soup(client.get(f"/report/{report_id}"))
    # the three tables of template 2021, in the template's order
    assert [t["data-table"] for t in page.select("table.report")] == ["proactive", "requests", "appeals"]
    failing = {(r[0], r[1]) for r in _rows(url, f"SELECT rule, target FROM checks WHERE report_id = {report_id} AND status = 'fail'")}
    assert len(failing) == 2  # the demo's two appeals.row_total failures
    rows = page.select("#checks tr.check.fail")
    assert {(r.select("td")[1].text, r.select("td")[2].text) for r in rows} == failing
    assert {td["data-address"] for td in page.select("table.report td.fail")} == {t for _, t in failing}
    # every stored cell links to its source page, with the value the warehouse holds
    stored = _rows(url, f"SELECT address, value FROM cells WHERE report_id = {report_id}")
    links = {a["href"]: a.text for a in page.select("td[data-address] a")}
    for address, value in stored:
        href = f"/source/{report_id}/{address}"
        assert href in links, address
        if value is not None:
            assert float(links[href]) == value
    # table 四 prints its rows as column groups: 行政复议, then 行政诉讼 over its two kinds, five results each
    appeals = page.select_one('table.report[data-table="appeals"]')
    first = [(th.text, th["colspan"]) for th in appeals.select("thead tr")[0].select("th")]
    assert first == [("行政复议", "5"), ("行政诉讼", "10")]
    assert len(appeals.select("tbody tr")) == 1 and len(appeals.select("tbody td")) == 15


def test_incomplete_checks_are_highlighted_too(site: tuple[Any, str]) -> None:
    client, url = site
    report_id = _rows(url, "SELECT report_id FROM report_index WHERE agency = '上海市人民政府办公厅' AND year = 2019")[0][0]
    page = _soup(client.get(f"/report/{report_id}"))
    incomplete = _rows(url, f"SELECT DISTINCT target FROM checks WHERE report_id = {report_id} AND status = 'incomplete'")
    assert incomplete and len(page.select("#checks tr.check.incomplete")) >= len(incomplete)
    assert {td["data-address"] for td in page.select("td.incomplete")} == {t for (t,) in incomplete}


def test_source_page_of_a_pdf_cell_draws_its_box_on_the_rendered_page(site: tuple[Any, str]) -> None:
    from PIL import Image

    client, url = site
    report_id = _hongze_2023(url)
    address = "requests.new.natural_person"
    value, raw, page_no, *box = _rows(
        url, f"SELECT value, raw, page, bbox_x0, bbox_y0, bbox_x1, bbox_y1 FROM cells WHERE report_id = {report_id} AND address = '{address}'")[0]
    page = _soup(client.get(f"/source/{report_id}/{address}"))
    assert page.select_one("#raw").text.strip() == raw and float(page.select_one("#value").text) == value
    img = page.select_one("#page-image")
    assert img["src"] == f"/page/{report_id}/{page_no}.png"
    rect = page.select_one("#bbox-box")
    drawn = [float(rect["x"]), float(rect["y"]), float(rect["x"]) + float(rect["width"]), float(rect["y"]) + float(rect["height"])]
    assert drawn == pytest.approx(box, abs=0.01)
    png = client.get(img["src"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content)).convert("L")
    scale = image.width / float(img["data-width-pt"])
    inside = image.crop(tuple(round(v * scale) for v in box))
    # the box sits on the printed number: ink inside it (a box flipped upside down would land on white)
    assert inside.getextrema()[0] < 100


def test_source_page_of_an_html_cell_marks_it_in_the_original_table(site: tuple[Any, str]) -> None:
    client, url = site
    report_id, raw = _rows(url, "SELECT report_id, raw FROM cells_long WHERE agency = '平潭综合实验区' AND year = 2024 "
                                "AND address = 'requests.new.natural_person'")[0]
    page = _soup(client.get(f"/source/{report_id}/requests.new.natural_person"))
    marked = page.select("#original-table td.marked")
    assert len(marked) == 1 and marked[0].text.strip() == raw
    assert "自然人" in page.select_one("#original-table").text


def test_agency_page_shows_years_plot_and_failing_checks(site: tuple[Any, str]) -> None:
    client, url = site
    agency_id = _rows(url, f"SELECT agency_id FROM agencies WHERE name = '{HONGZE}'")[0][0]
    page = _soup(client.get(f"/agency/{agency_id}"))
    years = [th.text for th in page.select("#years thead tr")[0].select("th")][1:]
    assert years == [str(y) for (y,) in _rows(url, f"SELECT year FROM report_index WHERE agency_id = {agency_id} "
                                                          "AND status <> 'not_a_report' ORDER BY year")]
    received = page.select_one('#years tr[data-concept="requests_received"]').select("td")
    new_total = _rows(url, f"SELECT value FROM cells_long WHERE agency_id = {agency_id} AND year = 2023 AND address = 'requests.new.total'")[0][0]
    assert received[-1].text == f"{new_total:g}"
    svg = page.select_one("#plot svg.plot")
    assert svg is not None and int(svg["data-series"]) >= 2 and svg.select("circle")
    assert len(page.select("#failing-checks tr.check.fail")) == 2


def test_coverage_filters(site: tuple[Any, str]) -> None:
    client, url = site
    everything = _soup(client.get("/coverage"))
    agencies = _rows(url, "SELECT count(DISTINCT agency_id) FROM coverage")[0][0]
    assert len(everything.select("#coverage tbody tr[data-agency]")) == agencies
    county = _soup(client.get("/coverage", params={"level": "county"}))
    assert [a.text for a in county.select("#coverage tbody th a")] == [HONGZE]
    failing = _soup(client.get("/coverage", params={"status": "extracted_failing_checks"}))
    assert [d.text for d in failing.select("#coverage .cov")] == ["extracted_failing_checks"]
    fujian = _soup(client.get("/coverage", params={"province": "福建省", "level": "city"}))
    names = {a.text for a in fujian.select("#coverage tbody th a")}
    assert names == {n for (n,) in _rows(url, "SELECT DISTINCT agency FROM coverage WHERE province = '福建省' AND level = 'city'")}
    assert HONGZE not in names
    assert "Nothing matches" in _soup(client.get("/coverage", params={"province": "no such province"})).text
    # the status filter offers every value the coverage view gives
    offered = {o["value"] for o in everything.select('select[name="status"] option')}
    assert {s for (s,) in _rows(url, "SELECT DISTINCT coverage FROM coverage")} <= offered


@pytest.mark.parametrize("path", [
    "/report/999999", "/report/abc", "/report/-1", "/report/99999999999999999999999", "/report/1.5", "/agency/999999", "/agency/x1", "/source/999999/requests.new.total",
    "/source/{report}/requests.no_such_row.total", "/source/{report}/%3Cscript%3E", "/page/{report}/999.png",
    "/page/{report}/0.png", "/page/{report}/99999999999.png", "/page/{html_report}/1.png", "/no/such/page",
])
def test_bad_ids_are_404_with_one_line(site: tuple[Any, str], path: str) -> None:
    client, url = site
    html_report = _rows(url, "SELECT report_id FROM report_index WHERE agency = '平潭综合实验区' AND year = 2024")[0][0]
    response = client.get(path.format(report=_hongze_2023(url), html_report=html_report))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.endswith("\n") and response.text.count("\n") == 1 and len(response.text) < 200
    assert response.headers["x-content-type-options"] == "nosniff"  # text, never read as HTML


def test_no_route_writes(demo_crawls: dict[str, str]) -> None:
    """Only GET routes; a POST is refused; the DuckDB file and the archive are byte for byte the same after every
    page was read; the site's connection itself cannot write."""
    from fastapi.testclient import TestClient

    url = demo_crawls["duckdb"]
    database = Path(url.removeprefix("duckdb://"))
    archive = demo_archive(demo_crawls, "duckdb")

    def state() -> tuple[str, list[tuple[str, int]]]:
        files = sorted((str(p.relative_to(archive)), p.stat().st_size) for p in archive.rglob("*") if p.is_file())
        siblings = sorted(p.name for p in database.parent.iterdir() if p.name.startswith(database.name))
        return hashlib.sha256(database.read_bytes()).hexdigest() + repr(siblings), files

    before = state()
    app = create_app(url, open_archive(archive))
    methods = {m for route in app.routes for m in getattr(route, "methods", set())}
    assert methods <= {"GET", "HEAD"}
    report_id = _hongze_2023(url)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        pages = ["/", "/coverage", "/coverage?level=county", f"/report/{report_id}", f"/page/{report_id}/3.png"]
        pages += [f"/agency/{a}" for (a,) in _rows(url, "SELECT agency_id FROM agencies")]
        pages += [f"/report/{r}" for (r,) in _rows(url, "SELECT report_id FROM reports")]
        pages += [f"/source/{r}/{a}" for r, a in _rows(url, "SELECT report_id, min(address) FROM cells GROUP BY report_id")]
        for path in pages:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no script
            assert "<script" not in response.text
        for method in ("post", "put", "delete", "patch"):
            refused = getattr(client, method)(f"/report/{report_id}")
            assert refused.status_code == 405 and refused.text.count("\n") == 1
        import duckdb

        with pytest.raises(duckdb.Error):
            app.state.data.reader.connection.execute("CREATE TABLE written (x INTEGER)")
    assert state() == before


@pytest.mark.postgres
def test_postgres_connection_is_read_only(demo_crawls: dict[str, str]) -> None:
    if "postgres" not in demo_crawls:
        pytest.skip("PostgreSQL unavailable")
    import psycopg

    app = create_app(demo_crawls["postgres"], open_archive(demo_archive(demo_crawls, "postgres")))
    data = app.state.data
    assert data.rows("SELECT current_setting('transaction_read_only') AS ro")[0]["ro"] == "on"
    with pytest.raises(psycopg.Error):
        data.rows("CREATE TABLE written (x INTEGER)")
    assert data.rows("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'written'")[0]["n"] == 0
    data.close()


def test_foreign_host_header_is_refused(demo_crawls: dict[str, str]) -> None:
    """A page of another site that rebinds its name to 127.0.0.1 sends its own Host: refused."""
    from fastapi.testclient import TestClient

    app = create_app(demo_crawls["duckdb"], open_archive(demo_archive(demo_crawls, "duckdb")))
    with TestClient(app, base_url="http://attacker.example") as client:
        assert client.get("/coverage").status_code == 400


def test_command_serves_on_loopback_and_says_where(demo_crawls: dict[str, str]) -> None:
    """`gongkai browse --port 0` prints its URL on 127.0.0.1; the pages answer over real HTTP; Ctrl-C ends it."""
    import signal

    import requests

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gongkai.cli", "browse", "--warehouse", demo_crawls["duckdb"], "--port", "0",
         "--archive", str(demo_archive(demo_crawls, "duckdb"))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("gongkai browse: http://127.0.0.1:"), line + (process.stderr.read() if process.poll() is not None else "")
        base = line.split()[2]
        response = requests.get(base + "coverage", timeout=30)
        assert response.status_code == 200 and HONGZE in response.text
        page = requests.get(base + f"page/{_hongze_2023(demo_crawls['duckdb'])}/3.png", timeout=30)
        assert page.status_code == 200 and page.content[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode in (0, -signal.SIGINT, 130)


def test_archive_beside_a_duckdb_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `gongkai demo` lays it out (data/demo/gongkai-demo.duckdb, data/demo/archive); GONGKAI_ARCHIVE or
    --archive win."""
    from gongkai.commands.browse import archive_for
    from gongkai.settings import load_settings

    monkeypatch.delenv("GONGKAI_ARCHIVE", raising=False)
    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path / "data"))
    (tmp_path / "demo" / "archive").mkdir(parents=True)
    url = f"duckdb:///{tmp_path / 'demo' / 'gongkai-demo.duckdb'}"
    assert archive_for(url, None, load_settings()) == tmp_path / "demo" / "archive"
    assert archive_for(url, "elsewhere", load_settings()) == Path("elsewhere")
    assert archive_for("postgresql://h/db", None, load_settings()) == (tmp_path / "data" / "archive").resolve()
    monkeypatch.setenv("GONGKAI_ARCHIVE", str(tmp_path / "set"))
    assert archive_for(url, None, load_settings()) == (tmp_path / "set").resolve()
    assert archive_for(url, "s3://bucket/archive", load_settings()) == "s3://bucket/archive"  # an object store
    monkeypatch.setenv("GONGKAI_ARCHIVE", "s3://bucket/archive")
    assert archive_for(url, None, load_settings()) == "s3://bucket/archive"


def test_command_without_a_warehouse_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "gongkai.cli", "browse", "--warehouse", f"duckdb:///{tmp_path / 'none.duckdb'}", "--port", "0"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("gongkai browse: no warehouse at") and done.stderr.count("\n") == 1


def test_served_by_uvicorn_over_loopback(demo_crawls: dict[str, str]) -> None:
    import requests

    app = create_app(demo_crawls["duckdb"], open_archive(demo_archive(demo_crawls, "duckdb")))
    with served(app) as base:
        response = requests.get(f"{base}/agency/999999", timeout=30)
        assert response.status_code == 404 and response.text == "no agency 999999 in the warehouse\n"
        assert requests.get(f"{base}/", timeout=30).status_code == 200


# --- the parts -------------------------------------------------------------------------------------------

def test_plot_scales_and_breaks_lines_at_gaps() -> None:
    assert nice_ticks(87) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0) == [0, 1]
    svg = line_plot([2019, 2020, 2021, 2022], [("a", [10, None, 30, 40]), ("b <x>", [1, 2, 3, 4])], "t")
    soup = BeautifulSoup(svg, "html.parser")
    assert len(soup.select("g.series")[0].select("polyline")) == 1  # 2021–2022; 2019 stands alone
    assert len(soup.select("g.series")[0].select("circle")) == 3
    assert len(soup.select("g.series")[1].select("polyline")) == 1 and "b <x>" in soup.text
    assert "<x>" not in svg  # escaped
    ys = [float(c["cy"]) for c in soup.select("g.series")[0].select("circle")]
    assert ys[0] > ys[1] > ys[2]  # larger values higher on the page
    single = BeautifulSoup(line_plot([2023], [("a", [5])], "t"), "html.parser")
    assert len(single.select("circle")) == 1 and not single.select("polyline")


def test_agency_page_shows_the_series_concepts_and_sums_their_cells(site: tuple[Any, str]) -> None:
    """The rows are the [[series]] concepts of schema/data/concepts.toml, in its order; a concept of several cells
    (不予公开: the eight denied_* rows) is the sum of the totals the report prints (blank ones left out), and a
    concept the report prints no cell of is shown as missing."""
    client, url = site
    agency_id = _rows(url, f"SELECT agency_id FROM agencies WHERE name = '{HONGZE}'")[0][0]
    page = _soup(client.get(f"/agency/{agency_id}"))
    assert [tr["data-concept"] for tr in page.select("#years tbody tr")] == [c.key for c in CONCEPTS.series]
    for prefix in ("denied", "unavailable", "rejected", "other"):
        found = [v for (v,) in _rows(url, f"SELECT value FROM cells_long WHERE agency_id = {agency_id} AND year = 2023 "
                                         f"AND address LIKE 'requests.{prefix}_%.total'")]
        printed = [v for v in found if v is not None]
        shown = page.select(f'#years tr[data-concept="{prefix}"] td')[-1].text
        assert found and shown == (f"{sum(printed):g}" if printed else "·"), prefix
    # the pre-2019 统计表's cell is a source of the same concept: one series across 2008–2025
    sources = {s.templates[0]: s.cells for s in next(c for c in CONCEPTS.series if c.key == "denied").sources}
    assert sources["pre2019"] == ("stats.responses_refused.year",) and len(sources["2019"]) == 8
    assert not page.select("td.derived") and not page.select("#derived-note")  # Hongze prints its totals


def test_agency_page_shows_totals_printed_blank_derived_and_marked(site: tuple[Any, str]) -> None:
    """Shanghai 2019 printed the 总计 of most rows of table 三 blank: the agency page shows them derived (the sum
    of the applicant columns, as the view concept_series derives them), marked as derived; printed ones unmarked."""
    client, url = site
    agency_id, year = _rows(url, "SELECT agency_id, year FROM report_index WHERE agency = '上海市人民政府办公厅' AND year = 2019")[0]
    page = _soup(client.get(f"/agency/{agency_id}"))
    column = [int(th.text) for th in page.select("#years thead tr")[0].select("th")[1:]].index(year)
    granted = page.select('#years tr[data-concept="granted"] td')[column]
    parts = [v for (v,) in _rows(url, f"SELECT value FROM cells_long WHERE agency_id = {agency_id} AND year = {year} "
                                     "AND address LIKE 'requests.granted.%' AND address <> 'requests.granted.total'")]
    assert _rows(url, f"SELECT value FROM cells_long WHERE agency_id = {agency_id} AND year = {year} "
                      "AND address = 'requests.granted.total'") == [(None,)]  # printed blank
    assert "derived" in granted["class"] and granted.select_one(".derived-mark").text == "*"
    assert granted.text == f"{sum(v for v in parts if v is not None):g}*" and "requests.granted.total" in granted["title"]
    received = page.select('#years tr[data-concept="requests_received"] td')[column]  # printed: shown as printed
    assert "derived" not in received["class"] and received.text != "·"
    assert "derived" in page.select_one("#derived-note").text
    # the plot draws the derived value too
    label = next(c.label for c in CONCEPTS.series if c.key == "granted")
    assert page.select_one(f'#plot g.series[data-label^="{label}"] circle')


def test_browse_refuses_to_start_when_a_plotted_concept_is_not_declared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browse_app, "PLOTTED", (*browse_app.PLOTTED, "no_such_concept"))
    with pytest.raises(ValueError, match="no_such_concept"):
        create_app(f"duckdb:///{tmp_path / 'none.duckdb'}", open_archive(tmp_path / "archive"))


def test_layout_shows_one_set_of_alternative_rows() -> None:
    def rows(addresses: set[str]) -> list[str]:
        requests = next(lay for lay in report_layouts("2021", addresses) if lay.address == "requests")
        return [s.address.split(".")[1] for line in requests.body for s in line if s.address and s.address.endswith(".total")]

    single = rows({"requests.other_handling.total"})
    assert "other_handling" in single and "other_other" not in single
    three = rows({"requests.other_other.total"})
    assert "other_other" in three and "other_handling" not in three
    assert report_layouts(None, set()) == [] and report_layouts("no such template", set()) == []


def test_hostile_text_in_a_document_is_shown_as_text(tmp_path: Path) -> None:
    """A table cell of a real report carrying markup (<script>, an <img onerror>) is printed as text on the
    source page, never as markup; the page carries no script at all."""
    original = (REPO / "tests" / "corpus" / "documents" / "pingtan-2024.html").read_text(encoding="utf-8")
    hostile = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    marker = "本列数据的勾稽关系"
    assert marker in original
    data = original.replace(marker, hostile + marker, 1).encode("utf-8")
    client, report_id = _one_report_site(tmp_path, data, "hostile.html")
    response = client.get(f"/source/{report_id}/requests.new.natural_person")
    page = _soup(response)
    table = page.select_one("#original-table")
    assert "<script>alert(1)</script><img src=x onerror=alert(2)>" in table.text  # shown, as text
    assert not page.select("script") and not page.select("img[onerror]")
    assert "&lt;script&gt;" in response.text


@pytest.mark.parametrize("name", ["pingtan-2024-libreoffice.docx", "shanghai-szfbgt-2019-libreoffice.docx"])
def test_source_page_of_a_docx_cell_marks_it_in_the_original_table(tmp_path: Path, name: str) -> None:
    client, report_id = _one_report_site(tmp_path, (REPO / "tests" / "corpus" / "documents" / name).read_bytes(), name)
    url = f"duckdb:///{tmp_path / 'one.duckdb'}"
    stored = _rows(url, "SELECT address, raw, row_no, col_no FROM cells WHERE raw IS NOT NULL AND raw <> '' ORDER BY address")
    assert len(stored) > 50
    for address, raw, _, _ in stored[:: max(1, len(stored) // 12)]:  # a dozen cells across the tables
        page = _soup(client.get(f"/source/{report_id}/{address}"))
        marked = page.select("#original-table td.marked")
        assert len(marked) == 1 and marked[0].text.strip() == raw.strip(), address


def _one_report_site(tmp_path: Path, data: bytes, name: str) -> tuple[Any, int]:
    """A fresh DuckDB warehouse holding one document (loaded as the crawler loads), and a client of its site."""
    from fastapi.testclient import TestClient

    from gongkai.flows.ingest import extract_document, ingest_bytes
    from gongkai.warehouse import open_warehouse

    url = f"duckdb:///{tmp_path / 'one.duckdb'}"
    archive = open_archive(tmp_path / "archive")
    with open_warehouse(url) as warehouse:
        ingest_bytes(data, name=name, warehouse=warehouse, archive=archive,
                     extract=lambda d, n: extract_document(d, n).as_json(), agency="平潭综合实验区", year=2024)
    report_id = int(_rows(url, "SELECT report_id FROM report_index")[0][0])
    client = TestClient(create_app(url, archive), base_url="http://127.0.0.1")
    return client, report_id


def test_agency_series_runs_across_the_pre_2019_table_and_the_national_template(duck_corpus: str, tmp_path: Path) -> None:
    """平潭综合实验区 of the corpus: 2017 from its 统计表 (stats.*), 2024 from table 三; one line across both."""
    from fastapi.testclient import TestClient

    url = duck_corpus
    agency_id, = _rows(url, "SELECT agency_id FROM agencies WHERE name = '平潭综合实验区'")[0]
    with TestClient(create_app(url, open_archive(tmp_path / "no-archive")), base_url="http://127.0.0.1") as client:
        page = _soup(client.get(f"/agency/{agency_id}"))
    years = [th.text for th in page.select("#years thead tr")[0].select("th")][1:]
    assert years == ["2017", "2024"]
    expected = [_rows(url, f"SELECT value FROM cells_long WHERE agency_id = {agency_id} AND year = {y} AND address = '{a}'")[0][0]
                for y, a in ((2017, "stats.requests_total.year"), (2024, "requests.new.total"))]
    assert [td.text for td in page.select('#years tr[data-concept="requests_received"] td')] == [f"{v:g}" for v in expected]
    label = next(c.label for c in CONCEPTS.series if c.key == "requests_received")
    received = page.select_one(f'#plot g.series[data-label^="{label}"]')
    assert len(received.select("circle")) == 2 and len(received.select("polyline")) == 1


def test_source_page_says_when_the_file_is_not_in_the_archive(duck_corpus: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    report_id, = _rows(duck_corpus, f"SELECT report_id FROM report_index WHERE agency = '{HONGZE}' AND year = 2023")[0]
    with TestClient(create_app(duck_corpus, open_archive(tmp_path / "empty")), base_url="http://127.0.0.1") as client:
        page = _soup(client.get(f"/source/{report_id}/requests.new.natural_person"))
        assert "is not in the archive" in page.select_one("#missing").text
        assert page.select_one("#raw").text.strip() == "21"  # the stored raw text is still shown
        image = client.get(f"/page/{report_id}/3.png")
        assert image.status_code == 404 and "is not in the archive" in image.text
