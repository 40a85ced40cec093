"""Feedback (POST /feedback, GET /feedback): one contract on both stores (the data directory's log and a
collection on the Qdrant server, qdrant-client ':memory:' standing in), durable across SIGKILL of a real
`incident-sim serve`, idempotent per (incident, suggested, source), and links recorded later in ServiceNow
becoming `duplicate` feedback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient

from conftest import ADMIN_KEY, AUTH, QUERY_KEY, WRITE_KEY, LiveServer, free_port, wait_for_http
from indexing.incidents import Incident
from service.app import create_app
from service.engine import Engine
from service.flag import FeedbackStore, FileFeedbackStore, QdrantFeedbackStore, Verdict, payload_fetcher
from service.flag.feedback import LINK_SOURCE, FeedbackRecord
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def rec(incident: str, suggested: str, verdict: str = "duplicate", source: str = "servicenow",
        at: str = "2026-11-22T10:15:00+00:00", flagged: bool | None = None) -> FeedbackRecord:
    return FeedbackRecord(incident, suggested, verdict, source, at, "2026-11-22T10:15:01+00:00", flagged)


@pytest.fixture(params=["file", "qdrant"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FeedbackStore, FeedbackStore]]:
    """Two handles on the same feedback: a restarted process (file) or a second replica (Qdrant)."""
    if request.param == "file":
        path = tmp_path / "flag" / "feedback.jsonl"
        first = FileFeedbackStore(path)
        yield first, _Lazy(lambda: FileFeedbackStore(path))  # type: ignore[misc]
    else:
        client = QdrantClient(location=":memory:")
        yield QdrantFeedbackStore(client, "incidents.feedback"), QdrantFeedbackStore(client, "incidents.feedback")
        client.close()


class _Lazy:
    """Opened on first use, i.e. after the first store has written (a process started later)."""

    def __init__(self, make) -> None:  # type: ignore[no-untyped-def]
        self._make, self._store = make, None

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if self._store is None:
            self._store = self._make()
        return getattr(self._store, name)


def test_contract_idempotent_replaced_paged_counted_and_shared(stores: tuple[FeedbackStore, FeedbackStore]) -> None:
    first, second = stores
    stored, changed = first.record(rec("INC1", "INC2", flagged=True))
    assert changed and stored.verdict == "duplicate"
    again, changed = first.record(rec("INC1", "INC2", flagged=True))  # a retried POST
    assert not changed and again == stored
    # another source on the same pair is another verdict; a changed verdict replaces the old one
    assert first.record(rec("INC1", "INC2", "not_similar", source="agent-app", flagged=True))[1]
    replaced, changed = first.record(rec("INC1", "INC2", "related", at="2026-11-23T08:00:00+00:00"))
    assert changed and replaced.verdict == "related" and replaced.flagged is True  # what it knew is kept
    for i in range(7):
        first.record(rec(f"INC1{i:02d}", "INC9", "not_similar", flagged=i % 2 == 0))
    seen: list[FeedbackRecord] = []
    cursor = None
    pages = 0
    while True:  # the second handle pages everything out, each key once
        page = second.page(cursor, limit=3)
        assert page.total == 9
        seen += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3 and len({r.key for r in seen}) == 9
    got = second.get("INC1", "INC2", "servicenow")
    assert got is not None and got.verdict == "related"
    counts = second.counts()
    assert counts.by_verdict == {"duplicate": 0, "related": 1, "not_similar": 8}
    assert counts.flagged_by_verdict == {"duplicate": 0, "related": 1, "not_similar": 5}
    with pytest.raises(ValueError, match="cursor"):
        second.page("not-a-cursor")


def test_a_torn_last_line_is_skipped_and_the_log_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    store = FileFeedbackStore(path)
    store.record(rec("INC1", "INC2"))
    with path.open("ab") as f:  # a crash in the middle of the next write
        f.write(b'{"incident":"INC3","sugg')
    reopened = FileFeedbackStore(path)
    assert [r.key for r in reopened.page().items] == [("INC1", "INC2", "servicenow")]
    reopened.record(rec("INC4", "INC5"))
    assert [r.incident for r in FileFeedbackStore(path).page().items] == ["INC1", "INC4"]


def test_post_and_get_feedback_over_http(writable_settings: Settings) -> None:
    engine = Engine.from_settings(writable_settings)
    with LiveServer(create_app(writable_settings, engine)) as server, \
            httpx.Client(base_url=server.url, timeout=30, headers=AUTH) as client:
        answer = client.post("/similar", json={"text": "vpn certificate expired", "exclude": ["inc0099001"]}).json()
        top = answer["results"][0]
        assert top["similar"] is None  # the fixture bundle is uncalibrated: the feedback says flagged null too
        body = {"incident": "INC0099001", "suggested": top["number"], "verdict": "not_similar",
                "source": "servicenow", "at": "2026-11-22T10:15:00Z"}
        r = client.post("/feedback", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["flagged"] is top["similar"] and r.json()["score"] == pytest.approx(top["score"], abs=1e-5)
        assert client.post("/feedback", json=body).status_code == 200  # idempotent
        assert client.post("/feedback", json={**body, "verdict": "duplicate"}).json()["created"] is True
        for bad, field in (({**body, "verdict": "maybe"}, "verdict"), ({**body, "incident": ""}, "incident"),
                           ({**body, "at": "2026-11-22T10:15:00"}, "at"), ({**body, "extra": 1}, "extra")):
            r = client.post("/feedback", json=bad)
            assert r.status_code == 422 and field in r.json()["error"]["message"], r.text
        query_only = client.post("/feedback", json=body, headers={"Authorization": f"Bearer {QUERY_KEY}"})
        assert query_only.status_code == 403
        assert client.get("/feedback").status_code == 403  # export: admin
        page = client.get("/feedback", headers=ADMIN).json()
        assert page["total"] == 1 and page["items"][0]["verdict"] == "duplicate"
        assert client.get("/feedback", params={"cursor": "x"}, headers=ADMIN).status_code == 422
        status = client.get("/admin/threshold", headers=ADMIN).json()
        assert status["feedback"]["by_verdict"]["duplicate"] == 1
        assert status["live"]["answers_logged"] == 1 and status["live"]["answers"] == 0  # uncalibrated: no share
        metrics = client.get("/metrics").text
        assert 'incident_sim_feedback_total{verdict="duplicate"} 1.0' in metrics
        assert 'incident_sim_feedback_total{verdict="not_similar"} 1.0' in metrics


def serve_process(settings: Settings, tmp: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1",
           "INCIDENT_SIM_BUNDLE_PATH": str(settings.bundle_path), "INCIDENT_SIM_LOG_FORMAT": "text",
           "INCIDENT_SIM_API_KEYS": json.dumps([{"name": "sn", "key": WRITE_KEY, "scopes": ["query", "write"]},
                                                {"name": "ops", "key": ADMIN_KEY, "scopes": ["admin"]}])}
    port = free_port()
    log = tmp / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/readyz", proc, log, timeout=120)
    return proc, url


def test_feedback_and_answers_survive_sigkill(writable_settings: Settings, tmp_path: Path) -> None:
    proc, url = serve_process(writable_settings, tmp_path, "first")
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as c:
            for i in range(3):
                assert c.post("/similar", json={"text": f"printer jam on floor {i}",
                                                "exclude": [f"INC00770{i}"]}).status_code == 200
            for i in range(5):
                r = c.post("/feedback", json={"incident": f"INC00770{i % 3}", "suggested": f"INC00660{i}",
                                              "verdict": "duplicate" if i % 2 else "not_similar",
                                              "source": "servicenow", "at": "2026-11-22T10:15:00Z"})
                assert r.status_code == 201, r.text
    finally:
        proc.send_signal(signal.SIGKILL)  # acknowledged: must be on disk, no shutdown hook runs
        proc.wait(timeout=30)
    proc, url = serve_process(writable_settings, tmp_path, "second")
    try:
        with httpx.Client(base_url=url, headers=ADMIN, timeout=30) as c:
            page = c.get("/feedback", params={"limit": 1000}).json()
            assert page["total"] == 5 and {i["suggested"] for i in page["items"]} == {f"INC00660{i}" for i in range(5)}
            status = c.get("/admin/threshold").json()
            assert status["live"]["answers_logged"] == 3  # the answer log came back too
            retry = c.post("/feedback", json={"incident": "INC007700", "suggested": "INC006600",
                                              "verdict": "not_similar", "source": "servicenow",
                                              "at": "2026-11-22T10:15:00Z"},
                           headers={"Authorization": f"Bearer {WRITE_KEY}"})
            assert retry.status_code == 200  # the retry after the crash changes nothing
            assert c.get("/feedback").json()["total"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_link_recorded_after_a_suggestion_becomes_duplicate_feedback(writable_settings: Settings,
                                                                        incidents: list[Incident]) -> None:
    engine = Engine.from_settings(writable_settings)
    app = create_app(writable_settings.model_copy(update={"flag_link_check_s": 0}), engine)
    watch = app.state.flag
    try:
        asked = incidents[0]
        query = engine.build_query(asked.short_description, asked.description, None, 5, [asked.number])
        watch.record_answer(engine.similar(query), asked.number)
        suggested = watch.answers.recent()[-1].suggested
        second = suggested[1][0]  # not the top one: any suggestion the agent links counts
        fetch = payload_fetcher(engine)
        assert watch.check_links(fetch) == []  # the links it had when first seen are no verdict
        engine.upsert_incidents([asked.model_copy(update={"duplicate_of": second})])  # as a push or a sync writes it
        found = watch.check_links(fetch)
        assert [(f.incident, f.suggested, f.verdict, f.source) for f in found] == [
            (asked.number, second, Verdict.duplicate.value, LINK_SOURCE)]
        assert engine.bundle.threshold_source == "uncalibrated_default"
        assert found[0].flagged is None  # suggested under the uncalibrated default: neither flagged nor not
        assert watch.check_links(fetch) == []  # once
        assert watch.feedback.counts().by_verdict["duplicate"] == 1
    finally:
        watch.close()
        engine.close()


def test_on_a_qdrant_server_feedback_lives_beside_the_index_versions(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from indexing.store.server import ServerCatalog
    from service.flag import feedback_store_for

    catalog = ServerCatalog(":memory:", "incidents")
    replica_a = feedback_store_for(Settings(data_dir=tmp_path / "a"), SimpleNamespace(catalog=catalog))  # type: ignore
    replica_b = feedback_store_for(Settings(data_dir=tmp_path / "b"), SimpleNamespace(catalog=catalog))  # type: ignore
    assert isinstance(replica_a, QdrantFeedbackStore) and replica_a.collection == "incidents.feedback"
    replica_a.record(rec("INC1", "INC2"))
    assert replica_b.get("INC1", "INC2", "servicenow") is not None  # every replica sees it
    assert not (tmp_path / "a").exists()  # nothing in a replica's local data directory
    assert "incidents.feedback" not in catalog.versions()  # never taken for an index version
    embedded = feedback_store_for(Settings(data_dir=tmp_path / "c"), SimpleNamespace(catalog=None))  # type: ignore
    assert isinstance(embedded, FileFeedbackStore)
