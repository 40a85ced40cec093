"""Agents' verdicts on suggestions (POST /feedback, GET /feedback) and the live state of the flag
(GET /admin/threshold). README "Keeping the flag honest"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from indexing.errors import InvalidQueryError
from indexing.incidents import check_datetime_value, check_text_value, normalise_number
from service.auth import require
from service.flag.feedback import Verdict
from service.flag.recalibration import Recalibrator
from service.flag.watch import FlagWatch
from service.schemas import error_responses
from service.settings import Scope

router = APIRouter(tags=["feedback"])
admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require(Scope.admin))])

FEEDBACK_EXAMPLE = {"incident": "INC0012401", "suggested": "INC0011873", "verdict": "duplicate",
                    "source": "servicenow", "at": "2026-11-22T10:15:00Z"}


def watch_of(request: Request) -> FlagWatch:
    return request.app.state.flag


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [FEEDBACK_EXAMPLE]})

    incident: StrictStr = Field(min_length=1, max_length=64, description="The incident the suggestion was for.")
    suggested: StrictStr = Field(min_length=1, max_length=64, description="The suggested incident's number.")
    verdict: Verdict = Field(description="duplicate (the same problem), related, or not_similar.")
    source: StrictStr = Field(min_length=1, max_length=64, description="Who says so (e.g. servicenow, an app "
                              "name): one verdict is kept per (incident, suggested, source); a retry changes "
                              "nothing, a new verdict replaces the old one.")
    at: datetime | None = Field(None, description="When the agent gave the verdict (default: now).")

    @field_validator("incident", "suggested", "source", mode="after")
    @classmethod
    def _acceptable(cls, value: str) -> str:
        check_text_value(value)
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("at", mode="after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-11-22T10:15:00Z)")
        return check_datetime_value(value)


class FeedbackOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        **FEEDBACK_EXAMPLE, "at": "2026-11-22T10:15:00+00:00", "received_at": "2026-11-22T10:15:01.204+00:00",
        "flagged": True, "score": 0.874, "created": True}]})

    incident: str
    suggested: str
    verdict: str
    source: str
    at: str
    received_at: str = Field(description="When this service first stored this verdict.")
    flagged: bool | None = Field(description="Whether the suggestion was marked similar in an answer this service "
                                 "recorded (null: no such answer in its recent-answer log).")
    score: float | None
    created: bool | None = Field(None, description="false: the same verdict was already stored (nothing changed).")


class FeedbackPageOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{
        **FEEDBACK_EXAMPLE, "at": "2026-11-22T10:15:00+00:00", "received_at": "2026-11-22T10:15:01.204+00:00",
        "flagged": True, "score": 0.874, "created": None}], "next_cursor": "100", "total": 230}]})

    items: list[FeedbackOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    total: int


THRESHOLD_EXAMPLE = {
    "model_version": "mpnet-baseline-20261122071937-a357ef6f+cal20261122101500", "threshold": 0.782,
    "threshold_source": "calibrated",
    "calibration": {"target": {"unit": "incident_false_alarm", "target": 0.05, "confidence": 0.95},
                    "calibrated_on": "jira train + validation splits (explicit labels)",
                    "promise": {"target": 0.05, "duplicate_share": 0.0195, "hit_rate_upper": 0.58,
                                "promised_flagged_share": 0.0613, "from": "calibration report, test split"}},
    "live": {"answers": 500, "flagged": 61, "flagged_share": 0.122, "interval": [0.0945, 0.1538], "level": 0.95,
             "window": 500, "alert": True, "answers_logged": 8412},
    "feedback": {"by_verdict": {"duplicate": 14, "related": 6, "not_similar": 31},
                 "flagged_by_verdict": {"duplicate": 9, "related": 4, "not_similar": 22},
                 "precision": {"value": 0.257, "confirmed": 9, "of": 35, "interval": [0.125, 0.433]},
                 "store": "file"},
    "last_recalibration": {"model_version": "mpnet-baseline-20261122071937-a357ef6f+cal20261122101500",
                           "created_at": "2026-11-22T10:15:00+00:00",
                           "derived_from": "mpnet-baseline-20261122071937-a357ef6f",
                           "how": "offline calibration (incident-sim calibrate)"}}


class ThresholdStatusOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [THRESHOLD_EXAMPLE]})

    model_version: str
    threshold: float
    threshold_source: str
    calibration: dict[str, Any] = Field(description="What the threshold was calibrated for, and the flagged share "
                                        "that promises (target + duplicate share x hit rate).")
    live: dict[str, Any] = Field(description="The flagged share over the recent window (one answer per incident), "
                                 "its Clopper-Pearson interval, and whether the alert condition holds.")
    feedback: dict[str, Any] = Field(description="Verdicts kept, and the precision of flagged suggestions with one.")
    last_recalibration: dict[str, Any]


@router.post("/feedback", response_model=FeedbackOut, status_code=201, name="feedback",
             responses={200: {"model": FeedbackOut, "description": "The same verdict was already stored."},
                        **error_responses(401, 403, 413, 415, 422, 429, 503)},
             dependencies=[Depends(require(Scope.write))],
             summary="An agent's verdict on a suggestion",
             description="Idempotent per (incident, suggested, source): 201 when stored or changed, 200 when the "
                         "same verdict was already kept. Durable before the answer. Needs the `write` scope.")
def post_feedback(body: FeedbackIn, request: Request, response: Response) -> FeedbackOut:
    at = body.at.astimezone(UTC).isoformat() if body.at is not None else None
    stored, changed = watch_of(request).record_feedback(
        normalise_number(body.incident), normalise_number(body.suggested), body.verdict, body.source.strip(), at)
    if not changed:
        response.status_code = 200
    return FeedbackOut(**stored.to_dict(), created=changed)


@router.get("/feedback", response_model=FeedbackPageOut, name="feedback_export",
            responses=error_responses(401, 403, 422, 429, 503), dependencies=[Depends(require(Scope.admin))],
            summary="Page out the stored feedback (export)",
            description="Stable order; follow `next_cursor` until it is null. Needs the `admin` scope.")
def get_feedback(request: Request,
                 cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the page before")]
                 = None,
                 limit: Annotated[int, Query(ge=1, le=1000, description="Items per page")] = 100) -> FeedbackPageOut:
    try:
        page = watch_of(request).feedback.page(cursor, limit)
    except ValueError as exc:
        raise InvalidQueryError(str(exc)) from exc
    return FeedbackPageOut(items=[FeedbackOut(**r.to_dict()) for r in page.items], next_cursor=page.next_cursor,
                           total=page.total)


class RecalibrateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"apply": False}]})

    apply: bool = Field(False, description="false (default): a dry run, shows the threshold it would choose; true: "
                        "writes it as a threshold-only bundle and switches to it on the serving index.")
    method: Literal["clopper_pearson", "aci"] = Field("clopper_pearson", description="clopper_pearson: the offline "
                                                      "rule on the recent answers; aci: the online rule's threshold "
                                                      "(needs INCIDENT_SIM_FLAG_ONLINE_RULE=aci).")


class RecalibrationOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "applied": False, "method": "clopper_pearson", "reason": "dry run: pass apply to switch to it",
        "model_version": None, "switch": None,
        "proposal": {"threshold": 0.8123, "point_estimate": 0.7934, "current": 0.782, "target": 0.05,
                     "confidence": 0.95, "negatives": 1890, "false_alarms": 77, "rate": 0.0407,
                     "upper_bound": 0.0493, "bound_met": True, "hits": 41, "hits_caught": 12, "hit_rate": 0.293,
                     "answers": 1931, "models": ["mpnet-baseline-20261122071937-a357ef6f+cal20261122101500"],
                     "flagged_share_now": 0.061, "flagged_share_new": 0.046}}]})

    applied: bool
    method: str
    reason: str
    proposal: dict[str, Any] = Field(description="The chosen threshold, the point-estimate rule's on the same "
                                     "answers (never above it), the counts it rests on.")
    model_version: str | None = Field(description="The new bundle, when applied.")
    switch: dict[str, Any] | None


def recalibrator_of(request: Request) -> Recalibrator:
    return request.app.state.recalibrator


@admin_router.post("/threshold/recalibrate", name="recalibrate_threshold", response_model=RecalibrationOut,
                   responses=error_responses(401, 403, 409, 415, 422, 429, 503),
                   summary="Choose the threshold from the recent answers; with apply, switch to it (no re-index)",
                   description="Each logged answer without confirmed-duplicate feedback counts as a negative "
                               "(conservative), confirmed duplicates as hits; the offline Clopper-Pearson rule and "
                               "target choose the threshold. A dry run unless `apply` is true: then a threshold-only "
                               "bundle is published and switched to on the serving index (seconds, nothing "
                               "re-embedded; POST /admin/models/rollback undoes it).")
def recalibrate(request: Request,
                body: Annotated[RecalibrateIn, Body(default_factory=RecalibrateIn)]) -> RecalibrationOut:
    return RecalibrationOut(**recalibrator_of(request).run(apply=body.apply, method=body.method).to_dict())


@admin_router.get("/threshold", name="threshold_status", response_model=ThresholdStatusOut,
                  responses=error_responses(401, 403, 429, 503),
                  summary="The flag: calibration target, live flagged share, feedback precision",
                  description="What the threshold was calibrated for and what that promises about the share of "
                              "answers flagged, the live flagged share over the recent window with its "
                              "Clopper-Pearson interval and whether the alert condition holds, feedback by verdict "
                              "and the precision of flagged suggestions, and the last recalibration.")
def threshold_status(request: Request) -> ThresholdStatusOut:
    return ThresholdStatusOut(**watch_of(request).status())
