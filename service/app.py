"""App factory. The engine is built outside (CLI or tests) and injected; the lifespan closes it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.engine import Engine
from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import RequestContextMiddleware
from service.routes import health, similar
from service.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings, engine: Engine, metrics: Metrics | None = None) -> FastAPI:
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("serving model %s, index %s", engine.bundle.model_version, engine.index_version)
        yield
        engine.close()

    app = FastAPI(title="incident-sim", version="0.1.0", lifespan=lifespan,
                  description="Similar-incident retrieval: hybrid dense + BM25 over Qdrant.")
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    install_error_handlers(app)

    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    app.include_router(similar.router)
    app.include_router(health.router)
    return app
