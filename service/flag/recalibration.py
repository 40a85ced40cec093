"""The recalibration engine behind POST /admin/threshold/recalibrate and `incident-sim calibrate --live`: propose a
threshold from the recent-answer log (service/flag/recalibrate.py) or take the online rule's (service/flag/online.py)
and, when asked, write it as a threshold-only bundle into the registry and switch to it on the serving index
(service/versions/threshold.py). No HTTP here."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from indexing.errors import InputDataError, SwapRefusedError
from service.flag.recalibrate import (
    LiveCalibration,
    calibration_rule,
    calibration_units,
    confirmed_duplicates,
    live_threshold,
    score_family,
    threshold_record,
    write_threshold_only,
)
from service.flag.watch import FlagWatch

if TYPE_CHECKING:
    from indexing.bundle import Bundle
    from indexing.registry import BundleRegistry
    from service.versions.switcher import ModelSwitcher

logger = logging.getLogger(__name__)

METHODS = ("clopper_pearson", "aci")


@dataclass(frozen=True)
class RecalibrationOutcome:
    applied: bool
    method: str
    proposal: LiveCalibration
    reason: str  # why it was (not) applied
    model_version: str | None = None  # the new bundle, when applied
    switch: dict[str, Any] | None = None  # the switch status, when applied

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "method": self.method, "reason": self.reason,
                "proposal": self.proposal.to_dict(), "model_version": self.model_version, "switch": self.switch}


class Recalibrator:
    def __init__(self, watch: FlagWatch, bundle: Callable[[], Bundle], registry: BundleRegistry | None,
                 switcher: ModelSwitcher | None, min_answers: int = 200) -> None:
        self.watch = watch
        self._bundle = bundle
        self.registry = registry
        self.switcher = switcher
        self.min_answers = min_answers
        self.last: RecalibrationOutcome | None = None

    def propose(self, method: str = "clopper_pearson") -> LiveCalibration:
        """The threshold the offline rule picks on the recent answers (`clopper_pearson`), or the online rule's
        current threshold with the same counts (`aci`, when Settings.flag_online_rule is on)."""
        if method not in METHODS:
            raise InputDataError(f"unknown recalibration method {method!r}: use one of {', '.join(METHODS)}")
        bundle = self._bundle()
        models = score_family(bundle, self.registry)
        units = calibration_units(self.watch.answers.recent(), models)
        if not units:
            raise InputDataError(f"no logged answer of {bundle.model_version} (or the bundles it was derived from "
                                 "by a threshold change) with a result: nothing to recalibrate on yet")
        target, confidence = calibration_rule(bundle)
        proposal = live_threshold(units, confirmed_duplicates(self.watch.feedback), target, confidence,
                                  bundle.threshold, models)
        if method == "aci":
            online = self.watch.online
            if online is None:
                raise InputDataError("the online rule is off (INCIDENT_SIM_FLAG_ONLINE_RULE=aci turns it on)")
            value = online.threshold
            best = [float(u.best) for u in units]  # type: ignore[arg-type]
            proposal = replace(proposal, threshold=value, bound_met=True,
                               flagged_share_new=sum(b >= value for b in best) / len(best))
        return proposal

    def run(self, apply: bool = False, method: str = "clopper_pearson") -> RecalibrationOutcome:
        proposal = self.propose(method)
        outcome = self._decide(proposal, apply, method)
        if outcome.applied or apply:
            self.last = outcome
        return outcome

    def _decide(self, proposal: LiveCalibration, apply: bool, method: str) -> RecalibrationOutcome:
        if not apply:
            return RecalibrationOutcome(False, method, proposal, "dry run: pass apply to switch to it")
        if proposal.answers < self.min_answers:
            return RecalibrationOutcome(False, method, proposal, f"not applied: {proposal.answers} answers logged, "
                                        f"{self.min_answers} needed (INCIDENT_SIM_FLAG_RECALIBRATE_MIN_ANSWERS)")
        if not proposal.bound_met:
            return RecalibrationOutcome(False, method, proposal, "not applied: too few answers to show the target "
                                        "at this confidence even with no false alarm")
        if math.isclose(proposal.threshold, proposal.current, rel_tol=0, abs_tol=1e-9):
            return RecalibrationOutcome(False, method, proposal, "not applied: the threshold is unchanged")
        if self.switcher is None or self.registry is None:
            raise SwapRefusedError("switching needs the index store and bundle registry, unreachable at start-up")
        path = self.write_bundle(proposal, method)
        status = self.switcher.switch_threshold(path.name)
        logger.info("recalibrated from live answers (%s): threshold %.4f -> %.4f, bundle %s", method,
                    proposal.current, proposal.threshold, path.name)
        return RecalibrationOutcome(True, method, proposal, "applied: a threshold-only switch on the serving index",
                                    path.name, status.to_dict())

    def write_bundle(self, proposal: LiveCalibration, method: str) -> Any:
        """A new, immutable bundle version in the registry: the serving one's files and manifest with the new
        threshold (the offline report's split figures carried over: the duplicate share the alert promises)."""
        assert self.registry is not None
        parent = self._bundle()
        record = threshold_record(proposal, method)
        old = parent.manifest.get("threshold") or {}
        for split in ("test", "validation"):
            if isinstance(old.get(split), dict):
                record[split] = {**old[split], "from": f"offline calibration of {parent.model_version}"}
        evaluation = {"live": proposal.to_dict(), "offline": parent.manifest.get("evaluation")}
        return write_threshold_only(parent, self.registry, record, evaluation, f"live recalibration ({method})")
