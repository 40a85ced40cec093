"""Labelled data, the time-ordered protocol, and served score = evaluated score."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from indexing.bundle import Bundle, load_bundle
from indexing.errors import InputDataError
from indexing.incidents import Incident
from service.app import create_app
from service.engine import Engine
from service.settings import Settings
from training.calibrate import write_calibrated_bundle
from training.data.labels import WEAK_LABEL_WARNING, from_incidents, load_seamonkey
from training.data.sample import generate_incidents
from training.evaluate import build_scorer, evaluate_corpus, split_of, summarise, time_boundaries
from training.quality import DEFAULT_SEAMONKEY

SAMPLE = [Incident.model_validate(r) for r in generate_incidents(160, seed=12)]


def test_links_come_from_explicit_fields() -> None:
    rows = [
        {"number": "A", "short_description": "x", "opened_at": "2025-01-01 10:00:00", "problem_id": "P1"},
        {"number": "B", "short_description": "y", "opened_at": "2025-01-02 10:00:00", "problem_id": "P1"},
        {"number": "C", "short_description": "z", "opened_at": "2025-01-03 10:00:00", "duplicate_of": "A"},
        {"number": "D", "short_description": "w", "opened_at": "2025-01-04 10:00:00", "parent_incident": "B",
         "category": "Net"},
        {"number": "E", "short_description": "v", "opened_at": "2025-01-05 10:00:00", "category": "Net"},
    ]
    corpus = from_incidents([Incident.model_validate(r) for r in rows], "t")
    assert corpus.links == {("A", "B"), ("A", "C"), ("B", "D")}
    assert corpus.label_kind == "explicit"


def test_weak_category_labels_warn(caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"number": n, "short_description": "x", "opened_at": f"2025-01-0{i + 1} 10:00:00", "category": "Net"}
            for i, n in enumerate("AB")]
    corpus = from_incidents([Incident.model_validate(r) for r in rows], "t", weak_category=True)
    assert corpus.label_kind == "weak-category" and ("A", "B") in corpus.links
    assert WEAK_LABEL_WARNING in caplog.text


def test_bad_labelled_data_is_named() -> None:
    base = {"short_description": "x", "opened_at": "2025-01-01 10:00:00"}
    with pytest.raises(InputDataError, match=r"not in the corpus: \['A->ZZZ'\]"):
        from_incidents([Incident.model_validate({**base, "number": "A", "duplicate_of": "ZZZ"})], "t")
    with pytest.raises(InputDataError, match="no links"):
        from_incidents([Incident.model_validate({**base, "number": "A"})], "t")
    with pytest.raises(InputDataError, match="empty"):
        from_incidents([], "t")


@pytest.mark.skipif(not DEFAULT_SEAMONKEY.is_dir(), reason="../shared/data/seamonkey not present")
def test_seamonkey_loader() -> None:
    corpus = load_seamonkey(DEFAULT_SEAMONKEY)
    assert len(corpus.incidents) == 1076
    assert len(corpus.links) == 46
    assert any("CC BY 4.0" in n for n in corpus.notes)
    opened = [i.opened_at for i in corpus.incidents]
    assert opened == sorted(opened)


@pytest.fixture(scope="module")
def evaluated(minilm_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("eval")
    corpus = from_incidents(SAMPLE, "sample")
    settings = Settings(data_dir=data_dir, bundle_path=minilm_bundle.path, dev_mode=True)
    scorer, encoder = build_scorer(minilm_bundle, corpus, settings.edge_index_dir, progress=False)
    evaluation = evaluate_corpus(corpus, scorer, encoder, progress=False)
    return corpus, scorer, encoder, evaluation, settings


def test_time_protocol_never_offers_a_later_incident(evaluated) -> None:  # type: ignore[no-untyped-def]
    corpus, _, _, evaluation, _ = evaluated
    opened = {i.number: i.opened_at for i in corpus.incidents}
    linked = corpus.linked()
    assert evaluation.queries
    for q in evaluation.queries:
        assert any(opened[n] < opened[q.number] for n in linked[q.number])
        for candidate, is_link, _ in q.pairs:
            assert opened[candidate] < opened[q.number]
            assert is_link == (candidate in linked[q.number])
    splits = {q.number: q.split for q in evaluation.queries}
    positions = {i.number: p for p, i in enumerate(corpus.incidents)}
    for number, split in splits.items():
        assert split == split_of(positions[number], time_boundaries(corpus))
    by_split: dict[str, list] = {}
    for i in corpus.incidents:
        by_split.setdefault(split_of(positions[i.number], time_boundaries(corpus)), []).append(i.opened_at)
    # splits are disjoint time ranges, in order
    assert max(by_split["train"]) <= min(by_split["validation"])
    assert max(by_split["validation"]) <= min(by_split["test"])
    n_queries = {name: len(evaluation.split(name)) for name in ("train", "validation", "test")}
    assert n_queries["validation"] >= 0.15 * len(evaluation.queries) <= n_queries["test"]
    summary = summarise(evaluation.split("test"), 0.6, n_boot=100)
    assert summary["pairs"]["positive"] > 0 and summary["pairs"]["negative"] > summary["pairs"]["positive"]
    lo, hi = summary["hybrid"]["mrr"]["ci95"]
    assert lo <= summary["hybrid"]["mrr"]["value"] <= hi


def test_served_score_equals_evaluated_score(evaluated) -> None:  # type: ignore[no-untyped-def]
    corpus, scorer, encoder, evaluation, settings = evaluated
    row_of = {i.number: r for r, i in enumerate(corpus.incidents)}
    text_of = {i.number: i.text() for i in corpus.incidents}
    engine = Engine.from_settings(settings)
    compared = 0
    with LiveServer(create_app(settings, engine)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for q in evaluation.queries[:12]:
            served = {r["number"]: r for r in client.post("/similar", json={"text": text_of[q.number],
                                                                             "top_k": 50}).json()["results"]}
            offline = scorer.score(encoder.encode_one(text_of[q.number])[0], text_of[q.number])
            for candidate, _, pair_scores in q.pairs:
                if candidate in served:
                    s = served[candidate]
                    assert s["score"] == pytest.approx(pair_scores["hybrid"], abs=1e-6)
                    assert s["dense"] == pytest.approx(pair_scores["dense"], abs=1e-6)
                    assert s["bm25"] == pytest.approx(pair_scores["bm25"], abs=1e-6)
                    compared += 1
            for number, s in served.items():
                assert s["score"] == pytest.approx(offline["hybrid"][row_of[number]], abs=1e-6)
    assert compared >= 30


def test_calibrated_bundle_is_served_as_calibrated(evaluated, minilm_bundle: Bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, _, _, settings = evaluated
    threshold = {"value": 0.42, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
                 "confidence": 0.95, "target_fpr": None, "calibrated_on": "sample train + validation"}
    path = write_calibrated_bundle(minilm_bundle, tmp_path / "bundles", threshold, {"corpus": "sample"})
    calibrated = load_bundle(path)
    assert calibrated.model_version.startswith(minilm_bundle.model_version + "+cal")
    assert calibrated.encoder_id == minilm_bundle.encoder_id
    assert json.loads((minilm_bundle.path / "bundle.json").read_text())["threshold"]["source"] == "uncalibrated_default"
    served_settings = settings.model_copy(update={"bundle_path": path})
    engine = Engine.from_settings(served_settings)  # same index: only the threshold changed
    with LiveServer(create_app(served_settings, engine)) as server, httpx.Client(base_url=server.url) as client:
        body = client.post("/similar", json={"text": "vpn certificate expired"}).json()
    assert body["threshold_source"] == "calibrated" and body["threshold"] == 0.42
    assert body["threshold_target"] == {"unit": "incident_false_alarm", "target": 0.05, "confidence": 0.95}
    assert body["model_version"] == calibrated.model_version
    assert all(r["similar"] == (r["score"] >= 0.42) for r in body["results"])


def test_calibrate_end_to_end_writes_report_and_plots(minilm_bundle: Bundle, tmp_path: Path) -> None:
    from training.calibrate import UNIT_INCIDENT, ThresholdRule, calibration_splits
    from training.quality import run_quality
    from training.report import plots, write_report

    corpus = from_incidents(SAMPLE, "sample")
    splits, _ = calibration_splits(minilm_bundle)
    assert splits == ("train", "validation")  # the baseline never saw these incidents
    rule = ThresholdRule(UNIT_INCIDENT, 0.1, 0.9, splits)
    report, evaluation, threshold = run_quality(minilm_bundle, corpus, rule=rule, n_boot=100,
                                                index_dir=tmp_path / "index", progress=False)
    t = report["threshold"]
    assert t["source"] == "calibrated" and t["unit"] == UNIT_INCIDENT and t["target"] == 0.1
    assert t["confidence"] == 0.9 and t["value"] == threshold and t["target_fpr"] is None
    cal = t["calibration"]
    assert cal["splits"] == ["train", "validation"] and cal["upper_bound"] <= 0.1
    # every incident with an earlier one was asked; the calibration units are the duplicate-free ones
    asked = evaluation.incident_split("train", "validation")
    assert cal["trials"] == sum(not o.has_duplicate for o in asked)
    assert len(evaluation.incidents) == len(corpus.incidents) - 1
    assert report["bm25_normalization"]["chosen"] in report["bm25_normalization"]["comparison"]
    assert set(report["splits"]) == set(report["per_incident"]) == {"train", "validation", "test"}
    assert report["verdict"].startswith("hybrid - dense MRR on the test split")
    dense_text = report["dense_text"]
    assert set(dense_text["comparison"]) == {"full", "summary", "mean_vector", "mean_cosine"}
    if dense_text["mode"] != "full":  # another mode ships only when the paired validation CI says so
        assert dense_text["comparison"][dense_text["mode"]]["validation_mrr_minus_current"]["ci95"][0] > 0
    rows = {r["rule"]: r for r in report["rules_compared"]}
    assert sum(r["chosen"] for r in rows.values()) == 1
    today = rows["before issue 12: pairs, point estimate, validation only"]
    assert today["calibration_splits"] == ["validation"] and today["unit"] == "pair_fpr"
    for row in rows.values():
        assert "test" not in row["calibration_splits"] and "top5" in row["test"] and "pairs" in row["test"]
    paths = write_report(report, tmp_path / "out", "quality-sample")
    paths += plots(evaluation, "test", threshold, tmp_path / "out" / "quality-sample", "sample", t)
    md = (tmp_path / "out" / "quality-sample.md").read_text()
    assert "False-alarm rate per incident" in md and "| mrr |" in md and "(chosen)" in md
    assert "per incident" in md and "| hybrid | 5 |" in md
    data = json.loads((tmp_path / "out" / "quality-sample.json").read_text())
    assert data["threshold"]["test"]["fpr"] == pytest.approx(t["test"]["fpr"])
    assert data["threshold"]["test"]["false_alarm_rate"]["value"] == pytest.approx(
        t["test"]["false_alarm_rate"]["value"])
    for p in paths:
        assert p.stat().st_size > 500
    assert sum(p.suffix == ".png" for p in paths) == 4
    # the same index is reused by a second run (no re-encoding of the corpus)
    again, _, _ = run_quality(minilm_bundle, corpus, rule=rule, n_boot=100, index_dir=tmp_path / "index",
                              progress=False)
    assert again["threshold"]["value"] == pytest.approx(threshold)
