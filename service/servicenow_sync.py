"""Bulk and incremental sync from a ServiceNow instance (Table API) into the incident index.

    incident-sim sync servicenow --instance https://acme.service-now.com            # offline, into DATA_DIR
    incident-sim sync servicenow --instance ... --service http://incident-sim:8000  # through a running service

A page of changed incidents is read (indexing/servicenow.py, key paging in (sys_updated_on, sys_id) order),
checked row by row (a malformed row is reported with its field and skipped, never fatal), written through a sink
(the engine's write path offline, `POST /incidents/bulk` with a `write` key online), and only then is the sync's
cursor moved past it and saved (atomically, DATA_DIR/sync/). An interrupted sync resumes after the last page
written; a page written but not yet recorded is read again and written again, which is harmless (writes are
idempotent). Each run starts `overlap_s` before the saved cursor (late commits within the same seconds are not
missed) and skips the rows it already wrote with the same sys_updated_on, so a second sync changes nothing.
Deletions come from sys_audit_delete (the incident table's rows deleted since the last run).

Values are what the app's push sends (deploy/servicenow): rows are read with sysparm_display_value=all, the raw value
(a reference's sys_id, a choice's value, UTC dates) kept under each field's name and the display value of category,
subcategory, cmdb_ci, assignment_group, state and sys_domain beside it as <field>_display (indexing/servicenow.py
flatten_display); sys_domain is read and stored, so a domain-scoped /similar finds synced incidents too."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError
from tqdm import tqdm

from indexing.atomic import atomic_write_json
from indexing.errors import IncidentNotFoundError, IncidentSimError, InvalidQueryError
from indexing.incidents import Incident, check_incident
from indexing.servicenow import EPOCH, Cursor, TableApiClient

logger = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class WriteCounts:
    created: int = 0
    updated: int = 0
    invalid: list[str] = field(default_factory=list)  # what the sink refused, with why


class IncidentSink(Protocol):
    """Where synced incidents go: the engine in this process, or a running service over its API."""

    def write(self, incidents: Sequence[Incident]) -> WriteCounts: ...

    def delete(self, number: str) -> bool:
        """True when it was there and is gone now; False when it was not stored."""
        ...

    def close(self) -> None: ...


class EngineSink:
    """Offline: the data directory's active index, through Engine.upsert_incidents / delete_incident (the same path
    as PUT and DELETE /incidents). Into a data directory with no index yet, the first page creates it (its
    average document length comes from that page). Qdrant Edge admits one process: stop the service, or use
    ServiceApiSink."""

    def __init__(self, settings: Any) -> None:
        from service.engine import Engine
        from service.wiring import open_catalog

        self.settings = settings
        catalog = open_catalog(settings)
        try:
            empty = catalog.active() is None
        finally:
            catalog.close()
        self.engine: Any = None if empty else Engine.from_settings(settings)

    def write(self, incidents: Sequence[Incident]) -> WriteCounts:
        counts = WriteCounts()
        valid = []
        for incident in incidents:
            try:
                check_incident(incident, self.settings.max_text_chars)  # what Engine.check_incident checks
            except InvalidQueryError as exc:
                counts.invalid.append(f"{incident.number}: {exc}")
                continue
            valid.append(incident)
        if not valid:
            return counts
        if self.engine is None:
            self._create_index(valid)
            counts.created += len(valid)
            return counts
        for outcome in self.engine.upsert_incidents(valid):
            if outcome.created:
                counts.created += 1
            else:
                counts.updated += 1
        return counts

    def _create_index(self, incidents: Sequence[Incident]) -> None:
        from indexing.bundle import load_bundle
        from indexing.indexer import index_into_catalog
        from service.engine import Engine
        from service.versions.serving import EncoderOptions
        from service.wiring import open_catalog, resolve_bundle_path

        bundle = load_bundle(resolve_bundle_path(self.settings))
        encoder = EncoderOptions.from_settings(self.settings).encoder_for(bundle)
        catalog = open_catalog(self.settings)
        try:
            index_into_catalog(incidents, bundle, encoder, catalog, progress=False)
        finally:
            catalog.close()
        self.engine = Engine.from_settings(self.settings)

    def delete(self, number: str) -> bool:
        if self.engine is None:
            return False
        try:
            self.engine.delete_incident(number)
        except IncidentNotFoundError:
            return False
        return True

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


class ServiceApiSink:
    """Online: a running service's `POST /incidents/bulk` and `DELETE /incidents/{number}` with a `write` key. A
    page counts as written only on a 2xx, so the cursor never passes an unacknowledged write."""

    def __init__(self, url: str, api_key: str, max_bulk: int = 100, timeout_s: float = 120.0) -> None:
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s,
                                   headers={"Authorization": f"Bearer {api_key}"})
        self.max_bulk = max_bulk

    def write(self, incidents: Sequence[Incident]) -> WriteCounts:
        counts = WriteCounts()
        for start in range(0, len(incidents), self.max_bulk):
            chunk = [i.payload() for i in incidents[start : start + self.max_bulk]]
            body = self._call("POST", "/incidents/bulk", json={"incidents": chunk})
            counts.created += body["created"]
            counts.updated += body["updated"]
            counts.invalid += [f"{r.get('number')}: {r.get('error')}" for r in body["results"]
                               if r["status"] == "invalid"]
        return counts

    def delete(self, number: str) -> bool:
        response = self.client.delete(f"/incidents/{number}")
        if response.status_code == 404:
            return False
        self._check(response, f"DELETE /incidents/{number}")
        return True

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise IncidentSimError(f"the service at {self.client.base_url} is unreachable: {exc}") from None
        self._check(response, f"{method} {path}")
        return dict(response.json())

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise IncidentSimError(f"the service refused {what} ({response.status_code}): the sync needs an API key "
                                   "with the write scope (INCIDENT_SIM_SYNC_API_KEY)")
        if response.status_code >= 300:
            raise IncidentSimError(f"the service answered {response.status_code} to {what}: {response.text[:300]}")

    def close(self) -> None:
        self.client.close()


@dataclass
class SyncState:
    """What a sync has written, saved after every page: where to resume, and the rows written within the overlap
    window (sys_id -> sys_updated_on) so a re-read of them is skipped."""

    instance: str
    cursor: Cursor = field(default_factory=Cursor)
    deletes_since: str = EPOCH
    recent: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, instance: str) -> SyncState:
        if not path.is_file():
            return cls(instance)
        try:
            data = json.loads(path.read_text())
            return cls(instance, Cursor(**data["cursor"]), data["deletes_since"], dict(data["recent"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IncidentSimError(f"the sync state {path} is unreadable ({exc}); delete it to sync everything "
                                   "again (writes are idempotent)") from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"instance": self.instance, "cursor": asdict(self.cursor),
                                 "deletes_since": self.deletes_since, "recent": self.recent})


def state_path(data_dir: Path, instance: str) -> Path:
    host = urlsplit(instance).netloc or instance
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in host)
    return data_dir / "sync" / f"servicenow-{safe}-{hashlib.sha256(instance.encode()).hexdigest()[:8]}.json"


@dataclass
class SyncSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    invalid: list[str] = field(default_factory=list)
    pages: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, deleted "
                f"{self.deleted}, invalid {len(self.invalid)}, pages {self.pages}, requests {self.requests}, "
                f"retries {self.retries}, {self.seconds:.1f} s")


def _shift(timestamp: str, seconds: float) -> str:
    try:
        moment = datetime.strptime(timestamp, TIME_FORMAT)
    except ValueError:
        return EPOCH
    return max(datetime.strptime(EPOCH, TIME_FORMAT), moment - timedelta(seconds=seconds)).strftime(TIME_FORMAT)


def _parse(row: Any, position: str) -> tuple[Incident | None, str | None]:
    """The incident of a Table API row, or why it cannot be one (row and field named)."""
    if not isinstance(row, dict):
        return None, f"{position}: not an object"
    who = f"{position} (sys_id={row.get('sys_id')!r}, number={row.get('number')!r})"
    try:
        incident = Incident.model_validate(row)
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"{who}, field '{'.'.join(str(p) for p in first['loc']) or '?'}': {first['msg']}"
    if not incident.text():
        return None, f"{who}: neither short_description nor description"
    return incident, None


def sync_servicenow(client: TableApiClient, sink: IncidentSink, state_file: Path, *, page_size: int = 200,
                    overlap_s: float = 60.0, deletes: bool = True, progress: bool = True) -> SyncSummary:
    """Bring the index up to date with the instance; see the module's docstring for the guarantees."""
    t0 = time.perf_counter()
    state = SyncState.load(state_file, client.instance)
    summary = SyncSummary()
    cursor = Cursor(_shift(state.cursor.updated_on, overlap_s), "") if state.cursor.sys_id else Cursor()
    same_second = False
    logger.info("syncing incidents from %s changed after %s (saved cursor %s, overlap %.0f s)", client.instance,
                cursor.updated_on, state.cursor.updated_on, overlap_s)
    bar = tqdm(desc="ServiceNow incidents", unit="inc", disable=not progress)
    try:
        while True:
            rows = client.changed_incidents(cursor, page_size, same_second)
            if same_second and len(rows) < page_size:  # the last second read is finished: fill up with later ones
                rows += client.changed_incidents(cursor, page_size - len(rows), False)
            if bar.total is None and client.stats.total is not None:
                bar.total = client.stats.total
            if not rows:
                break
            summary.pages += 1
            to_write: dict[str, Incident] = {}
            for k, row in enumerate(rows):
                incident, problem = _parse(row, f"page {summary.pages} row {k + 1}")
                if problem is not None:
                    summary.invalid.append(problem)
                    logger.warning("skipping a malformed incident: %s", problem)
                    continue
                assert incident is not None
                sys_id, updated_on = str(row.get("sys_id") or ""), str(row.get("sys_updated_on") or "")
                if sys_id and state.recent.get(sys_id) == updated_on:
                    summary.unchanged += 1
                    continue
                to_write[incident.number] = incident
            counts = sink.write(list(to_write.values())) if to_write else WriteCounts()
            summary.created += counts.created
            summary.updated += counts.updated
            summary.invalid += counts.invalid
            # written (2xx / engine returned): only now does the cursor move past this page
            ordered = [r for r in rows if isinstance(r, dict) and r.get("sys_updated_on") and r.get("sys_id")]
            if not ordered:
                raise IncidentSimError("a Table API page without sys_updated_on/sys_id on any row: the sync cannot "
                                       "order or resume; is sysparm_fields honoured?")
            last = ordered[-1]
            cursor = Cursor(str(last["sys_updated_on"]), str(last["sys_id"]))
            same_second = True
            for row in ordered:
                state.recent[str(row["sys_id"])] = str(row["sys_updated_on"])
            if not state.cursor.sys_id or cursor > state.cursor:  # a re-read overlap page never moves it back
                state.cursor = cursor
            horizon = _shift(state.cursor.updated_on, overlap_s)
            state.recent = {k: v for k, v in state.recent.items() if v >= horizon}
            state.save(state_file)
            bar.update(len(rows))
    finally:
        bar.close()
    if deletes:
        _sync_deletes(client, sink, state, state_file, page_size, overlap_s, summary)
    summary.requests, summary.retries = client.stats.requests, client.stats.retries
    summary.seconds = time.perf_counter() - t0
    logger.info("ServiceNow sync done: %s", summary.line())
    return summary


def _sync_deletes(client: TableApiClient, sink: IncidentSink, state: SyncState, state_file: Path, page_size: int,
                  overlap_s: float, summary: SyncSummary) -> None:
    since = _shift(state.deletes_since, overlap_s) if state.deletes_since != EPOCH else EPOCH
    offset = 0
    newest = state.deletes_since
    while True:
        rows = client.deleted_incidents(since, page_size, offset)
        if not rows:
            break
        for row in rows:
            number = str(row.get("display_value") or "").strip()
            if not number:
                summary.invalid.append(f"sys_audit_delete {row.get('sys_id')!r}: no display_value (incident number)")
                continue
            if sink.delete(number):
                summary.deleted += 1
            created = str(row.get("sys_created_on") or "")
            newest = max(newest, created)
        offset += len(rows)
    if newest != state.deletes_since:
        state.deletes_since = newest
        state.save(state_file)
