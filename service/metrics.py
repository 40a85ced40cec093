"""Prometheus metrics (explicit buckets), one registry per app so tests can run several apps.
Every name here is what deploy/observability/ queries (checked by tests/test_observability.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from starlette.routing import BaseRoute, Match

from indexing.errors import StoreUnavailableError
from indexing.search import SEARCH_STAGES

if TYPE_CHECKING:
    from service.engine import SimilarAnswer
    from service.flag.answers import AnswerRecord
    from service.flag.watch import FlagWatch

disable_created_metrics()  # no *_created series: they only add noise to every scrape

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)
# best score minus the threshold per /similar answer: fine steps near 0 (the threshold), valid across threshold
# switches (a bucket set built around one threshold value would not be)
MARGIN_BUCKETS = (-0.3, -0.2, -0.15, -0.1, -0.075, -0.05, -0.04, -0.03, -0.02, -0.01, -0.005, 0.0, 0.005, 0.01,
                  0.02, 0.03, 0.05, 0.075, 0.1, 0.2)
# /similar stages: encode = tokenise + ONNX encode, then the retrieval's (indexing.search.SEARCH_STAGES)
STAGES = ("encode", *SEARCH_STAGES)


def route_template(scope: Any, routes: Sequence[BaseRoute] = ()) -> str:
    """The matched route's path template ('/incidents/{number}'), never the raw path: bounded label values.
    A request answered before routing (429, 413, 415) is matched against `routes` here."""
    route = scope.get("route")
    if route is None:
        for candidate in routes:
            if candidate.matches(scope)[0] != Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def outcome_of(status: int) -> str:
    if status == 429:
        return "shed"
    if status < 400:
        return "success"
    return "client_error" if status < 500 else "server_error"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.request_latency = Histogram(
            "incident_sim_request_duration_seconds", "HTTP request latency by route and status.",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter(
            "incident_sim_requests_total", "Requests by route and outcome (success, client_error, "
            "server_error, shed = 429).", ["route", "outcome"], registry=r)
        self.stage_latency = Histogram(
            "incident_sim_stage_duration_seconds", "Latency of each /similar stage.", ["stage"],
            buckets=STAGE_BUCKETS, registry=r)
        self.errors = Counter("incident_sim_errors_total", "Failed requests by error code.", ["route", "code"],
                              registry=r)
        self.in_flight = Gauge("incident_sim_requests_in_flight", "Requests being worked on now.", registry=r)
        self.results = Counter("incident_sim_results_total", "Incidents returned by /similar.", registry=r)
        self.similar_results = Counter("incident_sim_similar_results_total",
                                       "Returned incidents marked similar (at or above a calibrated threshold; "
                                       "none while it is the uncalibrated default).", registry=r)
        self.truncated_inputs = Counter("incident_sim_truncated_inputs_total",
                                        "Query texts cut at the model's max sequence length.", registry=r)
        self.incident_writes = Counter("incident_sim_incident_writes_total",
                                       "Incident pushes by operation (created, updated, deleted).", ["operation"],
                                       registry=r)
        self.ready = Gauge("incident_sim_ready", "1 when the bundle is loaded and the index answers (as /readyz).",
                           registry=r)
        self.index_size = Gauge("incident_sim_index_incidents", "Incidents in the active index.", registry=r)
        self.rebuild_progress = Gauge("incident_sim_rebuild_progress_ratio",
                                      "Share of incidents re-embedded by the running (or last) model rebuild.",
                                      registry=r)
        self.swaps = Counter("incident_sim_model_swaps_total", "Model switches by result (ok, failed, rollback).",
                             ["result"], registry=r)
        self.swap_duration = Histogram("incident_sim_model_swap_duration_seconds",
                                       "Time the switch itself holds writes (pointer moves + engine swap).",
                                       buckets=STAGE_BUCKETS, registry=r)
        self.compactions = Counter("incident_sim_index_compactions_total",
                                   "Background index compactions by result (ok, failed).", ["result"], registry=r)
        self.compaction_duration = Histogram(
            "incident_sim_index_compaction_duration_seconds", "Whole compaction: copy, optimize apart, catch-up.",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600), registry=r)
        self.writes_since_build = Gauge(
            "incident_sim_index_writes_since_build",
            "Incident writes since the active index version was built (compaction starts past a threshold).",
            registry=r)
        self.background_indexing = Gauge(
            "incident_sim_background_indexing_incidents",
            "Background indexing (quickstart): incidents indexed so far and in all (state=indexed|total).",
            ["state"], registry=r)
        self.versions = Info("incident_sim_model", "Active model and index versions.", registry=r)
        # -- the flag watch (service/flag; README "Keeping the flag honest") --
        self.flag_answers = Counter("incident_sim_flag_answers_total", "/similar answers by flagged (true: a result "
                                    "marked similar; none: the threshold was the uncalibrated default, so no flag "
                                    "either way).", ["flagged"], registry=r)
        self.best_score_margin = Histogram("incident_sim_best_score_margin", "Best score of each /similar answer "
                                           "minus the threshold (>= 0: flagged); calibrated thresholds only.",
                                           buckets=MARGIN_BUCKETS, registry=r)
        self.feedback = Counter("incident_sim_feedback_total", "Feedback verdicts stored by this process (duplicate, "
                                "related, not_similar; links recorded in ServiceNow count as duplicate).",
                                ["verdict"], registry=r)
        self.flagged_share = Gauge("incident_sim_flagged_share_ratio", "Share of the last N answers (one per "
                                   "incident) of the serving model that flagged a result.", registry=r)
        self.flagged_share_lower = Gauge("incident_sim_flagged_share_lower_ratio", "Clopper-Pearson lower bound of "
                                         "the flagged share (INCIDENT_SIM_FLAG_CONFIDENCE, two-sided).", registry=r)
        self.flagged_share_upper = Gauge("incident_sim_flagged_share_upper_ratio", "Clopper-Pearson upper bound of "
                                         "the flagged share.", registry=r)
        self.flagged_share_answers = Gauge("incident_sim_flagged_share_answers", "Answers the flagged share is "
                                           "computed on (at most INCIDENT_SIM_FLAG_WINDOW).", registry=r)
        self.flag_promised_share = Gauge("incident_sim_flag_promised_share_ratio", "Flagged share the calibration "
                                         "promises: false-alarm target + duplicate share x hit rate (NaN: "
                                         "uncalibrated).", registry=r)
        self.flag_precision = Gauge("incident_sim_flag_precision_ratio", "Of flagged suggestions with a verdict, "
                                    "the share confirmed duplicate (NaN: none yet; the feedback store is shared).",
                                    registry=r)
        self.flag_precision_feedback = Gauge("incident_sim_flag_precision_feedback", "Flagged suggestions with a "
                                             "verdict (the precision's denominator).", registry=r)
        for flagged in ("true", "false", "none"):
            self.flag_answers.labels(flagged=flagged)
        for verdict in ("duplicate", "related", "not_similar"):
            self.feedback.labels(verdict=verdict)
        for gauge in (self.flagged_share, self.flagged_share_lower, self.flagged_share_upper,
                      self.flag_promised_share, self.flag_precision):
            gauge.set(float("nan"))
        for result in ("ok", "failed"):  # alert rules read these series before the first compaction
            self.compactions.labels(result=result)
        for stage in STAGES:  # every stage series exists from the start, so dashboards show 0, not 'no data'
            self.stage_latency.labels(stage=stage)

    def observe_answer(self, answer: SimilarAnswer) -> None:
        for stage, seconds in answer.stage_seconds.items():
            self.stage_latency.labels(stage=stage).observe(seconds)
        if answer.truncated:
            self.truncated_inputs.inc()
        self.results.inc(len(answer.results))
        self.similar_results.inc(sum(1 for r in answer.results if answer.is_similar(r) is True))

    def observe_flag(self, record: AnswerRecord) -> None:
        self.flag_answers.labels(flagged="none" if record.flagged is None else str(record.flagged).lower()).inc()
        if record.best is not None and record.flagged is not None:
            self.best_score_margin.observe(record.best - record.threshold)

    def bind_flag(self, watch: FlagWatch) -> None:
        """The flagged-share and precision gauges are computed when scraped, from `watch`."""

        def share(attr: str) -> float:
            window = watch.share()
            value = getattr(window, attr)
            return float(value)

        def promised() -> float:
            promise = watch.promise()
            return promise.flagged_share if promise is not None else float("nan")

        def precision(attr: str) -> float:
            try:
                found = watch.precision()
            except StoreUnavailableError:  # a scrape must answer while the feedback store is away (NaN: unknown)
                return float("nan")
            value = found["value"] if attr == "value" else found["of"]
            return float("nan") if value is None else float(value)

        self.flagged_share.set_function(lambda: share("share"))
        self.flagged_share_lower.set_function(lambda: share("lower"))
        self.flagged_share_upper.set_function(lambda: share("upper"))
        self.flagged_share_answers.set_function(lambda: share("answers"))
        self.flag_promised_share.set_function(promised)
        self.flag_precision.set_function(lambda: precision("value"))
        self.flag_precision_feedback.set_function(lambda: precision("of"))
