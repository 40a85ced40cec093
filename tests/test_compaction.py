"""Background compaction of the Qdrant Edge index (issue 13, item 8): the optimizers run in another process,
never in the serving one; a compaction loses no write made while it runs; replaced versions are no rollback
target; the policy fires after enough writes or when idle."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_hotswap import bundle_b, registry_settings  # noqa: F401 (fixtures)

from conftest import ADMIN_KEY, LiveServer
from indexing import failpoints
from indexing.bundle import Bundle
from indexing.errors import IncidentNotFoundError, SwapInProgressError
from indexing.incidents import Incident, point_id_for
from indexing.lexical import SparseVector
from indexing.registry import BundleRegistry
from indexing.store.base import IndexMeta, IndexPoint
from indexing.store.edge import EdgeStore
from indexing.store.edge_catalog import EdgeCatalog
from service.app import create_app
from service.engine import Engine, SimilarQuery
from service.settings import Settings
from service.versions.compaction import CompactionPolicy, IndexCompactor
from service.versions.switcher import ModelSwitcher

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _ticks_per_second(work) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """How often a Python thread gets to run while `work()` runs (near 0 when `work` holds the GIL)."""
    ticks, stop = 0, threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=tick)
    thread.start()
    t0 = time.perf_counter()
    try:
        result = work()
    finally:
        stop.set()
        thread.join()
    return ticks / (time.perf_counter() - t0), result


def test_optimize_runs_apart_builds_hnsw_and_never_holds_the_serving_interpreter(tmp_path: Path) -> None:
    catalog = EdgeCatalog(tmp_path)
    store = catalog.create("v1")
    store.create_index(IndexMeta(index_version="v1", model_version="m", encoder_id="e", dim=768, analyzer="x",
                                 k1=1.2, b=0.75, avgdl=10.0, created_at="2026-11-23T00:00:00+00:00"))
    rng = np.random.default_rng(0)
    points = [IndexPoint(point_id_for(f"INC{i:07d}"), rng.standard_normal(768).astype(np.float32),
                         SparseVector([i % 50, 100 + i % 7], [1.0, 2.0]), {"number": f"INC{i:07d}"})
              for i in range(4000)]  # above Qdrant's default indexing threshold for 768-d vectors
    for start in range(0, len(points), 500):
        store.upsert(points[start : start + 500])
    assert store._shard is not None
    indexed_before = store._shard.info().indexed_vectors_count
    store.close()

    rate, seconds = _ticks_per_second(lambda: catalog.optimize_apart("v1"))
    assert rate > 200, f"a Python thread ran {rate:.0f} times/s while optimizing: the interpreter was held"
    reopened = catalog.open("v1")
    assert reopened._shard is not None
    assert reopened._shard.info().indexed_vectors_count == indexed_before + 4000  # HNSW over the dense vectors
    assert reopened.count() == 4000
    reopened.close()


def test_optimize_apart_failure_is_a_clear_store_error(tmp_path: Path) -> None:
    catalog = EdgeCatalog(tmp_path)
    (tmp_path / "versions" / "broken").mkdir(parents=True)
    with pytest.raises(Exception, match="optimizing index version broken failed: no Qdrant Edge shard"):
        catalog.optimize_apart("broken")


def _compactor(engine: Engine, **policy: float) -> IndexCompactor:
    return IndexCompactor(engine, ModelSwitcher(engine), policy=CompactionPolicy(**policy), drain_s=0.0)


def test_a_compaction_keeps_every_write_made_while_it_runs(registry_settings: Settings,  # noqa: F811
                                                           incidents: list[Incident],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, "compaction.optimize=1.0,compaction.before_switch=1.0")
    monkeypatch.setattr(EdgeStore, "optimize", lambda self: pytest.fail("optimize() ran in the serving process"))
    engine = Engine.from_settings(registry_settings)
    compactor = _compactor(engine)
    before = engine.index_version
    expected = {i.number: i.short_description for i in incidents}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            compactor.compact("test")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deleted: list[str] = []
    n = 0
    while thread.is_alive():  # writes land in every phase: copying, optimizing, catch-up, the switch
        n += 1
        created = Incident(number=f"INC09{n:05d}", short_description=f"compaction write {n}: pulsar relay down")
        changed = incidents[n].model_copy(update={"short_description": f"changed during compaction {n}"})
        engine.upsert_incidents([created, changed])
        expected[created.number], expected[changed.number] = created.short_description, changed.short_description
        victim = incidents[-n].number
        engine.delete_incident(victim)
        expected.pop(victim)
        deleted.append(victim)
        time.sleep(0.05)
    thread.join()
    assert not errors, errors
    status = compactor.status()
    assert status.state == "done" and n >= 10 and status.caught_up > 0
    assert engine.index_version != before and engine.catalog is not None
    assert engine.catalog.active() == engine.current.index_name

    def check(e: Engine) -> None:
        assert e.store.count() == len(expected)
        for number, text in expected.items():
            assert e.get_incident(number).payload["short_description"] == text
        for number in deleted:
            with pytest.raises(IncidentNotFoundError):
                e.get_incident(number)
        last = f"INC09{n:05d}"
        top = e.similar(SimilarQuery(text=expected[last], top_k=1)).results
        assert top[0].payload["number"] == last  # vectors were copied, not lost

    check(engine)
    compactor.release_drained()  # drain_s=0: the replaced version is closed and dropped
    assert before not in engine.catalog.versions()
    engine.close()
    restarted = Engine.from_settings(registry_settings)  # the pointer moved: a restart serves the copy
    assert restarted.index_version == status.index_version
    check(restarted)
    restarted.close()


def test_a_version_still_draining_stays_on_disk_and_readable(registry_settings: Settings) -> None:  # noqa: F811
    """Two compactions in a row: releasing the first replaced version (drained) must not drop the second one,
    which requests may still be reading (found by schemathesis calling the compact route back to back)."""
    engine = Engine.from_settings(registry_settings)
    compactor = IndexCompactor(engine, ModelSwitcher(engine), drain_s=0.5)
    first = engine.current
    compactor.compact()
    time.sleep(0.6)
    second = engine.current
    compactor.compact()
    compactor.release_drained()  # the first is drained now, the second is not
    assert engine.catalog is not None
    versions = engine.catalog.versions()
    assert first.index_name not in versions
    assert second.index_name in versions, "a version still draining was dropped from under its readers"
    assert second.store.count() == engine.store.count()  # still readable
    time.sleep(0.6)
    compactor.release_drained()
    assert second.index_name not in engine.catalog.versions()
    assert list(engine.catalog.versions()) == [engine.current.index_name]
    engine.close()


def test_a_failed_compaction_changes_nothing(registry_settings: Settings, incidents: list[Incident],  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine.from_settings(registry_settings)
    compactor = _compactor(engine)
    before, count = engine.index_version, engine.store.count()

    def broken(self: EdgeCatalog, name: str, timeout_s: float = 0) -> float:
        raise RuntimeError("disk full while optimizing")

    monkeypatch.setattr(EdgeCatalog, "optimize_apart", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        compactor.compact()
    assert compactor.status().state == "failed" and "disk full" in str(compactor.status().error)
    assert engine.index_version == before and engine.write_journal is None
    assert engine.catalog is not None and list(engine.catalog.versions()) == [engine.current.index_name]
    engine.upsert_incidents([Incident(number="INC0999999", short_description="after the failed compaction")])
    assert engine.store.count() == count + 1
    engine.close()


def test_compacted_copies_are_no_rollback_target(registry_settings: Settings, bundle_b: Bundle,  # noqa: F811
                                                 minilm_bundle: Bundle) -> None:
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    engine = Engine.from_settings(registry_settings)
    switcher = ModelSwitcher(engine)
    assert switcher.activate(bundle_b.model_version, background=False).state == "switched"
    compactor = IndexCompactor(engine, switcher, drain_s=0.0)
    compactor.compact()
    compactor.release_drained()
    assert engine.bundle.model_version == bundle_b.model_version
    # a rollback goes to the previous model (A), not to B's pre-compaction copy
    assert switcher.rollback().model_version == minilm_bundle.model_version
    assert engine.catalog is not None
    models = sorted(engine.catalog.model_of(n) for n in engine.catalog.versions())
    assert models == sorted([minilm_bundle.model_version, bundle_b.model_version])
    engine.close()


def test_no_switch_while_compacting_and_no_compaction_while_switching(registry_settings: Settings,  # noqa: F811
                                                                      bundle_b: Bundle) -> None:  # noqa: F811
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    engine = Engine.from_settings(registry_settings)
    switcher = ModelSwitcher(engine)
    compactor = IndexCompactor(engine, switcher)
    with switcher.exclusive("an index compaction"):
        with pytest.raises(SwapInProgressError, match="an index compaction is running"):
            switcher.activate(bundle_b.model_version)
        with pytest.raises(SwapInProgressError):
            switcher.rollback()
    switcher._thread = threading.Thread(target=time.sleep, args=(2,))
    switcher._thread.start()
    with pytest.raises(SwapInProgressError, match="rebuild"):
        compactor.compact()
    switcher._thread.join()
    engine.close()


@pytest.mark.parametrize(("writes", "idle_s", "expected"), [
    (0, 1e9, None), (49, 1e9, None), (50, 299.0, None), (50, 300.0, "idle"), (999, 0.0, None), (1000, 0.0, "writes")])
def test_policy(writes: int, idle_s: float, expected: str | None) -> None:
    assert CompactionPolicy(after_writes=1000, idle_writes=50, idle_s=300).reason(writes, idle_s) == expected
    assert CompactionPolicy(after_writes=0).reason(writes, idle_s) is None  # off


def test_the_service_compacts_by_itself_after_enough_writes(registry_settings: Settings,  # noqa: F811
                                                            incidents: list[Incident]) -> None:
    settings = registry_settings.model_copy(update={"compact_after_writes": 20, "compact_drain_s": 0.0})
    engine = Engine.from_settings(settings)
    app = create_app(settings, engine)
    app.state.compactor.policy = CompactionPolicy(after_writes=20, check_s=0.2)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, headers=ADMIN, timeout=30) as client:
        first = client.get("/readyz").json()["index_version"]
        for i in range(25):
            r = client.put(f"/incidents/INC08{i:05d}", json={"short_description": f"pushed incident {i} quasar"})
            assert r.status_code == 201, r.text
        deadline = time.monotonic() + 60
        while client.get("/admin/index/compaction").json()["last"]["state"] != "done":
            assert time.monotonic() < deadline, client.get("/admin/index/compaction").json()
            time.sleep(0.2)
        state = client.get("/admin/index/compaction").json()
        assert state["last"]["reason"] == "writes" and state["writes_since_build"] < 20
        assert client.get("/readyz").json()["index_version"] == state["last"]["index_version"] != first
        assert client.get("/incidents/INC0800024").status_code == 200
        metrics = client.get("/metrics").text
        assert 'incident_sim_index_compactions_total{result="ok"} 1.0' in metrics
        r = client.post("/admin/index/compact")  # on demand as well
        assert r.status_code == 200 and r.json()["state"] == "done" and r.json()["reason"] == "requested"


def test_the_background_thread_waits_while_told_to_postpone(registry_settings: Settings,  # noqa: F811
                                                             incidents: list[Incident]) -> None:
    """The quickstart's background indexing postpones compactions: none while it runs, one once it is done."""
    engine = Engine.from_settings(registry_settings)
    hold = {"why": "the background indexing runs"}
    compactor = IndexCompactor(engine, ModelSwitcher(engine), policy=CompactionPolicy(after_writes=5, check_s=0.05),
                               drain_s=0.0, postpone=lambda: hold["why"])
    engine.upsert_incidents([i.model_copy(update={"number": f"INC07{k:05d}"}) for k, i in enumerate(incidents[:8])])
    first = engine.index_version
    compactor.start()
    try:
        time.sleep(0.6)
        assert compactor.status().state == "idle" and engine.index_version == first
        hold["why"] = None  # type: ignore[assignment]
        deadline = time.monotonic() + 60
        while compactor.status().state != "done":
            assert time.monotonic() < deadline, compactor.status()
            time.sleep(0.05)
        assert engine.index_version != first and compactor.status().reason == "writes"
    finally:
        compactor.stop()
        engine.close()


def test_the_copy_is_made_from_stored_vectors_not_re_embedded(registry_settings: Settings,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine.from_settings(registry_settings)
    sample = engine.store.scroll(None, 5)[0]
    before = {s.point_id: s for s in engine.store.fetch([s.point_id for s in sample])}
    monkeypatch.setattr(type(engine.encoder), "encode",
                        lambda *a, **k: pytest.fail("the compaction re-embedded an incident"))
    _compactor(engine).compact()
    after = {s.point_id: s for s in engine.store.fetch(list(before))}
    for point_id, old in before.items():
        assert old.dense is not None and after[point_id].dense is not None
        assert np.array_equal(old.dense, after[point_id].dense) and old.sparse == after[point_id].sparse
        assert old.payload == after[point_id].payload
    engine.close()



def test_a_model_rebuild_optimizes_apart_and_keeps_writes_made_meanwhile(
        registry_settings: Settings, bundle_b: Bundle, incidents: list[Incident],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, "rebuild.optimize=1.5")
    monkeypatch.setattr(EdgeStore, "optimize", lambda self: pytest.fail("optimize() ran in the serving process"))
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    engine = Engine.from_settings(registry_settings)
    switcher = ModelSwitcher(engine, page_size=64)
    switcher.activate(bundle_b.model_version)
    while engine.write_journal is None and switcher.status().state == "building":  # wait for the optimize phase
        time.sleep(0.01)
    created = Incident(number="INC0970001", short_description="written while the new index was optimized apart")
    changed = incidents[5].model_copy(update={"short_description": "changed while the new index was optimized"})
    engine.upsert_incidents([created, changed])
    engine.delete_incident(incidents[6].number)
    status = switcher.wait(120)
    assert status.state == "switched", status.error
    assert engine.bundle.model_version == bundle_b.model_version
    assert engine.get_incident(created.number).payload["short_description"] == created.short_description
    assert engine.get_incident(changed.number).payload["short_description"] == changed.short_description
    with pytest.raises(IncidentNotFoundError):
        engine.get_incident(incidents[6].number)
    assert engine.similar(SimilarQuery(text=created.short_description, top_k=1)).results[0].payload["number"] == \
        created.number
    engine.close()


def test_cli_compacts_offline_and_drops_the_replaced_copy(registry_settings: Settings) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from service.cli import app

    catalog = EdgeCatalog(registry_settings.edge_index_dir, read_only=True)  # reads the pointer, locks nothing
    before = catalog.active()
    engine = Engine.from_settings(registry_settings)
    serving = engine.index_version
    engine.close()
    result = CliRunner().invoke(app, ["models", "compact", "--data-dir", str(registry_settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert f"compacted {serving} into " in result.output and "300 incidents" in result.output
    after = catalog.active()
    assert after != before and list(catalog.versions()) == [after]
    engine = Engine.from_settings(registry_settings)
    assert engine.store.count() == 300 and engine.index_version == after
    engine.close()


def test_compaction_of_a_bundle_served_by_path_leaves_the_registry_alone(writable_settings: Settings) -> None:
    engine = Engine.from_settings(writable_settings)  # INCIDENT_SIM_BUNDLE_PATH: no registry entry at all
    before = engine.index_version
    status = IndexCompactor(engine, ModelSwitcher(engine)).compact()
    assert status.state == "done" and engine.index_version != before
    assert BundleRegistry(writable_settings.bundles_dir).active_version() is None
    engine.close()
