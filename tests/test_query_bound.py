"""The bound on a query's distinct BM25 terms (bm25.max_query_terms in the bundle): the first N distinct terms
in text order count, it is refused when malformed, and the service and the evaluation apply it alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from indexing import lexical
from indexing.bundle import Bundle, load_bundle
from indexing.errors import BundleError
from indexing.incidents import Incident
from indexing.scoring import DEFAULT_MAX_QUERY_TERMS, ScoringConfig
from service.engine import Engine, SimilarQuery
from service.settings import Settings
from training.calibrate import write_calibrated_bundle
from training.data.labels import from_incidents
from training.data.sample import generate_incidents
from training.evaluate import build_scorer


def test_the_first_distinct_terms_in_text_order_count() -> None:
    params = lexical.BM25Params(1.2, 0.75, 10.0)
    bounded = lexical.BM25Encoder(lexical.Analyzer(), params, max_query_terms=3)
    free = lexical.BM25Encoder(lexical.Analyzer(), params)
    text = "vpn vpn certificate expired gateway vpn laptop printer"
    kept = bounded.query(text).as_dict()
    ids = {w: lexical.term_id(w) for w in ("vpn", "certificate", "expired", "gateway")}
    assert kept == {ids["vpn"]: 3.0, ids["certificate"]: 1.0, ids["expired"]: 1.0}  # counts kept whole
    assert len(free.query(text).indices) == 6
    with pytest.raises(ValueError):
        lexical.BM25Encoder(lexical.Analyzer(), params, max_query_terms=0)


@pytest.mark.parametrize("value", [0, -3, "64", 2.5, True])
def test_a_malformed_bound_is_refused_at_load(value: object, minilm_bundle: Bundle, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(minilm_bundle.path, broken)
    manifest = json.loads((broken / "bundle.json").read_text())
    manifest["bm25"]["max_query_terms"] = value
    (broken / "bundle.json").chmod(0o644)
    (broken / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="max_query_terms"):
        load_bundle(broken)


def test_new_bundles_carry_the_default_bound(minilm_bundle: Bundle) -> None:
    assert minilm_bundle.max_query_terms == DEFAULT_MAX_QUERY_TERMS


def test_served_and_evaluated_queries_are_bounded_alike(minilm_bundle: Bundle, tmp_path: Path) -> None:
    threshold = {"value": 0.5, "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05,
                 "confidence": 0.95, "calibrated_on": "test"}
    path = write_calibrated_bundle(minilm_bundle, tmp_path / "bundles", threshold, {"corpus": "test"},
                                   extra={"bm25": {**minilm_bundle.bm25, "max_query_terms": 4}})
    bundle = load_bundle(path)
    assert bundle.max_query_terms == 4
    corpus = from_incidents([Incident.model_validate(r) for r in generate_incidents(150, seed=5)], "sample")
    settings = Settings(data_dir=tmp_path / "data", bundle_path=path, dev_mode=True)
    scorer, encoder = build_scorer(bundle, corpus, settings.edge_index_dir, progress=False)
    assert scorer.bm25.max_query_terms == 4
    engine = Engine.from_settings(settings)
    row_of = {i.number: r for r, i in enumerate(corpus.incidents)}
    long_queries = [i for i in corpus.incidents if len(set(lexical.Analyzer().tokens(i.text()))) > 8][:6]
    assert long_queries
    bound_changed_something = False
    for incident in long_queries:
        text = incident.text()
        answer = engine.similar(SimilarQuery(text=text, top_k=20))
        offline = scorer.score(engine.encoder.encode_one(text)[0], text)
        for result in answer.results:
            row = row_of[result.payload["number"]]
            assert result.bm25 == pytest.approx(offline["bm25"][row], abs=1e-6)
            assert result.score == pytest.approx(offline["hybrid"][row], abs=1e-6)
        free = lexical.BM25Encoder(scorer.bm25.analyzer, scorer.bm25.params)
        bound_changed_something |= free.query(text).indices != scorer.bm25.query(text).indices
    assert bound_changed_something
    engine.close()


def test_the_scoring_config_is_parsed_once_with_the_legacy_defaults(minilm_bundle: Bundle) -> None:
    scoring = minilm_bundle.scoring
    assert scoring == ScoringConfig(analyzer=minilm_bundle.bm25["analyzer"], dense_weight=0.7, bm25_weight=0.3,
                                    k1=1.2, b=0.75, normalization="query_self_score", max_query_terms=256)
    legacy = {"hybrid": {"dense_weight": 0.6, "bm25_weight": 0.4}, "bm25": {"k1": 1.0, "b": 0.5, "analyzer": "x"}}
    old = ScoringConfig.from_manifest(legacy)  # a bundle written before normalization and the bound existed
    assert old.normalization == "idf_upper_bound" and old.max_query_terms is None and old.dense_weight == 0.6
