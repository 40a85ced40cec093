"""Acknowledged writes survive rollback, failed switches, damaged pointers and bad requests (issue 13, one test per
defect; the SIGKILL fault injection on real processes is tests/test_faults.py)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from test_hotswap import bundle_b, registry_settings  # noqa: F401 (fixtures)
from typer.testing import CliRunner

from conftest import ADMIN_KEY, TEST_KEYS, WRITE_KEY, LiveServer
from indexing.bundle import MANIFEST, Bundle, find_latest_bundle, load_bundle
from indexing.errors import BundleError, IncidentNotFoundError, IndexLockedError, InvalidVersionError
from indexing.incidents import Incident
from indexing.registry import BundleRegistry
from indexing.store.base import IndexMeta
from indexing.store.edge import EdgeStore
from indexing.store.edge_catalog import EdgeCatalog
from service.app import create_app
from service.auth import AuthConfigError, KeyRing
from service.engine import Engine, SimilarQuery
from service.settings import Settings
from service.versions import reembed
from service.versions.switcher import ModelSwitcher

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _switched(settings: Settings, bundle_b: Bundle) -> tuple[Engine, ModelSwitcher]:  # noqa: F811
    BundleRegistry(settings.bundles_dir).publish(bundle_b.path)
    engine = Engine.from_settings(settings)
    switcher = ModelSwitcher(engine, page_size=64)
    status = switcher.activate(bundle_b.model_version, background=False)
    assert status.state == "switched", status.error
    return engine, switcher


# 1 ------------------------------------------------------------------------------------------------------------
def test_rollback_keeps_every_write_made_after_the_switch(registry_settings: Settings, minilm_bundle: Bundle,  # noqa: F811
                                                          bundle_b: Bundle, incidents: list[Incident]) -> None:  # noqa: F811
    engine, switcher = _switched(registry_settings, bundle_b)
    created = Incident(number="INC0990001", short_description="quasar gateway refuses badge readers",
                       description="every badge reader on floor 9 times out against the quasar gateway")
    changed = incidents[3].model_copy(update={"short_description": "replaced text: zeppelin mainframe offline"})
    deleted = incidents[7].number
    engine.upsert_incidents([created, changed])
    engine.delete_incident(deleted)

    status = switcher.rollback()  # the kept version never received these writes: rollback replays them
    assert engine.bundle.model_version == minilm_bundle.model_version and status.replayed == 3

    def check(e: Engine) -> None:
        assert e.get_incident(created.number).payload["short_description"] == created.short_description
        assert e.get_incident(changed.number).payload["short_description"] == changed.short_description
        with pytest.raises(IncidentNotFoundError):
            e.get_incident(deleted)
        top = e.similar(SimilarQuery(text=created.text(), short_description=created.short_description,
                                     description=created.description, top_k=1)).results
        assert top[0].payload["number"] == created.number

    check(engine)
    # the same after a restart, when the version rolled back to is no longer loaded but opened from disk
    switcher.activate(bundle_b.model_version, background=False)
    late = Incident(number="INC0990002", short_description="nebula printer queue stuck since restart")
    engine.upsert_incidents([late])
    engine.close()
    restarted = Engine.from_settings(registry_settings)
    assert restarted.bundle.model_version == bundle_b.model_version
    assert ModelSwitcher(restarted).rollback().replayed >= 1
    check(restarted)
    assert restarted.get_incident(late.number).payload["short_description"] == late.short_description
    restarted.close()


# 2 ------------------------------------------------------------------------------------------------------------
def _version(catalog: EdgeCatalog, name: str, created_at: str, bundle: Bundle) -> None:
    store = catalog.create(name)
    store.create_index(IndexMeta(index_version=name, model_version=name.split("@")[0], encoder_id=bundle.encoder_id,
                                 dim=bundle.dim, analyzer=bundle.bm25["analyzer"], k1=1.2, b=0.75, avgdl=10.0,
                                 created_at=created_at))
    store.close()
    catalog.mark_complete(name)


def test_versions_are_ordered_by_age_not_by_name(minilm_bundle: Bundle, tmp_path: Path) -> None:
    catalog = EdgeCatalog(tmp_path / "index")
    _version(catalog, "mpnet-baseline-1@20261101T000000Z", "2026-11-01T00:00:00+00:00", minilm_bundle)  # oldest
    _version(catalog, "finetuned-2@20261102T000000Z", "2026-11-02T00:00:00+00:00", minilm_bundle)
    _version(catalog, "active-3@20261103T000000Z", "2026-11-03T00:00:00+00:00", minilm_bundle)
    catalog.switch("active-3@20261103T000000Z")
    names = [n for n in catalog.versions() if n != catalog.active()]
    assert sorted(names, reverse=True)[0].startswith("mpnet")  # what sorting by name would keep
    assert catalog.by_age(names) == ["finetuned-2@20261102T000000Z", "mpnet-baseline-1@20261101T000000Z"]
    # retention keeps the version just replaced (the newest other one), not the one that sorts last by name
    engine = Engine(minilm_bundle, None, catalog.open("active-3@20261103T000000Z"),  # type: ignore[arg-type]
                    index_name="active-3@20261103T000000Z", catalog=catalog, registry=BundleRegistry(tmp_path / "b"))
    ModelSwitcher(engine, retain=2).retention()
    assert set(catalog.versions()) == {"active-3@20261103T000000Z", "finetuned-2@20261102T000000Z"}
    engine.close()


# 3 ------------------------------------------------------------------------------------------------------------
def test_a_switch_that_fails_leaves_disk_and_process_agreeing(
        registry_settings: Settings, minilm_bundle: Bundle, bundle_b: Bundle,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    engine = Engine.from_settings(registry_settings)
    switcher = ModelSwitcher(engine, page_size=64)
    real_set_active = BundleRegistry.set_active

    def registry_write_fails(self: BundleRegistry, version: str) -> None:
        if version == bundle_b.model_version:
            raise OSError("No space left on device")
        real_set_active(self, version)

    monkeypatch.setattr(BundleRegistry, "set_active", registry_write_fails)
    assert switcher.activate(bundle_b.model_version, background=False).state == "failed"
    monkeypatch.setattr(BundleRegistry, "set_active", real_set_active)
    assert engine.catalog.active() == engine.current.index_name  # the disk names what the process serves
    assert engine.registry.active_version() == engine.bundle.model_version == minilm_bundle.model_version

    def index_pointer_fails(name: str, model_version: str | None = None) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(engine.catalog, "switch", index_pointer_fails)
    assert switcher.activate(bundle_b.model_version, background=False).state == "failed"
    monkeypatch.undo()
    assert engine.registry.active_version() == minilm_bundle.model_version  # put back
    written = Incident(number="INC0990003", short_description="written after a failed switch")
    engine.upsert_incidents([written])
    engine.close()
    restarted = Engine.from_settings(registry_settings)
    assert restarted.bundle.model_version == minilm_bundle.model_version
    assert restarted.get_incident(written.number).payload["short_description"] == written.short_description
    restarted.close()


# 4 ------------------------------------------------------------------------------------------------------------
def test_damaged_pointers_never_stop_the_service(registry_settings: Settings, bundle_b: Bundle,  # noqa: F811
                                                 caplog: pytest.LogCaptureFixture) -> None:
    engine, _ = _switched(registry_settings, bundle_b)
    serving = (engine.bundle.model_version, engine.current.index_name)
    engine.close()
    index_pointer = registry_settings.edge_index_dir / "ACTIVE.json"
    registry_pointer = registry_settings.bundles_dir / "ACTIVE.json"
    assert not list(index_pointer.parent.glob(".ACTIVE.json.*.tmp"))  # unique temp names, none left behind
    for damage in ("", '{"active": "mpnet-'):  # empty, truncated JSON
        index_pointer.write_text(damage)
        registry_pointer.write_text(damage)
        restarted = Engine.from_settings(registry_settings)
        assert (restarted.bundle.model_version, restarted.current.index_name) == serving
        assert restarted.readiness().ready
        restarted.close()
        assert "last good" in caplog.text
    # backups damaged too: the newest complete version (by age) and the newest bundle still serve
    (index_pointer.parent / "ACTIVE.json.bak").write_text("")
    (registry_pointer.parent / "ACTIVE.json.bak").write_text("{")
    restarted = Engine.from_settings(registry_settings)
    assert (restarted.bundle.model_version, restarted.current.index_name) == serving
    restarted.close()


# 5 ------------------------------------------------------------------------------------------------------------
def test_a_half_written_bundle_never_serves(minilm_bundle: Bundle, bundle_b: Bundle, tmp_path: Path) -> None:  # noqa: F811
    registry = BundleRegistry(tmp_path / "bundles")
    registry.publish(minilm_bundle.path, allow_uncalibrated=True)
    staging = registry.root / ".staging-k2j3"
    shutil.copytree(bundle_b.path, staging)  # newer created_at, complete manifest: what a crash leaves
    assert find_latest_bundle(registry.root) == registry.root / minilm_bundle.model_version
    assert registry.active_version() == minilm_bundle.model_version
    assert registry.clean_staging() == [".staging-k2j3"] and not staging.exists()


# 6 ------------------------------------------------------------------------------------------------------------
def test_version_names_from_requests_and_manifests_are_checked(registry_settings: Settings, bundle_b: Bundle,  # noqa: F811
                                                               minilm_bundle: Bundle, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(minilm_bundle.path, outside)  # a loadable bundle outside the registry
    engine = Engine.from_settings(registry_settings)
    with LiveServer(create_app(registry_settings, engine)) as server, \
            httpx.Client(base_url=server.url, headers=ADMIN, timeout=60) as client:
        for bad in (str(outside), "../outside", "a/b", ".staging-x", "x" * 300):
            r = client.post("/admin/models/activate", json={"model_version": bad})
            assert r.status_code == 422, (bad, r.text)
            message = r.json()["error"]["message"]
            assert "not a valid version name" in message or "at most 200 characters" in message
        assert client.get("/admin/models/rebuild").json()["state"] == "idle"
    evil = tmp_path / "evil"
    shutil.copytree(bundle_b.path, evil)
    manifest = json.loads((evil / MANIFEST).read_text())
    manifest["model_version"] = "../../escaped"
    (evil / MANIFEST).chmod(0o644)
    (evil / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InvalidVersionError):
        BundleRegistry(registry_settings.bundles_dir).publish(evil)
    assert not (registry_settings.data_dir.parent / "escaped").exists()


# 7 ------------------------------------------------------------------------------------------------------------
def test_store_runtime_errors_are_503_with_a_reason(settings: Settings) -> None:
    engine = Engine.from_settings(settings.model_copy(update={"dev_mode": True}))
    with LiveServer(create_app(settings, engine)) as server, \
            httpx.Client(base_url=server.url, headers={"X-API-Key": WRITE_KEY}, timeout=30) as client:
        assert client.post("/similar", json={"text": "vpn"}).status_code == 200
        engine.store._shard.close()  # type: ignore[attr-defined]  # the engine fails under us (disk gone, closed)
        r = client.post("/similar", json={"text": "vpn"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        assert client.get("/readyz").json()["reason"] == "store_unavailable"


def test_a_bundle_with_unknown_scoring_is_refused_at_load(minilm_bundle: Bundle, tmp_path: Path) -> None:
    for key, value, message in (("normalization", "minmax_per_query", "unknown BM25 normalization"),
                                ("k1", -1, "k1 > 0"), ("analyzer", "whitespace-v9", "unknown analyzer")):
        broken = tmp_path / f"broken-{key}"
        shutil.copytree(minilm_bundle.path, broken)
        manifest = json.loads((broken / MANIFEST).read_text())
        manifest["bm25"][key] = value
        (broken / MANIFEST).chmod(0o644)
        (broken / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(BundleError, match=message):
            load_bundle(broken)


# 9 ------------------------------------------------------------------------------------------------------------
def test_a_rebuild_does_not_stall_pushes(registry_settings: Settings, bundle_b: Bundle,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    BundleRegistry(registry_settings.bundles_dir).publish(bundle_b.path)
    engine = Engine.from_settings(registry_settings)
    encoding = threading.Event()
    real_build_points = reembed.build_points

    def slow_rebuild_page(*args, **kwargs):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "rebuild":
            encoding.set()
            time.sleep(1.5)  # a page of a big model on 2 cores
        return real_build_points(*args, **kwargs)

    monkeypatch.setattr(reembed, "build_points", slow_rebuild_page)
    switcher = ModelSwitcher(engine, page_size=100)
    switcher.activate(bundle_b.model_version)
    assert encoding.wait(60)
    t0 = time.perf_counter()
    pushed = Incident(number="INC0990004", short_description="pushed while the rebuild encodes a page")
    engine.upsert_incidents([pushed])
    waited = time.perf_counter() - t0
    assert waited < 0.75, f"a push waited {waited:.2f} s for the rebuild"
    assert switcher.wait(180).state == "switched"
    assert engine.get_incident(pushed.number).payload["short_description"] == pushed.short_description
    engine.close()


# 10 -----------------------------------------------------------------------------------------------------------
def test_write_answers_name_the_version_written(registry_settings: Settings, bundle_b: Bundle) -> None:  # noqa: F811
    engine = Engine.from_settings(registry_settings)
    before = engine.current
    outcome = engine.upsert_incidents([Incident(number="INC0990005", short_description="versions belong together")])[0]
    assert (outcome.model_version, outcome.index_version) == (before.bundle.model_version, before.index_version)
    stored = engine.get_incident("INC0990005")
    assert stored.index_version.startswith(stored.model_version + "@") or stored.index_version == "legacy"
    with LiveServer(create_app(registry_settings, engine)) as server, \
            httpx.Client(base_url=server.url, headers={"X-API-Key": WRITE_KEY}, timeout=30) as client:
        body = client.put("/incidents/INC0990006", json={"short_description": "over HTTP"}).json()
        assert (body["model_version"], body["index_version"]) == (before.bundle.model_version, before.index_version)


# 12 -----------------------------------------------------------------------------------------------------------
def test_dev_mode_without_keys_binds_only_loopback(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.org"):
        with pytest.raises(AuthConfigError, match="loopback"):
            KeyRing.from_settings(Settings(data_dir=tmp_path, dev_mode=True, host=host))
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5"):
        assert not KeyRing.from_settings(Settings(data_dir=tmp_path, dev_mode=True, host=host)).enabled
    assert KeyRing.from_settings(Settings(data_dir=tmp_path, host="0.0.0.0", api_keys=TEST_KEYS)).enabled


# 13 -----------------------------------------------------------------------------------------------------------
def test_indexing_into_a_directory_a_service_holds_says_what_to_do(registry_settings: Settings,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    from service.cli import app

    engine = Engine.from_settings(registry_settings)  # holds the shard, as a running service does
    try:
        with pytest.raises(IndexLockedError, match="another process"):
            EdgeStore(registry_settings.edge_index_dir)
        incidents = tmp_path / "more.jsonl"
        incidents.write_text(json.dumps({"number": "INC0990007", "short_description": "x"}) + "\n")
        result = CliRunner().invoke(app, ["index", "--input", str(incidents), "--data-dir",
                                          str(registry_settings.data_dir)])
        output = result.output + (getattr(result, "stderr", "") or "")
        assert result.exit_code == 2, output
        assert "PUT /incidents" in output and "stop the service" in output
        assert "WouldBlock" not in output
    finally:
        engine.close()
