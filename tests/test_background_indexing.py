"""The quickstart serves once a first part of the sample is indexed and indexes the rest in the background through the
engine's write path: answers say so while it runs, never show a half-written incident, and at the end every
sample incident is there. Real Qdrant Edge, real ONNX Runtime, real HTTP (and a real `incident-sim quickstart`
process for the command itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import AUTH, TEST_KEYS, LiveServer, free_port, wait_for_http
from indexing.bundle import Bundle
from indexing.incidents import Incident
from indexing.indexer import missing_incidents
from service.app import create_app
from service.background_indexing import BackgroundIndexer
from service.cli.operations import _index_first
from service.engine import Engine
from service.settings import Settings
from service.wiring import open_catalog

ROOT = Path(__file__).resolve().parents[1]


def stored_missing(settings: Settings, incidents: list[Incident]) -> list[Incident]:
    catalog = open_catalog(settings)
    try:
        store = catalog.open(str(catalog.active()))
        try:
            return missing_incidents(store, incidents)
        finally:
            store.close()
    finally:
        catalog.close()


def test_first_part_is_indexed_and_the_rest_is_left_for_the_background(minilm_bundle: Bundle,
                                                                        incidents: list[Incident],
                                                                        tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bundle_path=minilm_bundle.path)
    backlog = _index_first(settings, incidents, first=50)
    assert [i.number for i in backlog] == [i.number for i in incidents[50:]]
    assert [i.number for i in stored_missing(settings, incidents)] == [i.number for i in backlog]
    # a second run finds the first part stored and indexes the next part of what is missing
    changed = incidents[3].model_copy(update={"short_description": "changed since it was indexed"})
    again = _index_first(settings, [*incidents[:3], changed, *incidents[4:]], first=10)
    assert len(again) == len(backlog) - 9  # the changed one counted as missing, then 10 written
    assert changed.number not in {i.number for i in again}


def test_background_indexing_answers_meanwhile_and_finishes_with_every_incident(
        minilm_bundle: Bundle, incidents: list[Incident], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bundle_path=minilm_bundle.path, api_keys=TEST_KEYS,
                        compact_after_writes=0)
    backlog = _index_first(settings, incidents, first=30)
    by_number = {i.number: i for i in incidents}
    engine = Engine.from_settings(settings)
    indexer = BackgroundIndexer(engine, backlog, page_size=8)
    seen_filling: list[tuple[str, dict]] = []
    problems: list[str] = []
    with LiveServer(create_app(settings, engine, background_indexing=indexer)) as server, \
            httpx.Client(base_url=server.url, timeout=30, headers=AUTH) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["indexing"] is not None and ready["indexing"]["total"] == len(backlog)

        def ask() -> None:
            k = 0
            while indexer.progress().filling and k < 400:
                query = incidents[(k * 7) % len(incidents)]
                k += 1
                r = client.post("/similar", json={"short_description": query.short_description,
                                                  "description": query.description, "top_k": 10})
                if r.status_code != 200:
                    problems.append(f"/similar {r.status_code}: {r.text}")
                    return
                body = r.json()
                if body["index_filling"] is not None:
                    seen_filling.append((r.headers.get("X-Index-Filling", ""), body["index_filling"]))
                for result in body["results"]:  # every incident returned is whole: its fields as sent
                    source = by_number[result["number"]]
                    if result["short_description"] != source.short_description:
                        problems.append(f"{result['number']}: {result['short_description']!r}")
                    stored = client.get(f"/incidents/{result['number']}").json()["incident"]
                    if stored != source.payload():
                        problems.append(f"{result['number']} stored as {stored}")

        asker = threading.Thread(target=ask)
        asker.start()
        assert indexer.wait(timeout=240), "background indexing did not finish"
        asker.join(timeout=60)
        assert not problems, problems[:5]
        assert seen_filling, "no answer said the index was still being filled"
        header, field = seen_filling[0]
        assert header == f"{field['indexed']}/{field['total']}" and field["total"] == len(backlog)
        assert "still being filled" in field["message"]
        assert indexer.progress().state == "done" and indexer.progress().indexed == len(backlog)
        after = client.post("/similar", json={"text": incidents[0].short_description})
        assert after.json()["index_filling"] is None and "X-Index-Filling" not in after.headers
        assert client.get("/readyz").json()["indexing"] is None
        metrics = client.get("/metrics").text
        assert f'incident_sim_background_indexing_incidents{{state="indexed"}} {float(len(backlog))}' in metrics
        assert engine.store.count() == len(incidents)
    assert stored_missing(settings, incidents) == []


def test_a_failing_store_is_retried_not_dropped(minilm_bundle: Bundle, incidents: list[Incident],
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store refusing writes for a while (Qdrant unreachable) delays the background indexing; nothing is lost."""
    from indexing.errors import StoreUnavailableError

    settings = Settings(data_dir=tmp_path, bundle_path=minilm_bundle.path, compact_after_writes=0)
    backlog = _index_first(settings, incidents[:60], first=20)
    engine = Engine.from_settings(settings)
    real = engine.upsert_incidents
    failures = {"left": 3}

    def flaky(page):  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            raise StoreUnavailableError("connection refused")
        return real(page)

    monkeypatch.setattr(engine, "upsert_incidents", flaky)
    indexer = BackgroundIndexer(engine, backlog, page_size=16, retry_s=0.05)
    indexer.start()
    assert indexer.wait(timeout=120)
    assert indexer.progress().state == "done" and failures["left"] == 0
    assert engine.store.count() == 60
    engine.close()
    assert stored_missing(settings, incidents[:60]) == []


def test_quickstart_serves_early_then_fills_and_a_second_run_indexes_nothing(minilm_bundle: Bundle,
                                                                              tmp_path: Path) -> None:
    """The real command: `incident-sim quickstart` with a bundle given, 200 sample incidents, 40 before serving."""
    port = free_port()
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(tmp_path / "var"), "INCIDENT_SIM_BUNDLE_PATH":
           str(minilm_bundle.path), "INCIDENT_SIM_LOG_FORMAT": "text", "HF_HUB_OFFLINE": "1"}
    env.pop("INCIDENT_SIM_API_KEYS", None)
    argv = [sys.executable, "-m", "service.cli", "quickstart", "--n", "200", "--first", "40", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    for run in (1, 2):
        log_path = tmp_path / f"quickstart-{run}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_http(f"{url}/readyz", proc, log_path, timeout=120)
            deadline = time.monotonic() + 180
            while httpx.get(f"{url}/readyz").json()["indexing"] is not None:
                assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
                time.sleep(0.5)
            answer = httpx.post(f"{url}/similar", json={"text": "VPN drops every few minutes"}).json()
            assert answer["results"] and answer["index_filling"] is None
            metrics = httpx.get(f"{url}/metrics").text
            assert "incident_sim_index_incidents 200.0" in metrics, metrics
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        log = log_path.read_text()
        assert "ready to serve" in log
        if run == 1:
            assert "index the first 40 sample incidents" in log and "background indexing done: 160 incidents" in log
            assert "pins the uncalibrated bundle, so the quickstart does not calibrate it" in log  # a pin would win
        else:
            assert "200 of 200 sample incidents already indexed" in log and "background" not in log.split(
                "ready to serve")[1], log
