"""Field-aware dense text: each mode's vectors, the bundle's record of it, and served = evaluated in every mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import LiveServer
from indexing.bundle import Bundle, load_bundle
from indexing.dense_text import DENSE_TEXT_MODES, DenseText, MemoEncoder, summary_text
from indexing.encoder import OnnxEncoder
from indexing.errors import BundleError, IndexMismatchError
from indexing.incidents import Incident, incident_text
from indexing.indexer import check_index_matches
from indexing.store.edge import EdgeStore
from service.app import create_app
from service.engine import Engine
from service.settings import Settings
from training.calibrate import write_calibrated_bundle
from training.data.labels import from_incidents
from training.data.sample import generate_incidents
from training.evaluate import build_scorer, evaluate_corpus

SAMPLE = [Incident.model_validate(r) for r in generate_incidents(120, seed=31)]
LONG = ("VPN drops every few minutes",
        "Since the update the client log shows:\n" + "ERROR tunnel keepalive timeout at 0x7f3a\n" * 120)


def test_summary_is_the_short_description_or_the_full_text() -> None:
    assert summary_text("  VPN   down ", "long text") == "VPN down"
    assert summary_text("", "only a description") == "only a description"


def test_each_mode_combines_summary_and_full_text_vectors(encoder: OnnxEncoder) -> None:
    a, b = LONG, ("GlobalProtect tunnel keeps disconnecting", "Users lose the VPN every 5 minutes since Monday")
    summary = encoder.encode([a[0], b[0]]).vectors
    full = encoder.encode([incident_text(*a), incident_text(*b)]).vectors
    vectors = {mode: DenseText(mode).embed(encoder, [a, b]).vectors for mode in DENSE_TEXT_MODES}
    assert np.allclose(vectors["full"], full, atol=1e-6) and np.allclose(vectors["summary"], summary, atol=1e-6)
    for mode in DENSE_TEXT_MODES:
        assert np.allclose(np.linalg.norm(vectors[mode], axis=1), 1.0, atol=1e-5)  # stored vectors stay unit
    assert vectors["mean_cosine"].shape[1] == 2 * full.shape[1]
    # the mean_cosine vector's cosine is exactly the mean of the summary and the full-text cosines
    mean_of_cosines = (summary[0] @ summary[1] + full[0] @ full[1]) / 2
    assert vectors["mean_cosine"][0] @ vectors["mean_cosine"][1] == pytest.approx(mean_of_cosines, abs=1e-6)
    mean = (summary + full) / np.linalg.norm(summary + full, axis=1, keepdims=True)
    assert np.allclose(vectors["mean_vector"], mean, atol=1e-6)
    # the long description is cut at the model length, the summary is not drowned by it
    assert DenseText("full").embed(encoder, [a]).truncated == 1
    alone, _ = encoder.encode_one(a[0])
    assert np.allclose(DenseText("summary").embed_one(encoder, *a)[0], alone, atol=1e-6)
    assert not DenseText("summary").embed_one(encoder, *a)[1] and DenseText("full").embed_one(encoder, *a)[1]


def test_a_query_sent_as_free_text_is_its_own_summary(encoder: OnnxEncoder) -> None:
    text = "printer on floor 3 jams"
    vector, _ = DenseText("mean_vector").embed_one(encoder, None, None, text=text)
    alone, _ = encoder.encode_one(text)
    assert np.allclose(vector, alone, atol=1e-6)


def test_memo_encoder_returns_the_same_vectors_once(encoder: OnnxEncoder) -> None:
    calls = []

    class Counting:
        def encode(self, texts, batch_size=32):  # type: ignore[no-untyped-def]
            calls.append(tuple(texts))
            return encoder.encode(texts, batch_size)

        def encode_one(self, text):  # type: ignore[no-untyped-def]
            calls.append(text)
            return encoder.encode_one(text)

    memo = MemoEncoder(Counting())
    first = DenseText("mean_cosine").embed(memo, [LONG])
    again = DenseText("mean_vector").embed(memo, [LONG])  # the same two encoder calls: answered from memory
    summary = DenseText("summary").embed(memo, [LONG]).vectors[0]
    assert len(calls) == 2
    assert np.allclose(first.vectors[0][: first.vectors.shape[1] // 2] * np.sqrt(2), summary, atol=1e-6)
    assert again.vectors.shape == (1, encoder.dim)


def test_bundle_records_the_mode_in_its_identity(minilm_bundle: Bundle, tmp_path: Path) -> None:
    assert minilm_bundle.dense_text.mode == "full"  # bundles that name no mode read the full text
    ids = {mode: minilm_bundle.with_dense_text(mode).encoder_id for mode in DENSE_TEXT_MODES}
    assert ids["full"] == minilm_bundle.encoder_id and len(set(ids.values())) == len(DENSE_TEXT_MODES)
    assert minilm_bundle.with_dense_text("mean_cosine").dim == 2 * minilm_bundle.dim
    with pytest.raises(ValueError, match="unknown dense text mode"):
        minilm_bundle.with_dense_text("title_only")
    # an index built for one mode is refused by a bundle of another: its vectors mean something else
    store = EdgeStore(tmp_path / "index")
    try:
        from indexing.indexer import index_incidents

        encoder = OnnxEncoder(minilm_bundle.encoder_path, minilm_bundle.tokenizer_path, minilm_bundle.max_seq_length)
        meta = index_incidents(SAMPLE[:10], minilm_bundle, encoder, store, progress=False)
        with pytest.raises(IndexMismatchError):
            check_index_matches(meta, minilm_bundle.with_dense_text("summary"))
    finally:
        store.close()
    # a manifest naming an unknown mode is refused at load
    broken = tmp_path / "broken"
    shutil.copytree(minilm_bundle.path, broken)
    manifest = json.loads((broken / "bundle.json").read_text())
    manifest["dense_text"] = {"mode": "title_only"}
    (broken / "bundle.json").chmod(0o644)
    (broken / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unknown dense text mode"):
        load_bundle(broken)


@pytest.mark.parametrize("mode", ["summary", "mean_cosine"])
def test_served_score_equals_evaluated_score_in_each_mode(mode: str, minilm_bundle: Bundle, tmp_path: Path) -> None:
    threshold = {"value": 0.5, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
                 "confidence": 0.95, "calibrated_on": "test"}
    path = write_calibrated_bundle(minilm_bundle, tmp_path / "bundles", threshold, {"corpus": "test"},
                                   extra={"dense_text": {"mode": mode, "why": "test"}})
    bundle = load_bundle(path)
    assert bundle.dense_text.mode == mode
    corpus = from_incidents(SAMPLE, "sample")
    settings = Settings(data_dir=tmp_path / "data", bundle_path=path, dev_mode=True)
    scorer, encoder = build_scorer(bundle, corpus, settings.edge_index_dir, progress=False)
    evaluation = evaluate_corpus(corpus, scorer, encoder, progress=False, dense_text=bundle.dense_text)
    by_number = {i.number: i for i in corpus.incidents}
    row_of = {i.number: r for r, i in enumerate(corpus.incidents)}
    engine = Engine.from_settings(settings)
    compared = 0
    with LiveServer(create_app(settings, engine)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for q in evaluation.queries[:8]:
            inc = by_number[q.number]
            body = client.post("/similar", json={"short_description": inc.short_description,
                                                 "description": inc.description, "top_k": 50}).json()
            served = {r["number"]: r for r in body["results"]}
            vector, _ = bundle.dense_text.embed_one(encoder, inc.short_description, inc.description)
            offline = scorer.score(vector, inc.text())
            for candidate, _, pair_scores in q.pairs:
                if candidate in served:
                    assert served[candidate]["dense"] == pytest.approx(pair_scores["dense"], abs=1e-6)
                    assert served[candidate]["score"] == pytest.approx(pair_scores["hybrid"], abs=1e-6)
                    compared += 1
            for number, s in served.items():
                assert s["dense"] == pytest.approx(offline["dense"][row_of[number]], abs=1e-6)
                assert -1.0 <= s["dense"] <= 1.0
    engine.close()
    assert compared >= 15
