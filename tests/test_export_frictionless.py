"""`gongkai export` checked by the real Frictionless validator (frictionless 5, reading Parquet through pandas):
the demo warehouse and a generated larger one, Parquet and CSV (with and without a BOM); NULLs read back as
nulls, counts as integers; the declared primary and foreign keys are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gongkai.cli import main
from gongkai.warehouse.export import export_warehouse

frictionless = pytest.importorskip("frictionless")

YEARS = (2019, 2020, 2021, 2022, 2023)


def generated_warehouse(path: Path, agencies: int = 4) -> str:
    """A synthetic DuckDB warehouse (real schema and views) with what real ones have and the demo lacks in bulk:
    blank cells, cells without a page or box (HTML), fractional money, agencies without a division code,
    reports without a year, failing checks."""
    from gongkai.schema import all_addresses
    from gongkai.warehouse.store import open_warehouse

    url = f"duckdb:///{path}"
    addresses = [(a, "2019") for a in all_addresses("2019")] + [(a, "2021") for a in all_addresses("2021")]
    with open_warehouse(url) as wh:
        db = wh.db
        db.execute("CREATE TEMP TABLE template_cells (address TEXT, template TEXT)")
        db.insert_many("template_cells", ("address", "template"), addresses)
        provinces = [row[0] for row in db.query("SELECT province_code FROM provinces ORDER BY 1")]
        db.execute("CREATE TEMP TABLE province_list (i INTEGER, code TEXT)")
        db.insert_many("province_list", ("i", "code"), list(enumerate(provinces)))
        years = ", ".join(str(y) for y in YEARS)
        with db.transaction():
            db.execute(
                f"""INSERT INTO agencies (agency_id, name, name_key, division_code, level, created_at)
                SELECT g.i, '机关' || g.i, '机关' || g.i,
                       CASE WHEN g.i % 5 = 0 THEN NULL ELSE substr(p.code, 1, 2) || lpad(CAST(g.i AS TEXT), 4, '0') END,
                       CASE WHEN g.i % 5 = 0 THEN NULL ELSE ['province', 'city', 'county', 'department'][1 + g.i % 4] END, now()
                FROM range(1, {agencies + 1}) AS g(i) JOIN province_list p ON p.i = g.i % {len(provinces)}"""
            )
            db.execute(
                f"""INSERT INTO reports (report_id, report_key, version, revision, sha256, agency_id, year, template, status,
                    warnings, n_cells, checks_failing, checks_incomplete, extractor_version, fingerprint, loaded_at, found_at)
                SELECT a.agency_id * 10 + (y.year - 2019), a.agency_id || ':' || y.year, 1, 1,
                       sha256(a.agency_id || ':' || y.year), a.agency_id, y.year,
                       CASE WHEN y.year < 2021 THEN '2019' ELSE '2021' END, 'extracted', '[]', 0, 0, 0, 'gen', 'gen', now(), now()
                FROM agencies a CROSS JOIN (SELECT unnest([{years}]) AS year) y"""
            )
            db.execute(  # a letter collected as a report: no agency, no year
                """INSERT INTO reports (report_id, report_key, version, revision, sha256, agency_id, year, template, status,
                    reason, warnings, n_cells, checks_failing, checks_incomplete, extractor_version, fingerprint, loaded_at)
                VALUES (1, 'doc:' || sha256('letter'), 1, 1, sha256('letter'), NULL, NULL, NULL, 'not_a_report', 'a letter',
                        '[]', 0, 0, 0, 'gen', 'gen', now())"""
            )
            db.execute(
                """INSERT INTO documents (sha256, size, media_type, url, agency_id, year, first_seen, last_seen)
                SELECT sha256, 1000 + report_id, CASE WHEN report_id % 2 = 0 THEN 'text/html' ELSE 'application/pdf' END,
                       'https://portal' || (report_id % 3) || '.example.gov.cn/' || report_key || '.pdf', agency_id, year,
                       now(), now() FROM reports"""
            )
            db.execute(
                """INSERT INTO extractions (sha256, extractor_version, report_id, outcome, extracted_at)
                SELECT sha256, 'gen', report_id, 'new', now() FROM reports"""
            )
            db.execute(
                """INSERT INTO cells (report_id, address, value, raw, page, table_no, row_no, col_no, bbox_x0, bbox_y0, bbox_x1, bbox_y1)
                SELECT r.report_id, t.address,
                       CASE WHEN hash(r.report_id, t.address) % 7 = 0 THEN NULL
                            WHEN t.address LIKE '%amount_wan_yuan' THEN CAST(hash(r.report_id, t.address) % 4000 AS DOUBLE) / 100
                            ELSE CAST(hash(r.report_id, t.address) % 40 AS DOUBLE) END,
                       CASE WHEN hash(r.report_id, t.address) % 7 = 0 THEN '' ELSE 'x' END,
                       CASE WHEN r.report_id % 2 = 0 THEN NULL ELSE 3 END, 2, 1, 1,
                       CASE WHEN r.report_id % 2 = 0 THEN NULL ELSE 10.5 END, CASE WHEN r.report_id % 2 = 0 THEN NULL ELSE 20.25 END,
                       CASE WHEN r.report_id % 2 = 0 THEN NULL ELSE 30 END, CASE WHEN r.report_id % 2 = 0 THEN NULL ELSE 40 END
                FROM reports r JOIN template_cells t ON t.template = r.template"""
            )
            db.execute(
                """INSERT INTO checks (report_id, rule, target, expected, actual, status)
                SELECT c.report_id, 'requests.row_total', c.address,
                       CASE WHEN c.value IS NULL THEN NULL ELSE c.value + CASE WHEN hash(c.report_id) % 4 = 0 THEN 1 ELSE 0 END END,
                       c.value,
                       CASE WHEN c.value IS NULL THEN 'incomplete' WHEN hash(c.report_id) % 4 = 0 THEN 'fail' ELSE 'pass' END
                FROM cells c WHERE c.address LIKE 'requests.%.total'"""
            )
            db.execute(
                """UPDATE reports SET n_cells = (SELECT count(*) FROM cells c WHERE c.report_id = reports.report_id),
                    checks_failing = (SELECT count(*) FROM checks k WHERE k.report_id = reports.report_id AND k.status = 'fail')"""
            )
    return url


@pytest.fixture(scope="session")
def generated_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return generated_warehouse(tmp_path_factory.mktemp("generated") / "generated.duckdb")


def validate(folder: Path) -> None:
    report = frictionless.validate(str(folder / "datapackage.json"))
    errors = [f"{task.name}: {error.message}" for task in report.tasks for error in task.errors][:10]
    assert report.valid, errors
    assert len(report.tasks) == len(json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))["resources"])


@pytest.mark.parametrize("fmt", ["parquet", "csv", "csv-bom"])
def test_demo_export_is_valid_frictionless(demo_crawls: dict[str, str], fmt: str, tmp_path: Path) -> None:
    if fmt == "csv-bom":
        export_warehouse(demo_crawls["duckdb"], tmp_path, "csv", csv_bom=True)
    else:
        export_warehouse(demo_crawls["duckdb"], tmp_path, fmt)
    validate(tmp_path)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_generated_export_is_valid_frictionless_and_reads_nulls_as_nulls(generated_url: str, fmt: str, tmp_path: Path) -> None:
    package = export_warehouse(generated_url, tmp_path, fmt)
    validate(tmp_path)
    reference = tmp_path / "reference"
    export_warehouse(generated_url, reference, "parquet", only=["cells_long", "report_cells_wide", "coverage"])
    for name in ("cells_long", "report_cells_wide", "coverage"):
        resource = frictionless.Package(str(tmp_path / "datapackage.json")).get_resource(name)
        back = resource.read_rows()
        expected = pq.read_table(reference / f"{name}.parquet").to_pylist()
        assert len(back) == len(expected) > 0
        integers = [f["name"] for f in next(r for r in package["resources"] if r["name"] == name)["schema"]["fields"]
                    if f["type"] == "integer"]
        for got, want in zip(back, expected, strict=True):
            for column in integers:  # null stays null (never "nan"), a count stays an int
                assert got[column] == want[column] and (got[column] is None or isinstance(got[column], int)), (name, column)
    # blank cells and HTML cells without a page were there to be read
    wide = pq.read_table(reference / "cells_long.parquet")
    assert wide.column("value").null_count > 0 and wide.column("page").null_count > 0


def test_frictionless_checks_the_declared_keys(generated_url: str, tmp_path: Path) -> None:
    """The keys are real constraints: a report whose agency is missing from agencies fails the validation."""
    import pyarrow.compute as pc

    export_warehouse(generated_url, tmp_path, "parquet", only=["agencies", "report_index"])
    validate(tmp_path)
    agencies = pq.read_table(tmp_path / "agencies.parquet")
    first = agencies.column("agency_key")[0].as_py()
    pq.write_table(agencies.filter(pc.not_equal(agencies.column("agency_key"), first)).replace_schema_metadata(
        agencies.schema.metadata), tmp_path / "agencies.parquet")
    report = frictionless.validate(str(tmp_path / "datapackage.json"))
    assert not report.valid
    assert {e.type for t in report.tasks for e in t.errors} == {"foreign-key"}


def test_package_says_licence_sources_version_keys(demo_crawls: dict[str, str], tmp_path: Path) -> None:
    from gongkai import __version__

    package = export_warehouse(demo_crawls["duckdb"], tmp_path, "parquet")
    assert package["licenses"] and package["licenses"][0]["name"] and package["licenses"][0]["path"].startswith("https://")
    assert package["version"] == __version__ and package["gongkai"]["version"] == __version__
    assert package["created"].endswith("Z")
    portal_sources = [s for s in package["sources"] if s.get("path", "").startswith("http://127.0.0.1:")]
    assert portal_sources  # the demo portal the documents came from
    resources = {r["name"]: r for r in package["resources"]}
    assert resources["agencies"]["schema"]["primaryKey"] == ["agency_key"]
    assert resources["cells_long"]["schema"]["primaryKey"] == ["report_ref", "address"]
    assert {"fields": ["report_ref"], "reference": {"resource": "report_index", "fields": ["report_ref"]}} in (
        resources["cells_long"]["schema"]["foreignKeys"])
    for resource in resources.values():  # no surrogate id in any key
        keys = resource["schema"].get("primaryKey", []) + [f for fk in resource["schema"].get("foreignKeys", []) for f in fk["fields"]]
        assert not [k for k in keys if k.endswith("_id")], resource["name"]
    # Parquet carries each column's description in its field metadata
    schema = pq.read_schema(tmp_path / "report_cells_wide.parquet")
    description = schema.field("requests__new__total").metadata[b"description"].decode("utf-8")
    assert "本年新收政府信息公开申请数量" in description and "New requests received this year" in description
    assert str(schema.field("requests__new__total").type) == "int64"
    assert str(schema.field("proactive__fees__amount_wan_yuan").type).startswith("decimal128")
    assert "fingerprint" not in pq.read_schema(tmp_path / "reports.parquet").names


def test_csv_bom_for_excel(duck_corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--db", duck_corpus, "--format", "csv", "--csv-bom", "--out", str(tmp_path), "--only", "coverage"]) == 0
    data = (tmp_path / "coverage.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data[3:].startswith(b'"agency_key"')
    package = json.loads((tmp_path / "datapackage.json").read_text(encoding="utf-8"))
    assert package["resources"][0]["encoding"] == "utf-8-sig"
    capsys.readouterr()
    assert main(["export", "--db", duck_corpus, "--format", "parquet", "--csv-bom", "--out", str(tmp_path)]) == 2
    assert "--csv-bom" in capsys.readouterr().err


def test_a_count_with_a_fraction_stops_the_export_with_one_line(duck_corpus: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import duckdb

    from gongkai.warehouse.export import ExportError

    copy = tmp_path / "copy.duckdb"
    shutil.copy(duck_corpus.removeprefix("duckdb:///"), copy)
    with duckdb.connect(str(copy)) as conn:
        conn.execute("UPDATE cells SET value = 2.5 WHERE address = 'requests.new.total'")
    with pytest.raises(ExportError, match="report_cells_wide.requests__new__total"):
        export_warehouse(f"duckdb:///{copy}", tmp_path / "out", "parquet", only=["report_cells_wide"])
    assert main(["export", "--db", f"duckdb:///{copy}", "--out", str(tmp_path / "cli"), "--only", "report_cells_wide"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "requests__new__total" in err

