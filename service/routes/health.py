"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.auth import require_any_key
from service.schemas import FILLING_MESSAGE, IndexFilling, ReadyResponse, error_responses

router = APIRouter(tags=["operations"])


@router.get("/healthz", name="healthz", summary="The process is alive",
            responses={200: {"content": {"application/json": {"example": {"status": "alive"}}}}})
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", name="readyz", response_model=ReadyResponse, responses={503: {
                "model": ReadyResponse, "description": "Not ready (the reason says why).",
                "content": {"application/json": {"example": {
                    "ready": False, "reason": "store_unavailable",
                    "message": "the incident store is unreachable or failing",
                    "model_version": "mpnet-baseline-20261122071937-a357ef6f", "index_version": None}}}}},
            summary="Bundle loaded and store reachable")
def readyz(request: Request) -> JSONResponse:
    engine = request.app.state.engine
    readiness = engine.readiness()
    calibration = request.app.state.background_calibration
    body = ReadyResponse(ready=readiness.ready, reason=readiness.code, message=readiness.message,
                         model_version=engine.bundle.model_version, index_version=engine.index_version,
                         indexing=index_filling(request),
                         calibration=None if calibration is None else calibration.progress().to_dict())
    return JSONResponse(body.model_dump(), status_code=200 if readiness.ready else 503)


@router.get("/metrics", name="metrics", summary="Prometheus metrics (text exposition format)",
            response_class=PlainTextResponse, dependencies=[Depends(require_any_key)], responses={
                200: {"content": {"text/plain": {"example": "incident_sim_requests_in_flight 0.0\n"}}},
                **error_responses(401, plain_route=True)})
def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    engine = request.app.state.engine
    m.ready.set(1 if engine.readiness().ready else 0)
    m.writes_since_build.set(engine.writes_since_build)
    try:
        m.index_size.set(engine.store.count())
    except Exception:  # the scrape must work while the store is down
        pass
    background = request.app.state.background_indexing
    if background is not None:
        progress = background.progress()
        m.background_indexing.labels(state="indexed").set(progress.indexed)
        m.background_indexing.labels(state="total").set(progress.total)
    m.versions.info({"model_version": engine.bundle.model_version, "index_version": engine.index_version or ""})
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


def index_filling(request: Request) -> IndexFilling | None:
    """What the background indexing has done so far, while it runs; None when there is none or it has ended."""
    background = request.app.state.background_indexing
    if background is None:
        return None
    progress = background.progress()
    if not progress.filling:
        return None
    return IndexFilling(indexed=progress.indexed, total=progress.total, message=FILLING_MESSAGE)
