"""Hot-swap: a retraining job publishes a bundle, the service re-indexes in the background and switches
model and index together, with zero failed requests and no lost incident update. Real HTTP on loopback,
real Qdrant Edge; the server adapter (alias switch) on qdrant-client ':memory:'."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, TEST_KEYS, WRITE_KEY, LiveServer, free_port, stage_registry_data_dir, wait_for_http
from indexing.bundle import MANIFEST, Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import BundleError
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.registry import BundleRegistry
from indexing.store.server import ServerCatalog
from service.app import create_app
from service.engine import Engine, SimilarQuery
from service.settings import Settings
from service.versions.switcher import ModelSwitcher
from training.calibrate import write_calibrated_bundle

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle_b(minilm_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """A second, calibrated bundle version, as a retraining job would leave it (outside the registry)."""
    threshold = {"value": 0.5, "source": "calibrated", "target_fpr": 0.05, "calibrated_on": "test"}
    return load_bundle(write_calibrated_bundle(minilm_bundle, tmp_path_factory.mktemp("job"), threshold,
                                               {"corpus": "test"}))


@pytest.fixture()
def registry_settings(shared_index_dir: Path, minilm_bundle: Bundle, tmp_path: Path) -> Settings:
    """A data directory as the service keeps it: bundle A in the registry and active, its index."""
    stage_registry_data_dir(shared_index_dir, minilm_bundle, tmp_path)
    return Settings(data_dir=tmp_path, api_keys=TEST_KEYS, rebuild_page_size=8)


def test_publishing_does_not_change_what_serves(minilm_bundle: Bundle, bundle_b: Bundle, tmp_path: Path) -> None:
    registry = BundleRegistry(tmp_path / "bundles")
    registry.publish(minilm_bundle.path, allow_uncalibrated=True)
    assert registry.active_version() == minilm_bundle.model_version  # no pointer yet: the only (newest) bundle
    registry.publish(bundle_b.path)  # newer, but only activation may make it serve
    assert registry.active_version() == minilm_bundle.model_version
    assert [e.model_version for e in registry.entries() if e.active] == [minilm_bundle.model_version]
    with pytest.raises(BundleError, match="already in the registry"):
        registry.publish(bundle_b.path)


def rebuild_status(client: httpx.Client) -> dict:
    r = client.get("/admin/models/rebuild", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def test_switch_under_load_with_writes(registry_settings: Settings, minilm_bundle: Bundle, bundle_b: Bundle,
                                       incidents: list[Incident]) -> None:
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    engine = Engine.from_settings(registry_settings)
    assert engine.bundle.model_version == minilm_bundle.model_version
    answers: list[tuple[float, int, str | None, str | None]] = []
    written: list[str] = []
    stop = threading.Event()
    with LiveServer(create_app(registry_settings, engine)) as server:
        def query_loop() -> None:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": WRITE_KEY}, timeout=60) as c:
                for i in range(3000):  # bounded count and time
                    if stop.is_set():
                        return
                    r = c.post("/similar", json={"text": incidents[i % len(incidents)].text(), "top_k": 3})
                    body = r.json()
                    answers.append((time.monotonic(), r.status_code, body.get("model_version"),
                                    body.get("index_version")))

        def write_loop() -> None:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": WRITE_KEY}, timeout=60) as c:
                for i in range(200):
                    if stop.is_set():
                        return
                    number = f"INC97{i:05d}"
                    r = c.put(f"/incidents/{number}", json={"short_description": f"hot swap write {i} zeta{i}",
                                                            "category": "Test"})
                    assert r.status_code in (200, 201), r.text
                    written.append(number)
                    time.sleep(0.01)

        threads = [threading.Thread(target=query_loop), threading.Thread(target=query_loop)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        with httpx.Client(base_url=server.url, timeout=60) as admin:
            writer = threading.Thread(target=write_loop)
            writer.start()
            r = admin.post("/admin/models/activate", json={"model_version": bundle_b.model_version}, headers=ADMIN)
            assert r.status_code == 202, r.text
            r2 = admin.post("/admin/models/activate", json={"model_version": bundle_b.model_version}, headers=ADMIN)
            assert r2.status_code in (409, 202)  # one rebuild at a time (409 while it runs)
            deadline = time.monotonic() + 180
            saw_building = False
            while (status := rebuild_status(admin))["state"] == "building":
                saw_building = saw_building or 0 < status["done"] < status["total"]
                assert time.monotonic() < deadline, status
                time.sleep(0.05)
            assert status["state"] == "switched", status
            switched_at = time.monotonic()
            assert status["self_retrieval"] >= 0.9 and status["total"] >= 300
            time.sleep(1.0)
            stop.set()
            writer.join()
            for t in threads:
                t.join()
            metrics = admin.get("/metrics").text

            # every write made before, during and after the rebuild is in the new index
            for number in written:
                r = admin.get(f"/incidents/{number}", headers={"X-API-Key": WRITE_KEY})
                assert r.status_code == 200, number
            r = admin.post("/similar", json={"text": f"hot swap write {len(written) // 2} zeta{len(written) // 2}",
                                             "top_k": 1}, headers={"X-API-Key": WRITE_KEY})
            assert r.json()["results"][0]["number"] == written[len(written) // 2]
            assert admin.get("/admin/models", headers=ADMIN).json()["serving"]["model_version"] == \
                bundle_b.model_version

            # rollback is instant and serves A again, with A's index
            r = admin.post("/admin/models/rollback", headers=ADMIN)
            assert r.status_code == 200 and r.json()["model_version"] == minilm_bundle.model_version
            body = admin.post("/similar", json={"text": "vpn"}, headers={"X-API-Key": WRITE_KEY}).json()
            assert body["model_version"] == minilm_bundle.model_version

    assert saw_building, "the rebuild was never observed in progress"
    assert len(written) > 0
    statuses = {s for _, s, _, _ in answers}
    assert statuses == {200}, statuses  # zero non-2xx under load
    for _, _, model, index in answers:
        assert index is not None and model is not None and index.startswith(model + "@")  # never mismatched
    models = [m for _, _, m, _ in answers]
    assert minilm_bundle.model_version in models and bundle_b.model_version in models
    after = [m for t, _, m, _ in answers if t > switched_at + 0.2]
    assert after and set(after) == {bundle_b.model_version}
    assert 'incident_sim_model_swaps_total{result="ok"} 1.0' in metrics
    assert "incident_sim_rebuild_progress_ratio 1.0" in metrics
    assert f'model_version="{bundle_b.model_version}"' in metrics


def test_invalid_bundle_is_refused_and_the_old_one_keeps_serving(registry_settings: Settings, minilm_bundle: Bundle,
                                                                 bundle_b: Bundle, tmp_path: Path) -> None:
    registry = BundleRegistry(registry_settings.bundles_dir)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(bundle_b.path, corrupt)
    manifest = json.loads((corrupt / MANIFEST).read_text())
    victim = corrupt / manifest["tokenizer"]["file"]
    victim.write_bytes(victim.read_bytes() + b" ")
    with pytest.raises(BundleError, match="is corrupt"):
        registry.publish(corrupt)
    with pytest.raises(BundleError, match="uncalibrated"):
        registry.publish(minilm_bundle.path)
    # a corrupt bundle placed in the registry behind its back is refused at activation
    shutil.copytree(corrupt, registry_settings.bundles_dir / bundle_b.model_version)
    engine = Engine.from_settings(registry_settings)
    with LiveServer(create_app(registry_settings, engine)) as server, \
            httpx.Client(base_url=server.url, headers=ADMIN, timeout=60) as client:
        r = client.post("/admin/models/activate", json={"model_version": bundle_b.model_version})
        assert r.status_code == 422 and "refused" in r.json()["error"]["message"]
        r = client.post("/admin/models/activate", json={"model_version": "no-such-model"})
        assert r.status_code == 404
        r = client.post("/admin/models/activate", json={"model_version": minilm_bundle.model_version})
        assert r.status_code == 409  # already serving
        r = client.post("/admin/models/activate", json={"model_version": bundle_b.model_version},
                        headers={"Authorization": f"Bearer {WRITE_KEY}"})
        assert r.status_code == 403  # admin scope only
        body = client.post("/similar", json={"text": "vpn certificate"}).json()
        assert body["model_version"] == minilm_bundle.model_version
        assert rebuild_status(client)["state"] == "idle"


def test_killed_mid_rebuild_restarts_on_the_active_version(registry_settings: Settings, minilm_bundle: Bundle,
                                                           bundle_b: Bundle, tmp_path: Path) -> None:
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(registry_settings.data_dir), "HF_HUB_OFFLINE": "1",
           "INCIDENT_SIM_API_KEYS": json.dumps([{"name": "ops", "key": ADMIN_KEY, "scopes": ["admin"]}]),
           "INCIDENT_SIM_REBUILD_PAGE_SIZE": "1"}
    env.pop("INCIDENT_SIM_BUNDLE_PATH", None)

    def start(log: Path) -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/readyz", proc, log)
        return proc, url

    proc, url = start(tmp_path / "first.log")
    try:
        before = httpx.get(f"{url}/readyz").json()
        r = httpx.post(f"{url}/admin/models/activate", json={"model_version": bundle_b.model_version}, headers=ADMIN)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/admin/models/rebuild", headers=ADMIN).json()["done"] < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-rebuild, no chance to clean up
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    versions_dir = registry_settings.edge_index_dir / "versions"
    assert any((d / "BUILDING").exists() for d in versions_dir.iterdir())  # the half-built version is there

    proc, url = start(tmp_path / "second.log")
    try:
        after = httpx.get(f"{url}/readyz").json()
        assert after["ready"] and after["model_version"] == before["model_version"] == minilm_bundle.model_version
        assert after["index_version"] == before["index_version"]
        assert not any(versions_dir.iterdir())  # cleaned up at start
        r = httpx.post(f"{url}/similar", json={"text": "vpn"}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["model_version"] == minilm_bundle.model_version
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert "rebuild never finished" in (tmp_path / "second.log").read_text()


def test_server_adapter_switches_by_alias(minilm_bundle: Bundle, bundle_b: Bundle, encoder: OnnxEncoder,
                                          incidents: list[Incident], tmp_path: Path) -> None:
    registry = BundleRegistry(tmp_path / "bundles")
    registry.publish(minilm_bundle.path, allow_uncalibrated=True)
    registry.publish(bundle_b.path)
    registry.set_active(minilm_bundle.model_version)
    catalog = ServerCatalog(":memory:", "incidents")
    meta, count = index_into_catalog(incidents[:120], minilm_bundle, encoder, catalog, progress=False)
    first = catalog.active()
    assert first == meta.index_version and count == 120
    engine = Engine(minilm_bundle, encoder, catalog.open(first), index_name=first, catalog=catalog, registry=registry)
    held = engine.current  # a request that started before the switch
    switcher = ModelSwitcher(engine, page_size=16)
    status = switcher.activate(bundle_b.model_version, background=False)
    assert status.state == "switched", status.error
    aliases = {a.alias_name: a.collection_name for a in catalog.client.get_aliases().aliases}
    assert aliases["incidents"].startswith("incidents--") and catalog.active() == status.index_version
    answer = engine.similar(SimilarQuery(text=incidents[5].text(), top_k=3))
    assert answer.model_version == bundle_b.model_version and answer.index_version == status.index_version
    assert answer.results[0].payload["number"] == incidents[5].number
    assert held.store.count() == 120 and held.index_version == first  # the old version still answers its request
    assert registry.active_version() == bundle_b.model_version
    switcher.rollback()
    assert catalog.active() == first and engine.bundle.model_version == minilm_bundle.model_version
    engine.close()
