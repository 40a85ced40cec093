"""A fake ServiceNow Table API on loopback, following the documented contract closely enough to test a sync:

- GET /api/now/table/<table> with sysparm_query (conditions joined by ^: =, !=, >, >=, <, <=; ORDERBY<field>,
  ORDERBYDESC<field>), sysparm_fields, sysparm_limit, sysparm_offset, sysparm_display_value (false: stored values;
  true: display values; all: {"display_value", "value"} per field); the body {"result": [...]}; the headers
  X-Total-Count (rows matching the query) and Link (first, prev, next, last, as the Table API sends them);
- basic auth or a bearer token; 401 with the Table API's error body otherwise;
- faults to inject: 429 with Retry-After, 5xx, a delay per request, a callback before a page is answered (to
  change records while a sync runs); deleting an incident adds its sys_audit_delete row.
ServiceNow itself cannot run here; this stands in for it and nothing else."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from training.data.sample import generate_incidents

FORMAT = "%Y-%m-%d %H:%M:%S"
OPERATORS = (">=", "<=", "!=", ">", "<", "=")


def _matches(row: dict[str, Any], condition: str) -> bool:
    for op in OPERATORS:
        if op in condition:
            field, value = condition.split(op, 1)
            have = str(row.get(field, "") or "")
            return {"=": have == value, "!=": have != value, ">": have > value, ">=": have >= value,
                    "<": have < value, "<=": have <= value}[op]
    raise ValueError(f"unsupported condition {condition!r}")


def run_query(rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    conditions, order = [], []
    for part in (p for p in query.split("^") if p):
        if part.startswith("ORDERBYDESC"):
            order.append((part[len("ORDERBYDESC"):], True))
        elif part.startswith("ORDERBY"):
            order.append((part[len("ORDERBY"):], False))
        else:
            conditions.append(part)
    out = [r for r in rows if all(_matches(r, c) for c in conditions)]
    for field, descending in reversed(order):
        out.sort(key=lambda r: str(r.get(field, "") or ""), reverse=descending)
    return out


class FakeServiceNow:
    def __init__(self, n: int = 0, user: str = "sync.user", password: str = "s3cret-pass", token: str | None = None,
                 seed: int = 5, start: str = "2026-01-05 08:00:00") -> None:
        self.user, self.password, self.token = user, password, token
        self.lock = threading.Lock()
        self.incidents: list[dict[str, Any]] = []
        self.audit_delete: list[dict[str, Any]] = []
        self.clock = datetime.strptime(start, FORMAT)
        self.requests: list[dict[str, str]] = []  # query params of every authorised request, in order
        self.throttle = 0  # answer this many requests with 429
        self.retry_after = "1"
        self.server_errors = 0  # then this many with 503
        self.delay_s = 0.0
        self.before_page: Callable[[FakeServiceNow, int], None] | None = None
        self.pages_served = 0
        self.display_values: dict[str, str] = {}  # stored value (a sys_id, a choice value) -> its display value
        if n:
            self.add_incidents(generate_incidents(n, seed=seed))

    # -- the table's contents --------------------------------------------------------------------------
    def tick(self, seconds: int = 1) -> str:
        self.clock += timedelta(seconds=seconds)
        return self.clock.strftime(FORMAT)

    def add_incidents(self, rows: list[dict[str, Any]], per_second: int = 3) -> None:
        """Rows get a sys_id and a sys_updated_on; `per_second` of them share each second (ServiceNow's
        resolution), so paging must handle ties."""
        with self.lock:
            for k, row in enumerate(rows):
                if k % per_second == 0:
                    self.tick()
                record = {"sys_id": f"{len(self.incidents) + 1:032x}", **row,
                          "sys_updated_on": self.clock.strftime(FORMAT)}
                record.pop("duplicate_of", None)  # not a Table API field of incident
                self.incidents.append(record)

    def update(self, number: str, **fields: Any) -> None:
        with self.lock:
            row = next(r for r in self.incidents if r["number"] == number)
            row.update(fields)
            row["sys_updated_on"] = self.tick()

    def delete(self, number: str) -> None:
        with self.lock:
            row = next(r for r in self.incidents if r["number"] == number)
            self.incidents.remove(row)
            self.audit_delete.append({"sys_id": f"d{len(self.audit_delete) + 1:031x}", "tablename": "incident",
                                      "documentkey": row["sys_id"], "display_value": row["number"],
                                      "sys_created_on": self.tick()})

    def by_number(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {r["number"]: dict(r) for r in self.incidents}

    # -- HTTP ------------------------------------------------------------------------------------------
    def __enter__(self) -> FakeServiceNow:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                fake._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _authorised(self, header: str | None) -> bool:
        if header is None:
            return False
        if self.token and header == f"Bearer {self.token}":
            return True
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user == self.user and password == self.password
        return False

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
              ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _shown(self, row: dict[str, Any], display: str) -> dict[str, Any]:
        if display == "true":
            return {k: self.display_values.get(str(v), v) for k, v in row.items()}
        if display == "all":
            return {k: {"display_value": self.display_values.get(str(v), v), "value": v} for k, v in row.items()}
        return row

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        if not self._authorised(handler.headers.get("Authorization")):
            self._send(handler, 401, {"error": {"message": "User Not Authenticated",
                                                "detail": "Required to provide Auth information"},
                                      "status": "failure"})
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            if self.throttle:
                self.throttle -= 1
                self._send(handler, 429, {"error": {"message": "Too many requests"}, "status": "failure"},
                           {"Retry-After": self.retry_after})
                return
            if self.server_errors:
                self.server_errors -= 1
                self._send(handler, 503, {"error": {"message": "Service Unavailable"}, "status": "failure"})
                return
        table = url.path.removeprefix("/api/now/table/")
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if table == "incident" and self.before_page is not None:
            self.before_page(self, self.pages_served)
        with self.lock:
            self.requests.append({"table": table, **params})
            source = {"incident": self.incidents, "sys_audit_delete": self.audit_delete}.get(table)
            if source is None:
                self._send(handler, 400, {"error": {"message": f"Invalid table {table}"}, "status": "failure"})
                return
            matched = run_query(source, params.get("sysparm_query", ""))
            limit = int(params.get("sysparm_limit", "10000"))
            offset = int(params.get("sysparm_offset", "0"))
            page = matched[offset : offset + limit]
            fields = [f for f in params.get("sysparm_fields", "").split(",") if f]
            result = [self._shown({f: r.get(f, "") for f in fields} if fields else dict(r),
                                  params.get("sysparm_display_value", "false")) for r in page]
            if table == "incident":
                self.pages_served += 1
        links = []
        for rel, at in (("first", 0), ("prev", max(0, offset - limit)), ("next", offset + limit),
                        ("last", max(0, (len(matched) - 1) // max(limit, 1) * limit))):
            if rel == "next" and offset + limit >= len(matched) or rel == "prev" and offset == 0:
                continue
            links.append(f'<{self.url}{url.path}?{urlencode({**params, "sysparm_offset": str(at)})}>;rel="{rel}"')
        self._send(handler, 200, {"result": result}, {"X-Total-Count": str(len(matched)), "Link": ",".join(links)})
