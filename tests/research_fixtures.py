"""Warehouses loaded with the real corpus, for the research-side tests (views, query, export); a pytest plugin.

Each document is extracted once per session and loaded through flows.ingest.ingest_bytes (the
crawler's path, no Prefect) into a DuckDB file and into a PostgreSQL database. The loaded
warehouses are shared read-only by the tests of a session; a test that writes makes its own.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from postgres_fixture import read_only_url

DOCUMENTS = Path(__file__).parent / "corpus" / "documents"
# What the crawler's registry would say about the corpus' agencies: codes and levels for the views' regions.
HINTS: dict[str, dict[str, Any]] = {
    "hongze-2023.pdf": {"agency": "淮安市洪泽区人民政府", "division_code": "320813", "level": "county"},
    "shanghai-szfbgt-2019.html": {"agency": "上海市人民政府办公厅", "division_code": "310000", "level": "province"},
    "pingtan-2024.html": {"agency": "平潭综合实验区", "division_code": "350128", "level": "city"},
    "pingtan-2017.html": {"agency": "平潭综合实验区", "division_code": "350128", "level": "city"},
    "zibo-stats-2023.txt": {"agency": "淄博市统计局", "division_code": "370300", "level": "department"},
}
# Copies of a report in other formats would be versions of the same report: load one of each.
SKIP = {"pingtan-2024-libreoffice.docx", "pingtan-2024-libreoffice.pdf", "shanghai-szfbgt-2019-libreoffice.docx"}


def corpus_files() -> list[Path]:
    return [p for p in sorted(DOCUMENTS.iterdir()) if p.name not in SKIP]


@pytest.fixture(scope="session")
def cached_extract() -> Callable[[bytes, str], Mapping[str, Any]]:
    """extract_report, memoised per file: every warehouse of the session loads the same results."""
    from gongkai.flows.ingest import extract_document

    results: dict[str, Mapping[str, Any]] = {}

    def extract(data: bytes, name: str) -> Mapping[str, Any]:
        if name not in results:
            results[name] = extract_document(data, name).as_json()  # the JSON object, as tests edit it
        return results[name]

    return extract


def load_corpus(url: str, archive_dir: Path, extract: Callable[[bytes, str], Mapping[str, Any]]) -> None:
    from gongkai.flows.ingest import ingest_bytes
    from gongkai.warehouse import open_archive, open_warehouse, recorded_run

    archive = open_archive(archive_dir)
    with open_warehouse(url) as warehouse, recorded_run(warehouse, "ingest", {"paths": ["tests/corpus"]}) as run:
        for path in corpus_files():
            run.add(
                ingest_bytes(
                    path.read_bytes(), name=path.name, url=f"https://example.gov.cn/{path.name}",
                    warehouse=warehouse, archive=archive, run_id=run.run_id, extract=extract, **HINTS.get(path.name, {}),
                )
            )


@pytest.fixture(scope="session")
def duck_corpus(tmp_path_factory: pytest.TempPathFactory, cached_extract: Any) -> str:
    """A DuckDB warehouse file holding the corpus (closed: open it read-only, or copy it to write)."""
    folder = tmp_path_factory.mktemp("duck-corpus")
    url = f"duckdb:///{folder / 'corpus.duckdb'}"
    load_corpus(url, folder / "archive", cached_extract)
    return url


@pytest.fixture(scope="session")
def pg_corpus(postgres_server: str, tmp_path_factory: pytest.TempPathFactory, cached_extract: Any) -> Iterator[str]:  # noqa: F811
    import psycopg

    name = f"corpus_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    load_corpus(url, tmp_path_factory.mktemp("pg-corpus") / "archive", cached_extract)
    yield read_only_url(url)  # researchers read as a role that can only read
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def corpus_url(request: pytest.FixtureRequest) -> str:
    """The corpus warehouse of each engine."""
    return str(request.getfixturevalue("duck_corpus" if request.param == "duckdb" else "pg_corpus"))


# --- the demo portal, crawled by the nightly flow (Prefect, HTTP over loopback) ------------------------

DEMO_POLITENESS = {"delay": 0.0, "concurrency": 4, "read_timeout": 1.0, "retries": 2, "backoff": 0.05}


@pytest.fixture(scope="session")
def demo_crawls(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The demo portal crawled into DuckDB, and into PostgreSQL when a server is available (required under CI)."""
    from gongkai.crawler.demo_portal import DemoPortal
    from gongkai.settings import quiet_prefect

    quiet_prefect()
    folder = tmp_path_factory.mktemp("demo-crawl")
    urls = {"duckdb": f"duckdb:///{folder / 'demo.duckdb'}"}
    try:
        urls["postgres"] = _new_pg_database(request.getfixturevalue("postgres_server"), "demo")
    except pytest.skip.Exception:
        pass
    from gongkai.flows.crawl import nightly_flow

    # as `gongkai demo` runs it (its flaky portal down), so that docs/research.md's outputs can be checked here
    with pytest.MonkeyPatch.context() as env, DemoPortal(slow_seconds=1.5, down=True) as demo:
        env.setenv("GONGKAI_DATA", str(folder / "data"))  # the run summary is stored under the data folder
        env.setenv("GONGKAI_EXTRACT_PROCESSES", "1")  # seven documents: no worker processes to spawn
        for engine, url in urls.items():
            nightly_flow(db_url=url, archive_location=str(folder / f"archive-{engine}"), demo_port=demo.port,
                         state_file=str(folder / f"state-{engine}.json"), politeness=DEMO_POLITENESS)
    if "postgres" in urls:
        urls["postgres"] = read_only_url(urls["postgres"])  # researchers read as a role that can only read
    yield urls


def _new_pg_database(server: str, prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_url(request: pytest.FixtureRequest, demo_crawls: dict[str, str]) -> str:
    if request.param not in demo_crawls:
        pytest.skip("PostgreSQL unavailable")
    return demo_crawls[request.param]


# --- docs/research.md: its `gongkai query` examples and the outputs it shows -------------------------------

RESEARCH = Path(__file__).parent.parent / "docs" / "research.md"


def research_examples() -> list[tuple[str, str, str | None]]:
    """(heading, SQL, printed output or None) of every `gongkai query "…"` block of docs/research.md."""
    text = RESEARCH.read_text(encoding="utf-8")
    out: list[tuple[str, str, str | None]] = []
    heading = ""
    for block in re.finditer(r"^(#+ [^\n]*)$|```sh\n(.*?)```(?:\s*```text\n(.*?)```)?", text, re.M | re.S):
        if block.group(1):
            heading = block.group(1).lstrip("# ").strip()
            continue
        words = shlex.split(block.group(2))
        if words[:2] == ["gongkai", "query"] and len(words) > 2 and not words[2].startswith("--"):
            out.append((heading, words[2], block.group(3).rstrip("\n") if block.group(3) else None))
    return out
