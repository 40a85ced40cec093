"""Pure ASGI middleware: request id, load shedding (429 beyond `max_in_flight`), content type and
body-size limit (before the body is read), latency/outcome metrics and one structured access-log
record per request (request id, route, status, latency, outcome; never incident text)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body
from service.metrics import Metrics, outcome_of, route_template

logger = logging.getLogger("service.access")

# never shed: probes and scrapes must answer while the service is saturated
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, max_in_flight: int = 16,
                 retry_after_s: int = 1, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.routes = routes  # to name the route of requests answered before routing
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0  # only touched on the event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        if len(request_id) > 128 or not request_id.isprintable():
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "rejected": False}

        async def send_wrapper(message: Message) -> None:
            if status_holder["rejected"]:
                return  # a 413 has been sent already; whatever the app says now goes nowhere
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        async def reject(status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
            body = json.dumps(error_body(code, message, request_id)).encode()
            self.metrics.errors.labels(route=route_template(scope, self.routes), code=code).inc()
            await send_wrapper({"type": "http.response.start", "status": status,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode()),
                                            (b"connection", b"close"), *extra]})
            await send_wrapper({"type": "http.response.body", "body": body})
            status_holder["rejected"] = True

        async def too_large() -> None:
            await reject(413, "payload_too_large",
                         f"request body exceeds the limit of {self.max_body_bytes} bytes; send less text")

        declared = headers.get("content-length")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        limited = scope["path"] not in UNLIMITED_PATHS
        counted = False
        try:
            if limited and self.in_flight >= self.max_in_flight:
                # shed load now instead of queueing: the caller retries, the queue never grows
                await reject(429, "overloaded", f"{self.in_flight} requests are in flight, the most this service "
                             f"takes; retry after {self.retry_after_s} s",
                             [(b"retry-after", str(self.retry_after_s).encode())])
            elif (scope["method"] in ("POST", "PUT", "PATCH") and content_type != "application/json"
                  and (content_type or _has_body(headers))):  # a bodiless POST (e.g. rollback) needs no type
                await reject(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
            elif declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await too_large()
            else:
                received = 0

                async def limited_receive() -> Message:
                    nonlocal received
                    if status_holder["rejected"]:
                        return {"type": "http.disconnect"}
                    message = await receive()
                    if message["type"] == "http.request":
                        received += len(message.get("body", b""))
                        if received > self.max_body_bytes:
                            # answer now, before the rest of the body is read; the app sees a disconnect
                            await too_large()
                            return {"type": "http.disconnect"}
                    return message

                if limited:
                    self.in_flight += 1
                    counted = True
                    self.metrics.in_flight.inc()
                await self.app(scope, limited_receive, send_wrapper)
        finally:
            if counted:
                self.in_flight -= 1
                self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            status = int(status_holder["status"])
            route = route_template(scope, self.routes)
            outcome = outcome_of(status)
            self.metrics.request_latency.labels(route=route, method=scope["method"], status=str(status)).observe(
                elapsed)
            self.metrics.requests.labels(route=route, outcome=outcome).inc()
            logger.info("%s %s -> %d in %.1f ms", scope["method"], route, status, elapsed * 1000,
                        extra={"request_id": request_id, "method": scope["method"], "route": route,
                               "status": status, "latency_ms": round(elapsed * 1000, 2), "outcome": outcome,
                               "caller": scope.get("state", {}).get("caller")})



def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
