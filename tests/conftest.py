"""Shared fixtures: the real corpus copied from ../shared/corpus (documents and their gold cells)."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from gongkai.settings import quiet_prefect

# The tests' own Prefect home, not the user's ~/.prefect: its database may have been migrated by another Prefect
# version (a fresh clone's venv met a database left by a newer Prefect: every ephemeral-server start failed in alembic),
# and the tests' thousands of flow runs do not belong in the user's UI. Subprocesses inherit it.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="gongkai-tests-prefect-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], True)
quiet_prefect()  # before anything imports Prefect: offline, no telemetry, a patient ephemeral server

# postgres_server / postgres_url: a throwaway PostgreSQL cluster; research_fixtures: corpus + demo warehouses; s3_fixture: an S3 server on loopback
pytest_plugins = ["postgres_fixture", "research_fixtures", "s3_fixture"]

CORPUS = Path(__file__).parent / "corpus"
DOCUMENTS = CORPUS / "documents"
GOLD = CORPUS / "gold"


def gold_files() -> list[Path]:
    return sorted(GOLD.glob("*.json"))


def load_gold(name: str) -> dict:
    return json.loads((GOLD / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return CORPUS
