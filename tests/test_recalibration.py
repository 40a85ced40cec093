"""Live recalibration from the answer log (service/flag/recalibrate.py) and the online rule (service/flag/online.py):
no store, no model. The live rule is the offline one (training.calibrate.threshold_for_rate) on answers where every
one without a confirmed duplicate is a negative."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.errors import InputDataError
from service.flag.answers import AnswerRecord
from service.flag.online import AdaptiveThreshold
from service.flag.recalibrate import calibration_units, live_threshold
from training.calibrate import threshold_for_rate


def answer(number: str | None, best: float, model: str = "m1", suggested: tuple = (), at: float = 0.0) -> AnswerRecord:
    return AnswerRecord(at=at, number=number, best=best, flagged=best >= 0.7, threshold=0.7, model_version=model,
                        threshold_source="calibrated", suggested=suggested or ((f"S{number}", best),))


@pytest.mark.parametrize("seed", range(40))
def test_live_threshold_never_below_the_point_estimate_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(60, 3000))
    scores = rng.beta(rng.uniform(1, 8), rng.uniform(1, 8), n)
    scores[rng.random(n) < 0.1] = rng.choice(scores, 1)[0]  # ties
    units = [answer(f"INC{i}", float(s)) for i, s in enumerate(scores)]
    dup = rng.random(n) < rng.uniform(0, 0.2)
    confirmed = {f"INC{i}": {f"SINC{i}"} for i in np.flatnonzero(dup)}
    target = float(rng.choice([0.01, 0.05, 0.1]))
    confidence = float(rng.choice([0.5, 0.9, 0.95, 0.99]))
    if dup.all():
        pytest.skip("no negatives drawn")
    got = live_threshold(units, confirmed, target, confidence, current=0.7)
    negatives = scores[~dup]
    point = threshold_for_rate(negatives, target, 0.0).value
    assert got.point_estimate == point
    assert got.threshold >= point  # the required property
    assert got.threshold == threshold_for_rate(negatives, target, confidence).value  # the offline rule itself
    assert got.negatives == int((~dup).sum()) and got.hits == int(dup.sum())
    assert got.upper_bound <= target + 1e-12 or not got.bound_met


def test_unconfirmed_answers_are_negatives_and_only_raise_the_threshold() -> None:
    rng = np.random.default_rng(7)
    scores = rng.uniform(0.3, 0.9, 1000)
    units = [answer(f"INC{i}", float(s)) for i, s in enumerate(scores)]
    high = [i for i in np.argsort(scores)[::-1][:30]]  # true duplicates, most of them unlabelled
    labelled = {f"INC{i}": {f"SINC{i}"} for i in high[:10]}
    all_labelled = {f"INC{i}": {f"SINC{i}"} for i in high}
    conservative = live_threshold(units, labelled, 0.05, 0.95, 0.7)
    informed = live_threshold(units, all_labelled, 0.05, 0.95, 0.7)
    assert conservative.threshold >= informed.threshold
    assert conservative.hits == 10 and conservative.hits_caught <= 10


def test_units_one_per_incident_of_the_serving_scores() -> None:
    records = [answer("INC1", 0.2, at=1), answer("INC1", 0.9, at=2), answer("INC2", 0.5, model="other"),
               answer(None, 0.4), answer(None, 0.3), AnswerRecord(3, "INC3", None, False, 0.7, "m1", "calibrated")]
    units = calibration_units(records, {"m1"})
    assert sorted(u.best for u in units) == [0.3, 0.4, 0.9]  # INC1's latest, both unnamed, no other model, no empty


def test_no_negatives_is_refused() -> None:
    with pytest.raises(InputDataError):
        live_threshold([answer("INC1", 0.9)], {"INC1": {"SINC1"}}, 0.05, 0.95, 0.7)


def drifting_stream(rng: np.random.Generator, n: int) -> np.ndarray:
    """Negative best scores whose location drifts up by 0.25 over the stream, with a jump at 60 %."""
    t = np.arange(n) / n
    drift = 0.25 * t + 0.08 * (t > 0.6)
    return np.clip(rng.normal(0.5 + drift, 0.08), 0, 1)


@pytest.mark.parametrize("target", [0.05, 0.1])
def test_online_rule_tracks_the_target_under_drift(target: float) -> None:
    rng = np.random.default_rng(3)
    stream = drifting_stream(rng, 20_000)
    static = float(np.quantile(stream[:2000], 1 - target))  # calibrated on the first 10 %, then frozen
    rule = AdaptiveThreshold(target, start=static, gamma=0.01, window=500, warmup=50)
    flagged = []
    for score in stream:
        flagged.append(score >= rule.threshold)
        rule.update(float(score))
    flagged_arr = np.asarray(flagged)
    state = rule.state()
    assert state.steps == len(stream) and state.errors == int(flagged_arr.sum())
    # Gibbs & Candes: |long-run error share - target| <= (max(alpha_1, 1 - alpha_1) + gamma) / (gamma T)
    bound = (max(target, 1 - target) + 0.01) / (0.01 * len(stream))
    assert abs(flagged_arr.mean() - target) <= bound + 1e-9
    assert abs(flagged_arr[-5000:].mean() - target) < 0.02  # and it holds late in the drift too
    assert (stream[-5000:] >= static).mean() > 5 * target  # where the frozen threshold breaks


def test_online_rule_is_quiet_on_a_stable_stream_and_ignores_hits() -> None:
    rng = np.random.default_rng(5)
    rule = AdaptiveThreshold(0.05, start=0.8, gamma=0.005, window=1000)
    for score in rng.normal(0.5, 0.1, 10_000):
        rule.update(float(score))
    before = rule.state()
    assert abs(before.errors / before.steps - 0.05) < 0.01
    assert rule.update(0.99, negative=False) == before.threshold and rule.state().steps == before.steps
