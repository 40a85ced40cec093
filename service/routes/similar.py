"""POST /similar: validate, hand to the engine, shape the answer. Nothing else."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.engine import Engine, SimilarQuery, query_text
from service.errors import InvalidQueryError
from service.schemas import ErrorResponse, SimilarIncident, SimilarRequest, SimilarResponse

router = APIRouter()

ERRORS = {status: {"model": ErrorResponse} for status in (413, 415, 422, 503)}


@router.post("/similar", response_model=SimilarResponse, responses=ERRORS, name="similar",
             summary="Earlier incidents most similar to a new one")
def similar(body: SimilarRequest, request: Request) -> SimilarResponse:
    # a sync route: FastAPI runs it in the thread pool, so encoding never blocks the event loop
    settings = request.app.state.settings
    engine: Engine = request.app.state.engine
    if body.text is not None and (body.short_description is not None or body.description is not None):
        raise InvalidQueryError("give either 'text' or 'short_description'/'description', not both")
    for name in ("short_description", "description", "text"):
        value = getattr(body, name)
        if value is not None and len(value) > settings.max_text_chars:
            raise InvalidQueryError(f"{name} is {len(value)} characters; the limit is {settings.max_text_chars}")
    if body.top_k > settings.max_top_k:
        raise InvalidQueryError(f"top_k must be between 1 and {settings.max_top_k}")
    text = query_text(body.short_description, body.description, body.text)
    if not text:
        raise InvalidQueryError("the incident text is empty: send a non-blank short_description, description or text")
    answer = engine.similar(SimilarQuery(text=text, top_k=body.top_k, exclude=tuple(body.exclude)))
    metrics = request.app.state.metrics
    for stage, seconds in answer.stage_seconds.items():
        metrics.stage_latency.labels(stage=stage).observe(seconds)
    if answer.truncated:
        metrics.truncated_inputs.inc()
    return SimilarResponse(
        results=[
            SimilarIncident(number=str(r.payload.get("number", r.point_id)),
                            short_description=str(r.payload.get("short_description", "")),
                            score=r.score, dense=r.dense, bm25=r.bm25, similar=answer.is_similar(r))
            for r in answer.results
        ],
        threshold=answer.threshold,
        threshold_source=answer.threshold_source,
        model_version=answer.model_version,
        index_version=answer.index_version,
        truncated=answer.truncated,
        exact=answer.exact,
    )
