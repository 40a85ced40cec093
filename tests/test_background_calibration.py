"""`similar` is null under the uncalibrated default threshold and boolean under a calibrated one; the quickstart's
background calibration (service/flag/background_calibration.py) runs the offline rule on the sample's train +
validation splits, switches to a threshold-only bundle on the serving index (nothing re-embedded) and /readyz says
what it is doing meanwhile. Real HTTP on loopback, the real MiniLM ONNX bundle, real Qdrant Edge."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from conftest import TEST_KEYS, WRITE_KEY, LiveServer, stage_registry_data_dir
from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.registry import BundleRegistry
from service.app import create_app
from service.engine import Engine
from service.flag.background_calibration import BackgroundCalibration
from service.flag.recalibrate import THRESHOLD_ONLY_KEY
from service.settings import Settings
from training.calibrate import DEFAULT_TARGET_FALSE_ALARM, write_calibrated_bundle

WRITE = {"X-API-Key": WRITE_KEY}


@pytest.fixture()
def registry_settings(shared_index_dir: Path, minilm_bundle: Bundle, tmp_path: Path) -> Settings:
    """The quickstart's layout: the uncalibrated bundle active in the registry, an index built by it."""
    stage_registry_data_dir(shared_index_dir, minilm_bundle, tmp_path)
    return Settings(data_dir=tmp_path, api_keys=TEST_KEYS, flag_link_check_s=0)


class BatchesBy:
    """Counts the ONNX batches each encoder object runs (the serving one apart from the calibration's own)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[int] = Counter()
        encode_batch = OnnxEncoder._run

        def counted(enc: OnnxEncoder, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls[id(enc)] += 1
            return encode_batch(enc, *args, **kwargs)

        monkeypatch.setattr(OnnxEncoder, "_run", counted)

    def of(self, encoder: OnnxEncoder) -> int:
        return self.calls[id(encoder)]

    def others(self, encoder: OnnxEncoder) -> int:
        return sum(n for key, n in self.calls.items() if key != id(encoder))


def ask(client: httpx.Client, incident: Incident) -> dict:
    r = client.post("/similar", json={"text": incident.text(), "top_k": 10, "exclude": [incident.number]},
                    headers=WRITE)
    assert r.status_code == 200, r.text
    return r.json()


def test_similar_is_null_uncalibrated_and_boolean_calibrated(settings: Settings, minilm_bundle: Bundle,
                                                            incidents: list[Incident], tmp_path: Path) -> None:
    engine = Engine.from_settings(settings)
    with LiveServer(create_app(settings, engine)) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        body = ask(c, incidents[10])
        metrics = c.get("/metrics", headers=WRITE).text
    assert body["threshold_source"] == "uncalibrated_default" and body["threshold_target"] is None
    assert len(body["results"]) == 10 and all(r["similar"] is None for r in body["results"])
    assert 'incident_sim_flag_answers_total{flagged="none"} 1.0' in metrics  # neither a flag nor a non-flag
    assert 'incident_sim_flag_answers_total{flagged="false"} 0.0' in metrics
    assert "incident_sim_similar_results_total 0.0" in metrics
    assert "incident_sim_best_score_margin_count 0.0" in metrics

    scores = sorted(r["score"] for r in body["results"])
    cut = (scores[4] + scores[5]) / 2  # between the results: five above, five below
    threshold = {"value": cut, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
                 "confidence": 0.95, "target_fpr": None, "calibrated_on": "test"}
    path = write_calibrated_bundle(minilm_bundle, tmp_path / "bundles", threshold, {"corpus": "test"})
    served = settings.model_copy(update={"bundle_path": path})
    engine = Engine.from_settings(served)
    with LiveServer(create_app(served, engine)) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        body = ask(c, incidents[10])
        metrics = c.get("/metrics", headers=WRITE).text
    assert body["threshold_source"] == "calibrated"
    flags = [r["similar"] for r in body["results"]]
    assert all(isinstance(f, bool) for f in flags) and flags.count(True) == 5 and flags.count(False) == 5
    assert all(r["similar"] == (r["score"] >= cut) for r in body["results"])
    assert 'incident_sim_flag_answers_total{flagged="true"} 1.0' in metrics
    assert 'incident_sim_flag_answers_total{flagged="none"} 0.0' in metrics
    assert "incident_sim_similar_results_total 5.0" in metrics


def test_background_calibration_switches_the_threshold_without_reembedding(
        registry_settings: Settings, minilm_bundle: Bundle, incidents: list[Incident],
        monkeypatch: pytest.MonkeyPatch) -> None:
    batches = BatchesBy(monkeypatch)
    engine = Engine.from_settings(registry_settings)
    serving_encoder, serving_store, index = engine.current.encoder, engine.current.store, engine.index_version
    points = engine.store.count()
    hold = threading.Event()
    job = BackgroundCalibration(engine, incidents, registry_settings.data_dir, hold=hold)
    with LiveServer(create_app(registry_settings, engine, background_calibration=job)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.text  # ready while it runs
        calibration = ready.json()["calibration"]
        assert calibration["state"] == "running" and calibration["from_model_version"] == minilm_bundle.model_version
        assert "null" in calibration["message"]
        before = ask(c, incidents[3])
        assert before["threshold_source"] == "uncalibrated_default"
        assert all(r["similar"] is None for r in before["results"])
        assert not job.wait(0.5) and job.progress().state == "running"  # held: it has not started working
        serving_batches = batches.of(serving_encoder)

        hold.set()
        assert job.wait(300), job.progress()
        progress = job.progress()
        assert progress.state == "done", progress
        assert batches.of(serving_encoder) == serving_batches  # the switch encoded nothing on the serving side
        assert batches.others(serving_encoder) > 0  # the calibration encoded the sample with its own encoder
        assert engine.index_version == index and engine.current.store is serving_store
        assert engine.current.encoder is serving_encoder and engine.store.count() == points

        ready = c.get("/readyz")
        assert ready.status_code == 200
        done = ready.json()
        assert done["calibration"]["state"] == "done" and done["model_version"] == progress.model_version
        assert done["index_version"] == index and done["calibration"]["threshold"] == progress.threshold
        after = ask(c, incidents[3])
        assert after["threshold_source"] == "calibrated" and after["model_version"] == progress.model_version
        assert after["index_version"] == index and after["threshold"] == progress.threshold
        assert after["threshold_target"] == {"unit": "incident_false_alarm", "target": DEFAULT_TARGET_FALSE_ALARM,
                                             "confidence": 0.95}
        assert all(isinstance(r["similar"], bool) and r["similar"] == (r["score"] >= after["threshold"])
                   for r in after["results"])
        assert [r["score"] for r in after["results"]] == [r["score"] for r in before["results"]]  # same scores
    registry = BundleRegistry(registry_settings.bundles_dir)
    assert registry.active_version() == progress.model_version
    calibrated = load_bundle(registry.path_of(progress.model_version))
    manifest = calibrated.manifest
    assert manifest[THRESHOLD_ONLY_KEY]["from"] == minilm_bundle.model_version  # a threshold-only bundle
    record = manifest["threshold"]
    assert record["source"] == "calibrated" and record["calibration"]["splits"] == ["train", "validation"]
    assert record["calibration"]["pool"] == "all" and record["calibration"]["bound_met"]
    assert record["calibration"]["upper_bound"] <= DEFAULT_TARGET_FALSE_ALARM  # the Clopper-Pearson rule held
    assert record["calibration"]["trials"] >= 59  # duplicate-free incidents: enough to show 5 % at 95 %


def test_a_failed_calibration_logs_one_line_and_leaves_the_uncalibrated_bundle_serving(
        registry_settings: Settings, minilm_bundle: Bundle, incidents: list[Incident],
        caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine.from_settings(registry_settings)
    job = BackgroundCalibration(engine, incidents[:3], registry_settings.data_dir)  # nothing to calibrate on
    with caplog.at_level(logging.INFO), LiveServer(create_app(registry_settings, engine,
                                                              background_calibration=job)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as c:
        assert job.wait(120)
        progress = job.progress()
        assert progress.state == "failed" and progress.error and progress.model_version is None
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["calibration"]["state"] == "failed"
        body = ask(c, incidents[3])
        assert body["threshold_source"] == "uncalibrated_default" and body["model_version"] == \
            minilm_bundle.model_version
        assert all(r["similar"] is None for r in body["results"])
    errors = [r for r in caplog.records if r.name == "service.flag.background_calibration" and
              r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "uncalibrated threshold keeps serving" in errors[0].getMessage()
    assert BundleRegistry(registry_settings.bundles_dir).active_version() == minilm_bundle.model_version
