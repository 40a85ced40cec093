"""The OpenAPI document: every route documents request, response and error bodies with examples, and
requests generated from it (schemathesis, over real HTTP on loopback) never get a 5xx.

The service runs as a real `incident-sim serve` process, not in a thread of the test process: on Python 3.11
`ast.parse` is not safe to call from two threads at once (the AST constructor keeps its recursion depth in
interpreter-wide state, and the GIL can pass to another thread in the middle of it when a garbage-collector
callback written in Python runs, as Hypothesis installs one), and both sides call it here: Hypothesis to
describe schemathesis's strategies, and the server's traceback formatting (3.11 parses the source line to
place its carets) whenever uvicorn logs a malformed request. In one process the race made Hypothesis fail with
`SystemError: AST constructor recursion depth mismatch` once in CI."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from conftest import ADMIN_KEY, TEST_KEYS, free_port, running
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def live_url(writable_settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A real `incident-sim serve` process on a loopback port, over a private copy of the shared index."""
    port = free_port()
    keys = [{"name": k.name, "key": k.key.get_secret_value(), "scopes": sorted(s.value for s in k.scopes)}
            for k in TEST_KEYS]
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(writable_settings.data_dir),
           "INCIDENT_SIM_BUNDLE_PATH": str(writable_settings.bundle_path), "INCIDENT_SIM_API_KEYS": json.dumps(keys)}
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with running([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], log_path, f"{url}/readyz",
                 env=env, cwd=ROOT) as proc:
        yield url
        assert proc.poll() is None, f"the service died during the test:\n{log_path.read_text()}"

def test_every_operation_documents_bodies_errors_and_examples(live_url: str) -> None:
    spec = httpx.get(f"{live_url}/openapi.json").json()
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert {(p, m) for p, m, _ in operations} >= {("/similar", "post"), ("/incidents/{number}", "put"),
                                                  ("/incidents/{number}", "get"), ("/incidents/{number}", "delete"),
                                                  ("/incidents/bulk", "post"), ("/healthz", "get"),
                                                  ("/readyz", "get"), ("/metrics", "get"),
                                                  ("/admin/models", "get"), ("/admin/models/activate", "post"),
                                                  ("/admin/models/rebuild", "get"), ("/admin/models/rollback", "post")}
    schemas = spec["components"]["schemas"]
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("examples"), f"{where}: request body {ref} has no example"
        for status, response in op["responses"].items():
            if status in ("204",):
                continue
            content = response.get("content", {})
            assert content, f"{where} {status}: no body documented"
            media = content.get("application/json") or next(iter(content.values()))
            schema_ref = media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            has_example = "example" in media or "examples" in media or bool(
                schema_ref and schemas[schema_ref].get("examples"))
            assert has_example, f"{where} {status}: no example"
            if status.startswith(("4", "5")) and path != "/readyz":
                assert schema_ref == "ErrorResponse", f"{where} {status}: not the one error shape"
    for path, method, op in operations:
        if path not in ("/healthz", "/readyz", "/metrics"):
            assert {"401", "403", "429"} <= set(op["responses"]), f"{method} {path}"
            if "requestBody" in op or "{" in path:
                assert "422" in op["responses"], f"{method} {path}"
            assert op.get("security"), f"{method} {path} does not declare its API key"


def test_generated_requests_never_get_a_5xx(live_url: str) -> None:
    """schemathesis generates requests for every operation (valid and schema-violating ones); none may get a
    5xx, every status must be documented, and every response must match its documented schema."""
    api = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    tried: list[str] = []
    for result in api.get_all_operations():
        operation = result.ok()
        tried.append(operation.label)
        # an operation without inputs (e.g. POST /admin/index/compact, which compacts synchronously) gets the
        # same request every time: a few examples say all there is to say
        takes_input = any(len(part) for part in (operation.body, operation.path_parameters, operation.query))

        @given(case=operation.as_strategy())
        @settings(max_examples=100 if takes_input else 10, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, timeout=60,
                                   checks=[not_a_server_error, status_code_conformance, response_schema_conformance])

        run()
    assert len(tried) >= 12, tried
