"""The threshold rules the replay compares (benchmarks/replay.py streams the answers they are applied to), and
what each one reaches on the later period. The rules are the service's own objects: the live recalibration
(service.flag.recalibrate.live_threshold) and the online rule (service.flag.online.AdaptiveThreshold)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.flag.answers import AnswerRecord
from service.flag.online import AdaptiveThreshold
from service.flag.recalibrate import live_threshold
from service.flag.stats import clopper_pearson
from training.calibrate import threshold_for_rate

MODEL = "replay"  # the model version the replayed answers are logged under


@dataclass(frozen=True)
class ReplayAnswer:
    """One incident asked as new, in time order: what the engine answered and what the labels say."""

    position: int
    number: str
    split: str
    best: float | None
    suggested: tuple[tuple[str, float], ...]  # top 10 (number, score), best first
    duplicates: frozenset[str]  # linked incidents opened before it (empty: duplicate-free)
    best_all: float | None = None  # calibration period only: best among all other incidents except its links

    @property
    def has_duplicate(self) -> bool:
        return bool(self.duplicates)


@dataclass
class RuleRun:
    name: str
    thresholds: list[float] = field(default_factory=list)  # the threshold each later-period answer was given with


def static_thresholds(answers: Sequence[ReplayAnswer], target: float, confidence: float) -> dict[str, float]:
    """The offline rule on the calibration period's duplicate-free incidents, for each pool."""
    calibration = [a for a in answers if a.split != "test" and not a.has_duplicate]
    earlier = np.asarray([a.best for a in calibration if a.best is not None])
    every = np.asarray([a.best_all for a in calibration if a.best_all is not None])
    return {"all": threshold_for_rate(every, target, confidence).value,
            "earlier": threshold_for_rate(earlier, target, confidence).value}


def record(answer: ReplayAnswer, threshold: float) -> AnswerRecord:
    return AnswerRecord(at=float(answer.position), number=answer.number, best=answer.best,
                        flagged=answer.best is not None and answer.best >= threshold, threshold=threshold,
                        model_version=MODEL, threshold_source="calibrated", suggested=answer.suggested)


def run_static(later: Sequence[ReplayAnswer], threshold: float, name: str) -> RuleRun:
    return RuleRun(name, [threshold] * len(later))


def run_windowed(later: Sequence[ReplayAnswer], start: float, target: float, confidence: float, every: int,
                 window: int, min_answers: int, delay: int) -> tuple[RuleRun, int]:
    """The live recalibration every `every` answers on the last `window` logged answers; returns the run and
    how many recalibrations changed the threshold."""
    run, threshold, log, changes = RuleRun("windowed"), start, [], 0
    for i, answer in enumerate(later):
        if i and i % every == 0 and len(log) >= min_answers:
            confirmed = {a.number: set(a.duplicates) for a in later[:max(0, i - delay)] if a.has_duplicate}
            units = log[-window:]
            proposal = live_threshold(units, confirmed, target, confidence, threshold, (MODEL,))
            changes += int(proposal.threshold != threshold)
            threshold = proposal.threshold
        run.thresholds.append(threshold)
        if answer.best is not None:
            log.append(record(answer, threshold))
    return run, changes


def run_online(later: Sequence[ReplayAnswer], start: float, target: float, gamma: float, window: int) -> RuleRun:
    rule, run = AdaptiveThreshold(target, start, gamma=gamma, window=window), RuleRun("online (aci)")
    for answer in later:
        run.thresholds.append(rule.threshold)
        if answer.best is not None:
            rule.update(answer.best)
    return run


def run_online_after_feedback(later: Sequence[ReplayAnswer], start: float, target: float, gamma: float, window: int,
                              delay: int) -> RuleRun:
    """The online rule fed `delay` answers late, when the feedback is in: an answer confirmed a duplicate by then
    does not count as a negative (every linked duplicate is confirmed in this replay)."""
    rule, run = AdaptiveThreshold(target, start, gamma=gamma, window=window), RuleRun("online (aci, after feedback)")
    for i in range(len(later)):
        run.thresholds.append(rule.threshold)
        if i >= delay and (due := later[i - delay]).best is not None:
            rule.update(due.best, negative=not due.has_duplicate)
    return run


def rate(successes: int, trials: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(successes, trials)
    return {"value": successes / trials if trials else None, "count": successes, "of": trials,
            "ci95": [round(lo, 4), round(hi, 4)]}


def flagged(answer: ReplayAnswer, threshold: float) -> bool:
    return answer.best is not None and answer.best >= threshold


def promised_share(calibration: Sequence[ReplayAnswer], threshold: float, target: float) -> float:
    """What the calibration promises about the flagged share (as service.flag.watch.Promise): the target plus
    the share with an earlier duplicate times the upper bound of their hit rate at the threshold."""
    dup = [a for a in calibration if a.has_duplicate]
    hits = sum(any(n in a.duplicates and s >= threshold for n, s in a.suggested) for a in dup)
    return target + (len(dup) / len(calibration)) * clopper_pearson(hits, len(dup))[1] if calibration else target


def summarise(run: RuleRun, later: Sequence[ReplayAnswer], target: float, promise: float,
              alert_window: int) -> dict[str, Any]:
    negatives = [(a, t) for a, t in zip(later, run.thresholds, strict=True) if not a.has_duplicate]
    duplicates = [(a, t) for a, t in zip(later, run.thresholds, strict=True) if a.has_duplicate]
    marked = [(n in a.duplicates) for a, t in zip(later, run.thresholds, strict=True)
              for n, s in a.suggested if s >= t]
    flags = [flagged(a, t) for a, t in zip(later, run.thresholds, strict=True)]
    detect = next((i + 1 for i in range(alert_window - 1, len(later))
                   if clopper_pearson(sum(flags[i + 1 - alert_window:i + 1]), alert_window)[0] > promise), None)
    fa = [flagged(a, t) for a, t in negatives]
    counts = [sum(fa[i + 1 - alert_window:i + 1]) for i in range(alert_window - 1, len(fa))]
    rolling = [c / alert_window for c in counts]
    drift = next((k for k, c in enumerate(counts) if clopper_pearson(c, alert_window)[0] > target), None)
    back = None if drift is None else next((k - drift for k in range(drift, len(rolling)) if rolling[k] <= target),
                                           None)
    blocks = [round(float(np.mean(fa[b:b + alert_window])), 3) for b in range(0, len(fa), alert_window)]
    return {
        "rule": run.name,
        "false_alarm_rate": rate(sum(fa), len(fa)),
        "hit_rate": rate(sum(any(n in a.duplicates and s >= t for n, s in a.suggested) for a, t in duplicates),
                         len(duplicates)),
        "flag_precision": rate(sum(marked), len(marked)),
        "flagged_share": rate(sum(flags), len(flags)),
        "threshold": {"first": run.thresholds[0], "last": run.thresholds[-1], "min": min(run.thresholds),
                      "max": max(run.thresholds)},
        "answers_to_alert": detect,
        # in hindsight, from the labels: the first duplicate-free answer (counted from the start of the later
        # period) at which the last `alert_window` of them held more false alarms than the target (the lower
        # 95 % bound above it), and how many more it took for their share to be back at it (None: never back)
        "drift_at_negative": None if drift is None else drift + alert_window,
        "negatives_to_correct": back,
        "false_alarm_share_by_block": blocks,
    }
