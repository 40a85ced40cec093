"""Pure ASGI middleware: request id, body-size limit (before the body is read), latency metrics and
a one-line access log per request (no incident text)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body
from service.metrics import Metrics

logger = logging.getLogger("service.access")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

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

        async def reject(status: int, code: str, message: str) -> None:
            body = json.dumps(error_body(code, message, request_id)).encode()
            self.metrics.errors.labels(route=_route_template(scope), code=code).inc()
            await send_wrapper({"type": "http.response.start", "status": status,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode()),
                                            (b"connection", b"close")]})
            await send_wrapper({"type": "http.response.body", "body": body})
            status_holder["rejected"] = True

        async def too_large() -> None:
            await reject(413, "payload_too_large",
                         f"request body exceeds the limit of {self.max_body_bytes} bytes; send less text")

        declared = headers.get("content-length")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if scope["method"] in ("POST", "PUT", "PATCH") and content_type != "application/json":
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

                await self.app(scope, limited_receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route_name") or _route_template(scope)
            self.metrics.request_latency.labels(route=route, method=scope["method"],
                                                status=str(status_holder["status"])).observe(elapsed)
            logger.info("%s %s -> %s in %.1f ms [request_id=%s]", scope["method"], scope["path"],
                        status_holder["status"], elapsed * 1000, request_id)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
