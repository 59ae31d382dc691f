"""gongkai installs under one import name and runs from a built wheel, outside the source checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("schema", "extractors", "warehouse", "flows", "crawler")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], check=True,
                   cwd=out, timeout=600)
    (found,) = out.glob("gongkai-*.whl")
    return found


def test_the_wheel_installs_one_top_level_name_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
    assert top == {"gongkai"}, top
    for stage in STAGES:
        assert f"gongkai/{stage}/__init__.py" in names, stage
    assert "gongkai/schema/data/tables.toml" in names
    assert "gongkai/warehouse/schema.sql" in names
    assert "gongkai/crawler/registry.toml" in names
    demo_data = {n.rsplit("/", 1)[1] for n in names if n.startswith("gongkai/crawler/demo_portal/data/")}
    assert {p.name for p in (ROOT / "tests" / "corpus" / "documents").iterdir()} <= demo_data


def test_the_demo_data_is_the_test_corpus() -> None:
    """The demo's data are the gold-checked corpus documents (links in the checkout, files in the wheel)."""
    data = ROOT / "crawler" / "demo_portal" / "data"
    for original in (ROOT / "tests" / "corpus" / "documents").iterdir():
        assert (data / original.name).read_bytes() == original.read_bytes(), original.name
    assert (data / "pingtan-zfxxgknb-list.html").read_bytes() == (ROOT / "tests" / "portals" / "pingtan-zfxxgknb-list.html").read_bytes()


def test_gongkai_demo_runs_from_the_wheel_in_a_fresh_venv_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GONGKAI_", "PYTHONPATH", "PREFECT_API_URL", "VIRTUAL_ENV"))}
    env |= {"GONGKAI_DATA": str(work / "data"), "PREFECT_HOME": str(work / "prefect")}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env, cwd=work)
    # the wheel's declared dependencies are resolved by pip from the index (pip's cache makes this quick in CI)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=1200, cwd=work, env=env)
    done = subprocess.run([str(venv / "bin" / "gongkai"), "demo"], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert "loaded into the warehouse:" in done.stdout, done.stdout + done.stderr
    assert "平潭综合实验区 2024: extracted" in done.stdout, done.stdout
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", "import gongkai.schema as s; print(s.__file__)"], cwd=work,
                              env=env, capture_output=True, text=True, check=True)
    assert str(venv) in imported.stdout and str(ROOT) not in imported.stdout
    for name in STAGES:  # no second top-level name in the environment
        missing = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {name}"], cwd=work, env=env, capture_output=True)
        assert missing.returncode != 0, name
