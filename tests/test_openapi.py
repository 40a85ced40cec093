"""The OpenAPI document: every route documents request, response and error bodies with examples, and
requests generated from it (schemathesis, over real HTTP on loopback) never get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from conftest import ADMIN_KEY, LiveServer
from service.app import create_app
from service.engine import Engine
from service.settings import Settings


@pytest.fixture()
def live_url(writable_settings: Settings) -> Iterator[str]:
    engine = Engine.from_settings(writable_settings)
    with LiveServer(create_app(writable_settings, engine)) as server:
        yield server.url


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

        @given(case=operation.as_strategy())
        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, timeout=60,
                                   checks=[not_a_server_error, status_code_conformance, response_schema_conformance])

        run()
    assert len(tried) >= 12, tried
