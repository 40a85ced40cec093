"""The service watches its own flag: every /similar answer's best score and flag, agents' verdicts, the links
ServiceNow records later, and what the calibration promised."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from service.flag.answers import SUGGESTED_KEPT, AnswerLog, AnswerRecord
from service.flag.feedback import LINK_SOURCE, FeedbackCounts, FeedbackRecord, FeedbackStore, Verdict, now_iso
from service.flag.online import AdaptiveThreshold
from service.flag.stats import clopper_pearson

if TYPE_CHECKING:
    from indexing.bundle import Bundle
    from service.engine import SimilarAnswer

logger = logging.getLogger(__name__)

LINK_FIELDS = ("duplicate_of", "parent_incident")


@dataclass(frozen=True)
class Promise:
    """What the calibration promises about the share of answers flagged: the false-alarm target plus the share
    of incidents with a true earlier duplicate that get flagged (duplicate share x hit rate, its upper 95 % bound,
    from the calibration report's test split: validation when the report has no test split)."""

    target: float
    duplicate_share: float
    hit_rate: float
    flagged_share: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "duplicate_share": self.duplicate_share, "hit_rate_upper": self.hit_rate,
                "promised_flagged_share": self.flagged_share, "from": self.source}


def calibration_promise(bundle: Bundle, duplicate_share: float | None = None) -> Promise | None:
    target = bundle.threshold_target
    if target is None or target.get("unit") != "incident_false_alarm":
        return None  # uncalibrated, or calibrated per pair: no per-answer promise to check
    threshold = bundle.manifest.get("threshold") or {}
    split_name, split = next(((name, threshold[name]) for name in ("test", "validation")
                              if isinstance(threshold.get(name), dict)), ("", {}))
    hit = split.get("hit_rate") or {}
    false_alarm = split.get("false_alarm_rate") or {}
    with_dup, without_dup = int(hit.get("of") or 0), int(false_alarm.get("of") or 0)
    hit_upper = float((hit.get("ci95") or [None, hit.get("value") or 0.0])[1] or 0.0)
    if duplicate_share is not None:
        share, source = duplicate_share, "INCIDENT_SIM_FLAG_DUPLICATE_SHARE"
    elif with_dup + without_dup:
        share, source = with_dup / (with_dup + without_dup), f"calibration report, {split_name} split"
    else:
        share, source = 0.0, "no duplicate share in the calibration report: the target alone"
    if duplicate_share is not None and not hit:
        hit_upper = 1.0
    return Promise(float(target["target"]), share, hit_upper, float(target["target"]) + share * hit_upper, source)


@dataclass(frozen=True)
class ShareWindow:
    answers: int  # answers in the window (one per incident number: a retried call counts once)
    flagged: int
    share: float
    lower: float
    upper: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        return {"answers": self.answers, "flagged": self.flagged,
                "flagged_share": None if math.isnan(self.share) else self.share,
                "interval": [self.lower, self.upper], "level": self.level}


class FlagWatch:
    """Owns the answer log and the feedback store; the routes and /metrics read it."""

    def __init__(self, bundle: Callable[[], Bundle], answers: AnswerLog, feedback: FeedbackStore,
                 window: int = 500, level: float = 0.95, duplicate_share: float | None = None,
                 counts_ttl_s: float = 15.0, metrics: Any = None, online: AdaptiveThreshold | None = None) -> None:
        self._bundle = bundle
        self.online = online  # the online rule (Settings.flag_online_rule), fed every answer; None: off
        self.answers = answers
        self.feedback = feedback
        self.window = window
        self.level = level
        self.duplicate_share = duplicate_share
        self.counts_ttl_s = counts_ttl_s
        self.metrics = metrics
        self._counts: tuple[float, FeedbackCounts] | None = None
        self._linked: set[tuple[str, str]] = set()
        self._resolved: set[str] = set()
        self._baseline: dict[str, tuple[frozenset[str], str | None]] = {}  # links when first seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if metrics is not None:
            metrics.bind_flag(self)

    # -- answers --------------------------------------------------------------------------------------
    def record_answer(self, answer: SimilarAnswer, number: str | None = None) -> AnswerRecord:
        best = max((r.score for r in answer.results), default=None)
        flagged = any(answer.is_similar(r) for r in answer.results) if answer.calibrated else None
        suggested = tuple((str(r.payload.get("number", r.point_id)), float(r.score))
                          for r in answer.results[:SUGGESTED_KEPT])
        record = AnswerRecord(at=time.time(), number=number, best=best, flagged=flagged,
                              threshold=float(answer.threshold), model_version=answer.model_version,
                              threshold_source=answer.threshold_source, suggested=suggested)
        self.answers.record(record)
        if self.online is not None and best is not None:  # every answer counts as a negative when it is given
            self.online.update(best)
        if self.metrics is not None:
            self.metrics.observe_flag(record)
        return record

    def share(self) -> ShareWindow:
        """The flagged share over the last `window` answers of the serving model (one per incident number)."""
        model = self._bundle().model_version
        seen: set[str] = set()
        picked: list[AnswerRecord] = []
        for record in reversed(self.answers.recent()):
            if len(picked) >= self.window:
                break
            if record.model_version != model or record.flagged is None:  # an uncalibrated answer flags nothing
                continue
            if record.number is not None:
                if record.number in seen:
                    continue
                seen.add(record.number)
            picked.append(record)
        n, k = len(picked), sum(bool(r.flagged) for r in picked)
        lower, upper = clopper_pearson(k, n, self.level)
        return ShareWindow(n, k, k / n if n else math.nan, lower, upper, self.level)

    def promise(self) -> Promise | None:
        return calibration_promise(self._bundle(), self.duplicate_share)

    def alert(self, window: ShareWindow | None = None) -> bool:
        """The alert rule's condition: the flagged share's lower bound above what the calibration promised."""
        promise = self.promise()
        window = window or self.share()
        return promise is not None and window.answers > 0 and window.lower > promise.flagged_share

    # -- feedback -------------------------------------------------------------------------------------
    def _suggestion(self, incident: str, suggested: str) -> tuple[bool | None, float | None]:
        for record in reversed(self.answers.recent()):
            if record.number != incident:
                continue
            for number, score in record.suggested:
                if number == suggested:  # None: suggested under the uncalibrated default, neither flagged nor not
                    return (None if record.flagged is None else score >= record.threshold), score
        return None, None

    def record_feedback(self, incident: str, suggested: str, verdict: Verdict, source: str,
                        at: str | None = None) -> tuple[FeedbackRecord, bool]:
        flagged, score = self._suggestion(incident, suggested)
        record = FeedbackRecord(incident=incident, suggested=suggested, verdict=verdict.value, source=source,
                                at=at or now_iso(), received_at=now_iso(), flagged=flagged, score=score)
        stored, changed = self.feedback.record(record)
        if changed:
            self._counts = None
            if self.metrics is not None:
                self.metrics.feedback.labels(verdict=stored.verdict).inc()
            logger.info("feedback %s on %s -> %s from %s (flagged: %s)", stored.verdict, stored.incident,
                        stored.suggested, stored.source, stored.flagged)
        return stored, changed

    def feedback_counts(self) -> FeedbackCounts:
        cached = self._counts
        if cached is not None and time.monotonic() - cached[0] < self.counts_ttl_s:
            return cached[1]
        counts = self.feedback.counts()
        self._counts = (time.monotonic(), counts)
        return counts

    def precision(self, counts: FeedbackCounts | None = None) -> dict[str, Any]:
        """Of the flagged suggestions that got a verdict, the share confirmed duplicate (related and not_similar
        count against it), with its Clopper-Pearson interval."""
        counts = counts or self.feedback_counts()
        n, k = counts.flagged_with_feedback, counts.flagged_confirmed
        lower, upper = clopper_pearson(k, n, self.level)
        return {"value": k / n if n else None, "confirmed": k, "of": n, "interval": [lower, upper]}

    # -- links recorded in ServiceNow ---------------------------------------------------------------------
    def pending_links(self, since_s: float) -> dict[str, set[str]]:
        """Incidents asked about within `since_s` seconds that have no link yet: their suggested numbers."""
        horizon = time.time() - since_s
        out: dict[str, set[str]] = {}
        for record in self.answers.recent():
            if record.number is None or record.at < horizon or record.number in self._resolved:
                continue
            out.setdefault(record.number, set()).update(n for n, _ in record.suggested)
        return out

    def check_links(self, fetch: Callable[[Iterable[str]], dict[str, dict[str, Any]]],
                    since_s: float = 14 * 86400) -> list[FeedbackRecord]:
        """Links ServiceNow recorded after a suggestion (an incident's duplicate_of or parent_incident naming a
        suggested incident, by number or sys_id, or a problem_id it shares with one) become `duplicate` feedback
        from source `servicenow-link`. A link to an incident that was not suggested is kept too (a miss).
        `fetch`: incident numbers -> their stored payloads (the ones in the index)."""
        pending = self.pending_links(since_s)
        if not pending:
            return []
        linked: dict[str, tuple[set[str], str | None]] = {}
        for number, payload in fetch(pending).items():
            targets = {str(payload[f]) for f in LINK_FIELDS if payload.get(f)}
            problem = str(payload["problem_id"]) if payload.get("problem_id") else None
            before = self._baseline.setdefault(number, (frozenset(targets), problem))
            # only a link set after the incident was first seen here counts: one it already had is no verdict on
            # the suggestions (a link set before the first check, within flag_link_check_s, is missed)
            new_targets, new_problem = targets - before[0], problem if problem != before[1] else None
            if new_targets or new_problem:
                linked[number] = (new_targets, new_problem)
        if not linked:
            return []
        suggested = fetch({s for n in linked for s in pending[n]})
        out: list[FeedbackRecord] = []
        for number, (targets, problem) in linked.items():
            matched: set[str] = set()
            for candidate in pending[number]:
                other = suggested.get(candidate) or {}
                if candidate in targets or (other.get("sys_id") and str(other["sys_id"]) in targets) or (
                        problem and other.get("problem_id") == problem):
                    matched.add(candidate)
            if not matched and not targets:
                continue  # a problem_id shared with no suggestion: nothing to say yet
            if not matched:  # linked to an incident that was not suggested (sys_ids are kept as given)
                matched = targets
            for candidate in sorted(matched):
                if (number, candidate) in self._linked or self.feedback.get(number, candidate, LINK_SOURCE):
                    self._linked.add((number, candidate))
                    continue
                stored, changed = self.record_feedback(number, candidate, Verdict.duplicate, LINK_SOURCE,
                                                       at=datetime.now(UTC).isoformat())
                self._linked.add((number, candidate))
                if changed:
                    out.append(stored)
            self._resolved.add(number)
        return out

    def start_link_checks(self, fetch: Callable[[Iterable[str]], dict[str, dict[str, Any]]], every_s: float,
                          since_s: float) -> None:
        if every_s <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    found = self.check_links(fetch, since_s)
                    if found:
                        logger.info("%d links recorded in ServiceNow became duplicate feedback", len(found))
                except Exception as exc:  # the store may be away for a while: try again next round
                    logger.warning("link check failed: %s", exc)

        self._thread = threading.Thread(target=loop, name="flag-link-checks", daemon=True)
        self._thread.start()

    # -- the whole picture ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        bundle = self._bundle()
        window = self.share()
        promise = self.promise()
        counts = self.feedback_counts()
        manifest = bundle.manifest
        threshold = manifest.get("threshold") or {}
        return {
            "model_version": bundle.model_version,
            "threshold": bundle.threshold,
            "threshold_source": bundle.threshold_source,
            "calibration": {"target": bundle.threshold_target, "calibrated_on": threshold.get("calibrated_on"),
                            "promise": promise.to_dict() if promise else None},
            "live": {**window.to_dict(), "window": self.window,
                     "alert": self.alert(window), "answers_logged": len(self.answers.recent())},
            "feedback": {"by_verdict": counts.by_verdict, "flagged_by_verdict": counts.flagged_by_verdict,
                         "precision": self.precision(counts), "store": self.feedback.kind},
            "last_recalibration": {"model_version": bundle.model_version, "created_at": manifest.get("created_at"),
                                   "derived_from": manifest.get("derived_from"),
                                   "how": (manifest.get("threshold_only") or {}).get("how") or (
                                       "offline calibration (incident-sim calibrate)"
                                       if bundle.threshold_source == "calibrated" else "none: uncalibrated default")},
            "online": self.online.state().to_dict() if self.online is not None else None,
        }

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.answers.close()
        self.feedback.close()
