"""Index versions and the atomic switch, the same contract on Qdrant Edge (pointer file) and a Qdrant
server (collection alias; qdrant-client ':memory:' standing in)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_store_contract import make_meta, make_points

from indexing.errors import StoreUnavailableError
from indexing.store.base import IndexCatalog
from indexing.store.edge import EdgeStore
from indexing.store.edge_catalog import EdgeCatalog
from indexing.store.server import ServerCatalog


@pytest.fixture(params=["edge", "server"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexCatalog]:
    c: IndexCatalog = EdgeCatalog(tmp_path / "idx") if request.param == "edge" else ServerCatalog(":memory:", "inc")
    yield c
    c.close()


def build(catalog: IndexCatalog, name: str, n_points: int) -> None:
    store = catalog.create(name)
    meta = replace(make_meta(), index_version=name)
    store.create_index(meta)
    store.upsert(make_points(meta)[:n_points])


def test_versions_switch_and_clean_up(catalog: IndexCatalog) -> None:
    assert catalog.active() is None and catalog.versions() == {}
    build(catalog, "m1@1", 5)
    assert catalog.versions() == {"m1@1": False}
    with pytest.raises(StoreUnavailableError, match="incomplete"):
        catalog.switch("m1@1")  # never switch to a half-built version
    catalog.mark_complete("m1@1")
    catalog.switch("m1@1")
    assert catalog.active() == "m1@1"
    old = catalog.open("m1@1")
    assert old.count() == 5

    build(catalog, "m2@2", 3)
    assert catalog.active() == "m1@1"  # building does not change what is served
    catalog.mark_complete("m2@2")
    catalog.switch("m2@2")
    assert catalog.active() == "m2@2"
    assert catalog.open("m2@2").count() == 3
    assert old.count() == 5  # a store opened before the switch still reads its own version
    with pytest.raises(ValueError, match="active"):
        catalog.drop("m2@2")
    catalog.switch("m1@1")  # rollback: the old version was kept
    assert catalog.active() == "m1@1"


def test_incomplete_versions_are_cleaned_but_never_the_active_one(catalog: IndexCatalog) -> None:
    build(catalog, "m1@1", 5)
    catalog.mark_complete("m1@1")
    catalog.switch("m1@1")
    build(catalog, "m2@2", 2)  # a rebuild cut short
    assert catalog.clean_incomplete() == ["m2@2"]
    assert catalog.versions() == {"m1@1": True}
    assert catalog.active() == "m1@1"


def test_edge_legacy_layout_is_the_active_version(tmp_path: Path) -> None:
    base = tmp_path / "idx"
    store = EdgeStore(base)
    store.create_index(make_meta())
    store.upsert(make_points(make_meta()))
    store.close()
    catalog = EdgeCatalog(base)
    assert catalog.active() == "legacy" and catalog.versions() == {"legacy": True}
    build(catalog, "m2@2", 2)
    catalog.mark_complete("m2@2")
    catalog.switch("m2@2")
    assert catalog.active() == "m2@2"
    catalog.drop("legacy")
    assert catalog.versions() == {"m2@2": True}


def test_settings_choose_how_new_edge_versions_build_their_graph(tmp_path: Path) -> None:
    import json

    from service.settings import Settings
    from service.wiring import open_catalog

    catalog = open_catalog(Settings(data_dir=tmp_path, dev_mode=True, hnsw_m=12, hnsw_ef_construct=48,
                                    index_int8=True, index_vectors_on_disk=True))
    store = catalog.create("v1")
    store.create_index(make_meta())
    store.close()
    dense = json.loads((tmp_path / "index" / "incidents" / "versions" / "v1" / "shard" / "edge_config.json")
                       .read_text())["vectors"]["dense"]
    assert (dense["hnsw_config"]["m"], dense["hnsw_config"]["ef_construct"]) == (12, 48)
    assert dense["quantization_config"]["scalar"]["type"] == "int8"
    assert dense["quantization_config"]["scalar"]["always_ram"] is True  # the int8 copies stay in RAM ...
    assert dense["memory"] == "cold"  # ... the float32 originals on disk
    default = open_catalog(Settings(data_dir=tmp_path / "d", dev_mode=True)).create("v1")
    default.create_index(make_meta())
    default.close()
    dense = json.loads((tmp_path / "d" / "index" / "incidents" / "versions" / "v1" / "shard" / "edge_config.json")
                       .read_text())["vectors"]["dense"]
    assert (dense["hnsw_config"]["m"], dense["hnsw_config"]["ef_construct"], dense.get("quantization_config")) == \
        (16, 100, None)
    assert dense.get("memory") != "cold"


def test_concurrent_write_probes_never_report_a_writable_directory_as_not_writable(tmp_path: Path) -> None:
    """Readiness checks run in the thread pool, many at once (an orchestrator's probes beside Prometheus)."""
    from concurrent.futures import ThreadPoolExecutor

    catalog = EdgeCatalog(tmp_path / "idx")
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: catalog.writable(), range(2000)))
        assert set(answers) == {None}, {a for a in answers if a is not None}
        assert not [p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith(".write-probe-")]
    finally:
        catalog.close()
