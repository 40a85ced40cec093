"""Calibration returns the known answer on synthetic score distributions and corpora; exact binomial bounds."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexing import lexical
from indexing.bundle import Bundle
from indexing.errors import InputDataError
from indexing.incidents import Incident
from training.calibrate import (
    UNIT_INCIDENT,
    ThresholdRule,
    calibration_negatives,
    calibration_splits,
    choose_threshold,
    threshold_for_fpr,
    threshold_for_rate,
)
from training.data.labels import LabelledCorpus, from_incidents
from training.evaluate import (
    Evaluation,
    OfflineScorer,
    evaluate_corpus,
    incident_rates,
    incident_summary,
    scorer_for_incidents,
)
from training.metrics import at_threshold, clopper_pearson_interval, clopper_pearson_upper


def test_known_answer_on_a_grid() -> None:
    negatives = np.arange(100) / 100.0  # 0.00 .. 0.99
    positives = np.array([0.95, 0.97, 0.5])
    scores = np.concatenate([negatives, positives])
    labels = np.concatenate([np.zeros(100, bool), np.ones(3, bool)])
    t = threshold_for_fpr(scores, labels, 0.05)
    # 5 negatives (0.95..0.99) may pass; 0.94 must not: the lowest such threshold is just above 0.94
    assert 0.94 < t <= 0.95
    m = at_threshold(scores, labels, t)
    assert m["fpr"] == pytest.approx(0.05) and m["recall"] == pytest.approx(2 / 3)
    assert at_threshold(scores, labels, np.nextafter(t, -np.inf))["fpr"] > 0.05  # any lower breaks the target


def test_separable_distributions_and_zero_target() -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(0.0, 0.4, 1000), rng.uniform(0.6, 1.0, 50)])
    labels = np.concatenate([np.zeros(1000, bool), np.ones(50, bool)])
    t = threshold_for_fpr(scores, labels, 0.0)
    assert at_threshold(scores, labels, t)["fpr"] == 0.0
    assert at_threshold(scores, labels, t)["recall"] == 1.0
    assert t == pytest.approx(scores[:1000].max(), abs=1e-9)


def test_ties_never_exceed_the_target() -> None:
    scores = np.array([0.5] * 10 + [0.9])
    labels = np.array([False] * 10 + [True])
    t = threshold_for_fpr(scores, labels, 0.05)
    assert at_threshold(scores, labels, t)["fpr"] == 0.0


def test_split_without_positives_or_negatives_is_refused() -> None:
    with pytest.raises(InputDataError, match="positive"):
        threshold_for_fpr(np.array([0.1, 0.2]), np.array([False, False]), 0.05)
    with pytest.raises(InputDataError, match="negative"):
        threshold_for_fpr(np.array([0.1, 0.2]), np.array([True, True]), 0.05)


# --- exact binomial bounds -------------------------------------------------------------------------------------

def test_clopper_pearson_against_known_values() -> None:
    # closed forms: x = 0 -> upper = 1 - (1 - c)^(1/n); x = n -> lower = (alpha/2)^(1/n)
    assert clopper_pearson_upper(0, 10, 0.95) == pytest.approx(1 - 0.05 ** (1 / 10), abs=1e-9)  # 0.2589
    assert clopper_pearson_upper(0, 59, 0.95) == pytest.approx(0.04951, abs=1e-5)  # "rule of three" territory
    assert clopper_pearson_upper(10, 10, 0.95) == 1.0
    assert clopper_pearson_interval(10, 10) == pytest.approx((0.025 ** (1 / 10), 1.0), abs=1e-9)
    # published two-sided 95 % intervals (Clopper & Pearson 1934 tables; Newcombe 1998, Table I)
    assert clopper_pearson_interval(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)
    assert clopper_pearson_interval(1, 20) == pytest.approx((0.0013, 0.2487), abs=1e-4)
    assert clopper_pearson_interval(0, 20) == pytest.approx((0.0, 0.1684), abs=1e-4)
    # a one-sided 95 % upper bound is the two-sided 90 % interval's upper end
    assert clopper_pearson_upper(3, 40, 0.95) == pytest.approx(clopper_pearson_interval(3, 40, 0.90)[1], abs=1e-12)
    assert clopper_pearson_upper(3, 40, 0.0) == pytest.approx(3 / 40)  # confidence 0 = the point estimate
    with pytest.raises(ValueError, match="point estimate"):
        clopper_pearson_upper(3, 40, 0.3)  # such a "bound" would lie under the estimate


def test_confidence_rule_meets_its_bound_and_point_rule_is_todays() -> None:
    negatives = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    point = threshold_for_rate(negatives, 0.05, 0.0)
    assert point.false_alarms == 50 and point.rate == pytest.approx(0.05) and point.bound_met
    labels = np.zeros(1000, bool)
    with_positive = np.r_[negatives, 1.0]
    assert point.value == threshold_for_fpr(with_positive, np.r_[labels, True], 0.05)  # today's rule unchanged
    bounded = threshold_for_rate(negatives, 0.05, 0.95)
    assert bounded.upper_bound <= 0.05 and bounded.value > point.value
    # the lowest such threshold: one more false alarm would break the bound
    assert clopper_pearson_upper(bounded.false_alarms + 1, 1000, 0.95) > 0.05
    assert 30 < bounded.false_alarms < 50


def test_too_little_data_cannot_meet_the_bound() -> None:
    negatives = np.linspace(0.1, 0.6, 20)  # 20 units: even 0 false alarms bound the rate at 0.139
    chosen = threshold_for_rate(negatives, 0.05, 0.95)
    assert not chosen.bound_met and chosen.false_alarms == 0 and chosen.value > negatives.max()
    assert threshold_for_rate(negatives, 0.05, 0.0).bound_met


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=300), st.floats(0.0, 0.4),
       st.one_of(st.just(0.0), st.floats(0.5, 0.999)))
def test_confidence_never_picks_a_lower_threshold(scores: list[float], target: float, confidence: float) -> None:
    negatives = np.array(scores)
    point = threshold_for_rate(negatives, target, 0.0)
    bounded = threshold_for_rate(negatives, target, confidence)
    assert bounded.value >= point.value
    assert bounded.false_alarms == int((negatives >= bounded.value).sum())
    if bounded.bound_met:
        assert bounded.upper_bound <= target + 1e-9


# --- the per-incident protocol on a corpus whose answer is known by construction ----------------------------------

DUPLICATE_OF = {10: 0, 15: 1, 20: 2, 25: 3, 30: 4, 35: 5}  # linked; 25 and 35 are written differently
NEAR_COPY_OF = {13: 6, 17: 7, 21: 8, 29: 9, 33: 11, 37: 12}  # not linked: unrelated incidents that look the same


def _synthetic() -> tuple[LabelledCorpus, OfflineScorer, dict[str, np.ndarray], dict[str, str]]:
    """40 incidents, one a day; the score is dense only. Every incident is its own basis vector (cosine 0
    between unrelated ones) except the designed ones, which mix an earlier incident's pure vector with their own:
    * six duplicates (DUPLICATE_OF, linked): four at cosine 0.8 to their original (found and flagged at 0.5),
      two at cosine 0.3 (ranked first but not flagged) -> hit rate 4/6;
    * six near-copies (NEAR_COPY_OF, not linked) at cosine 0.9 -> of the 24 later incidents without a
      duplicate, exactly 6 are false alarms (0.25), at any k."""
    dim = 64
    basis = np.eye(dim, dtype=np.float32)
    vectors: dict[str, np.ndarray] = {}
    rows = []
    kinds: dict[str, str] = {}

    def mix(original: int, own: int, cos: float) -> np.ndarray:
        v = cos * basis[original] + np.sqrt(1 - cos ** 2) * basis[own]
        return (v / np.linalg.norm(v)).astype(np.float32)

    for i in range(40):
        number = f"I{i:02d}"
        row: dict[str, object] = {"number": number, "short_description": f"incident {number}",
                                  "opened_at": f"2025-{1 + i // 28:02d}-{1 + i % 28:02d}T08:00:00+00:00"}
        if i in DUPLICATE_OF:
            row["duplicate_of"] = f"I{DUPLICATE_OF[i]:02d}"
            cos = 0.3 if i in (25, 35) else 0.8
            vectors[number] = mix(DUPLICATE_OF[i], i, cos)
            kinds[number] = "hit" if cos > 0.5 else "missed"
        elif i in NEAR_COPY_OF:
            vectors[number] = mix(NEAR_COPY_OF[i], i, 0.9)
            kinds[number] = "false_alarm"
        else:
            vectors[number] = basis[i]
            kinds[number] = "quiet"
        rows.append(row)
    corpus = from_incidents([Incident.model_validate(r) for r in rows], "synthetic")
    dense = np.stack([vectors[i.number] for i in corpus.incidents])
    scorer = scorer_for_incidents(corpus.incidents, dense, lexical.ANALYZER_NAME, 1.2, 0.75, "idf_upper_bound",
                                  dense_weight=1.0, bm25_weight=0.0)
    return corpus, scorer, vectors, kinds


def test_false_alarm_rate_known_by_construction() -> None:
    corpus, scorer, vectors, kinds = _synthetic()
    evaluation = evaluate_corpus(corpus, scorer, encoder=None, progress=False,  # type: ignore[arg-type]
                                 query_vectors=dict(vectors))
    later = [o for o in evaluation.incidents if int(o.number[1:]) >= 10]
    assert sum(kinds[o.number] == "false_alarm" for o in later) == 6
    for k in (5, 1):
        c = incident_rates(later, "hybrid", 0.5, k)
        assert (c["without_duplicate"], c["false_alarms"]) == (24, 6)
        assert (c["with_duplicate"], c["hits"]) == (6, 4)
        assert (c["flagged"], c["flagged_true"]) == (10, 4)  # 6 false alarms + 4 true duplicates, one each
    summary = incident_summary(later, 0.5, n_boot=100)
    top5 = summary["hybrid"]["top5"]
    assert top5["false_alarm_rate"]["value"] == pytest.approx(0.25)
    assert top5["false_alarm_rate"]["ci95"] == pytest.approx(clopper_pearson_interval(6, 24))
    assert top5["hit_rate"]["value"] == pytest.approx(4 / 6)
    assert top5["flag_precision"]["value"] == pytest.approx(0.4)
    # just above the near-copies' 0.9, nothing is flagged; just below the duplicates' 0.8, only false alarms
    assert incident_rates(later, "hybrid", 0.91, 5)["false_alarms"] == 0
    assert incident_rates(later, "hybrid", 0.85, 5) == {"without_duplicate": 24, "false_alarms": 6,
                                                         "with_duplicate": 6, "hits": 0, "flagged": 6,
                                                         "flagged_true": 0}
    # ranking metrics still use only the incidents with an earlier duplicate
    assert {q.number for q in evaluation.queries} == {o.number for o in later if o.has_duplicate}


def test_per_incident_calibration_on_the_synthetic_corpus() -> None:
    corpus, scorer, vectors, _ = _synthetic()
    evaluation = evaluate_corpus(corpus, scorer, encoder=None, progress=False,  # type: ignore[arg-type]
                                 query_vectors=dict(vectors))
    everything = tuple({o.split for o in evaluation.incidents})
    rule = ThresholdRule(UNIT_INCIDENT, 0.0, 0.0, tuple(s for s in everything if s != "test"))
    chosen = choose_threshold(evaluation, rule)
    negatives = calibration_negatives(evaluation, UNIT_INCIDENT, rule.splits)
    assert chosen.false_alarms == 0 and chosen.value > negatives.max()
    with pytest.raises(ValueError, match="never used to choose"):
        ThresholdRule(UNIT_INCIDENT, 0.05, 0.95, ("validation", "test"))


def _bundle_with(training: dict[str, object]) -> Bundle:
    return Bundle(Path("/nonexistent"), {"training": training, "threshold": {"source": "uncalibrated_default"}})


def test_train_split_is_used_only_for_bundles_that_never_saw_it() -> None:
    corpus, scorer, vectors, _ = _synthetic()
    evaluation = evaluate_corpus(corpus, scorer, encoder=None, progress=False,  # type: ignore[arg-type]
                                 query_vectors=dict(vectors))
    baseline = _bundle_with({"kind": "baseline", "fine_tuned": False})
    finetuned = _bundle_with({"kind": "lora", "fine_tuned": True, "data": {"corpus": "other"}})
    assert calibration_splits(baseline)[0] == ("train", "validation")
    assert calibration_splits(finetuned)[0] == ("validation",)
    assert calibration_splits(_bundle_with({"kind": "full"}))[0] == ("validation",)  # unknown: assume it saw it

    def chosen_for(bundle: Bundle, ev: Evaluation) -> float:
        return choose_threshold(ev, ThresholdRule(UNIT_INCIDENT, 0.2, 0.0, calibration_splits(bundle)[0])).value

    # make every train-split incident a loud false alarm: only the baseline's threshold may move
    loud = copy.deepcopy(evaluation)
    for o in loud.incidents:
        if o.split == "train" and not o.has_duplicate:
            o.top["hybrid"][0] = (0.99, False)
    assert chosen_for(finetuned, loud) == chosen_for(finetuned, evaluation)
    assert chosen_for(baseline, loud) > chosen_for(baseline, evaluation)
