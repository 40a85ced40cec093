"""`incident-sim doctor` as a user runs it (a real process): passes on a good set-up, fails with a fix on a corrupt
bundle and on a missing index. Also the step durations every long command prints at its end."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexing import steps
from indexing.bundle import Bundle

ROOT = Path(__file__).resolve().parents[1]


def doctor(data_dir: Path, bundle: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(data_dir)}
    env.pop("INCIDENT_SIM_BUNDLE_PATH", None)
    if bundle is not None:
        env["INCIDENT_SIM_BUNDLE_PATH"] = str(bundle)
    return subprocess.run([sys.executable, "-m", "service.cli", "doctor"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_doctor_passes_on_a_good_set_up(shared_index_dir: Path, minilm_bundle: Bundle, tmp_path: Path) -> None:
    shutil.copytree(shared_index_dir / "index", tmp_path / "index")
    result = doctor(tmp_path, minilm_bundle.path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "0 failed" in out and "checksums verified" in out
    assert f"built by {minilm_bundle.model_version}" in out  # read from the metadata: doctor never loads a shard
    for check in ("python", "packages: serving install", "bundle", "index", "cpu", "disk"):
        assert f"  {check}" in out


def test_doctor_fails_on_a_corrupt_bundle(shared_index_dir: Path, minilm_bundle: Bundle, tmp_path: Path) -> None:
    shutil.copytree(shared_index_dir / "index", tmp_path / "index")
    bundle = tmp_path / "bundles" / minilm_bundle.path.name
    shutil.copytree(minilm_bundle.path, bundle)
    tokenizer = bundle / "tokenizer" / "tokenizer.json"
    tokenizer.chmod(0o644)
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNKNOWN]"', 1))
    result = doctor(tmp_path, bundle)
    assert result.returncode == 1, result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("FAIL") and " bundle " in x)
    assert "is corrupt" in line
    assert "fix: rebuild it" in result.stdout


def test_doctor_fails_on_a_missing_index(minilm_bundle: Bundle, tmp_path: Path) -> None:
    result = doctor(tmp_path, minilm_bundle.path)
    assert result.returncode == 1
    assert any(x.startswith("FAIL") and "no index" in x for x in result.stdout.splitlines()), result.stdout
    assert "fix: index incidents" in result.stdout
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").rglob("*.json")), \
        "doctor must not create an index"


def test_doctor_fails_without_any_bundle(tmp_path: Path) -> None:
    result = doctor(tmp_path)
    assert result.returncode == 1 and "no model bundle" in result.stdout and "incident-sim bundle baseline" in \
        result.stdout


def test_steps_report_each_duration_nested_and_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="indexing.steps")
    with pytest.raises(RuntimeError), steps.run("job") as run:
        with steps.step("outer"):
            with steps.step("inner"):
                time.sleep(0.05)
        with steps.step("broken"):
            raise RuntimeError("boom")
    names = [(r.name, r.depth, r.failed) for r in run.records]
    assert names == [("outer", 0, False), ("inner", 1, False), ("broken", 0, True)]
    assert run.records[1].seconds is not None and run.records[1].seconds >= 0.05
    assert run.records[0].seconds >= run.records[1].seconds
    summary = caplog.records[-1].getMessage()
    assert summary.startswith("job: ") and "  outer" in summary and "    inner" in summary and "failed" in summary
    # a run inside a run (quickstart -> bundle baseline) is one step of the outer run, one summary
    with steps.run("outer job") as outer:
        with steps.run("inner job"):
            with steps.step("work"):
                pass
    assert [(r.name, r.depth) for r in outer.records] == [("inner job", 0), ("work", 1)]
    assert steps.format_seconds(75.4) == "1 min 15 s" and steps.format_seconds(3.21) == "3.2 s"


def test_doctor_changes_nothing_on_disk(shared_index_dir: Path, minilm_bundle: Bundle, tmp_path: Path) -> None:
    """Read-only, always: no lock taken, no shard loaded (Qdrant Edge's load writes to it), no pointer repaired."""
    shutil.copytree(shared_index_dir / "index", tmp_path / "index")
    pointer = tmp_path / "index" / "incidents" / "ACTIVE.json.bak"
    pointer.write_text("{")  # a damaged copy that a writer would repair

    def tree() -> dict[str, tuple[int, int]]:
        return {str(p.relative_to(tmp_path)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in tmp_path.rglob("*") if p.is_file()}

    before = tree()
    assert doctor(tmp_path, minilm_bundle.path).returncode == 0
    assert tree() == before
