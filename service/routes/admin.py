"""Model management (admin scope): list bundles, activate one (background rebuild + atomic switch),
watch the rebuild, roll back; index compaction (Qdrant Edge)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from indexing.errors import (
    BundleError,
    IncidentSimError,
    InvalidQueryError,
    StoreUnavailableError,
    SwapInProgressError,
    UnknownBundleError,
)
from service.auth import require
from service.schemas import error_responses
from service.settings import Scope
from service.versions.compaction import IndexCompactor
from service.versions.switcher import ModelSwitcher


def compactor_of(request: Request) -> IndexCompactor:
    compactor = request.app.state.compactor
    if compactor is None:
        raise StoreUnavailableError("index compaction needs the index store, which was unreachable at start-up")
    return compactor


def switcher_of(request: Request) -> ModelSwitcher:
    switcher = request.app.state.switcher
    if switcher is None:
        raise StoreUnavailableError("model switching needs the index store, which was unreachable at start-up")
    return switcher


router = APIRouter(prefix="/admin/models", tags=["admin"], dependencies=[Depends(require(Scope.admin))])

STATUS_EXAMPLE = {"state": "building", "model_version": "finetuned-20261122-1a2b3c4d+cal20261122T101500Z",
                  "index_version": "finetuned-20261122-1a2b3c4d+cal20261122T101500Z@20261122T102000000000Z",
                  "previous_model_version": "mpnet-baseline-20261122071937-a357ef6f", "total": 5000, "done": 1280,
                  "progress": 0.256, "started_at": "2026-11-22T10:20:00+00:00", "finished_at": None,
                  "swap_seconds": None, "self_retrieval": None, "error": None}


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"model_version": "finetuned-20261122-1a2b3c4d+cal20261122T101500Z"}]})

    model_version: str = Field(min_length=1, max_length=200, description="A bundle version in the registry.")


class RebuildStatusOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [STATUS_EXAMPLE]})

    state: str = Field(description="idle, building, switched, failed or rolled_back.")
    model_version: str | None
    index_version: str | None
    progress: float


class ModelsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "serving": {"model_version": "mpnet-baseline-20261122071937-a357ef6f",
                    "index_version": "mpnet-baseline-20261122071937-a357ef6f@20261122T080000000000Z"},
        "bundles": [{"model_version": "mpnet-baseline-20261122071937-a357ef6f", "created_at": "2026-11-22T07:19:37Z",
                     "threshold_source": "calibrated", "encoder_precision": "int8", "active": True}],
        "index_versions": {"mpnet-baseline-20261122071937-a357ef6f@20261122T080000000000Z": True},
        "rebuild": STATUS_EXAMPLE}]})

    serving: dict[str, Any]
    bundles: list[dict[str, Any]]
    index_versions: dict[str, bool]
    rebuild: dict[str, Any]


@router.get("", response_model=ModelsOut, name="list_models", summary="Bundles, index versions and what serves",
            responses=error_responses(401, 403, 429, 503))
def list_models(request: Request) -> ModelsOut:
    engine = request.app.state.engine
    switcher = switcher_of(request)
    return ModelsOut(serving={"model_version": engine.bundle.model_version, "index_version": engine.index_version},
                     bundles=[asdict(e) for e in engine.registry.entries()] if engine.registry else [],
                     index_versions=engine.catalog.versions() if engine.catalog else {},
                     rebuild=switcher.status().to_dict())


@router.post("/activate", status_code=202, response_model=RebuildStatusOut, name="activate_model",
             summary="Re-index with this bundle in the background, then switch model and index together",
             responses=error_responses(401, 403, 404, 409, 415, 422, 429, 503))
def activate(body: ActivateRequest, request: Request) -> JSONResponse:
    try:
        status = switcher_of(request).activate(body.model_version)
    except UnknownBundleError:
        raise
    except BundleError as exc:  # checksums or parity failed: refused, the current model keeps serving
        raise InvalidQueryError(f"bundle {body.model_version} refused: {exc}") from None
    return JSONResponse(status.to_dict(), status_code=202)


@router.get("/rebuild", response_model=RebuildStatusOut, name="rebuild_status",
            summary="Progress of the running (or last) rebuild", responses=error_responses(401, 403, 429, 503))
def rebuild_status(request: Request) -> dict[str, Any]:
    return switcher_of(request).status().to_dict()


@router.post("/rollback", response_model=RebuildStatusOut, name="rollback_model",
             summary="Switch back to the previous model and its index (kept until retention drops it)",
             responses=error_responses(401, 403, 409, 429, 503))
def rollback(request: Request) -> dict[str, Any]:
    return switcher_of(request).rollback().to_dict()


index_router = APIRouter(prefix="/admin/index", tags=["admin"], dependencies=[Depends(require(Scope.admin))])

COMPACTION_EXAMPLE = {"state": "done", "reason": "writes",
                      "source_index_version": "mpnet-baseline-20261122071937-a357ef6f@20261122T080000000000Z",
                      "index_version": "mpnet-baseline-20261122071937-a357ef6f@20261123T101500000000Z",
                      "incidents": 7000, "copied": 7000, "caught_up": 12, "optimize_seconds": 9.8,
                      "total_seconds": 14.2, "started_at": "2026-11-23T10:15:00+00:00",
                      "finished_at": "2026-11-23T10:15:14+00:00", "error": None}


class CompactionOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [COMPACTION_EXAMPLE]})

    state: str = Field(description="idle, copying, optimizing, catching_up, done, failed or skipped.")
    index_version: str | None


class CompactionStateOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"writes_since_build": 12, "background": True, "last": COMPACTION_EXAMPLE}]})

    writes_since_build: int = Field(description="Incident writes since the active index version was built.")
    background: bool = Field(description="Whether compaction runs by itself (Qdrant Edge, compact_after_writes > 0).")
    last: CompactionOut


@index_router.get("/compaction", response_model=CompactionStateOut, name="compaction_status",
                  summary="Writes since the index was built, and the running (or last) compaction",
                  responses=error_responses(401, 403, 429, 503))
def compaction_status(request: Request) -> dict[str, Any]:
    compactor = compactor_of(request)
    return {"writes_since_build": request.app.state.engine.writes_since_build,
            "background": compactor.enabled and compactor.policy.after_writes > 0,
            "last": compactor.status().to_dict()}


@index_router.post("/compact", response_model=CompactionOut, name="compact_index",
                   summary="Compact the serving index now (fresh HNSW, deletes vacuumed); answers when switched",
                   responses=error_responses(401, 403, 409, 429, 503))
def compact(request: Request) -> dict[str, Any]:
    try:
        return compactor_of(request).compact("requested").to_dict()
    except (SwapInProgressError, StoreUnavailableError):
        raise
    except IncidentSimError as exc:  # the serving index is untouched; the status endpoint keeps the reason
        raise StoreUnavailableError(f"the compaction failed and the serving index is untouched: {exc}") from None
