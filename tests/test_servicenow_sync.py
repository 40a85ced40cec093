"""ServiceNow sync against a fake Table API on loopback (tests/fake_servicenow.py), into a real Qdrant Edge index
with the real ONNX encoder (offline sink), or through a live service's API (online sink); the resume test kills a
real `incident-sim sync servicenow` process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_servicenow import FakeServiceNow

from conftest import AUTH, WRITE_KEY, LiveServer
from indexing.bundle import Bundle
from indexing.incidents import Incident
from indexing.servicenow import ServiceNowAuthError, TableApiClient
from indexing.store.base import stored_payloads
from service.app import create_app
from service.engine import Engine
from service.servicenow_sync import EngineSink, ServiceApiSink, state_path, sync_servicenow
from service.settings import Settings
from service.wiring import open_catalog

ROOT = Path(__file__).resolve().parents[1]


def client_for(fake: FakeServiceNow, waits: list[float] | None = None, **kwargs: Any) -> TableApiClient:
    recorded = waits if waits is not None else []
    return TableApiClient(fake.url, user=fake.user, password=fake.password,
                          sleep=recorded.append, **kwargs)


def stored(settings: Settings) -> dict[str, dict[str, Any]]:
    catalog = open_catalog(settings)
    try:
        store = catalog.open(str(catalog.active()))
        try:
            return {p["number"]: p for p in stored_payloads(store).values()}
        finally:
            store.close()
    finally:
        catalog.close()


def expected(fake: FakeServiceNow) -> dict[str, dict[str, Any]]:
    return {n: Incident.model_validate(r).payload() for n, r in fake.by_number().items()}


def run(fake: FakeServiceNow, settings: Settings, page_size: int = 50, **kwargs: Any):  # type: ignore[no-untyped-def]
    client = client_for(fake)
    sink = EngineSink(settings)
    try:
        return sync_servicenow(client, sink, state_path(settings.data_dir, fake.url), page_size=page_size,
                               progress=False, **kwargs)
    finally:
        sink.close()
        client.close()


@pytest.fixture()
def sync_settings(minilm_bundle: Bundle, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", bundle_path=minilm_bundle.path, compact_after_writes=0)


def test_paging_reads_every_incident_and_a_second_sync_changes_nothing(sync_settings: Settings) -> None:
    with FakeServiceNow(230) as fake:
        first = run(fake, sync_settings, page_size=50)
        assert (first.created, first.updated, first.invalid) == (230, 0, [])
        assert first.pages == 5
        assert stored(sync_settings) == expected(fake)
        queries = [r["sysparm_query"] for r in fake.requests if r["table"] == "incident"]
        assert all(r["sysparm_offset"] == "0" for r in fake.requests if r["table"] == "incident")
        assert any(q.startswith("sys_updated_on=") for q in queries), "ties within a second are finished first"
        second = run(fake, sync_settings, page_size=50)
        assert (second.created, second.updated, second.deleted) == (0, 0, 0)
        assert second.unchanged > 0  # the overlap window was read again and skipped
        assert stored(sync_settings) == expected(fake)


def test_records_updated_while_the_sync_runs_are_not_missed(sync_settings: Settings) -> None:
    """Between pages, an incident already read and one not yet read are changed (they move to the end of the
    ordering): with offset paging one incident behind each would be skipped; key paging reads them again."""
    with FakeServiceNow(150) as fake:
        numbers = list(fake.by_number())

        def change(server: FakeServiceNow, page: int) -> None:
            if page == 2:
                server.update(numbers[10], short_description="VPN down for finance (edited during the sync)")
                server.update(numbers[120], short_description="Printer queue stuck (edited during the sync)")

        fake.before_page = change
        summary = run(fake, sync_settings, page_size=40)
        assert summary.invalid == []
        now = stored(sync_settings)
        assert now == expected(fake)
        assert now[numbers[10]]["short_description"].endswith("(edited during the sync)")
        assert summary.created == 150 and summary.updated >= 1


def test_wrong_credentials_fail_clearly_and_write_nothing(sync_settings: Settings) -> None:
    with FakeServiceNow(20) as fake:
        client = TableApiClient(fake.url, user=fake.user, password="wrong", sleep=lambda s: None)
        with pytest.raises(ServiceNowAuthError, match="401.*user/password or token"):
            sync_servicenow(client, EngineSink(sync_settings), state_path(sync_settings.data_dir, fake.url),
                            progress=False)
        assert not state_path(sync_settings.data_dir, fake.url).exists()
        assert len(fake.requests) == 0


def test_429_is_honoured_and_5xx_retried(sync_settings: Settings) -> None:
    with FakeServiceNow(60) as fake:
        fake.throttle, fake.retry_after, fake.server_errors = 2, "2", 1
        waits: list[float] = []
        client = client_for(fake, waits)
        sink = EngineSink(sync_settings)
        summary = sync_servicenow(client, sink, state_path(sync_settings.data_dir, fake.url), page_size=25,
                                  progress=False)
        sink.close()
        # Retry-After twice, then the jittered exponential back-off of the third attempt (1 s x 2^2, x 0.5-1)
        assert waits[:2] == [2.0, 2.0] and len(waits) == 3 and 2.0 <= waits[2] <= 4.0
        assert summary.retries == 3 and summary.created == 60
        fake.server_errors = 10
        with pytest.raises(Exception, match="still failing after 3 attempts"):
            sync_servicenow(client_for(fake, max_retries=2), EngineSink(sync_settings),
                            state_path(sync_settings.data_dir, fake.url), progress=False)


def test_a_malformed_row_is_reported_and_the_rest_synced(sync_settings: Settings) -> None:
    with FakeServiceNow(40) as fake:
        bad = list(fake.by_number())[7]
        fake.update(bad, opened_at="the day before yesterday")
        summary = run(fake, sync_settings, page_size=15)
        assert len(summary.invalid) == 1
        assert "field 'opened_at'" in summary.invalid[0] and bad in summary.invalid[0]
        assert summary.created == 39
        assert bad not in stored(sync_settings)
        fake.update(bad, opened_at="2026-01-04 09:30:00")  # fixed in ServiceNow: the next sync picks it up
        assert run(fake, sync_settings).created == 1
        assert stored(sync_settings) == expected(fake)


def test_deletions_are_applied_once(sync_settings: Settings) -> None:
    with FakeServiceNow(50) as fake:
        run(fake, sync_settings)
        gone = list(fake.by_number())[5:8]
        for number in gone:
            fake.delete(number)
        summary = run(fake, sync_settings)
        assert summary.deleted == 3 and summary.created == summary.updated == 0
        assert not set(gone) & set(stored(sync_settings)) and len(stored(sync_settings)) == 47
        assert run(fake, sync_settings).deleted == 0


def test_sync_through_a_running_service(writable_settings: Settings) -> None:
    """Online mode: POST /incidents/bulk on a live service with a write key; the answers are what was sent."""
    engine = Engine.from_settings(writable_settings)
    with FakeServiceNow(120, seed=41) as fake, LiveServer(create_app(writable_settings, engine)) as server:
        sink = ServiceApiSink(server.url, WRITE_KEY, max_bulk=50)
        client = client_for(fake)
        state = state_path(writable_settings.data_dir / "online", fake.url)
        first = sync_servicenow(client, sink, state, page_size=70, progress=False)
        assert first.created + first.updated == 120 and first.invalid == []
        with httpx.Client(base_url=server.url, headers=AUTH) as http:
            for number, payload in list(expected(fake).items())[::17]:
                assert http.get(f"/incidents/{number}").json()["incident"] == payload
        fake.delete(next(iter(fake.by_number())))
        second = sync_servicenow(client, sink, state, page_size=70, progress=False)
        assert (second.created, second.updated, second.deleted) == (0, 0, 1)
        with pytest.raises(Exception, match="write scope"):
            sync_servicenow(client, ServiceApiSink(server.url, "not-a-key-at-all-0000"), state.with_name("x.json"),
                            progress=False)
        sink.close()


def test_a_killed_sync_resumes_after_its_last_written_page(minilm_bundle: Bundle, tmp_path: Path) -> None:
    """SIGKILL a real `incident-sim sync servicenow` mid-run, run it again: every incident ends up stored as
    ServiceNow has it, and the second run starts from the saved cursor, not from the beginning."""
    data_dir = tmp_path / "var"
    with FakeServiceNow(240, seed=13) as fake:
        fake.delay_s = 0.15
        env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(data_dir), "INCIDENT_SIM_BUNDLE_PATH":
               str(minilm_bundle.path), "INCIDENT_SIM_SERVICENOW_USER": fake.user,
               "INCIDENT_SIM_SERVICENOW_PASSWORD": fake.password, "INCIDENT_SIM_SYNC_PAGE_SIZE": "20",
               "INCIDENT_SIM_COMPACT_AFTER_WRITES": "0", "HF_HUB_OFFLINE": "1"}
        argv = [sys.executable, "-m", "service.cli", "sync", "servicenow", "--instance", fake.url]
        state = state_path(data_dir, fake.url)
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not state.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()  # type: ignore
            time.sleep(0.05)
        time.sleep(random.uniform(0.2, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        cursor = json.loads(state.read_text())["cursor"]
        assert 0 < len([n for n in stored_numbers(data_dir, minilm_bundle)]) < 240, "killed mid-sync"
        before = len(fake.requests)
        fake.delay_s = 0.0
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "synced" in result.stdout
        first_query = next(r for r in fake.requests[before:] if r["table"] == "incident")["sysparm_query"]
        resumed_from = first_query.split("^")[0].removeprefix("sys_updated_on>")
        assert resumed_from > "1970" and resumed_from <= cursor["updated_on"]
        settings = Settings(data_dir=data_dir, bundle_path=minilm_bundle.path)
        assert stored(settings) == expected(fake)
        assert fake.password not in result.stdout + result.stderr  # secrets are never logged


def stored_numbers(data_dir: Path, bundle: Bundle) -> list[str]:
    return list(stored(Settings(data_dir=data_dir, bundle_path=bundle.path)))


def test_an_oauth_bearer_token_is_accepted_and_a_missing_credential_refused(sync_settings: Settings) -> None:
    with FakeServiceNow(12, token="oauth-token-0123456789") as fake:
        client = TableApiClient(fake.url, token="oauth-token-0123456789", sleep=lambda s: None)
        sink = EngineSink(sync_settings)
        summary = sync_servicenow(client, sink, state_path(sync_settings.data_dir, fake.url), progress=False)
        sink.close()
        assert summary.created == 12
    with pytest.raises(Exception, match="no ServiceNow credentials"):
        TableApiClient("https://acme.service-now.com")
    with pytest.raises(Exception, match="must be a URL"):
        TableApiClient("acme.service-now.com", token="x")


def test_display_and_raw_values_are_both_indexed_and_domains_never_cross(sync_settings: Settings) -> None:
    """Finding 8: the sync reads sysparm_display_value=all; a reference keeps its sys_id with its display value
    beside it (as the app's push sends them), a filter by either matches, and a sys_domain filter keeps
    suggestions inside one domain."""
    group, acme, globex = "a" * 32, "d" * 32, "e" * 32
    text = {"short_description": "VPN gateway refuses the client certificate",
            "description": "GlobalProtect: certificate not valid since the renewal"}
    rows = [{"number": "INC0500001", **text, "assignment_group": group, "category": "network", "state": "7",
             "sys_domain": acme},
            {"number": "INC0500002", **text, "assignment_group": group, "category": "network", "state": "7",
             "sys_domain": globex}]
    with FakeServiceNow() as fake:
        fake.add_incidents(rows)
        fake.display_values = {group: "Network Operations", "network": "Network", "7": "Closed", acme: "ACME",
                               globex: "Globex"}
        summary = run(fake, sync_settings)
        assert (summary.created, summary.invalid) == (2, [])
        assert all(r["sysparm_display_value"] == "all" for r in fake.requests if r["table"] == "incident")
    payload = stored(sync_settings)["INC0500001"]
    assert (payload["assignment_group"], payload["assignment_group_display"]) == (group, "Network Operations")
    assert (payload["category"], payload["category_display"], payload["state_display"]) == ("network", "Network",
                                                                                            "Closed")
    assert (payload["sys_domain"], payload["sys_domain_display"]) == (acme, "ACME")
    engine = Engine.from_settings(sync_settings)
    try:
        def found(**fields: list[str]) -> list[str]:
            query = engine.build_query(text["short_description"], text["description"], None, 5, fields=fields)
            return sorted(str(r.payload["number"]) for r in engine.similar(query).results)

        both = ["INC0500001", "INC0500002"]
        assert found(assignment_group=["Network Operations"]) == both  # by display value
        assert found(assignment_group=[group]) == both  # by sys_id
        assert found(category=["Network"]) == found(category=["network"]) == both
        assert found(assignment_group=["Service Desk"]) == []
        assert found(sys_domain=[acme]) == ["INC0500001"]  # never the other domain's incident
        assert found(sys_domain=["Globex"]) == ["INC0500002"]
        assert found(sys_domain=[acme], assignment_group=["Network Operations"]) == ["INC0500001"]
    finally:
        engine.close()
