"""`gongkai browse`: a read-only local web site over the warehouse (FastAPI, Jinja2, SVG drawn on the server).

Pages: / (agencies), /agency/{id} (years side by side, a plot, failing checks), /report/{id} (the three tables
as printed, checks highlighted, each cell linking to its source), /source/{id}/{address} (the PDF page with the
cell's box, or the document's table with the cell marked; raw text beside the value), /coverage (agency ×
year, filters). Only GET routes; the warehouse is opened read-only (gongkai.browse.data), the archive only
read. No script runs in the pages and nothing is fetched from elsewhere (Content-Security-Policy says so).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from gongkai.browse.data import BrowseData
from gongkai.browse.layout import describe, laid_out, report_layouts
from gongkai.browse.plot import line_plot
from gongkai.browse.source import SourceMissing, render_page, source_table
from gongkai.schema import CONCEPTS
from gongkai.warehouse.archive import Archive

TEMPLATES = Path(__file__).parent / "templates"
STYLE = TEMPLATES / "style.css"
# No script, no frames, nothing from another origin; images and the style sheet from this site only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Ids the database can hold (BIGINT): a larger number is a bad id (404), never a driver error
Id = Annotated[int, PathParam(ge=0, le=2**63 - 1)]
PageNo = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
MAX_COVERAGE_AGENCIES = 500  # rows of the coverage page; the filters narrow a larger warehouse down
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
# The concepts of schema/data/concepts.toml ([[series]], view concept_series) drawn in the agency page's plot:
# requests received and their outcomes (the table beside it shows every series concept, in the file's order)
PLOTTED = ("requests_received", "granted", "partially_granted", "denied", "unavailable", "rejected", "other")


def number(value: Any) -> str:
    """A count as printed (no separators, as the reports print them); money to two decimals at most."""
    if value is None:
        return "·"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def create_app(url: str, archive: Archive, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The site over the warehouse at `url` and the archive of its files. `allowed_hosts`: the Host headers
    answered (the loopback names by default: a page elsewhere cannot read this one through DNS rebinding)."""
    concepts = CONCEPTS.series
    unknown = set(PLOTTED) - {c.key for c in concepts}
    if unknown:  # a concept renamed in concepts.toml: fail at start-up, not on the first agency page
        raise ValueError(f"gongkai browse plots concepts that schema/data/concepts.toml lacks: {sorted(unknown)}")
    data = BrowseData(url)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["num"] = number

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        data.close()  # when the server stops

    app = FastAPI(title="gongkai browse", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.data = data
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_HOSTS)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def one_line(request: Request, exc: StarletteHTTPException) -> PlainTextResponse:
        text = exc.detail if exc.status_code != 405 else "method not allowed: gongkai browse only reads"
        if exc.status_code == 404 and exc.detail == "Not Found":
            text = f"not found: {request.url.path}"
        return PlainTextResponse(f"{text}\n", status_code=exc.status_code, headers=SECURITY_HEADERS)

    @app.exception_handler(RequestValidationError)
    async def bad_id(request: Request, exc: RequestValidationError) -> PlainTextResponse:
        return PlainTextResponse(f"not found: {request.url.path} (ids are whole numbers)\n", status_code=404,
                                 headers=SECURITY_HEADERS)

    def page(name: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context))

    def report_or_404(report_id: int) -> dict[str, Any]:
        report = data.report(report_id)
        if report is None:
            raise HTTPException(404, f"no report {report_id} in the warehouse")
        return report

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return page("index.html", agencies=data.agencies())

    @app.get("/style.css")
    def style() -> Response:
        return Response(STYLE.read_bytes(), media_type="text/css")

    @app.get("/agency/{agency_id}", response_class=HTMLResponse)
    def agency(agency_id: Id) -> HTMLResponse:
        found = data.agency(agency_id)
        if found is None:
            raise HTTPException(404, f"no agency {agency_id} in the warehouse")
        reports = data.agency_reports(agency_id)
        # (concept, year) → its concept_series row: the value, and whether it was derived from a blank total's parts
        found_series = {(row["concept"], row["year"]): row for row in data.agency_series(agency_id)}
        years = sorted({r["year"] for r in reports})
        table = [(c, [found_series.get((c.key, y)) for y in years]) for c in concepts]
        plotted = [(f"{c.label} {c.en}", [row["value"] if row else None for row in rows]) for c, rows in table
                   if c.key in PLOTTED and any(row and row["value"] is not None for row in rows)]
        plot = line_plot(years, plotted, "申请数量与办理结果 Requests received and outcomes") if years and plotted else None
        derived = any(row and row["derived"] for _, rows in table for row in rows)
        return page("agency.html", agency=found, reports=reports, years=years, table=table, plot=plot, derived=derived,
                    failing=data.agency_failing_checks(agency_id))

    @app.get("/report/{report_id}", response_class=HTMLResponse)
    def report(report_id: Id) -> HTMLResponse:
        found = report_or_404(report_id)
        cells = data.cells(report_id)
        checks = data.checks(report_id)
        marks: dict[str, str] = {}
        for check in checks:  # fail over incomplete over pass: checks are sorted that way
            if check.status in ("fail", "incomplete"):
                marks.setdefault(check.target, check.status)
        layouts = report_layouts(found["template"], set(cells))
        others = [c for a, c in cells.items() if a not in laid_out(layouts)]
        warnings = json.loads(found["warnings"] or "[]")
        return page("report.html", report=found, layouts=layouts, cells=cells, checks=checks, marks=marks,
                    others=others, warnings=warnings)

    @app.get("/source/{report_id}/{address}", response_class=HTMLResponse)
    def source(report_id: Id, address: str) -> HTMLResponse:
        found = report_or_404(report_id)
        cell = data.cell(report_id, address)
        if cell is None:
            raise HTTPException(404, f"report {report_id} has no cell {address[:80]!r}")
        context: dict[str, Any] = {"report": found, "cell": cell, "labels": describe(address, found["template"]),
                                   "checks": [c for c in data.checks(report_id) if c.target == address]}
        is_pdf = (found["media_type"] or "").endswith("pdf")
        try:
            if is_pdf and cell.page and cell.bbox:
                context["rendered"] = render_page(archive, found["sha256"], cell.page)
            elif cell.table_no:
                context["grid"] = source_table(archive, found["sha256"], found["original_name"] or "", cell.table_no)
        except SourceMissing as exc:
            context["missing"] = str(exc)
        return page("source.html", **context)

    @app.get("/page/{report_id}/{page_no}.png")
    def page_image(report_id: Id, page_no: PageNo) -> Response:
        found = report_or_404(report_id)
        if not (found["media_type"] or "").endswith("pdf"):
            raise HTTPException(404, f"report {report_id} is not a PDF")
        try:
            rendered = render_page(archive, found["sha256"], page_no)
        except SourceMissing as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(rendered.png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/coverage", response_class=HTMLResponse)
    def coverage(province: str | None = None, level: str | None = None, status: str | None = None) -> HTMLResponse:
        rows = data.coverage(province or None, level or None, status or None)
        years = sorted({r["year"] for r in rows if r["year"] is not None})
        agencies: dict[Any, dict[str, Any]] = {}
        grid: dict[tuple[Any, Any], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            agencies.setdefault(row["agency_id"], row)
            grid[(row["agency_id"], row["year"])].append(row)
        shown = list(agencies.values())[:MAX_COVERAGE_AGENCIES]
        return page("coverage.html", agencies=shown, n_agencies=len(agencies), years=years, grid=grid,
                    choices=data.coverage_choices(), chosen={"province": province, "level": level, "status": status},
                    count=len(rows))

    return app
