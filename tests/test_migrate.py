"""Moving from the embedded index to a Qdrant server: `copy_index` carries every point and the index metadata, so
the server answers with the same incidents and the same scores (real Qdrant Edge on disk; qdrant-client's local
engine stands in for the server, which cannot run here). Also: a new collection gets the configured layout."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import IncidentSimError
from indexing.incidents import Incident
from indexing.indexer import bm25_encoder_for
from indexing.migrate import copy_index
from indexing.search import HybridSearcher
from indexing.store.base import IndexMeta
from indexing.store.edge_catalog import EdgeCatalog
from indexing.store.server import CollectionLayout, ServerCatalog, ServerStore


def searcher(store: Any, bundle: Bundle) -> HybridSearcher:
    meta = store.meta()
    return HybridSearcher(store, bm25_encoder_for(meta, bundle.max_query_terms), bundle.dense_weight,
                          bundle.bm25_weight, normalization=bundle.scoring.normalization)


def test_copy_index_keeps_every_incident_and_every_score(shared_index_dir: Path, minilm_bundle: Bundle,
                                                         encoder: OnnxEncoder, incidents: list[Incident],
                                                         tmp_path: Path) -> None:
    shutil.copytree(shared_index_dir / "index", tmp_path / "index")
    edge = EdgeCatalog(tmp_path / "index" / "incidents")
    active = edge.active()
    assert active is not None
    source = edge.open(active)
    server = ServerCatalog(":memory:", "incidents")
    name, copied = copy_index(source, server, page_size=64, progress=False)
    assert copied == len(incidents) and name == source.meta().index_version
    assert server.active() == name and server.versions()[name] is True
    target = server.open(name)
    assert target.meta() == source.meta() and target.count() == source.count()
    a, b = searcher(source, minilm_bundle), searcher(target, minilm_bundle)
    for incident in incidents[::37]:
        vector, _ = encoder.encode_one(incident.text())
        left, right = a.search(vector, incident.text(), 5), b.search(vector, incident.text(), 5)
        assert [r.payload["number"] for r in left.results] == [r.payload["number"] for r in right.results]
        for x, y in zip(left.results, right.results, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-5) and x.payload == y.payload
    with pytest.raises(IncidentSimError, match="already exists"):
        copy_index(source, server, name, progress=False)
    source.close()
    edge.close()


def test_a_new_collection_gets_the_configured_shards_replicas_and_write_consistency(
        minilm_bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout reaches Qdrant's create_collection (recorded on the way to the real local engine, which accepts
    and ignores it: a cluster cannot run here)."""
    store = ServerStore(":memory:", "incidents--v1", layout=CollectionLayout(1, 2, 2))
    seen: dict[str, Any] = {}
    real = store.client.create_collection

    def recording(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(store.client, "create_collection", recording)
    store.create_index(IndexMeta(index_version="v1", model_version=minilm_bundle.model_version,
                                 encoder_id=minilm_bundle.encoder_id, dim=minilm_bundle.dim, analyzer="stem",
                                 k1=1.2, b=0.75, avgdl=20.0, created_at="2026-11-23T00:00:00+00:00"))
    assert (seen["shard_number"], seen["replication_factor"], seen["write_consistency_factor"]) == (1, 2, 2)
