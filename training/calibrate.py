"""Pick the decision threshold for a target false-alarm rate (per incident, or per pair), and write it into a
new bundle version."""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexing.atomic import publish_directory
from indexing.bundle import MANIFEST, THRESHOLD_UNITS, Bundle, load_bundle
from indexing.errors import InputDataError
from training.metrics import clopper_pearson_upper
from training.protocol import POOLS

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from training.evaluate import Evaluation

UNIT_INCIDENT = THRESHOLD_UNITS[0]  # share of incidents without an earlier duplicate flagged similar
UNIT_PAIR = THRESHOLD_UNITS[1]  # share of negative (query, candidate) pairs scoring at or above the threshold
UNITS = {UNIT_INCIDENT: "false-alarm rate per incident (incidents with no earlier duplicate that get a result "
                        "marked similar)",
         UNIT_PAIR: "false-positive rate over pairs (negative query-candidate pairs scoring at or above it)"}
DEFAULT_TARGET_FALSE_ALARM = 0.05
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class RateThreshold:
    """A threshold chosen for a rate: `false_alarms` of `trials` calibration units score at or above it."""

    value: float
    trials: int  # calibration units that could raise a false alarm (negative pairs, or incidents without a duplicate)
    false_alarms: int  # of them at or above the threshold
    rate: float  # false_alarms / trials (the point estimate)
    upper_bound: float  # one-sided Clopper-Pearson bound at `confidence` (= rate when confidence is 0)
    confidence: float
    bound_met: bool  # False: even a threshold above every calibration score cannot show the target


def threshold_for_rate(negative_scores: np.ndarray, target: float, confidence: float = 0.0) -> RateThreshold:
    """The lowest threshold t whose false-alarm count x(t) = #{negative scores >= t} keeps the rate under
    `target`: with `confidence` 0, x/n <= target (the point estimate); otherwise the one-sided exact binomial
    (Clopper-Pearson) upper bound of the rate at `confidence` must be <= target, so the target holds on later
    data of the same kind with that confidence. A higher confidence never gives a lower threshold.

    When even x = 0 cannot meet the bound (too few units: n >= ln(1 - confidence) / ln(1 - target) is
    needed), the threshold sits just above the highest calibration score and `bound_met` is False."""
    if not 0.0 <= target < 1.0:
        raise ValueError("the target rate must be in [0, 1)")
    negatives = np.sort(np.asarray(negative_scores, dtype=float))[::-1]
    n = int(negatives.size)
    if n == 0:
        raise InputDataError("calibration needs units that could raise a false alarm; the calibration data has none")
    counts = np.arange(n + 1)
    bounds = np.asarray(clopper_pearson_upper(counts, n, confidence))
    ok = np.flatnonzero(bounds <= target + 1e-12)  # the bound grows with x: ok is a prefix 0..allowed
    bound_met = ok.size > 0
    allowed = int(ok[-1]) if bound_met else 0  # false alarms we may let through
    if allowed >= n:
        value = float(negatives[-1])
    else:  # every negative strictly above negatives[allowed] may pass; negatives[allowed] itself must not
        value = float(np.nextafter(negatives[allowed], np.inf))
    reached = int((negatives >= value).sum())  # ties can make it fewer than allowed
    return RateThreshold(value, n, reached, reached / n, float(clopper_pearson_upper(reached, n, confidence)),
                         confidence, bound_met)


def threshold_for_fpr(scores: np.ndarray, labels: np.ndarray, target_fpr: float, confidence: float = 0.0) -> float:
    """The lowest threshold t with FPR(t) = #{negatives with score >= t} / #negatives <= target_fpr
    (pairs; with `confidence`, its Clopper-Pearson upper bound)."""
    if not 0.0 <= target_fpr < 1.0:
        raise ValueError("target_fpr must be in [0, 1)")
    if (~labels).sum() == 0:
        raise InputDataError("calibration needs negative pairs; the split has none")
    if labels.sum() == 0:
        raise InputDataError("calibration needs positive pairs; the split has none")
    return threshold_for_rate(scores[~labels], target_fpr, confidence).value


@dataclass(frozen=True)
class ThresholdRule:
    """What a threshold is chosen for: a rate (`unit`) to keep under `target`, shown with `confidence`
    (0: the point estimate) on the calibration `splits` of the time-ordered protocol."""

    unit: str
    target: float
    confidence: float
    splits: tuple[str, ...]
    pool: str = "earlier"  # per incident: best score among the incidents opened before it, or among all others

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown threshold unit {self.unit!r}: use one of {sorted(UNITS)}")
        if self.pool not in POOLS:
            raise ValueError(f"unknown calibration pool {self.pool!r}: use one of {', '.join(POOLS)}")
        if "test" in self.splits:
            raise ValueError("the test split is never used to choose a threshold")

    def describe(self) -> str:
        how = (f"one-sided {self.confidence:.0%} Clopper-Pearson upper bound" if self.confidence
               else "point estimate")
        pool = f", pool {self.pool}" if self.unit == UNIT_INCIDENT else ""
        return f"{UNITS[self.unit]} <= {self.target} ({how}{pool}) on {' + '.join(self.splits)}"


def saw_train_split(bundle: Bundle) -> bool:
    """Whether the bundle's encoder was trained on labelled incidents (then the train split is not held out
    for it). Only a bundle whose manifest says it was not fine-tuned (the baseline) counts as unseen: a
    fine-tuned bundle is assumed to have seen the train split, whatever corpus it names."""
    training = bundle.manifest.get("training") or {}
    return not (training.get("kind") == "baseline" or training.get("fine_tuned") is False)


def calibration_splits(bundle: Bundle) -> tuple[tuple[str, ...], str]:
    """The splits a threshold for `bundle` may be chosen on, and why."""
    if saw_train_split(bundle):
        return ("validation",), ("validation only: the bundle was fine-tuned on labelled incidents, so the train "
                                 "split is not held out for it")
    return ("train", "validation"), ("train + validation: the bundle never saw these incidents (not fine-tuned), "
                                     "so both splits are held out for it and more data tightens the bound")


def calibration_negatives(evaluation: Evaluation, unit: str, splits: tuple[str, ...],
                          method: str = "hybrid", pool: str = "earlier") -> np.ndarray:
    """Scores that raise a false alarm when at or above the threshold: each duplicate-free incident's best
    score (per incident; `pool` "earlier": among the incidents opened before it, "all": among every other
    incident except those linked to it), or every negative pair's score (pairs)."""
    from training.summaries import pair_arrays, top_scores

    if unit == UNIT_INCIDENT:
        scores = top_scores(evaluation.incident_split(*splits), method, duplicate=False, pool=pool)
        return scores[np.isfinite(scores)]
    queries = [q for q in evaluation.queries if q.split in splits]
    scores, labels, _ = pair_arrays(queries, method)
    if labels.sum() == 0:
        raise InputDataError(f"calibration needs positive pairs; {' + '.join(splits)} has none")
    return scores[~labels]


def choose_threshold(evaluation: Evaluation, rule: ThresholdRule, method: str = "hybrid") -> RateThreshold:
    negatives = calibration_negatives(evaluation, rule.unit, rule.splits, method, rule.pool)
    if negatives.size == 0:
        raise InputDataError(f"{evaluation.corpus}: {' + '.join(rule.splits)} has nothing to calibrate "
                             f"{UNITS[rule.unit]} on")
    chosen = threshold_for_rate(negatives, rule.target, rule.confidence)
    if not chosen.bound_met:
        need = math.ceil(math.log(1 - rule.confidence) / math.log(1 - rule.target)) if rule.target > 0 else None
        logger.warning("%s: %d calibration units cannot show %s with %.0f%% confidence even with no false alarm "
                       "(about %s needed); the threshold sits above every calibration score", evaluation.corpus,
                       chosen.trials, UNITS[rule.unit], rule.confidence * 100, need)
    return chosen


def write_calibrated_bundle(bundle: Bundle, bundles_dir: Path, threshold: dict[str, Any],
                            evaluation: dict[str, Any], bm25_updates: dict[str, Any] | None = None,
                            extra: dict[str, Any] | None = None) -> Path:
    """Bundles are immutable: copy the files, write a new manifest with the threshold and evaluation,
    under a new model_version. The encoder files are unchanged, so indexes stay usable."""
    manifest = json.loads(json.dumps(bundle.manifest))
    stamp = datetime.now(UTC)
    base = manifest["model_version"].split("+cal")[0]
    manifest["model_version"] = f"{base}+cal{stamp.strftime('%Y%m%d%H%M%S')}"
    manifest["created_at"] = stamp.isoformat()
    manifest["derived_from"] = bundle.model_version
    manifest["threshold"] = threshold
    manifest["evaluation"] = evaluation
    if bm25_updates:
        manifest["bm25"].update(bm25_updates)
    manifest.update(extra or {})
    bundles_dir.mkdir(parents=True, exist_ok=True)
    final = bundles_dir / manifest["model_version"]
    if final.exists():
        raise FileExistsError(f"bundle {final} already exists; bundles are immutable")
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=bundles_dir))
    try:
        for rel in manifest["files"]:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(bundle.path / rel, staging / rel)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        publish_directory(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for p in final.rglob("*"):
        if p.is_file():
            p.chmod(0o444)
    load_bundle(final)
    return final
