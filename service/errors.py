"""One table from domain errors to HTTP status, and one error body shape everywhere."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexing.errors import (
    BundleError,
    IncidentNotFoundError,
    IndexMismatchError,
    InputDataError,
    InvalidQueryError,
    InvalidVersionError,
    StoreUnavailableError,
    SwapInProgressError,
    SwapRefusedError,
    UnknownBundleError,
)
from service.auth import AuthError, ScopeError
from service.metrics import route_template

logger = logging.getLogger(__name__)


# domain error -> (HTTP status, error code)
ERROR_TABLE: dict[type[Exception], tuple[int, str]] = {
    InvalidQueryError: (422, "invalid_request"),
    IncidentNotFoundError: (404, "not_found"),
    UnknownBundleError: (404, "not_found"),
    InvalidVersionError: (422, "invalid_request"),
    SwapInProgressError: (409, "conflict"),
    SwapRefusedError: (409, "conflict"),
    InputDataError: (422, "invalid_request"),
    StoreUnavailableError: (503, "store_unavailable"),
    IndexMismatchError: (503, "index_mismatch"),
    BundleError: (503, "bundle_unavailable"),
}


MAX_DETAILS = 20  # validation problems listed in one error body; `details_total` says how many there were

# what an error body never carries (logged instead): URLs, and absolute file paths (POSIX or Windows) other than
# this API's own routes
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\"]+")
_POSIX_PATH = re.compile(r"(?<![\w.~/:-])/(?!(?:incidents|similar|admin|metrics|readyz|healthz|docs)\b)"
                         r"[^\s'\"/()<>]+(?:/[^\s'\"()<>]*)*")


def scrub(message: str) -> str:
    """`message` without URLs and absolute paths (each replaced by a placeholder), and encodable (a lone surrogate
    quoted from the input is escaped)."""
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    message = _URL.sub("<url>", message)
    message = _WINDOWS_PATH.sub("<path>", message)
    return _POSIX_PATH.sub("<path>", message)


def error_body(code: str, message: str, request_id: str | None, details: Any = None) -> dict[str, Any]:
    """The one error body. The message is scrubbed of URLs and paths (the caller logs the original where it
    matters); at most MAX_DETAILS details, with their total."""
    body: dict[str, Any] = {"error": {"code": code, "message": scrub(message), "request_id": request_id}}
    if details is not None:
        if isinstance(details, list):
            body["error"]["details_total"] = len(details)
            details = details[:MAX_DETAILS]
        body["error"]["details"] = details
    return body


def request_id_of(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def validation_message(exc: RequestValidationError | ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """The first problem as one line ('field: what is wrong'), and all of them as details."""
    details = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False) if isinstance(
            exc, ValidationError) else exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        details.append({"field": ".".join(loc)[:200] or "body", "message": str(err.get("msg", "invalid"))[:500]})
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    return f"{first['field']}: {first['message']}", details


def install_error_handlers(app: FastAPI) -> None:
    metrics = app.state.metrics

    def respond(request: Request, status: int, code: str, message: str, details: Any = None,
                headers: dict[str, str] | None = None) -> JSONResponse:
        metrics.errors.labels(route=route_template(request.scope), code=code).inc()
        if scrub(message) != message:  # the body says less than the log
            logger.info("request %s: %d %s: %s", request_id_of(request), status, code, message)
        return JSONResponse(error_body(code, message, request_id_of(request), details), status_code=status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = validation_message(exc)
        return respond(request, 422, "invalid_request", message, details)

    @app.exception_handler(AuthError)
    async def _unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        return respond(request, 401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ScopeError)
    async def _forbidden(request: Request, exc: ScopeError) -> JSONResponse:
        return respond(request, 403, "forbidden", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
                415: "unsupported_media_type"}.get(exc.status_code, "http_error")
        return respond(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    for exc_type, (status, code) in ERROR_TABLE.items():
        def make(status: int = status, code: str = code):  # type: ignore[no-untyped-def]
            async def handler(request: Request, exc: Exception) -> JSONResponse:
                if status >= 500:
                    logger.warning("request %s failed: %s", request_id_of(request), exc)
                return respond(request, status, code, str(exc))
            return handler
        app.add_exception_handler(exc_type, make())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error in request %s", request_id_of(request))
        return respond(request, 500, "internal_error", "internal error; see the service log for this request id")
