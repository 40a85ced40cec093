"""Metrics against hand-computed small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import at_threshold, bootstrap_ci, pr_auc, retrieval_metrics, roc_auc, spearman


def test_retrieval_metrics_hand_computed() -> None:
    # relevant at ranks 2 and 4 (1-based), 2 relevant in total
    m = retrieval_metrics([False, True, False, True, False], n_relevant=2)
    assert m["recall@1"] == 0.0 and m["recall@5"] == 1.0 and m["recall@10"] == 1.0
    assert m["mrr"] == pytest.approx(0.5)
    assert m["map"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx(dcg / idcg)
    # a relevant incident not retrieved at all still counts in recall's denominator
    assert retrieval_metrics([True, False], n_relevant=2)["recall@1"] == 0.5
    assert retrieval_metrics([False, False], n_relevant=1)["mrr"] == 0.0


def test_pair_metrics_hand_computed() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([True, False, True, False, False])
    # positive/negative pairs correctly ordered: (0.9 > all 3 neg) + (0.7 > 0.6, 0.5) = 5 of 6
    assert roc_auc(scores, labels) == pytest.approx(5 / 6)
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)  # ties count half
    assert pr_auc(scores, labels) == pytest.approx((1 / 1 + 2 / 3) / 2)
    t = at_threshold(scores, labels, 0.7)
    assert (t["tp"], t["fp"], t["fn"], t["tn"]) == (2, 1, 0, 2)
    assert t["precision"] == pytest.approx(2 / 3) and t["recall"] == 1.0 and t["fpr"] == pytest.approx(1 / 3)
    assert spearman(scores, labels) > 0
    assert spearman(-scores, labels) == pytest.approx(-spearman(scores, labels))


def test_bootstrap_ci_covers_the_statistic() -> None:
    values = np.random.default_rng(1).normal(3.0, 1.0, 400)
    lo, hi = bootstrap_ci(len(values), lambda idx: float(values[idx].mean()), n_boot=500)
    assert lo < values.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 / 20, rel=0.25)
