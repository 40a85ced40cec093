"""A threshold-only switch (service/versions/threshold.py): a live recalibration's bundle serves on the serving index
version through the one commit protocol, re-embeds nothing (encoder calls counted), survives a restart and rolls
back. Real Qdrant Edge and real HTTP on loopback; the server adapter on qdrant-client ':memory:'."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, TEST_KEYS, WRITE_KEY, LiveServer, stage_registry_data_dir
from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import SwapRefusedError
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.registry import BundleRegistry
from indexing.store.server import ServerCatalog
from service.app import create_app
from service.engine import Engine, SimilarQuery
from service.flag.recalibrate import THRESHOLD_ONLY_KEY
from service.settings import Settings
from service.versions.serving import EncoderOptions
from service.versions.switcher import ModelSwitcher
from training.calibrate import write_calibrated_bundle

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
WRITE = {"X-API-Key": WRITE_KEY}


@pytest.fixture()
def registry_settings(shared_index_dir: Path, minilm_bundle: Bundle, tmp_path: Path) -> Settings:
    stage_registry_data_dir(shared_index_dir, minilm_bundle, tmp_path)
    return Settings(data_dir=tmp_path, api_keys=TEST_KEYS, flag_recalibrate_min_answers=60, flag_link_check_s=0)


class EncoderCalls:
    """Counts every batch the ONNX encoders run and every encoder session made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches = 0
        self.sessions = 0
        encode_batch, encoder_for = OnnxEncoder._run, EncoderOptions.encoder_for

        def counted_batch(enc: OnnxEncoder, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.batches += 1
            return encode_batch(enc, *args, **kwargs)

        def counted_session(opts: EncoderOptions, bundle: Bundle) -> OnnxEncoder:
            self.sessions += 1
            return encoder_for(opts, bundle)

        monkeypatch.setattr(OnnxEncoder, "_run", counted_batch)
        monkeypatch.setattr(EncoderOptions, "encoder_for", counted_session)


def threshold_bundle(parent: Bundle, registry: BundleRegistry, value: float) -> Bundle:
    threshold = {"value": value, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
                 "confidence": 0.95, "calibrated_on": "test"}
    path = write_calibrated_bundle(parent, registry.root, threshold, {"corpus": "test"},
                                   extra={THRESHOLD_ONLY_KEY: {"from": parent.model_version, "how": "test"}})
    return registry.publish(path)


def test_threshold_switch_reembeds_nothing_survives_restart_and_rolls_back(
        registry_settings: Settings, minilm_bundle: Bundle, incidents: list[Incident],
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry = BundleRegistry(registry_settings.bundles_dir)
    engine = Engine.from_settings(registry_settings)
    index = engine.index_version
    query = SimilarQuery(text=incidents[3].text(), top_k=3)
    before = engine.similar(query)
    bundle_b = threshold_bundle(minilm_bundle, registry, 0.61)
    calls = EncoderCalls(monkeypatch)
    switcher = ModelSwitcher(engine)
    t0 = time.perf_counter()
    status = switcher.activate(bundle_b.model_version)  # activation sees a threshold-only bundle: no rebuild
    seconds = time.perf_counter() - t0
    assert status.state == "switched" and status.reused_index and status.index_version == index
    assert calls.batches == 0 and calls.sessions == 0  # nothing re-embedded, no encoder session made
    assert seconds < 5, seconds
    after = engine.similar(query)
    assert after.model_version == bundle_b.model_version and after.index_version == index
    assert after.threshold == 0.61 and [r.score for r in after.results] == [r.score for r in before.results]
    assert calls.sessions == 0  # the query encoder and its cache are shared too
    assert registry.active_version() == bundle_b.model_version
    assert json.loads((registry_settings.edge_index_dir / "ACTIVE.json").read_text())["model_version"] == \
        bundle_b.model_version  # the commit point names the bundle with the same index version
    engine.upsert_incidents([Incident(number="INC9900001", short_description="threshold switch write")])
    engine.close()

    engine = Engine.from_settings(registry_settings)  # a restart serves what the pointer names
    assert engine.bundle.model_version == bundle_b.model_version and engine.index_version == index
    assert engine.get_incident("INC9900001") is not None
    switcher = ModelSwitcher(engine)
    with pytest.raises(SwapRefusedError, match="already serving"):
        switcher.switch_threshold(bundle_b.model_version)
    back = switcher.rollback()  # the parent, on the same index: a pointer move
    assert back.state == "rolled_back" and back.reused_index
    assert engine.bundle.model_version == minilm_bundle.model_version and engine.index_version == index
    assert registry.active_version() == minilm_bundle.model_version
    assert calls.batches == 0 or calls.batches == 1  # the restart's start-up never encodes; a query may have
    engine.close()


def test_a_bundle_that_scores_differently_is_refused(registry_settings: Settings, minilm_bundle: Bundle) -> None:
    registry = BundleRegistry(registry_settings.bundles_dir)
    threshold = {"value": 0.5, "source": "calibrated", "target_fpr": 0.05, "calibrated_on": "test"}
    other = registry.publish(write_calibrated_bundle(minilm_bundle, registry.root, threshold, {"corpus": "t"},
                                                     bm25_updates={"k1": 1.7}))
    engine = Engine.from_settings(registry_settings)
    try:
        with pytest.raises(SwapRefusedError, match="bm25"):
            ModelSwitcher(engine).switch_threshold(other.model_version)
        assert engine.bundle.model_version == minilm_bundle.model_version
    finally:
        engine.close()


def test_recalibrate_endpoint_dry_run_then_apply_then_rollback(registry_settings: Settings, minilm_bundle: Bundle,
                                                               incidents: list[Incident],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine.from_settings(registry_settings)
    with LiveServer(create_app(registry_settings, engine)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as c:
        for inc in incidents[:80]:
            r = c.post("/similar", json={"text": inc.text(), "top_k": 3, "exclude": [inc.number]}, headers=WRITE)
            assert r.status_code == 200, r.text
        first = incidents[0]
        suggested = c.post("/similar", json={"text": first.text(), "top_k": 3, "exclude": [first.number]},
                           headers=WRITE).json()["results"][0]["number"]
        r = c.post("/feedback", json={"incident": first.number, "suggested": suggested, "verdict": "duplicate",
                                      "source": "test"}, headers=WRITE)
        assert r.status_code == 201, r.text
        assert c.post("/admin/threshold/recalibrate", headers=WRITE).status_code == 403
        dry = c.post("/admin/threshold/recalibrate", headers=ADMIN)
        assert dry.status_code == 200, dry.text
        body = dry.json()
        assert body["applied"] is False and body["proposal"]["answers"] == 80
        assert body["proposal"]["hits"] == 1 and body["proposal"]["negatives"] == 79
        assert body["proposal"]["threshold"] >= body["proposal"]["point_estimate"]
        assert c.get("/admin/models", headers=ADMIN).json()["serving"]["model_version"] == minilm_bundle.model_version
        # the same dry run from a shell: `incident-sim calibrate --live` asks the running service
        from typer.testing import CliRunner

        from service.cli import app

        cli = CliRunner().invoke(app, ["calibrate", "--live", "--service", server.url, "--api-key", ADMIN_KEY])
        assert cli.exit_code == 0, cli.output
        assert "live answers: 80 incidents (79 negatives, 1 confirmed duplicates)" in cli.output
        assert "dry run" in cli.output
        refused = CliRunner().invoke(app, ["calibrate", "--live", "--service", server.url, "--api-key", WRITE_KEY])
        assert refused.exit_code == 1 and "403" in refused.output
        assert CliRunner().invoke(app, ["calibrate", "--apply"]).exit_code == 2  # --apply needs --live
        calls = EncoderCalls(monkeypatch)
        applied = c.post("/admin/threshold/recalibrate", json={"apply": True}, headers=ADMIN).json()
        assert applied["applied"] is True, applied
        assert calls.batches == 0 and calls.sessions == 0
        new = applied["model_version"]
        assert applied["switch"]["reused_index"] is True and applied["switch"]["index_version"] == engine.index_version
        status = c.get("/admin/threshold", headers=ADMIN).json()
        assert status["model_version"] == new and status["threshold"] == applied["proposal"]["threshold"]
        assert status["last_recalibration"]["derived_from"] == minilm_bundle.model_version
        assert "live recalibration" in status["last_recalibration"]["how"]
        answer = c.post("/similar", json={"text": "vpn"}, headers=WRITE).json()
        assert answer["model_version"] == new and answer["threshold_source"] == "calibrated"
        # the answers of the parent still count: same scores (a second dry run sees them)
        again = c.post("/admin/threshold/recalibrate", json={"apply": False}, headers=ADMIN).json()
        assert again["proposal"]["answers"] == 81 and minilm_bundle.model_version in again["proposal"]["models"]
        r = c.post("/admin/models/rollback", headers=ADMIN)
        assert r.status_code == 200 and r.json()["model_version"] == minilm_bundle.model_version, r.text
        assert c.post("/similar", json={"text": "vpn"}, headers=WRITE).json()["model_version"] == \
            minilm_bundle.model_version


def test_server_adapter_threshold_switch_and_rollback(minilm_bundle: Bundle, encoder: OnnxEncoder,
                                                      incidents: list[Incident], tmp_path: Path) -> None:
    registry = BundleRegistry(tmp_path / "bundles")
    registry.publish(minilm_bundle.path, allow_uncalibrated=True)
    registry.set_active(minilm_bundle.model_version)
    bundle_b = threshold_bundle(minilm_bundle, registry, 0.55)
    catalog = ServerCatalog(":memory:", "incidents")
    meta, _ = index_into_catalog(incidents[:60], minilm_bundle, encoder, catalog, progress=False)
    engine = Engine(minilm_bundle, encoder, catalog.open(meta.index_version), index_name=meta.index_version,
                    catalog=catalog, registry=registry)
    switcher = ModelSwitcher(engine)
    status = switcher.switch_threshold(bundle_b.model_version)
    assert status.index_version == meta.index_version and catalog.active() == meta.index_version
    assert catalog.active_model() == bundle_b.model_version  # the commit point, on the alias's collection
    assert engine.similar(SimilarQuery(text="vpn", top_k=1)).threshold == 0.55
    switcher.rollback()
    assert catalog.active_model() == minilm_bundle.model_version
    assert engine.bundle.model_version == minilm_bundle.model_version
    engine.close()


def test_reloaded_bundle_is_intact(registry_settings: Settings, minilm_bundle: Bundle) -> None:
    registry = BundleRegistry(registry_settings.bundles_dir)
    b = threshold_bundle(minilm_bundle, registry, 0.6)
    assert load_bundle(registry.path_of(b.model_version)).encoder_id == minilm_bundle.encoder_id
