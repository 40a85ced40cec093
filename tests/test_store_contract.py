"""The same contract for every store adapter: Qdrant Edge (embedded) and Qdrant server via
qdrant-client (its ':memory:' mode standing in for the server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from indexing import lexical
from indexing.errors import StoreUnavailableError
from indexing.store.base import IncidentFilter, IncidentStore, IndexMeta, IndexPoint
from indexing.store.edge import EdgeStore
from indexing.store.server import ServerStore

DIM = 8
TEXTS = {
    "INC1": "vpn certificate expired on gateway vpn-gw-fra01",
    "INC2": "vpn mfa push not received",
    "INC3": "printer offline on floor 3",
    "INC4": "database ORA-1652 unable to extend tablespace on db-srv07",
    "INC5": "certificate expired on webshop load balancer",
}


def make_meta() -> IndexMeta:
    analyzer = lexical.Analyzer()
    return IndexMeta(index_version="test@1", model_version="test", encoder_id="e1", dim=DIM, analyzer=analyzer.name,
                     k1=1.2, b=0.75, avgdl=lexical.average_document_length(analyzer, [(t, "") for t in TEXTS.values()]),
                     created_at="now")


def make_points(meta: IndexMeta) -> list[IndexPoint]:
    rng = np.random.default_rng(0)
    bm25 = lexical.BM25Encoder(lexical.Analyzer(), lexical.BM25Params(meta.k1, meta.b, meta.avgdl))
    points = []
    for number, text in TEXTS.items():
        v = rng.normal(size=DIM).astype(np.float32)
        points.append(IndexPoint(point_id=_pid(number), dense=v / np.linalg.norm(v), sparse=bm25.document(text),
                                 payload={"number": number, "short_description": text}))
    return points


def _raw_score(query: lexical.SparseVector, doc: dict[int, float], idf: dict[int, float]) -> float:
    """BM25 as documented in indexing/lexical.py: sum over query terms of qtf * idf * stored weight."""
    return sum(qv * idf[t] * doc.get(t, 0.0) for t, qv in zip(query.indices, query.values, strict=True))


def _pid(number: str) -> str:
    from indexing.incidents import point_id_for

    return point_id_for(number)


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentStore]:
    s: IncidentStore = EdgeStore(tmp_path / "idx") if request.param == "edge" else ServerStore(":memory:", "incidents")
    yield s
    s.close()


def test_empty_store_has_no_index(store: IncidentStore) -> None:
    assert store.meta() is None


def test_create_upsert_count_and_idempotence(store: IncidentStore) -> None:
    meta = make_meta()
    store.create_index(meta)
    assert store.meta() == meta
    points = make_points(meta)
    store.upsert(points)
    assert store.count() == len(TEXTS)
    store.upsert(points)  # same ids: overwritten, not duplicated
    assert store.count() == len(TEXTS)
    with pytest.raises(FileExistsError):
        store.create_index(meta)


def test_dense_search_orders_by_cosine(store: IncidentStore) -> None:
    meta = make_meta()
    store.create_index(meta)
    points = make_points(meta)
    store.upsert(points)
    query = points[2].dense
    hits = store.search_dense(query, 5)
    assert hits[0].point_id == points[2].point_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    expected = sorted((float(np.dot(query, p.dense)) for p in points), reverse=True)
    assert [h.score for h in hits] == pytest.approx(expected, abs=1e-5)


def test_sparse_search_is_bm25_with_qdrant_idf(store: IncidentStore) -> None:
    meta = make_meta()
    store.create_index(meta)
    points = make_points(meta)
    store.upsert(points)
    bm25 = lexical.BM25Encoder(lexical.Analyzer(), lexical.BM25Params(meta.k1, meta.b, meta.avgdl))
    query = bm25.query("certificate expired vpn")
    df = store.doc_freqs(query.indices)
    assert df[lexical.term_id("certificate")] == 2
    assert df[lexical.term_id("vpn")] == 2
    idf = {t: lexical.idf(store.count(), df[t]) for t in query.indices}
    hits = store.search_sparse(query, 10)
    by_id = {p.point_id: p for p in points}
    assert {h.point_id for h in hits} == {_pid("INC1"), _pid("INC2"), _pid("INC5")}
    for h in hits:
        assert h.score == pytest.approx(_raw_score(query, by_id[h.point_id].sparse.as_dict(), idf), rel=1e-5)
    assert hits[0].point_id == _pid("INC1")


def test_fetch_returns_vectors_and_payload_and_delete_removes(store: IncidentStore) -> None:
    meta = make_meta()
    store.create_index(meta)
    points = make_points(meta)
    store.upsert(points)
    got = {s.point_id: s for s in store.fetch([points[0].point_id, points[3].point_id, _pid("INC404")])}
    assert set(got) == {points[0].point_id, points[3].point_id}
    stored = got[points[3].point_id]
    assert stored.payload["number"] == "INC4"
    assert "terms" not in stored.payload
    assert np.allclose(stored.dense, points[3].dense, atol=1e-6)
    assert stored.sparse == pytest.approx(points[3].sparse.as_dict())
    store.delete([points[0].point_id])
    assert store.count() == len(TEXTS) - 1
    assert store.fetch([points[0].point_id]) == []
    query = lexical.BM25Encoder(lexical.Analyzer(), lexical.BM25Params(meta.k1, meta.b, meta.avgdl)).query("vpn")
    assert store.doc_freqs(query.indices)[query.indices[0]] == 1


def test_edge_index_survives_reopen(tmp_path: Path) -> None:
    meta = make_meta()
    store = EdgeStore(tmp_path / "idx")
    store.create_index(meta)
    store.upsert(make_points(meta))
    store.close()
    reopened = EdgeStore(tmp_path / "idx")
    assert reopened.meta() == meta
    assert reopened.count() == len(TEXTS)
    reopened.close()


def test_unreachable_server_raises_store_unavailable() -> None:
    from conftest import free_port

    store = ServerStore(f"http://127.0.0.1:{free_port()}", "incidents", timeout=1)
    with pytest.raises(StoreUnavailableError, match="failed on"):
        store.ping()
    with pytest.raises(StoreUnavailableError):
        store.meta()


def test_searches_restricted_to_given_incidents(store: IncidentStore) -> None:
    meta = make_meta()
    store.create_index(meta)
    points = make_points(meta)
    store.upsert(points)
    among = [points[1].point_id, points[4].point_id]
    dense = store.search_dense(points[0].dense, 10, among=among)
    assert {h.point_id for h in dense} == set(among)
    for h in dense:
        p = next(p for p in points if p.point_id == h.point_id)
        assert h.score == pytest.approx(float(np.dot(points[0].dense, p.dense)), abs=1e-5)
    bm25 = lexical.BM25Encoder(lexical.Analyzer(), lexical.BM25Params(meta.k1, meta.b, meta.avgdl))
    sparse = store.search_sparse(bm25.query("certificate expired vpn"), 10, among=[points[2].point_id, _pid("INC5")])
    assert [h.point_id for h in sparse] == [_pid("INC5")]  # INC3 shares no term with the query
    assert store.search_dense(points[0].dense, 10, among=[]) == []


def _filtered_points(meta: IndexMeta) -> list[IndexPoint]:
    extra = {"INC1": ("Network", "2025-01-10T08:00:00", "Closed"), "INC2": ("Network", "2025-06-01T12:00:00", "2"),
             "INC3": ("Hardware", "2025-03-01T00:00:00", "Closed"), "INC4": ("Database", "2025-07-01T00:00:00", "7"),
             "INC5": ("Network", "2024-12-31T23:59:59", "Closed")}
    return [IndexPoint(p.point_id, p.dense, p.sparse, {**p.payload, "category": extra[p.payload["number"]][0],
                                                        "opened_at": extra[p.payload["number"]][1],
                                                        "state": extra[p.payload["number"]][2]})
            for p in make_points(meta)]


@pytest.mark.parametrize(("where", "expected"), [
    (IncidentFilter(fields={"category": ("Network",)}), {"INC1", "INC2", "INC5"}),
    (IncidentFilter(fields={"category": ("Network", "Database")}), {"INC1", "INC2", "INC4", "INC5"}),
    (IncidentFilter(fields={"category": ("Network",), "state": ("Closed",)}), {"INC1", "INC5"}),
    (IncidentFilter(opened_after=datetime(2025, 1, 1), opened_before=datetime(2025, 6, 1, 12, 0)),
     {"INC1", "INC3"}),
    (IncidentFilter(opened_after=datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))), {"INC2", "INC4"}),
    (IncidentFilter(exclude_ids=(_pid("INC1"), _pid("INC2"))), {"INC3", "INC4", "INC5"}),
    (IncidentFilter(fields={"category": ("Nothing",)}), set()),
])
def test_filters_run_inside_the_query(store: IncidentStore, where: IncidentFilter, expected: set[str]) -> None:
    meta = make_meta()
    store.create_index(meta)
    points = _filtered_points(meta)
    store.upsert(points)
    number = {p.point_id: p.payload["number"] for p in points}
    dense = store.search_dense(points[0].dense, 10, where=where)
    assert {number[h.point_id] for h in dense} == expected
    # limit smaller than the matching set still returns only matching incidents (no post-filtering)
    assert {number[h.point_id] for h in store.search_dense(points[0].dense, 1, where=where)} <= expected
    bm25 = lexical.BM25Encoder(lexical.Analyzer(), lexical.BM25Params(meta.k1, meta.b, meta.avgdl))
    sparse = store.search_sparse(bm25.query("vpn certificate expired printer ora-1652 mfa"), 10, where=where)
    assert {number[h.point_id] for h in sparse} == expected
    among = [p.point_id for p in points[:3]]
    restricted = store.search_dense(points[0].dense, 10, among=among, where=where)
    assert {number[h.point_id] for h in restricted} == expected & {"INC1", "INC2", "INC3"}


def test_unknown_filter_field_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot filter on"):
        IncidentFilter(fields={"priority": ("1",)})


def test_scroll_pages_through_every_incident_with_terms(store: IncidentStore) -> None:
    meta = make_meta()
    store.create_index(meta)
    points = make_points(meta)
    store.upsert(points)
    seen, offset, pages = [], None, 0
    while True:
        page, offset = store.scroll(offset, 2)
        pages += 1
        seen.extend(page)
        if offset is None:
            break
    assert pages == 3
    assert sorted(s.payload["number"] for s in seen) == sorted(TEXTS)
    by_id = {p.point_id: p for p in points}
    for s in seen:
        assert s.terms == tuple(by_id[s.point_id].sparse.indices)
        assert "terms" not in s.payload
