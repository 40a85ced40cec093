"""The block-scored calibration gives the per-query path's reports; each text is encoded once per run; the
calibration pool ("earlier" vs "all")."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from benchmarks.calibrate import WordHashEncoder, evaluate_per_query
from indexing import lexical
from indexing.dense_text import DenseText, TextEncoder
from indexing.incidents import Incident
from training.calibrate import UNIT_INCIDENT, UNIT_PAIR, ThresholdRule, choose_threshold
from training.data.labels import LabelledCorpus, from_incidents
from training.evaluate import (
    Evaluation,
    OfflineScorer,
    QueryPathEncoder,
    evaluate_corpus,
    incident_summary,
    scorer_for_incidents,
    summarise,
)
from training.pools import compare_pools, false_alarms
from training.quality import DEFAULT_SEAMONKEY, load_labelled


def _scorer(corpus: LabelledCorpus, encoder: TextEncoder, mode: str, normalization: str) -> OfflineScorer:
    dense = DenseText(mode).embed(encoder, [(i.short_description, i.description) for i in corpus.incidents]).vectors
    return scorer_for_incidents(corpus.incidents, dense, lexical.ANALYZER_NAME, 1.2, 0.75, normalization,
                                dense_weight=0.7, bm25_weight=0.3)


def _report(evaluation: Evaluation) -> dict[str, Any]:
    """What calibrate derives from an evaluation: thresholds by every rule, per-incident and pair summaries."""
    out: dict[str, Any] = {}
    for unit in (UNIT_INCIDENT, UNIT_PAIR):
        for confidence in (0.0, 0.95):
            for splits in (("train", "validation"), ("validation",)):
                out[f"{unit}-{confidence}-{'+'.join(splits)}"] = asdict(
                    choose_threshold(evaluation, ThresholdRule(unit, 0.05, confidence, splits)))
    threshold = out[f"{UNIT_INCIDENT}-0.95-train+validation"]["value"]
    for split in ("train", "validation", "test"):
        out[f"per_incident-{split}"] = incident_summary(evaluation.incident_split(split), threshold, n_boot=50)
        out[f"summary-{split}"] = summarise(evaluation.split(split), threshold, n_boot=50)
    return out


def _assert_same(new: Any, old: Any, path: str = "") -> None:
    if isinstance(old, dict):
        assert set(new) == set(old), path
        for key in old:
            _assert_same(new[key], old[key], f"{path}.{key}")
    elif isinstance(old, list | tuple):
        assert len(new) == len(old), path
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            _assert_same(a, b, f"{path}[{i}]")
    elif isinstance(old, float):  # the sums run in another order: float32 dot products agree to ~1e-7
        assert new == pytest.approx(old, abs=1e-6, nan_ok=True), path
    else:
        assert new == old, path


ON_SEAMONKEY = pytest.mark.skipif(not DEFAULT_SEAMONKEY.is_dir(), reason="../shared/data/seamonkey not present")


@pytest.mark.parametrize(("corpus_name", "mode", "normalization"), [
    pytest.param("seamonkey", "full", "idf_upper_bound", marks=ON_SEAMONKEY),
    pytest.param("seamonkey", "mean_cosine", "query_self_score", marks=ON_SEAMONKEY),
    ("sample", "full", "idf_upper_bound")])  # the sample always exists: the comparison runs on every checkout
def test_block_scoring_gives_the_per_query_reports(corpus_name: str, mode: str, normalization: str) -> None:
    corpus = load_labelled(corpus_name) if corpus_name == "seamonkey" else load_labelled("sample", n=400)
    old_encoder = WordHashEncoder()
    old = evaluate_per_query(corpus, _scorer(corpus, old_encoder, mode, normalization), old_encoder, DenseText(mode))
    encoder = QueryPathEncoder(WordHashEncoder())
    new = evaluate_corpus(corpus, _scorer(corpus, encoder, mode, normalization), encoder, progress=False,
                          dense_text=DenseText(mode), block=97)  # a block size that does not divide the corpus
    assert [o.number for o in new.incidents] == [o.number for o in old.incidents]
    for a, b in zip(new.incidents, old.incidents, strict=True):
        assert (a.split, a.has_duplicate) == (b.split, b.has_duplicate)
        _assert_same(a.top, b.top, a.number)
    assert [(q.number, q.split) for q in new.queries] == [(q.number, q.split) for q in old.queries]
    for a, b in zip(new.queries, old.queries, strict=True):
        _assert_same(a.metrics, b.metrics, a.number)
        _assert_same(a.pairs, b.pairs, a.number)
    _assert_same(_report(new), _report(old))
    # each text once: the index's vectors and every query's vector come from the same encode
    texts = {i.text() for i in corpus.incidents} if mode == "full" else None
    if texts is not None:
        assert encoder.encoded == len(texts)
    assert old_encoder.calls > encoder.encoded


def test_a_changed_scorer_fails_the_comparison() -> None:
    """The comparison can fail: a scorer that drops one candidate's BM25 gives other reports."""
    corpus = load_labelled("sample", n=300)
    encoder = QueryPathEncoder(WordHashEncoder())
    scorer = _scorer(corpus, encoder, "full", "idf_upper_bound")
    old = evaluate_per_query(corpus, scorer, encoder, DenseText())
    broken = scorer.with_dense(scorer.dense[::-1].copy())
    new = evaluate_corpus(corpus, broken, encoder, progress=False)
    with pytest.raises(AssertionError):
        _assert_same(_report(new), _report(old))


def _growing_pool_corpus(n: int = 900, dim: int = 6, seed: int = 5) -> tuple[LabelledCorpus, OfflineScorer]:
    """Unrelated incidents are independent random directions, so the best cosine of an incident grows with the
    number it is compared with: by construction, the later the incident (and the larger the pool), the more
    false alarms a fixed threshold raises. Every 30th incident duplicates the one 10 before it."""
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    vectors = rng.standard_normal((n, dim))
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {"number": f"G{i:04d}", "short_description": f"incident {i}",
                                  "opened_at": (start + timedelta(hours=i)).isoformat()}
        if i % 30 == 29:
            row["duplicate_of"] = f"G{i - 10:04d}"
            vectors[i] = vectors[i - 10] + 0.05 * rng.standard_normal(dim)
        rows.append(row)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    corpus = from_incidents([Incident.model_validate(r) for r in rows], "growing-pool")
    scorer = scorer_for_incidents(corpus.incidents, vectors.astype(np.float32), lexical.ANALYZER_NAME, 1.2, 0.75,
                                  "idf_upper_bound", dense_weight=1.0, bm25_weight=0.0)
    return corpus, scorer


def test_pool_all_holds_the_target_where_pool_earlier_overshoots() -> None:
    corpus, scorer = _growing_pool_corpus()
    vectors = {i.number: scorer.dense[p] for p, i in enumerate(corpus.incidents)}
    evaluation = evaluate_corpus(corpus, scorer, encoder=None, progress=False,  # type: ignore[arg-type]
                                 query_vectors=vectors)
    free = [o for o in evaluation.incidents if not o.has_duplicate]
    assert all(o.pool_all == len(corpus.incidents) - 1 - sum(1 for _ in corpus.linked().get(o.number, ()))
               for o in free)
    assert all(o.best_all["hybrid"] >= o.top["hybrid"][0][0] for o in free)  # more candidates, never lower
    target = 0.1
    rule = ThresholdRule(UNIT_INCIDENT, target, 0.95, ("train", "validation"))
    test = evaluation.incident_split("test")
    earlier = choose_threshold(evaluation, rule)
    everything = choose_threshold(evaluation, ThresholdRule(UNIT_INCIDENT, target, 0.95, ("train", "validation"),
                                                            pool="all"))
    assert everything.value > earlier.value
    # what the service meets: a test incident searched among everything the index holds
    assert false_alarms(test, earlier.value, "all")["value"] > target
    assert false_alarms(test, everything.value, "all")["value"] <= target
    report = compare_pools(evaluation, rule)
    rows = {r["pool"]: r for r in report["rows"]}
    assert rows["all"]["threshold"] == everything.value and rows["earlier"]["threshold"] == earlier.value
    sizes = report["by_pool_size"]["calibration"]
    assert sizes[-1]["pool"] == "all" and sizes[0]["compared_with"][1] < sizes[-2]["compared_with"][0]
    # by construction, false alarms at the earlier pool's threshold rise with pool size
    rates = [row["false_alarm_at_earlier_threshold"]["value"] for row in sizes[:-1]]
    assert rates[0] < rates[-1]
    with pytest.raises(ValueError, match="pool"):
        ThresholdRule(UNIT_INCIDENT, target, 0.95, ("train",), pool="later")
    from training.pools import pools_markdown

    md = "\n".join(pools_markdown({"pools": report}))
    assert "| all |" in md and "(all others)" in md
