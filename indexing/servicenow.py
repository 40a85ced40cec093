"""The ServiceNow Table API adapter: reads incidents changed since a cursor and incident deletions, with
authentication, bounded retries and honest errors. Nothing here writes to our store (service/servicenow_sync.py
does, through the engine or the service's API).

Paging is by key, not by offset: each request asks for the rows after the last one read, ordered by
(`sys_updated_on`, `sys_id`). An incident updated while a sync runs gets a later `sys_updated_on` and moves to the
end of the ordering; with `sysparm_offset` paging the rows behind it would shift one place and one would be
skipped, with key paging it is read again later instead (writes are idempotent). The one-second resolution of
`sys_updated_on` is handled by first finishing the rows of the last second read (`sys_updated_on=T^sys_id>ID`)
before asking for later seconds (`sys_updated_on>T`)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from indexing.errors import IncidentSimError

logger = logging.getLogger(__name__)

INCIDENT_TABLE = "incident"
# What we index and what the sync needs to order, resume and report
INCIDENT_FIELDS = ("sys_id", "number", "sys_updated_on", "short_description", "description", "category",
                   "subcategory", "cmdb_ci", "assignment_group", "state", "opened_at", "resolved_at", "close_notes",
                   "problem_id", "parent_incident", "close_code", "sys_domain")
# Incidents are read with sysparm_display_value=all: every field as {"value", "display_value"}; the raw value
# (sys_id, choice value, UTC date) is kept under its name and, for these fields, the display value beside it as
# <field>_display (what the app's push sends too), so a filter by either matches
DISPLAYED_FIELDS = ("category", "subcategory", "cmdb_ci", "assignment_group", "state", "sys_domain")
DELETE_FIELDS = ("sys_id", "documentkey", "display_value", "sys_created_on")
EPOCH = "1970-01-01 00:00:00"


class ServiceNowError(IncidentSimError):
    """The instance could not be read (after the retries), or answered something that is not the Table API."""


class ServiceNowAuthError(ServiceNowError):
    """401/403: the credentials are wrong or lack read access to the table."""


@dataclass(frozen=True, order=True)
class Cursor:
    """The last row read, in (sys_updated_on, sys_id) order; EPOCH/'' reads from the beginning."""

    updated_on: str = EPOCH
    sys_id: str = ""


@dataclass
class ApiStats:
    requests: int = 0
    retries: int = 0
    total: int | None = None  # X-Total-Count of the first page of changed incidents


class TableApiClient:
    """GET /api/now/table/<table> with basic or OAuth bearer auth. 429 honours Retry-After; 5xx, timeouts and
    connection errors are retried `max_retries` times with jittered exponential back-off; 401/403 fail at once.
    Credentials are never logged (httpx is kept at WARNING)."""

    def __init__(self, instance: str, *, user: str | None = None, password: str | None = None,
                 token: str | None = None, timeout_s: float = 30.0, max_retries: int = 5,
                 backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not instance.startswith(("http://", "https://")):
            raise ServiceNowError(f"instance must be a URL like https://acme.service-now.com, got {instance!r}")
        if token:
            headers = {"Authorization": f"Bearer {token}"}
            auth: httpx.Auth | None = None
        elif user and password:
            headers, auth = {}, httpx.BasicAuth(user, password)
        else:
            raise ServiceNowError("no ServiceNow credentials: set INCIDENT_SIM_SERVICENOW_USER and "
                                  "INCIDENT_SIM_SERVICENOW_PASSWORD, or INCIDENT_SIM_SERVICENOW_TOKEN (OAuth)")
        self.instance = instance.rstrip("/")
        self.client = httpx.Client(base_url=self.instance, auth=auth, timeout=timeout_s,
                                   headers={"Accept": "application/json", **headers})
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.stats = ApiStats()

    def close(self) -> None:
        self.client.close()

    def changed_incidents(self, after: Cursor, limit: int, same_second: bool) -> list[dict[str, Any]]:
        """Up to `limit` incidents after `after`: the rest of its second (`same_second`), else later seconds."""
        if same_second:
            query = f"sys_updated_on={after.updated_on}^sys_id>{after.sys_id}^ORDERBYsys_id"
        else:
            query = f"sys_updated_on>{after.updated_on}^ORDERBYsys_updated_on^ORDERBYsys_id"
        rows, total = self._get(INCIDENT_TABLE, query, INCIDENT_FIELDS, limit, display="all")
        rows = [flatten_display(row) for row in rows]
        if self.stats.total is None and not same_second:
            self.stats.total = total
        return rows

    def deleted_incidents(self, since: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """Rows of sys_audit_delete for the incident table created at or after `since` (one page)."""
        query = f"tablename={INCIDENT_TABLE}^sys_created_on>={since}^ORDERBYsys_created_on^ORDERBYsys_id"
        rows, _ = self._get("sys_audit_delete", query, DELETE_FIELDS, limit, offset)
        return rows

    def _get(self, table: str, query: str, fields: tuple[str, ...], limit: int,
             offset: int = 0, display: str = "false") -> tuple[list[dict[str, Any]], int | None]:
        params = {"sysparm_query": query, "sysparm_fields": ",".join(fields), "sysparm_limit": str(limit),
                  "sysparm_offset": str(offset), "sysparm_exclude_reference_link": "true",
                  "sysparm_display_value": display}
        path = f"/api/now/table/{table}"
        attempt = 0
        while True:
            self.stats.requests += 1
            try:
                response = self.client.get(path, params=params)
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                reason = f"{type(exc).__name__}: {exc}"
                wait = self._backoff(attempt)
            else:
                if response.status_code in (401, 403):
                    raise ServiceNowAuthError(
                        f"ServiceNow answered {response.status_code} for {path}: check the user/password or token "
                        "and that the account can read the table (role itil or a read ACL)")
                if response.status_code == 200:
                    return self._rows(response, path), _int_or_none(response.headers.get("X-Total-Count"))
                reason = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    wait = _retry_after(response.headers.get("Retry-After"), self._backoff(attempt))
                elif response.status_code >= 500:
                    wait = self._backoff(attempt)
                else:
                    raise ServiceNowError(f"ServiceNow answered {response.status_code} for {path}: "
                                          f"{response.text[:300]}")
            if attempt >= self.max_retries:
                raise ServiceNowError(f"ServiceNow {path} still failing after {attempt + 1} attempts ({reason})")
            attempt += 1
            self.stats.retries += 1
            logger.warning("ServiceNow %s: %s; retry %d of %d in %.1f s", path, reason, attempt, self.max_retries,
                           wait)
            self.sleep(wait)

    @staticmethod
    def _rows(response: httpx.Response, path: str) -> list[dict[str, Any]]:
        try:
            body = response.json()
            rows = body["result"]
        except (ValueError, KeyError, TypeError):
            raise ServiceNowError(f"{path}: the answer is not a Table API body ({{'result': [...]}})") from None
        if not isinstance(rows, list):
            raise ServiceNowError(f"{path}: 'result' is not a list")
        return rows

    def _backoff(self, attempt: int) -> float:
        base = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return base * (0.5 + random.random() / 2)  # jitter: retries of several jobs do not arrive together


def flatten_display(row: Any) -> Any:
    """A sysparm_display_value=all row as the sync writes it: raw values under the field names, display values of
    DISPLAYED_FIELDS as <field>_display where it differs. A row of plain values (display_value=false) passes
    unchanged."""
    if not isinstance(row, dict):
        return row
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict) and "value" in value:
            shown = value.get("display_value")
            if key in DISPLAYED_FIELDS and shown not in (None, "") and shown != value["value"]:
                out[f"{key}_display"] = shown
            value = value["value"]
        out[key] = value
    return out


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None, default: float) -> float:
    """Retry-After in seconds (the HTTP-date form falls back to the back-off)."""
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default
