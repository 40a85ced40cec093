"""Calibration returns the known answer on synthetic score distributions."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.errors import InputDataError
from training.calibrate import threshold_for_fpr
from training.metrics import at_threshold


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
