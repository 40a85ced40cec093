"""Security-relevant settings: dev mode is only "no keys, loopback"; a malformed INCIDENT_SIM_API_KEYS is one clear
line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import QUERY_KEY
from service.auth import AuthConfigError, AuthError, KeyRing
from service.settings import ApiKey, Scope, Settings


def test_a_configured_key_turns_dev_mode_off_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    placeholder = [ApiKey(name="x", key="changeme", scopes=frozenset({Scope.query}))]
    with pytest.raises(AuthConfigError, match="placeholder"):
        KeyRing.from_settings(Settings(data_dir=tmp_path, dev_mode=True, api_keys=placeholder, host="0.0.0.0"))
    good = [ApiKey(name="dashboards", key=QUERY_KEY, scopes=frozenset({Scope.query}))]
    with caplog.at_level("WARNING"):
        ring = KeyRing.from_settings(Settings(data_dir=tmp_path, dev_mode=True, api_keys=good, host="0.0.0.0"))
    assert ring.enabled and any("dev mode is OFF" in r.getMessage() for r in caplog.records)
    with pytest.raises(AuthError):
        ring.identify("any-key-at-all-0000000")
    with pytest.raises(AuthError):
        ring.identify_headers({"authorization": "Bearer any-key-at-all-0000000"})
    assert ring.identify_headers({"x-api-key": QUERY_KEY}).name == "dashboards"


@pytest.mark.parametrize("value", ['[{"name": "x", "key": "abc', "not json", '{"name": "x"}'])
def test_malformed_api_keys_are_one_line(tmp_path: Path, value: str) -> None:
    env = {**os.environ, "INCIDENT_SIM_API_KEYS": value, "INCIDENT_SIM_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve"], env=env, capture_output=True, text=True,
                          timeout=120)
    out = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and "Traceback" not in out, out
    assert "api_keys" in out and len(out.splitlines()) <= 2, out
    assert value not in out  # the value may hold keys
