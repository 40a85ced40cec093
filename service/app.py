"""App factory. The engine is built outside (CLI or tests) and injected; the lifespan closes it.
Start-up refuses unsafe API-key settings (AuthConfigError)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.auth import KeyRing
from service.background_indexing import BackgroundIndexer
from service.engine import Engine
from service.errors import install_error_handlers
from service.flag import build_flag_watch, build_recalibrator, payload_fetcher
from service.flag.background_calibration import BackgroundCalibration
from service.metrics import Metrics
from service.middleware import RequestContextMiddleware
from service.routes import admin, health, incidents, similar
from service.routes import feedback as feedback_routes
from service.settings import Settings
from service.wiring import build_compactor, build_switcher

logger = logging.getLogger(__name__)

DESCRIPTION = """Similar-incident retrieval for IT operations: hybrid dense + BM25 search over Qdrant.

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`. Scopes: `query` (POST /similar,
GET /incidents/{number}), `write` (incident pushes), `admin` (everything). Every error has the body
`{"error": {"code", "message", "request_id"}}`; the request id is also the `X-Request-ID` header.
Beyond the configured number of requests in flight the service answers 429 with `Retry-After`."""


def create_app(settings: Settings, engine: Engine, metrics: Metrics | None = None,
               background_indexing: BackgroundIndexer | None = None,
               background_calibration: BackgroundCalibration | None = None) -> FastAPI:
    """`background_indexing`: incidents still being indexed while the service answers (the quickstart); started
    with the service, stopped before the engine closes. `background_calibration`: the threshold calibrated
    meanwhile (the quickstart; service/flag/background_calibration.py), started with the service once it answers,
    switching through this app's switcher."""
    metrics = metrics or Metrics()
    keyring = KeyRing.from_settings(settings)  # raises AuthConfigError before anything is served

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("serving model %s, index %s", engine.bundle.model_version, engine.index_version,
                    extra={"model_version": engine.bundle.model_version, "index_version": engine.index_version})
        if app.state.compactor is not None:
            app.state.compactor.start()
        if background_indexing is not None:
            background_indexing.start()
        if background_calibration is not None:
            background_calibration.start()
        app.state.flag.start_link_checks(payload_fetcher(engine), settings.flag_link_check_s,
                                         settings.flag_link_window_days * 86400)
        yield
        logger.info("shutting down: in-flight requests have drained")
        if background_calibration is not None:
            background_calibration.stop()
        if background_indexing is not None:
            background_indexing.stop()
        if app.state.compactor is not None:
            app.state.compactor.stop()
        app.state.flag.close()
        engine.close()

    app = FastAPI(title="incident-sim", version="0.1.0", lifespan=lifespan, description=DESCRIPTION)
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.background_indexing = background_indexing
    app.state.background_calibration = background_calibration
    app.state.keyring = keyring
    app.state.switcher = build_switcher(settings, engine, metrics)
    app.state.compactor = build_compactor(
        settings, engine, app.state.switcher, metrics,
        postpone=lambda: "the background indexing runs" if background_indexing is not None
        and background_indexing.progress().filling else None) if app.state.switcher else None
    app.state.flag = build_flag_watch(settings, engine, metrics)  # answer log, feedback, live watch
    app.state.recalibrator = build_recalibrator(settings, engine, app.state.flag, app.state.switcher)
    if background_calibration is not None:
        background_calibration.bind(app.state.switcher)
    install_error_handlers(app)

    routers = (similar.router, incidents.router, admin.router, admin.index_router, health.router,
               feedback_routes.router, feedback_routes.admin_router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes,
                       max_in_flight=settings.max_in_flight, retry_after_s=settings.retry_after_s,
                       routes=[route for router in routers for route in router.routes])
    return app
