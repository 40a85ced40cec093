"""The serving install must not pull torch: neither declared nor imported nor installed, and it serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx

from conftest import free_port, running
from indexing.bundle import Bundle

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


def test_the_serving_install_has_no_torch_and_serves(tmp_path: Path, shared_index_dir: Path,
                                                     minilm_bundle: Bundle) -> None:
    """What the serving image does: `pip install .` (no extras) into a fresh virtual environment; torch is not
    there, and `incident-sim serve` from that environment answers /similar over real HTTP."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    build = tmp_path / "src"  # a copy of the sources, so the editable install of the test environment is untouched
    shutil.copytree(ROOT, build, ignore=shutil.ignore_patterns(".venv", ".git", "var", "node_modules", "*.egg-info",
                                                               "__pycache__", "benchmarks", "tests"))
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              str(build)], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    missing = subprocess.run([str(python), "-c", "import importlib.util as u, sys; "
                              f"sys.exit(any(u.find_spec(m) for m in {[h.replace('-', '_') for h in HEAVY]!r}))"])
    assert missing.returncode == 0, "the serving install pulled part of the training stack"
    shutil.copytree(shared_index_dir / "index", tmp_path / "data" / "index")
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "INCIDENT_SIM_DATA_DIR": str(tmp_path / "data"),
           "INCIDENT_SIM_BUNDLE_PATH": str(minilm_bundle.path), "INCIDENT_SIM_PORT": str(port)}
    with running([str(venv / "bin" / "incident-sim"), "serve", "--dev"], tmp_path / "serve.log",
                 f"http://127.0.0.1:{port}/readyz", env=env, cwd=tmp_path):
        answer = httpx.post(f"http://127.0.0.1:{port}/similar", json={"text": "VPN drops every few minutes"})
        assert answer.status_code == 200 and answer.json()["results"], answer.text
