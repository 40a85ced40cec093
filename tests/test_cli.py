"""The command line as an operator uses it: real processes, real HTTP on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import WRITE_KEY, free_port
from indexing.bundle import Bundle

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def make_env(data_dir: Path, bundle: Path | None) -> dict[str, str]:
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1",
           "INCIDENT_SIM_API_KEYS": json.dumps([{"name": "servicenow", "key": WRITE_KEY, "scopes": ["query"]}])}
    env.pop("INCIDENT_SIM_BUNDLE_PATH", None)
    if bundle is not None:
        env["INCIDENT_SIM_BUNDLE_PATH"] = str(bundle)
    return env


def test_help_explains_commands() -> None:
    out = cli("--help", env=dict(os.environ)).stdout
    for command in ("bundle", "sample", "index", "serve", "quickstart"):
        assert command in out


def test_sample_index_serve_end_to_end(tmp_path: Path, minilm_bundle: Bundle) -> None:
    env = make_env(tmp_path, minilm_bundle.path)
    data = tmp_path / "incidents.json"
    assert cli("sample", "--out", str(data), "--n", "150", env=env).returncode == 0
    result = cli("index", "--input", str(data), env=env)
    assert result.returncode == 0, result.stderr
    assert "150 incidents" in result.stdout
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "service did not become ready"
            time.sleep(0.3)
        first = json.loads(data.read_text())["result"][0]
        r = httpx.post(f"http://127.0.0.1:{port}/similar", json={"short_description": first["short_description"],
                                                                 "description": first["description"]},
                       headers={"Authorization": f"Bearer {WRITE_KEY}"})
        assert r.status_code == 200
        assert r.json()["results"][0]["number"] == first["number"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), out  # uvicorn re-raises SIGTERM after a clean shutdown
    assert "Application shutdown complete" in out
    assert "POST /similar -> 200" in out  # readable access log line


@pytest.mark.parametrize(("keys", "fragment"), [
    ("", "no API keys configured"),
    ('[{"name": "x", "key": "changeme", "scopes": ["query"]}]', "placeholder"),
    ('[{"name": "x", "key": "0123456789abcdef0123", "scopes": ["root"]}]', "invalid settings"),
])
def test_serve_refuses_unsafe_keys_without_traceback(tmp_path: Path, minilm_bundle: Bundle, keys: str,
                                                     fragment: str) -> None:
    env = make_env(tmp_path, minilm_bundle.path)
    env["INCIDENT_SIM_API_KEYS"] = keys or "[]"
    result = cli("serve", "--port", str(free_port()), env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "0123456789abcdef0123" not in result.stderr + result.stdout  # a key is never echoed


def test_serve_refuses_missing_bundle_without_traceback(tmp_path: Path) -> None:
    result = cli("serve", "--port", str(free_port()), env=make_env(tmp_path, None), timeout=60)
    assert result.returncode == 2
    assert "no model bundle under" in result.stderr and "incident-sim bundle baseline" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_refuses_corrupt_bundle_without_traceback(tmp_path: Path, minilm_bundle: Bundle) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(minilm_bundle.path, bundle)
    onnx_file = bundle / "encoder" / "model.onnx"
    onnx_file.chmod(0o644)
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    result = cli("serve", "--port", str(free_port()), env=make_env(tmp_path, bundle), timeout=60)
    assert result.returncode == 2
    assert "corrupt: checksum of encoder/model.onnx" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_index_reports_malformed_input(tmp_path: Path, minilm_bundle: Bundle) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"result": [{"number": "INC1", "short_description": "x", "opened_at": "soon"}]}))
    result = cli("index", "--input", str(bad), env=make_env(tmp_path, minilm_bundle.path), timeout=60)
    assert result.returncode == 2
    assert "record 1" in result.stderr and "opened_at" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["index"], ["sample", "--n", "0"]])
def test_bad_arguments_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    result = cli(*args, env=make_env(tmp_path, None), timeout=60)
    assert result.returncode == 2
