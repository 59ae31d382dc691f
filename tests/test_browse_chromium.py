"""gongkai browse in a real headless Chromium (Debian's chromium, driven by Selenium through Debian's chromedriver).

The path of a researcher who doubts a number: the coverage page → the demo's report of 洪泽区 2023, its two
failing checks highlighted → the link of requests.new.natural_person → the source page, where the PDF page is
shown and a box drawn where the extractor found the cell (compared with the stored bbox in screen pixels) →
the agency page and its plot. Screenshots go to test-artifacts/browse/ (GONGKAI_TEST_ARTIFACTS to move it).

Skipped when chromium or chromedriver is missing, unless GONGKAI_REQUIRE_CHROMIUM=1 (as .ci/run sets).
The browser reaches nothing but loopback: every other host name resolves to nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browse_support import demo_archive, served

from gongkai.browse.app import create_app
from gongkai.warehouse.archive import open_archive
from gongkai.warehouse.query import open_read_only

REPO = Path(__file__).resolve().parent.parent
HONGZE = "淮安市洪泽区人民政府"
CHROMIUM = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
FAIL_BACKGROUND = "rgb(255, 210, 204)"  # td.fail / tr.check.fail in gongkai/browse/templates/style.css


def _first(paths: tuple[str, ...], name: str) -> str | None:
    found = next((p for p in paths if os.access(p, os.X_OK)), None)
    return found or shutil.which(name)


def _missing(reason: str) -> None:
    if os.environ.get("GONGKAI_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{reason}, and GONGKAI_REQUIRE_CHROMIUM=1 (apt-get install chromium chromium-driver)")
    pytest.skip(f"{reason} (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium, chromedriver = _first(CHROMIUM, "chromium"), _first(CHROMEDRIVER, "chromedriver")
    if chromium is None or chromedriver is None:
        _missing("chromium or chromedriver not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--force-device-scale-factor=1",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # loopback only
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver or a browser
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("GONGKAI_TEST_ARTIFACTS") or REPO / "test-artifacts") / "browse"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stored(url: str, sql: str) -> list[tuple[Any, ...]]:
    with open_read_only(url, allow_writable_role=True) as reader:
        return reader.run(sql).rows


def _background(driver: Any, element: Any) -> str:
    return str(driver.execute_script("return getComputedStyle(arguments[0]).backgroundColor", element))


def _screenshot(driver: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 40, 600), 6000))  # the whole page
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 5000
    return path


def test_report_to_source_cell_to_agency_plot(browser: Any, artifacts: Path, demo_crawls: dict[str, str]) -> None:
    import pypdfium2 as pdfium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = demo_crawls["duckdb"]
    archive = open_archive(demo_archive(demo_crawls, "duckdb"))
    app = create_app(url, archive)
    with served(app) as base:
        # coverage → the report of 洪泽区 2023
        browser.get(f"{base}/coverage")
        row = browser.find_element(By.XPATH, f"//table[@id='coverage']//tr[th/a[text()='{HONGZE}']]")
        years = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#coverage thead th")][3:]
        row.find_elements(By.TAG_NAME, "td")[2 + years.index("2023")].find_element(By.TAG_NAME, "a").click()
        WebDriverWait(browser, 30).until(lambda d: "/report/" in d.current_url)
        report_id = int(browser.current_url.rstrip("/").rsplit("/", 1)[1])
        assert _stored(url, f"SELECT agency, year FROM report_index WHERE report_id = {report_id}") == [(HONGZE, 2023)]

        # its two failing checks, highlighted in the list of checks and on their cells in table 四
        failing = browser.find_elements(By.CSS_SELECTOR, "#checks tr.check.fail")
        stored_failing = _stored(url, f"SELECT target FROM checks WHERE report_id = {report_id} AND status = 'fail'")
        assert len(failing) == len(stored_failing) == 2
        assert all(r.is_displayed() and _background(browser, r) == FAIL_BACKGROUND for r in failing)
        cells = browser.find_elements(By.CSS_SELECTOR, "table.report td.fail")
        assert sorted(c.get_attribute("data-address") for c in cells) == sorted(t for (t,) in stored_failing)
        assert all(_background(browser, c) == FAIL_BACKGROUND for c in cells)
        passing = browser.find_element(By.CSS_SELECTOR, 'td[data-address="requests.new.total"]')
        assert _background(browser, passing) != FAIL_BACKGROUND
        _screenshot(browser, artifacts, "report-hongze-2023")

        # the link of requests.new.natural_person → its source page
        address = "requests.new.natural_person"
        browser.set_window_size(1400, 1100)
        browser.find_element(By.CSS_SELECTOR, f'td[data-address="{address}"] a').click()
        WebDriverWait(browser, 30).until(lambda d: "/source/" in d.current_url)
        assert browser.current_url.endswith(f"/source/{report_id}/{address}")
        value, raw, page_no, x0, y0, x1, y1, sha256 = _stored(
            url, f"SELECT c.value, c.raw, c.page, c.bbox_x0, c.bbox_y0, c.bbox_x1, c.bbox_y1, r.sha256 FROM cells c "
                 f"JOIN reports r USING (report_id) WHERE report_id = {report_id} AND address = '{address}'")[0]
        assert browser.find_element(By.ID, "raw").text == raw and float(browser.find_element(By.ID, "value").text) == value

        # the page image is there, loaded, and a box sits at the stored bbox
        image = browser.find_element(By.ID, "page-image")
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", image))
        box = browser.find_element(By.ID, "bbox-box")
        assert box.is_displayed()
        img_rect = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", image)
        box_rect = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", box)
        pdf = pdfium.PdfDocument(archive.get(sha256))  # the page's size, read from the archived file itself
        width_pt, height_pt = pdf[page_no - 1].get_size()
        pdf.close()
        per_point = img_rect["width"] / width_pt
        assert img_rect["height"] == pytest.approx(height_pt * per_point, abs=1.5)
        expected = {"left": img_rect["left"] + x0 * per_point, "top": img_rect["top"] + y0 * per_point,
                    "width": (x1 - x0) * per_point, "height": (y1 - y0) * per_point}
        for side, want in expected.items():
            assert box_rect[side] == pytest.approx(want, abs=1.5), side
        # the box is drawn over the image, in the browser's own pixels: the number's ink is inside it
        shot = _screenshot(browser, artifacts, "source-hongze-2023-requests-new-natural_person")
        from PIL import Image

        with Image.open(shot) as screen:
            inside = screen.convert("L").crop((round(box_rect["left"]) + 2, round(box_rect["top"]) + 2,
                                               round(box_rect["right"]) - 2, round(box_rect["bottom"]) - 2))
            assert inside.getextrema()[0] < 100

        # the report's agency page shows the plot
        browser.set_window_size(1400, 1100)
        browser.find_element(By.CSS_SELECTOR, "h1 a").click()
        WebDriverWait(browser, 30).until(lambda d: "/report/" in d.current_url)
        browser.find_element(By.CSS_SELECTOR, "h1 a").click()
        WebDriverWait(browser, 30).until(lambda d: "/agency/" in d.current_url)
        plot = browser.find_element(By.CSS_SELECTOR, "#plot svg.plot")
        assert plot.is_displayed() and plot.size["width"] > 300 and plot.size["height"] > 150
        points = browser.find_elements(By.CSS_SELECTOR, "#plot svg.plot circle")
        assert points and all(p.is_displayed() for p in points)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#failing-checks tr.check.fail")) == 2
        _screenshot(browser, artifacts, "agency-hongze")


def test_missing_chromium_skips_or_fails_as_ci_requires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GONGKAI_REQUIRE_CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium-driver"):
        _missing("chromium or chromedriver not installed")
    monkeypatch.setenv("GONGKAI_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception, match="GONGKAI_REQUIRE_CHROMIUM=1"):
        _missing("chromium or chromedriver not installed")
