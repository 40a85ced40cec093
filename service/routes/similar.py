"""POST /similar: validate, hand to the engine, shape the answer. Nothing else."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.engine import Engine
from service.schemas import ErrorResponse, SimilarIncident, SimilarRequest, SimilarResponse

router = APIRouter()

ERRORS = {status: {"model": ErrorResponse} for status in (413, 415, 422, 503)}


@router.post("/similar", response_model=SimilarResponse, responses=ERRORS, name="similar",
             summary="Earlier incidents most similar to a new one")
def similar(body: SimilarRequest, request: Request) -> SimilarResponse:
    # a sync route: FastAPI runs it in the thread pool, so encoding never blocks the event loop
    engine: Engine = request.app.state.engine
    query = engine.build_query(body.short_description, body.description, body.text, body.top_k, body.exclude)
    answer = engine.similar(query)
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
