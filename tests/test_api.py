"""The HTTP API as the ServiceNow integration and ops use it, over real HTTP on loopback: API keys and
scopes, validation, filters, explanations, incident pushes, load shedding and graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, QUERY_KEY, TEST_KEYS, WRITE_KEY, LiveServer, free_port, wait_for_http
from indexing.bundle import Bundle
from indexing.incidents import Incident
from service.app import create_app
from service.auth import AuthConfigError
from service.engine import Engine
from service.settings import ApiKey, Scope, Settings

NEW_INCIDENT = {
    "short_description": "Quasar ledger daemon crashes with error QLD-7781 on boot",
    "description": "The quasar ledger daemon on ledger-node-42 exits right after start: QLD-7781 checksum fault.",
    "category": "Software", "assignment_group": "Ledger Team", "state": "2", "opened_at": "2026-11-22T09:00:00Z",
}


# -- auth -------------------------------------------------------------------------------------------
def test_no_key_is_401_and_a_wrong_key_too(live: httpx.Client) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer not-a-key-anyone-issued"},
                    {"Authorization": "", "X-API-Key": "wrong-wrong-wrong-wrong"}):
        r = live.post("/similar", json={"text": "vpn"}, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_scopes(live_writable: httpx.Client) -> None:
    c = live_writable
    query_only = {"Authorization": f"Bearer {QUERY_KEY}"}
    assert c.post("/similar", json={"text": "vpn"}, headers=query_only).status_code == 200
    r = c.put("/incidents/INC9000001", json=NEW_INCIDENT, headers=query_only)
    assert r.status_code == 403 and "lacks the 'write' scope" in r.json()["error"]["message"]
    assert c.delete("/incidents/INC0010001", headers=query_only).status_code == 403
    assert c.get("/incidents/INC0010001", headers=query_only).status_code == 200  # 403 did not delete it
    # the X-API-Key header works as well as Bearer; admin implies write
    assert c.put("/incidents/INC9000001", json=NEW_INCIDENT, headers={"Authorization": "",
                                                                      "X-API-Key": ADMIN_KEY}).status_code == 201
    assert c.put("/incidents/INC9000001", json=NEW_INCIDENT, headers={"Authorization": f"Bearer {WRITE_KEY}"}
                 ).status_code == 200


def test_health_and_metrics_are_open_unless_protected(settings: Settings) -> None:
    for protect in (False, True):
        s = settings.model_copy(update={"protect_metrics": protect})
        engine = Engine.from_settings(s)
        with LiveServer(create_app(s, engine)) as server, httpx.Client(base_url=server.url) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
            assert client.get("/metrics").status_code == (401 if protect else 200)
            assert client.get("/metrics", headers={"X-API-Key": QUERY_KEY}).status_code == 200


@pytest.mark.parametrize(("keys", "dev", "fragment"), [
    ([], False, "no API keys configured"),
    ([ApiKey(name="x", key="changeme", scopes=frozenset({Scope.query}))], False, "placeholder"),
    ([ApiKey(name="x", key="short", scopes=frozenset({Scope.query}))], False, "shorter than 16"),
    ([ApiKey(name="x", key="aaaaaaaaaaaaaaaaaaaa", scopes=frozenset({Scope.query}))], False, "placeholder"),
    ([TEST_KEYS[0], ApiKey(name="copy", key=QUERY_KEY, scopes=frozenset({Scope.admin}))], False, "repeats"),
])
def test_start_up_refuses_unsafe_keys(settings: Settings, keys: list[ApiKey], dev: bool, fragment: str) -> None:
    s = settings.model_copy(update={"api_keys": keys, "dev_mode": dev})
    engine = Engine.from_settings(s)
    try:
        with pytest.raises(AuthConfigError, match=fragment):
            create_app(s, engine)
    finally:
        engine.close()


def test_dev_mode_allows_placeholders_and_no_keys(settings: Settings) -> None:
    s = settings.model_copy(update={"api_keys": [], "dev_mode": True})
    engine = Engine.from_settings(s)
    with LiveServer(create_app(s, engine)) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/similar", json={"text": "vpn"}).status_code == 200


def test_keys_are_never_logged(live_writable: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        live_writable.post("/similar", json={"text": "vpn certificate"})
        live_writable.post("/similar", json={"text": "vpn"}, headers={"Authorization": "Bearer guessed-key-123456"})
        live_writable.put("/incidents/INC9000002", json=NEW_INCIDENT)
        deadline = time.monotonic() + 5  # the access record is written just after the response is sent
        while sum(r.name == "service.access" for r in caplog.records) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    text = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    for secret in (QUERY_KEY, WRITE_KEY, ADMIN_KEY, "guessed-key-123456", "Quasar ledger"):
        assert secret not in text
    access = [r for r in caplog.records if r.name == "service.access"]
    assert {r.status for r in access} >= {200, 401, 201}  # type: ignore[attr-defined]
    assert all(r.request_id and r.latency_ms >= 0 and r.outcome for r in access)  # type: ignore[attr-defined]
    assert any(getattr(r, "caller", None) == "servicenow" for r in access)


# -- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "fragment"), [
    ({"text": "vpn", "filters": {"opened_after": "yesterday"}},
     "filters.opened_after: Input should be a valid datetime"),
    ({"text": "vpn", "filters": {"opened_after": "2026-01-01", "opened_before": "2025-01-01"}}, "must be earlier"),
    ({"text": "vpn", "filters": {"colour": "red"}}, "filters.colour: Extra inputs are not permitted"),
    ({"text": "vpn", "filters": {"category": 7}}, "filters.category"),
    ({"text": "vpn", "filters": []}, "filters: Input should be a valid dictionary"),
])
def test_bad_filters_are_422(live: httpx.Client, body: dict, fragment: str) -> None:
    r = live.post("/similar", json=body)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"]["message"]


def test_one_megabyte_of_text_is_413_before_it_is_read(live: httpx.Client) -> None:
    r = live.post("/similar", json={"text": "disk full " * 100_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


# -- filters and explanations over HTTP ---------------------------------------------------------------
def test_filters_are_honoured(live: httpx.Client, incidents: list[Incident]) -> None:
    by_number = {i.number: i for i in incidents}
    target = incidents[20]
    groups = sorted({i.assignment_group for i in incidents if i.assignment_group})[:2]
    r = live.post("/similar", json={"text": target.text(), "top_k": 20,
                                    "filters": {"assignment_group": groups, "opened_before": "2025-09-01T00:00:00"}})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results
    for item in results:
        incident = by_number[item["number"]]
        assert incident.assignment_group in groups and item["assignment_group"] in groups
        assert incident.opened_at is not None and incident.opened_at.isoformat() < "2025-09-01T00:00:00"
    r = live.post("/similar", json={"text": target.text(), "filters": {"category": "No Such Category"}})
    assert r.status_code == 200 and r.json()["results"] == []
    r = live.post("/similar", json={"text": target.text(), "filters": {"state": "Resolved"}, "top_k": 50})
    states = {by_number[x["number"]].state for x in r.json()["results"]}
    assert states == {"Resolved"}


def test_results_explain_themselves(live: httpx.Client) -> None:
    r = live.post("/similar", json={"text": "VPN certificate expired, cannot connect", "top_k": 5})
    for item in r.json()["results"]:
        assert item["bm25_raw"] >= 0
        assert set(item["matched_terms"]) <= {"vpn", "certificate", "expired", "cannot", "connect"}
        assert (item["bm25_raw"] > 0) == bool(item["matched_terms"])


# -- incident pushes ----------------------------------------------------------------------------------
def test_upsert_then_query_then_delete(live_writable: httpx.Client) -> None:
    c = live_writable
    before = c.get("/metrics").text
    r = c.put("/incidents/INC9100001", json=NEW_INCIDENT)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "created" and body["index_version"].startswith(body["model_version"] + "@")
    query = {"text": "quasar ledger daemon QLD-7781 checksum fault", "top_k": 3}
    hit = c.post("/similar", json=query).json()["results"][0]  # searchable as soon as the PUT returned
    assert hit["number"] == "INC9100001" and hit["category"] == "Software"
    assert "qld-7781" in hit["matched_terms"]
    stored = c.get("/incidents/INC9100001").json()["incident"]
    assert stored["assignment_group"] == "Ledger Team" and stored["state"] == "2"

    changed = {**NEW_INCIDENT, "category": "Hardware"}
    r = c.put("/incidents/INC9100001", json=changed)
    assert r.status_code == 200 and r.json()["status"] == "updated"
    assert c.post("/similar", json=query).json()["results"][0]["category"] == "Hardware"

    assert c.delete("/incidents/INC9100001").status_code == 204
    numbers = [x["number"] for x in c.post("/similar", json=query).json()["results"]]
    assert "INC9100001" not in numbers
    r = c.delete("/incidents/INC9100001")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert c.get("/incidents/INC9100001").status_code == 404
    after = c.get("/metrics").text
    assert 'incident_sim_incident_writes_total{operation="created"} 1.0' in after
    assert 'incident_sim_incident_writes_total{operation="deleted"} 1.0' in after
    assert 'incident_sim_incident_writes_total{operation="created"}' not in before


@pytest.mark.parametrize(("number", "body", "status", "fragment"), [
    ("INC9200001", {**NEW_INCIDENT, "short_description": "", "description": "  "}, 422, "neither"),
    ("INC9200001", {**NEW_INCIDENT, "number": "INC0000001"}, 422, "path says"),
    ("INC9200001", {**NEW_INCIDENT, "opened_at": "last tuesday"}, 422, "opened_at"),
    ("INC9200001", {**NEW_INCIDENT, "priority": 1}, 422, "priority: Extra inputs are not permitted"),
    ("INC9200001", {**NEW_INCIDENT, "description": "x" * 20_001}, 422, "the limit is 20000"),
    ("INC9200001", {**NEW_INCIDENT, "category": ["a"]}, 422, "category"),
    ("bad number!", NEW_INCIDENT, 422, "number"),
])
def test_bad_incident_is_refused_and_nothing_is_lost(live_writable: httpx.Client, incidents: list[Incident],
                                                     number: str, body: dict, status: int, fragment: str) -> None:
    c = live_writable
    existing = incidents[3]
    before = c.get(f"/incidents/{existing.number}").json()
    r = c.put(f"/incidents/{number}", json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"]
    assert c.get(f"/incidents/{number}").status_code in (404, 422)
    # a failed replace of an existing incident keeps the stored one
    bad_path = f"/incidents/{existing.number}" + ("!" if number == "bad number!" else "")
    r = c.put(bad_path, json={**body, "number": body.get("number", existing.number)})
    assert r.status_code == 422
    assert c.get(f"/incidents/{existing.number}").json() == before
    assert "incident_sim_index_incidents 300.0" in c.get("/metrics").text


def test_bulk_reports_each_item(live_writable: httpx.Client) -> None:
    c = live_writable
    items = [
        {**NEW_INCIDENT, "number": "INC9300001"},
        {**NEW_INCIDENT, "number": "INC0010002"},  # exists: replaced
        {"short_description": "no number"},
        {**NEW_INCIDENT, "number": "INC9300002", "opened_at": "not a date"},
        {**NEW_INCIDENT, "number": "INC9300003", "description": "", "short_description": ""},
        {**NEW_INCIDENT, "number": "INC9300004", "short_description": "Printer jams on floor 3"},
    ]
    r = c.post("/incidents/bulk", json={"incidents": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["updated"], body["failed"]) == (2, 1, 3)
    statuses = [(x["index"], x["status"]) for x in body["results"]]
    assert statuses == [(0, "created"), (1, "updated"), (2, "invalid"), (3, "invalid"), (4, "invalid"),
                        (5, "created")]
    assert "opened_at" in body["results"][3]["error"]
    for number in ("INC9300001", "INC9300004", "INC0010002"):
        assert c.get(f"/incidents/{number}").status_code == 200
    for number in ("INC9300002", "INC9300003"):
        assert c.get(f"/incidents/{number}").status_code == 404


def test_bulk_over_the_limit_is_refused_whole(writable_settings: Settings) -> None:
    s = writable_settings.model_copy(update={"max_bulk_incidents": 3})
    engine = Engine.from_settings(s)
    with LiveServer(create_app(s, engine)) as server, \
            httpx.Client(base_url=server.url, headers={"X-API-Key": WRITE_KEY}) as client:
        items = [{**NEW_INCIDENT, "number": f"INC94{i:05d}"} for i in range(4)]
        r = client.post("/incidents/bulk", json={"incidents": items})
        assert r.status_code == 422 and "the limit is 3" in r.json()["error"]["message"]
        assert client.get("/incidents/INC9400000").status_code == 404
        assert client.post("/incidents/bulk", json={"incidents": []}).status_code == 422


# -- concurrency --------------------------------------------------------------------------------------
def test_burst_beyond_the_in_flight_limit_gets_429_with_retry_after(settings: Settings) -> None:
    s = settings.model_copy(update={"max_in_flight": 2, "retry_after_s": 3})
    engine = Engine.from_settings(s)
    text = " ".join(f"word{i}" for i in range(400))  # slow enough to overlap (several encoder passes)
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    lock = threading.Lock()
    with LiveServer(create_app(s, engine)) as server:
        def fire() -> None:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": QUERY_KEY}, timeout=60) as client:
                r = client.post("/similar", json={"text": text, "top_k": 50})
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 429:
                        retry_after.add(r.headers["retry-after"])
                        assert r.json()["error"]["code"] == "overloaded"

        threads = [threading.Thread(target=fire) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/healthz").status_code == 200  # probes are never shed
            metrics = client.get("/metrics").text
    assert set(statuses) <= {200, 429}
    assert statuses[200] >= 2 and statuses[429] >= 1, statuses
    assert retry_after == {"3"}
    assert f'incident_sim_requests_total{{outcome="shed",route="/similar"}} {float(statuses[429])}' in metrics
    assert "incident_sim_requests_in_flight 0.0" in metrics


def test_sigterm_drains_in_flight_requests(writable_settings: Settings, tmp_path: Path) -> None:
    """A real `incident-sim serve` process: a bulk push in flight when SIGTERM arrives still completes."""
    port = free_port()
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(writable_settings.data_dir),
           "INCIDENT_SIM_BUNDLE_PATH": str(writable_settings.bundle_path),
           "INCIDENT_SIM_API_KEYS": json.dumps([{"name": "servicenow", "key": WRITE_KEY, "scopes": ["write"]}]),
           "INCIDENT_SIM_GRACEFUL_SHUTDOWN_S": "30"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", proc, tmp_path / "serve.log")
        items = [{**NEW_INCIDENT, "number": f"INC95{i:05d}", "description": NEW_INCIDENT["description"] + f" {i}" * 60}
                 for i in range(100)]
        result: dict[str, httpx.Response] = {}

        def push() -> None:
            result["r"] = httpx.post(f"{url}/incidents/bulk", json={"incidents": items},
                                     headers={"X-API-Key": WRITE_KEY}, timeout=120)

        t = threading.Thread(target=push)
        t.start()
        time.sleep(0.5)  # the push is being encoded now
        proc.send_signal(signal.SIGTERM)
        t.join(timeout=120)
        assert result["r"].status_code == 200, result["r"].text
        assert result["r"].json()["created"] == 100
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit is "killed by SIGTERM"
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("{")]
    assert any(line.get("route") == "/incidents/bulk" and line.get("status") == 200 for line in lines)
    assert any("in-flight requests have drained" in line["message"] for line in lines)
    # after the restart the pushed incidents are there
    engine = Engine.from_settings(writable_settings)
    try:
        assert engine.store.count() == 300 + 100
    finally:
        engine.close()


def test_bundle_only_fixture_is_used(minilm_bundle: Bundle) -> None:
    assert minilm_bundle.dim == 384
