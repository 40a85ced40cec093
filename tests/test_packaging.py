"""The serving install must not pull torch: neither declared nor imported."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentence-transformers", "optimum", "peft")


def test_base_dependencies_exclude_the_training_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = [d.split("==")[0].split(">")[0].strip().lower() for d in project["dependencies"]]
    assert not set(base) & set(HEAVY)
    assert all("==" in d for d in project["dependencies"]), "pin every base dependency"
    assert "torch==2.13.0" in project["optional-dependencies"]["train"]
    assert project["scripts"]["incident-sim"] == "service.cli:app"


def test_serving_code_imports_without_torch() -> None:
    code = (
        "import sys\n"
        "import service.app, service.cli, service.engine, indexing.search, indexing.indexer\n"
        "import indexing.store.edge, indexing.store.server\n"
        f"loaded = [m for m in {HEAVY!r} if m.replace('-', '_') in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
