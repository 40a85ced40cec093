"""Pure ASGI middleware: request id, authentication, content type, body size and body-read deadline, load
shedding, latency/outcome metrics and one structured access-log record per request (request id, route,
status, latency, outcome; never incident text).

The order is what keeps a slow or hostile client from locking others out:
1. A route that needs a key is authenticated from the headers first: no valid key, 401 at once, no slot taken
   and no body read.
2. The body (at most `max_body_bytes`, 413 beyond) is read before any slot is taken, within
   `body_read_timeout_s` of the request's arrival (408 after it): a client trickling its body holds a
   connection, never an in-flight slot, and not for longer than the deadline.
3. Only then is a slot taken: keyed routes share `max_in_flight`; the routes without a key (/healthz, /readyz,
   /metrics, /docs, unknown paths) have a small budget of their own (`max_in_flight_unauthenticated`), so probes and
   scrapes never starve keyed traffic. Beyond either, 429 with Retry-After: the queue never grows.

The key ring and the settings are read from the app's state (`scope["app"].state`), where `create_app` puts them;
values passed to the constructor win."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import AuthError
from service.errors import error_body
from service.metrics import Metrics, outcome_of, route_template

logger = logging.getLogger("service.access")

# routes without a key (unless protect_metrics puts /metrics behind one): their own small in-flight budget
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                        "/redoc"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CLIENT_CLOSED = 499  # the client went away before its request was read (nginx's code; logged, never sent)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, max_in_flight: int = 16,
                 retry_after_s: int = 1, routes: Sequence[BaseRoute] = (), *,
                 max_in_flight_unauthenticated: int | None = None, body_read_timeout_s: float | None = None,
                 keyring: Any = None) -> None:
        self.app = app
        self.routes = routes  # to name the route of requests answered before routing, and to find keyed ones
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self._open_budget = max_in_flight_unauthenticated
        self._body_timeout = body_read_timeout_s
        self._keyring = keyring
        self.in_flight = 0  # keyed requests; only touched on the event loop: no lock needed
        self.open_in_flight = 0  # requests to routes without a key

    # -- configuration read from the app (create_app puts settings and key ring in its state) ----------------
    @staticmethod
    def _state(scope: Scope) -> Any:
        return getattr(scope.get("app"), "state", None)

    def _settings(self, scope: Scope) -> Any:
        return getattr(self._state(scope), "settings", None)

    def open_budget(self, scope: Scope) -> int:
        if self._open_budget is not None:
            return self._open_budget
        return int(getattr(self._settings(scope), "max_in_flight_unauthenticated", 4))

    def body_timeout(self, scope: Scope) -> float:
        if self._body_timeout is not None:
            return self._body_timeout
        return float(getattr(self._settings(scope), "body_read_timeout_s", 10.0))

    def keyring(self, scope: Scope) -> Any:
        return self._keyring if self._keyring is not None else getattr(self._state(scope), "keyring", None)

    def needs_key(self, scope: Scope) -> bool:
        """Whether the request goes to a route that needs a key (checked here before anything else). Unknown paths
        do not: the app answers them 404 within the budget of the open routes."""
        path = scope["path"]
        if path in OPEN_PATHS:
            return path == "/metrics" and bool(getattr(self._settings(scope), "protect_metrics", False))
        return any(route.matches(scope)[0] != Match.NONE for route in self.routes)

    def slash_redirect(self, scope: Scope) -> str | None:
        """`/metrics/` -> `/metrics`: a relative Location (never built from the Host header), and only to a route
        this app has (so `//evil.example/` is no redirect)."""
        path = scope["path"]
        if len(path) < 2 or not path.endswith("/") or path.startswith("//"):
            return None
        stripped = {**scope, "path": path.rstrip("/")}
        if not stripped["path"] or not (stripped["path"] in OPEN_PATHS or any(
                route.matches(stripped)[0] == Match.FULL for route in self.routes)):
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return stripped["path"] + (f"?{query}" if query else "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        repeated: set[str] = set()
        for k, v in scope.get("headers", []):
            name = k.decode("latin-1").lower()
            if name in headers:
                repeated.add(name)
            else:
                headers[name] = v.decode("latin-1")  # the first value: what Starlette's Headers.get reads
        request_id = headers.get("x-request-id", "")
        if not REQUEST_ID.fullmatch(request_id):  # a client's id reaches the logs only if it is plainly an id
            request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        start = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "rejected": False}

        async def send_wrapper(message: Message) -> None:
            if status_holder["rejected"]:
                return  # this middleware has answered already; whatever the app says now goes nowhere
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        async def reject(status: int, code: str, message: str, extra: Sequence[tuple[bytes, bytes]] = (),
                         close: bool = True) -> None:
            body = json.dumps(error_body(code, message, request_id)).encode()
            self.metrics.errors.labels(route=route_template(scope, self.routes), code=code).inc()
            response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *extra]
            if close:  # the rest of the request is not read: the connection cannot carry another one
                response_headers.append((b"connection", b"close"))
            await send_wrapper({"type": "http.response.start", "status": status, "headers": response_headers})
            await send_wrapper({"type": "http.response.body", "body": body})
            status_holder["rejected"] = True

        async def too_large() -> None:
            await reject(413, "payload_too_large",
                         f"request body exceeds the limit of {self.max_body_bytes} bytes; send less text")

        declared = headers.get("content-length")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        keyed = self.needs_key(scope)
        counted: str | None = None
        try:
            if keyed and not await self._authenticated(scope, headers, reject):
                return
            if "content-type" in repeated:
                # the middleware and the app would otherwise read different ones
                await reject(400, "bad_request", "send one Content-Type header, not several")
                return
            if not keyed and (location := self.slash_redirect(scope)) is not None:
                status_holder["status"] = 307
                await send({"type": "http.response.start", "status": 307,
                            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
                                        (b"x-request-id", request_id.encode())]})
                await send({"type": "http.response.body", "body": b""})
                return
            if (scope["method"] in ("POST", "PUT", "PATCH") and content_type != "application/json"
                    and (content_type or _has_body(headers))):  # a bodiless POST (e.g. rollback) needs no type
                await reject(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
                return
            if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
                await too_large()
                return
            app_receive = receive
            if scope["method"] in BODY_METHODS or _has_body(headers):
                body = await self._read_body(scope, receive, reject, too_large, status_holder)
                if body is None:
                    return
                app_receive = _replay(body, receive)
            if keyed:
                if self.in_flight >= self.max_in_flight:
                    # shed load now instead of queueing: the caller retries, the queue never grows
                    await reject(429, "overloaded", f"{self.in_flight} requests are in flight, the most this "
                                 f"service takes; retry after {self.retry_after_s} s",
                                 [(b"retry-after", str(self.retry_after_s).encode())], close=False)
                    return
                self.in_flight += 1
                counted = "keyed"
                self.metrics.in_flight.inc()
            else:
                budget = self.open_budget(scope)
                if self.open_in_flight >= budget:
                    await reject(429, "overloaded", f"{self.open_in_flight} requests to the routes without a key "
                                 f"are in flight, the most this service takes; retry after {self.retry_after_s} s",
                                 [(b"retry-after", str(self.retry_after_s).encode())], close=False)
                    return
                self.open_in_flight += 1
                counted = "open"
            await self.app(scope, app_receive, send_wrapper)
        finally:
            if counted == "keyed":
                self.in_flight -= 1
                self.metrics.in_flight.dec()
            elif counted == "open":
                self.open_in_flight -= 1
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

    async def _authenticated(self, scope: Scope, headers: dict[str, str], reject: Any) -> bool:
        keyring = self.keyring(scope)
        if keyring is None:  # not built by create_app: the route dependencies still authenticate
            return True
        try:
            if headers.get("authorization", "").count(".") >= 2:  # a JWT: its check may fetch keys (JWKS), off the loop
                caller = await anyio.to_thread.run_sync(keyring.identify_headers, headers)
            else:  # an API key: a few hashes, on the loop
                caller = keyring.identify_headers(headers)
        except AuthError as exc:
            await reject(401, "unauthorized", str(exc), [(b"www-authenticate", b"Bearer")])
            return False
        scope["state"]["caller"] = caller.name
        return True

    async def _read_body(self, scope: Scope, receive: Receive, reject: Any, too_large: Any,
                         status_holder: dict[str, Any]) -> bytes | None:
        """The whole body, within the size limit and the deadline; None once answered (413, 408) or when the
        client went away."""
        timeout = self.body_timeout(scope)
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        received = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                await reject(408, "request_timeout", f"the request body did not arrive within {timeout:g} s; send "
                             "it in one go")
                return None
            if message["type"] == "http.disconnect":
                status_holder["status"] = CLIENT_CLOSED
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                await too_large()  # answered now, before the rest of the body is read
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read by the middleware, then the server's own receive (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
