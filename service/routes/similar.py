"""POST /similar: validate, hand to the engine, shape the answer. Nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from indexing.errors import InvalidQueryError
from indexing.incidents import normalise_number
from service.auth import require
from service.engine import Engine
from service.routes.health import index_filling
from service.schemas import SimilarIncident, SimilarRequest, SimilarResponse, ThresholdTarget, error_responses
from service.settings import Scope

router = APIRouter(tags=["similar"])


RESOLUTION_FIELDS = ("close_notes", "close_code", "resolved_at")


def resolution(payload: dict[str, Any]) -> dict[str, str | None]:
    """A result's resolution fields, as stored (include_resolution)."""
    return {name: None if payload.get(name) is None else str(payload[name]) for name in RESOLUTION_FIELDS}


@router.post("/similar", response_model=SimilarResponse, name="similar",
             responses=error_responses(401, 403, 413, 415, 422, 429, 503),
             dependencies=[Depends(require(Scope.query))],
             summary="Earlier incidents most similar to a new one",
             description="Hybrid score 0.7 x dense + 0.3 x BM25 per result, marked similar at the bundle's "
                         "calibrated threshold (`similar` is null while the threshold is the uncalibrated default). "
                         "Filters are applied inside the store query. Needs the `query` scope.")
def similar(body: SimilarRequest, request: Request, response: Response) -> SimilarResponse:
    # a sync route: FastAPI runs it in the thread pool, so encoding never blocks the event loop
    engine: Engine = request.app.state.engine
    filters = body.filters
    limit = request.app.state.settings.max_field_chars
    for name, values in (filters.keyword_fields() if filters else {}).items():
        for value in values:
            if len(value) > limit:
                raise InvalidQueryError(f"filters.{name}: a value is {len(value)} characters; the limit is {limit}")
    query = engine.build_query(
        body.short_description, body.description, body.text, body.top_k, body.exclude,
        fields=filters.keyword_fields() if filters else None,
        opened_after=filters.opened_after if filters else None,
        opened_before=filters.opened_before if filters else None)
    filling = index_filling(request)  # read before the search: the answer covers at least this much
    answer = engine.similar(query)
    request.app.state.metrics.observe_answer(answer)
    request.app.state.flag.record_answer(answer, normalise_number(body.exclude[0]) if body.exclude else None)
    if filling is not None:
        response.headers["X-Index-Filling"] = f"{filling.indexed}/{filling.total}"
    return SimilarResponse(
        results=[
            SimilarIncident(number=str(r.payload.get("number", r.point_id)),
                            short_description=str(r.payload.get("short_description", "")),
                            category=r.payload.get("category"), assignment_group=r.payload.get("assignment_group"),
                            state=r.payload.get("state"), opened_at=r.payload.get("opened_at"),
                            score=r.score, dense=r.dense, bm25=r.bm25, bm25_raw=r.bm25_raw,
                            matched_terms=list(r.matched_terms), similar=answer.is_similar(r),
                            **(resolution(r.payload) if body.include_resolution else {}))
            for r in answer.results
        ],
        threshold=answer.threshold,
        threshold_source=answer.threshold_source,
        threshold_target=ThresholdTarget(**answer.threshold_target) if answer.threshold_target else None,
        model_version=answer.model_version,
        index_version=answer.index_version,
        truncated=answer.truncated,
        exact=answer.exact,
        index_filling=filling,
    )
