"""/similar, /healthz, /readyz and /metrics over real HTTP on loopback (uvicorn in a thread)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from conftest import AUTH, LiveServer, free_port
from indexing.bundle import Bundle
from indexing.incidents import Incident
from service.app import create_app
from service.engine import Engine
from service.settings import Settings


def test_similar_returns_scored_incidents(live: httpx.Client, incidents: list[Incident]) -> None:
    target = incidents[10]
    r = live.post("/similar", json={"short_description": target.short_description,
                                    "description": target.description, "top_k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-request-id"]
    assert set(body) == {"results", "threshold", "threshold_source", "threshold_target", "model_version",
                         "index_version", "truncated", "exact", "index_filling"}
    assert body["index_filling"] is None and "x-index-filling" not in r.headers  # no background indexing here
    assert body["threshold_source"] == "uncalibrated_default" and body["threshold_target"] is None
    assert body["index_version"].startswith(body["model_version"] + "@")
    results = body["results"]
    assert len(results) == 5
    assert results[0]["number"] == target.number  # the incident itself is the best match
    for item in results:
        assert set(item) == {"number", "short_description", "category", "assignment_group", "state", "opened_at",
                             "score", "dense", "bm25", "bm25_raw", "matched_terms", "similar",
                             "close_notes", "close_code", "resolved_at"}
        assert (item["close_notes"], item["close_code"], item["resolved_at"]) == (None, None, None)  # not asked
        assert item["score"] == pytest.approx(0.7 * item["dense"] + 0.3 * item["bm25"], abs=1e-9)
        assert 0 <= item["bm25"] <= 1
        assert item["similar"] is None  # the uncalibrated default threshold flags nothing either way


def test_exclude_and_default_top_k(live: httpx.Client, incidents: list[Incident]) -> None:
    target = incidents[10]
    r = live.post("/similar", json={"text": target.text(), "exclude": [target.number]})
    assert r.status_code == 200
    numbers = [x["number"] for x in r.json()["results"]]
    assert len(numbers) == 5 and target.number not in numbers


@pytest.mark.parametrize(("body", "fragment"), [
    ({"short_description": ""}, "text is empty"),
    ({"short_description": "   ", "description": "\n\t "}, "text is empty"),
    ({}, "text is empty"),
    ({"text": "vpn", "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
    ({"text": "vpn", "top_k": 51}, "top_k must be between 1 and 50"),
    ({"text": "vpn", "top_k": "5"}, "top_k: Input should be a valid integer"),
    ({"text": 42}, "text: Input should be a valid string"),
    ({"text": ["a"]}, "text: Input should be a valid string"),
    ({"text": "vpn", "exclude": "INC1"}, "exclude: Input should be a valid list"),
    ({"text": "vpn", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"text": "vpn", "short_description": "vpn"}, "either 'text' or"),
    ({"text": "x" * 20_001}, "text is 20001 characters; the limit is 20000"),
])
def test_bad_input_is_422_with_a_message(live: httpx.Client, body: dict, fragment: str) -> None:
    r = live.post("/similar", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert fragment in error["message"]
    assert error["request_id"] == r.headers["x-request-id"]


def test_invalid_json_and_wrong_content_type(live: httpx.Client) -> None:
    r = live.post("/similar", content=b'{"text": "vpn"', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = live.post("/similar", content=b'{"text": "vpn"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = live.post("/similar", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_body_over_limit_is_413_declared_or_streamed(live: httpx.Client, settings: Settings) -> None:
    big = json.dumps({"text": "a" * (settings.max_body_bytes + 10)}).encode()
    r = live.post("/similar", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert str(settings.max_body_bytes) in r.json()["error"]["message"]

    def chunks():  # no content-length: the limit must hold while streaming
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    r = live.post("/similar", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert live.get("/healthz").status_code == 200  # the server is fine afterwards


def test_long_text_is_truncated_and_reported(live: httpx.Client) -> None:
    text = " ".join(f"word{i}" for i in range(1500))  # far beyond 256 tokens, below the char limit
    r = live.post("/similar", json={"text": text, "top_k": 1})
    assert r.status_code == 200 and r.json()["truncated"] is True
    assert 'incident_sim_truncated_inputs_total 1.0' in live.get("/metrics").text


def test_health_ready_and_metrics(live: httpx.Client) -> None:
    assert live.get("/healthz").json() == {"status": "alive"}
    r = live.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    live.post("/similar", json={"text": "vpn certificate"})
    metrics = live.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'incident_sim_request_duration_seconds_bucket{le="0.05",method="POST",route="/similar",status="200"}' in text
    assert 'incident_sim_stage_duration_seconds_count{stage="encode"}' in text
    assert "incident_sim_index_incidents 300.0" in text
    assert "incident_sim_model_info{" in text


def test_store_unreachable_gives_503_not_a_crash(minilm_bundle: Bundle, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = Settings(data_dir=tmp_path, bundle_path=minilm_bundle.path, qdrant_url=f"http://127.0.0.1:{port}",
                        qdrant_timeout_s=1, dev_mode=True)
    engine = Engine.from_settings(settings)
    with LiveServer(create_app(settings, engine)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert r.json()["reason"] == "store_unavailable"
        assert str(port) not in r.text and "http" not in r.text and str(tmp_path) not in r.text  # an open probe
        r = client.post("/similar", json={"text": "vpn down"})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "store_unavailable"
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_missing_index_is_503_with_a_hint(minilm_bundle: Bundle, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bundle_path=minilm_bundle.path, dev_mode=True)
    engine = Engine.from_settings(settings)
    with LiveServer(create_app(settings, engine)) as server, httpx.Client(base_url=server.url) as client:
        r = client.post("/similar", json={"text": "vpn down"})
        assert r.status_code == 503 and "incident-sim index" in r.json()["error"]["message"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"] == "index_missing"
        assert str(tmp_path) not in ready.text


def test_restart_reads_the_same_on_disk_index(settings: Settings, incidents: list[Incident]) -> None:
    query = {"text": incidents[42].text(), "top_k": 8}
    answers = []
    for _ in range(2):  # two service lifetimes over the same data directory
        engine = Engine.from_settings(settings)
        with LiveServer(create_app(settings, engine)) as server, \
                httpx.Client(base_url=server.url, headers=AUTH) as client:
            answers.append(client.post("/similar", json=query).json())
    assert answers[0] == answers[1]
    assert len(answers[0]["results"]) == 8


def test_port_is_really_loopback_http(live: httpx.Client) -> None:
    host, port = live.base_url.host, live.base_url.port
    assert host == "127.0.0.1"
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"200 OK" in sock.recv(4096)
