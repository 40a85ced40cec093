"""A version the serving catalog opens is read into the page cache in the background (indexing/store/edge_warm.py):
every segment byte once, stopped by a close, and only when asked for."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from indexing.incidents import point_id_for
from indexing.lexical import SparseVector
from indexing.store.base import IndexMeta, IndexPoint
from indexing.store.edge_catalog import EdgeCatalog
from indexing.store.edge_warm import warm_page_cache


def _version(base: Path, n: int = 300) -> EdgeCatalog:
    catalog = EdgeCatalog(base)
    store = catalog.create("v1")
    store.create_index(IndexMeta(index_version="v1", model_version="m", encoder_id="e", dim=32, analyzer="x",
                                 k1=1.2, b=0.75, avgdl=10.0, created_at="2026-12-03T00:00:00+00:00"))
    rng = np.random.default_rng(1)
    store.upsert([IndexPoint(point_id_for(f"INC{i:07d}"), rng.standard_normal(32).astype(np.float32),
                             SparseVector([i % 20], [1.0]), {"number": f"INC{i:07d}"}) for i in range(n)])
    store.close()
    catalog.mark_complete("v1")
    return catalog


def _segment_bytes(catalog: EdgeCatalog) -> int:
    return sum(p.stat().st_size for p in (catalog.version_dir("v1") / "shard" / "segments").rglob("*") if p.is_file())


@pytest.mark.parametrize("warm_on_open", [True, False])
def test_the_serving_catalog_warms_what_it_opens(tmp_path: Path, warm_on_open: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = _version(tmp_path)
    catalog.close()
    started: list[threading.Thread] = []
    from indexing.store import edge

    original = edge.EdgeStore.start_warming

    def recorded(self: edge.EdgeStore) -> threading.Thread:
        started.append(original(self))
        return started[-1]

    monkeypatch.setattr(edge.EdgeStore, "start_warming", recorded)
    serving = EdgeCatalog(tmp_path, warm_on_open=warm_on_open)
    store = serving.open("v1")
    for thread in started:
        thread.join(timeout=30)
    assert len(started) == (1 if warm_on_open else 0)
    assert store.count() == 300
    store.close()
    serving.close()


def test_warming_reads_every_segment_byte_once_and_stops_when_closed(tmp_path: Path) -> None:
    catalog = _version(tmp_path)
    store = catalog.open("v1")
    expected = _segment_bytes(catalog)
    result = store.warm()
    assert expected > 0
    assert result.bytes_read == expected and not result.stopped
    store.close()
    stopped = store.warm()  # the store is closed: nothing is read
    assert stopped.stopped and stopped.bytes_read == 0
    catalog.close()


def test_a_vanished_directory_warms_nothing_and_raises_nothing(tmp_path: Path) -> None:
    result = warm_page_cache(tmp_path / "gone")
    assert (result.files, result.bytes_read, result.stopped) == (0, 0, False)


def test_vectors_left_on_disk_are_not_warmed(tmp_path: Path) -> None:
    from indexing.store.edge import DENSE, EdgeStore, GraphConfig

    store = EdgeStore(tmp_path / "v", graph=GraphConfig(int8=True, vectors_on_disk=True))
    store.create_index(IndexMeta(index_version="v", model_version="m", encoder_id="e", dim=32, analyzer="x", k1=1.2,
                                 b=0.75, avgdl=10.0, created_at="2026-12-03T00:00:00+00:00"))
    rng = np.random.default_rng(2)
    store.upsert([IndexPoint(point_id_for(f"INC{i:07d}"), rng.standard_normal(32).astype(np.float32),
                             SparseVector([i % 20], [1.0]), {"number": f"INC{i:07d}"}) for i in range(200)])
    segments = tmp_path / "v" / "shard" / "segments"
    files = [p for p in segments.rglob("*") if p.is_file()]
    vectors = sum(p.stat().st_size for p in files if f"vector_storage-{DENSE}" in p.parts)
    assert vectors > 0
    result = store.warm()
    assert result.bytes_read == sum(p.stat().st_size for p in files) - vectors
    store.close()
