"""Request and response bodies of the HTTP API, with examples for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from indexing.incidents import check_datetime_value, check_text_value
from indexing.search import DEFAULT_TOP_K

NUMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

KeywordFilter = StrictStr | list[StrictStr]


class SimilarFilters(BaseModel):
    """Applied inside the store query; each keyword field matches any of its values."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "category": "Network", "assignment_group": ["Network Operations", "Service Desk"],
        "opened_after": "2025-01-01T00:00:00Z"}]})

    category: KeywordFilter | None = Field(None, description="One category or a list of them.")
    subcategory: KeywordFilter | None = None
    assignment_group: KeywordFilter | None = None
    cmdb_ci: KeywordFilter | None = Field(None, description="Configuration item(s).")
    state: KeywordFilter | None = Field(None, description="Incident state code(s) or display value(s).")
    sys_domain: KeywordFilter | None = Field(None, description="ServiceNow domain(s) (sys_id or display name): "
                                                             "only incidents of these domains are returned.")
    opened_after: datetime | None = Field(None, description="Only incidents opened at or after this moment "
                                                            "(ISO 8601; no zone = UTC).")
    opened_before: datetime | None = Field(None, description="Only incidents opened before this moment.")

    @field_validator("*", mode="after")
    @classmethod
    def _acceptable(cls, value: Any) -> Any:  # the input boundary: README "Security"
        for item in value if isinstance(value, list) else [value]:
            check_datetime_value(check_text_value(item))
        return value

    def keyword_fields(self) -> dict[str, list[str]]:
        out = {}
        for name in ("category", "subcategory", "assignment_group", "cmdb_ci", "state", "sys_domain"):
            value = getattr(self, name)
            if value is not None:
                out[name] = [value] if isinstance(value, str) else value
        return out


class SimilarRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "short_description": "VPN connection fails with certificate error",
        "description": "Since this morning the VPN client refuses to connect: certificate not valid.",
        "top_k": 5,
        "exclude": ["INC0012345"],
        "filters": {"category": "Network", "opened_after": "2025-01-01T00:00:00Z"},
    }]})

    short_description: StrictStr | None = Field(None, description="The new incident's short description.")
    description: StrictStr | None = Field(None, description="The new incident's description.")
    text: StrictStr | None = Field(None, description="Free text instead of short_description/description.")
    top_k: StrictInt = Field(DEFAULT_TOP_K, ge=1, le=1000, description="How many similar incidents to return (1 to the "
                                                           "service's max_top_k, 50 by default).")
    exclude: list[Annotated[StrictStr, Field(max_length=64)]] = Field(
        default_factory=list, max_length=100,
        description="Incident numbers never to return (e.g. the incident itself).")
    filters: SimilarFilters | None = Field(None, description="Restrict the search (inside the store query). A "
                                           "keyword filter matches the stored value or its display value "
                                           "(e.g. an assignment group's sys_id or its name).")
    include_resolution: StrictBool = Field(False, description="Also return each result's close_notes, close_code "
                                                              "and resolved_at (null where not resolved).")

    @field_validator("short_description", "description", "text", "exclude", mode="after")
    @classmethod
    def _acceptable(cls, value: Any) -> Any:  # the input boundary: README "Security"
        for item in value if isinstance(value, list) else [value]:
            check_text_value(item)
        return value


class SimilarIncident(BaseModel):
    number: str
    short_description: str
    category: str | None = None
    assignment_group: str | None = None
    state: str | None = None
    opened_at: str | None = None
    score: float = Field(description="0.7 * dense + 0.3 * bm25, exactly (bundle weights).")
    dense: float = Field(description="Cosine similarity of the embeddings.")
    bm25: float = Field(description="Normalised BM25 in [0, 1], independent of the other results.")
    bm25_raw: float = Field(description="Qdrant's BM25 score before normalisation (IDF-weighted).")
    matched_terms: list[str] = Field(description="Query words this incident contains, rarest in the index first.")
    similar: bool | None = Field(description="score >= threshold, when the threshold is calibrated (see "
                                             "threshold_target for what it promises). Null while threshold_source is "
                                             "'uncalibrated_default': no flag yet, neither similar nor not similar "
                                             "(the quickstart calibrates in the background; /readyz says when).")
    close_notes: str | None = Field(None, description="Null unless include_resolution: how it was resolved.")
    close_code: str | None = Field(None, description="Null unless include_resolution: the resolution code.")
    resolved_at: str | None = Field(None, description="Null unless include_resolution: when it was resolved.")


class ThresholdTarget(BaseModel):
    unit: Literal["incident_false_alarm", "pair_fpr"] = Field(
        description="'incident_false_alarm': the share of new incidents with no earlier duplicate that get at least "
                    "one result marked similar; 'pair_fpr': the share of unrelated (query, incident) pairs scoring "
                    "at or above the threshold.")
    target: float = Field(description="The rate the threshold keeps under.")
    confidence: float = Field(description="Confidence that the target holds on later data: the threshold is the "
                                          "lowest whose one-sided exact binomial upper bound of the rate on the "
                                          "calibration data is at most the target (0: point estimate).")


class IndexFilling(BaseModel):
    """Incidents are still being indexed in the background (the quickstart serves before all are in)."""

    indexed: int = Field(description="Incidents of the background job indexed so far.")
    total: int = Field(description="Incidents the background job indexes in all.")
    message: str = Field(description="What this means for the answer.")


class CalibrationState(BaseModel):
    """The threshold being calibrated in the background (the quickstart: service/flag/background_calibration.py)."""

    state: Literal["running", "done", "failed", "stopped"] = Field(
        description="running: answers carry `similar: null` and threshold_source uncalibrated_default until it is "
                    "done; done: the calibrated threshold serves (threshold_source calibrated, boolean `similar`); "
                    "failed (the service log says why) or stopped: the uncalibrated default serves on.")
    message: str = Field(description="What the state means for the answers.")
    corpus: str = Field(description="The labelled incidents it calibrates on (train + validation splits).")
    incidents: int
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = Field(None, description="How long it took, once finished.")
    from_model_version: str | None = Field(None, description="The uncalibrated bundle it calibrates.")
    model_version: str | None = Field(None, description="The calibrated threshold-only bundle, once done.")
    threshold: float | None = Field(None, description="The calibrated threshold, once done.")
    error: str | None = Field(None, description="Why it failed.")


FILLING_MESSAGE = ("the index is still being filled: earlier incidents not indexed yet cannot be returned, so an "
                   "answer may miss them")


class SimilarResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "results": [{"number": "INC0010042", "short_description": "VPN certificate expired for remote users",
                     "category": "Network", "assignment_group": "Network Operations", "state": "Closed",
                     "opened_at": "2025-03-02T08:14:00", "score": 0.8312, "dense": 0.8735, "bm25": 0.7325,
                     "bm25_raw": 9.41, "matched_terms": ["certificate", "vpn", "connect"], "similar": True}],
        "threshold": 0.799, "threshold_source": "calibrated",
        "threshold_target": {"unit": "incident_false_alarm", "target": 0.05, "confidence": 0.95},
        "model_version": "mpnet-baseline-20261122071937-a357ef6f",
        "index_version": "mpnet-baseline-20261122071937-a357ef6f@20261122T080000Z",
        "truncated": False, "exact": True}]})

    results: list[SimilarIncident]
    threshold: float
    threshold_source: str = Field(description="'calibrated' or 'uncalibrated_default' (not tuned yet: every result's "
                                              "`similar` is null).")
    threshold_target: ThresholdTarget | None = Field(
        description="What the threshold was calibrated for; null while it is the uncalibrated default.")
    model_version: str
    index_version: str
    truncated: bool = Field(description="The query text was cut when embedded: at the model's max sequence length, "
                            "or at INCIDENT_SIM_MAX_QUERY_TOKENS where the service sets a lower cap.")
    exact: bool = Field(description="The top-k is certified to be the exact hybrid top-k.")
    index_filling: IndexFilling | None = Field(
        None, description="Set while incidents are still being indexed in the background (also the X-Index-Filling "
                          "header, 'indexed/total'): the answer covers only what is indexed so far. Null otherwise.")


class IncidentIn(BaseModel):
    """An incident as ServiceNow pushes it (display values or codes, plain strings)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "short_description": "Outlook cannot connect to Exchange", "description": "Since 9:00 Outlook shows "
        "'Trying to connect' for the whole finance floor.", "category": "Email", "subcategory": "Outlook",
        "assignment_group": "Messaging", "cmdb_ci": "exch-prod-01", "state": "2",
        "opened_at": "2026-11-22T09:05:00Z"}]})

    number: StrictStr | None = Field(None, description="Must equal the number in the path if given.")
    sys_id: StrictStr | None = None
    short_description: StrictStr = ""
    description: StrictStr = ""
    category: StrictStr | None = None
    subcategory: StrictStr | None = None
    cmdb_ci: StrictStr | None = None
    assignment_group: StrictStr | None = None
    state: StrictStr | None = None
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    close_notes: StrictStr | None = None
    problem_id: StrictStr | None = None
    duplicate_of: StrictStr | None = None
    parent_incident: StrictStr | None = None
    close_code: StrictStr | None = None
    sys_domain: StrictStr | None = Field(None, description="ServiceNow domain sys_id (filter: filters.sys_domain).")
    category_display: StrictStr | None = Field(None, description="Display value beside a raw category value; "
                                                                 "filters match either (likewise below).")
    subcategory_display: StrictStr | None = None
    cmdb_ci_display: StrictStr | None = Field(None, description="Name of the CI whose sys_id is cmdb_ci.")
    assignment_group_display: StrictStr | None = Field(None, description="Name of the group whose sys_id is "
                                                                         "assignment_group.")
    state_display: StrictStr | None = None
    sys_domain_display: StrictStr | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _acceptable(cls, value: Any) -> Any:  # the input boundary: README "Security"
        return check_datetime_value(check_text_value(value))


class IncidentWritten(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "number": "INC0099001", "status": "created", "truncated": False,
        "model_version": "mpnet-baseline-20261122071937-a357ef6f",
        "index_version": "mpnet-baseline-20261122071937-a357ef6f@20261122T080000Z"}]})

    number: str
    status: Literal["created", "updated"]
    truncated: bool = Field(description="The text was cut at the model's max sequence length when embedded.")
    model_version: str
    index_version: str


class StoredIncidentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "number": "INC0099001", "index_version": "mpnet-baseline-20261122071937-a357ef6f@20261122T080000Z",
        "incident": {"number": "INC0099001", "short_description": "Outlook cannot connect to Exchange"}}]})

    number: str
    index_version: str
    incident: dict[str, Any]


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"incidents": [
        {"number": "INC0099001", "short_description": "Outlook cannot connect to Exchange"},
        {"number": "INC0099002", "short_description": "Printer on floor 3 jams", "category": "Hardware"}]}]})

    incidents: list[dict[str, Any]] = Field(
        min_length=1, max_length=10_000,
        description="Incidents with their `number` (the IncidentIn shape). Every item is checked before anything is "
                    "written; a bad item is reported (status `invalid`, with the field) and the valid ones are "
                    "written. At most the service's max_bulk_incidents (100 by default).")


class BulkItemResult(BaseModel):
    index: int = Field(description="Position in the request's list.")
    number: str | None
    status: Literal["created", "updated", "invalid"]
    truncated: bool = False
    error: str | None = None


class BulkResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "created": 1, "updated": 0, "failed": 1,
        "model_version": "mpnet-baseline-20261122071937-a357ef6f",
        "index_version": "mpnet-baseline-20261122071937-a357ef6f@20261122T080000Z",
        "results": [{"index": 0, "number": "INC0099001", "status": "created", "truncated": False, "error": None},
                    {"index": 1, "number": None, "status": "invalid", "truncated": False,
                     "error": "number: Field required"}]}]})

    created: int
    updated: int
    failed: int
    model_version: str
    index_version: str
    results: list[BulkItemResult]


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None
    details: list[dict[str, Any]] | None = Field(None, description="Validation problems ({field, message}), at most "
                                                "20; details_total says how many there were.")
    details_total: int | None = Field(None, description="How many validation problems the request had.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ReadyResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "ready": True, "reason": "ready", "message": "bundle loaded, index reachable",
        "model_version": "mpnet-baseline-20261122071937-a357ef6f",
        "index_version": "mpnet-baseline-20261122071937-a357ef6f@20261122T080000Z"}]})

    ready: bool
    reason: str = Field(description="A code: ready, index_missing, index_locked, index_mismatch, store_unavailable "
                                    "or internal. Details (paths, URLs, errors) are in the service log, not here.")
    message: str = Field(description="A short explanation, free of paths and URLs.")
    model_version: str
    index_version: str | None
    indexing: IndexFilling | None = Field(
        None, description="Set while incidents are still being indexed in the background: the service answers, "
                          "over what is indexed so far.")
    calibration: CalibrationState | None = Field(
        None, description="Set where the threshold is calibrated in the background (the quickstart): `running` "
                          "while it runs (the service is ready and answers, with `similar: null`), then `done` or "
                          "`failed`. Null where there is none.")


_ERROR_EXAMPLES: dict[int, tuple[str, str, str]] = {
    401: ("unauthorized", "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'", "No key."),
    403: ("forbidden", "API key 'dashboards' lacks the 'write' scope this route needs", "Wrong scope."),
    404: ("not_found", "no incident INC0099001 in index mpnet-baseline-...@20261122T080000Z", "Unknown incident."),
    409: ("conflict", "a rebuild for finetuned-20261122-1a2b3c4d is running (1280/5000); wait for it",
          "A model switch is already running, or the version already serves."),
    413: ("payload_too_large", "request body exceeds the limit of 262144 bytes; send less text", "Body too big."),
    415: ("unsupported_media_type", "send the body as JSON with Content-Type: application/json", "Not JSON."),
    422: ("invalid_request", "top_k: Input should be less than or equal to 50", "Invalid request."),
    429: ("overloaded", "16 requests are in flight, the most this service takes; retry after 1 s", "Too busy."),
    503: ("store_unavailable", "Qdrant at <url> failed on query_points: ConnectError",
          "Store or bundle not available."),
}


def error_responses(*statuses: int, plain_route: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses: the one error body shape, with an example each.
    `plain_route`: the route's own media type is not JSON, so the schema is referenced explicitly (FastAPI
    would otherwise file the error model under the route's media type)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, message, summary = _ERROR_EXAMPLES[status]
        media: dict[str, Any] = {
            "example": {"error": {"code": code, "message": message, "request_id": "5f0c3b1e9a7d4c2b"}}}
        if plain_route:
            media["schema"] = {"$ref": "#/components/schemas/ErrorResponse"}
            out[status] = {"description": summary, "content": {"application/json": media}}
        else:
            out[status] = {"model": ErrorResponse, "description": summary, "content": {"application/json": media}}
    return out
