"""Recalibration from the recent-answer log, without re-indexing (README "Keeping the flag honest").

Every logged answer of the serving scores (the serving bundle and the bundles it was derived from by a threshold
change: the same encoder and scoring, so the same scores) is one calibration unit, one per incident number (the
latest answer). An answer whose incident got `duplicate` feedback is a hit; every other answer is a negative,
conservatively: an unlabelled duplicate counted as a negative can only raise the threshold. The threshold is then
chosen by the offline rule itself (training.calibrate.threshold_for_rate: the lowest threshold whose one-sided
Clopper-Pearson upper bound of the false-alarm rate is <= the target) with the serving bundle's target and
confidence. Applying it writes a threshold-only bundle and switches to it on the serving index
(service/versions/threshold.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexing.bundle import MANIFEST
from indexing.errors import IncidentSimError, InputDataError, SwapRefusedError
from service.flag.answers import AnswerRecord
from service.flag.feedback import FeedbackStore, Verdict

if TYPE_CHECKING:
    from indexing.bundle import Bundle
    from indexing.registry import BundleRegistry

logger = logging.getLogger(__name__)

THRESHOLD_ONLY_KEY = "threshold_only"  # manifest: {"from": the bundle it was derived from, "how": ...}
FAMILY_DEPTH = 50  # threshold-only ancestors followed at most


@dataclass(frozen=True)
class LiveCalibration:
    """A threshold chosen on the recent answers (a proposal until applied)."""

    threshold: float  # the rule's threshold (Clopper-Pearson bound at `confidence`)
    point_estimate: float  # the point-estimate rule's threshold on the same negatives (never above `threshold`)
    current: float  # the threshold serving now
    target: float
    confidence: float
    negatives: int  # answers counted as negatives
    false_alarms: int  # of them at or above `threshold`
    rate: float
    upper_bound: float
    bound_met: bool
    hits: int  # confirmed duplicates among the answers
    hits_caught: int  # of them whose confirmed suggestion scores at or above `threshold`
    answers: int  # calibration units (one per incident)
    models: tuple[str, ...]  # model versions whose answers were used
    flagged_share_now: float  # share of the units flagged at the current threshold
    flagged_share_new: float  # ... at the new one

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        data["hit_rate"] = self.hits_caught / self.hits if self.hits else None
        return data


def score_family(bundle: Bundle, registry: BundleRegistry | None) -> set[str]:
    """The serving bundle and its threshold-only ancestors: their answers' scores mean what the serving ones do."""
    family = {bundle.model_version}
    manifest = bundle.manifest
    for _ in range(FAMILY_DEPTH):
        parent = (manifest.get(THRESHOLD_ONLY_KEY) or {}).get("from")
        if not parent or parent in family:
            break
        family.add(str(parent))
        if registry is None:
            break
        try:
            manifest = json.loads((registry.path_of(str(parent)) / MANIFEST).read_text())
        except (OSError, ValueError, IncidentSimError):  # a parent no longer in the registry: stop there
            break
    return family


def confirmed_duplicates(store: FeedbackStore, page: int = 1000) -> dict[str, set[str]]:
    """incident -> the suggested incidents confirmed `duplicate` (by any source, agents or recorded links)."""
    out: dict[str, set[str]] = {}
    cursor: str | None = None
    while True:
        got = store.page(cursor, page)
        for record in got.items:
            if record.verdict == Verdict.duplicate.value:
                out.setdefault(record.incident, set()).add(record.suggested)
        cursor = got.next_cursor
        if cursor is None:
            return out


def calibration_units(records: Iterable[AnswerRecord], models: set[str]) -> list[AnswerRecord]:
    """One answer per incident number (the latest), of the given models, that had a result; unnamed answers
    each count once."""
    latest: dict[str, AnswerRecord] = {}
    unnamed: list[AnswerRecord] = []
    for record in records:
        if record.model_version not in models or record.best is None:
            continue
        if record.number is None:
            unnamed.append(record)
        else:
            latest[record.number] = record
    return [*latest.values(), *unnamed]


def live_threshold(units: list[AnswerRecord], confirmed: dict[str, set[str]], target: float, confidence: float,
                   current: float, models: Iterable[str] = ()) -> LiveCalibration:
    """The offline rule on the live units: negatives are the units without a confirmed duplicate."""
    from training.calibrate import threshold_for_rate  # the offline rule itself (needs scipy: the train extra)

    negatives: list[float] = []
    hit_scores: list[float] = []
    for record in units:
        dups = confirmed.get(record.number or "", set())
        if not dups:
            negatives.append(float(record.best))  # type: ignore[arg-type]  # units have a best score
            continue
        scores = [s for n, s in record.suggested if n in dups]
        hit_scores.append(max(scores) if scores else float("-inf"))  # confirmed but not suggested: a miss
    if not negatives:
        raise InputDataError("no logged answer without a confirmed duplicate: nothing to calibrate on yet")
    scores = np.asarray(negatives)
    chosen = threshold_for_rate(scores, target, confidence)
    point = threshold_for_rate(scores, target, 0.0)
    best = np.asarray([float(r.best) for r in units])  # type: ignore[arg-type]
    return LiveCalibration(
        threshold=chosen.value, point_estimate=point.value, current=current, target=target, confidence=confidence,
        negatives=chosen.trials, false_alarms=chosen.false_alarms, rate=chosen.rate, upper_bound=chosen.upper_bound,
        bound_met=chosen.bound_met, hits=len(hit_scores), hits_caught=sum(s >= chosen.value for s in hit_scores),
        answers=len(units), models=tuple(sorted(models)),
        flagged_share_now=float((best >= current).mean()), flagged_share_new=float((best >= chosen.value).mean()))


def calibration_rule(bundle: Bundle) -> tuple[float, float]:
    """The serving bundle's target and confidence when it was calibrated per incident; else the offline defaults."""
    from training.calibrate import DEFAULT_CONFIDENCE, DEFAULT_TARGET_FALSE_ALARM

    target = bundle.threshold_target
    if target and target.get("unit") == "incident_false_alarm":
        return float(target["target"]), float(target.get("confidence", DEFAULT_CONFIDENCE))
    return DEFAULT_TARGET_FALSE_ALARM, DEFAULT_CONFIDENCE


def write_threshold_only(parent: Bundle, registry: BundleRegistry, threshold: dict[str, Any],
                         evaluation: dict[str, Any], how: str) -> Path:
    """A new, immutable bundle version in the registry: `parent`'s files and manifest with `threshold`, marked
    `threshold_only: {"from": parent}` (so it switches on the serving index), published (its manifest digest
    recorded). Versions are stamped to the second: a second write within the same second waits for the next."""
    from training.calibrate import write_calibrated_bundle  # the train extra's writer (scipy: a serving dep)

    extra = {THRESHOLD_ONLY_KEY: {"from": parent.model_version, "how": how, "at": datetime.now(UTC).isoformat()}}
    try:
        path = write_calibrated_bundle(parent, registry.root, threshold, evaluation, extra=extra)
    except FileExistsError:
        time.sleep(1.0)
        try:
            path = write_calibrated_bundle(parent, registry.root, threshold, evaluation, extra=extra)
        except FileExistsError as exc:
            raise SwapRefusedError("another threshold-only bundle was written in this second; try again") from exc
    registry.publish(path)
    return path


def threshold_record(proposal: LiveCalibration, how: str) -> dict[str, Any]:
    """The manifest `threshold` of a bundle written from a live recalibration."""
    return {"value": proposal.threshold, "source": "calibrated", "unit": "incident_false_alarm",
            "target": proposal.target, "confidence": proposal.confidence,
            "calibrated_on": f"live answers ({how}): {proposal.answers} incidents, {proposal.negatives} counted as "
                             f"negatives, {proposal.hits} confirmed duplicates",
            "live": proposal.to_dict()}
