"""Two service replicas on one Qdrant (two engines sharing one qdrant-client: the local engine stands in for the
server, which cannot run here) stay correct through a model switch made by one of them: writes through either
replica during the rebuild all reach the new version, the other replica serves the new model within its follow
interval, and every answer's model and index belong together."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import SwapInProgressError
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.registry import BundleRegistry
from indexing.store.server import ServerCatalog
from service.engine import Engine, EngineOptions, SimilarQuery
from service.versions.switcher import ModelSwitcher
from training.calibrate import write_calibrated_bundle
from training.data.sample import generate_incidents


@pytest.fixture(scope="module")
def bundle_b(minilm_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    threshold = {"value": 0.5, "source": "calibrated", "target_fpr": 0.05, "calibrated_on": "test"}
    return load_bundle(write_calibrated_bundle(minilm_bundle, tmp_path_factory.mktemp("job"), threshold,
                                               {"corpus": "test"}))


class SerialClient:
    """qdrant-client's local engine is not thread-safe (a Qdrant server is): one lock around every call, so
    the threads of this test see what they would see against a server."""

    def __init__(self) -> None:
        from qdrant_client import QdrantClient

        self._client = QdrantClient(location=":memory:")
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def serial(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return serial


def shared_catalogs() -> tuple[ServerCatalog, ServerCatalog]:
    client = SerialClient()
    return (ServerCatalog(":memory:", "incidents", client=client),  # type: ignore[arg-type]
            ServerCatalog(":memory:", "incidents", client=client))  # type: ignore[arg-type]


def replica(catalog: ServerCatalog, registry: BundleRegistry, bundle: Bundle, encoder: OnnxEncoder) -> Engine:
    name = catalog.active()
    assert name is not None
    return Engine(bundle, encoder, catalog.open(name), index_name=name, catalog=catalog, registry=registry,
                  options=EngineOptions(follow_interval_s=0.2))


def two_replicas(bundle_a: Bundle, bundle_b: Bundle, encoder: OnnxEncoder, incidents: list[Incident],
                 tmp_path: Path) -> tuple[ServerCatalog, ServerCatalog, Engine, Engine]:
    """A registry with both bundles (A active), one Qdrant indexed with `incidents` by A, two replicas on it."""
    registry = BundleRegistry(tmp_path / "bundles")
    registry.publish(bundle_a.path, allow_uncalibrated=True)
    registry.publish(bundle_b.path)
    registry.set_active(bundle_a.model_version)
    cat_a, cat_b = shared_catalogs()  # one Qdrant, two processes' views of it
    index_into_catalog(incidents, bundle_a, encoder, cat_a, progress=False)
    return cat_a, cat_b, replica(cat_a, registry, bundle_a, encoder), replica(cat_b, registry, bundle_a, encoder)


def test_a_switch_on_one_replica_loses_no_write_made_through_the_other(
        minilm_bundle: Bundle, bundle_b: Bundle, encoder: OnnxEncoder, incidents: list[Incident],
        tmp_path: Path) -> None:
    cat_a, cat_b, a, b = two_replicas(minilm_bundle, bundle_b, encoder, incidents[:150], tmp_path)
    switcher = ModelSwitcher(a, page_size=16, replica_grace_s=0.3)
    written: dict[str, Incident] = {}
    deleted: set[str] = set()
    mismatched: list[str] = []
    stop = threading.Event()

    pool = [Incident.model_validate(r) for r in generate_incidents(1200, seed=17)]

    def writer(engine: Engine, tag: str, seed: int) -> None:
        rng = random.Random(seed)
        k = 0
        while not stop.is_set():
            k += 1
            if k % 7 == 0 and written:
                number = rng.choice(sorted(written))
                try:
                    engine.delete_incident(number)
                    written.pop(number, None)
                    deleted.add(number)
                except Exception:  # deleted already through the other replica
                    pass
                continue
            # distinct texts (A the even, B the odd ones of a fresh pool): no copy of one incident's text under
            # several numbers, so the rebuild's self-retrieval check measures the model, not the test's data
            base = pool[(2 * k + (tag == "B")) % len(pool)]
            incident = base.model_copy(update={"number": f"INC9{tag}{k:05d}"})
            engine.upsert_incidents([incident])  # acknowledged once this returns
            written[incident.number] = incident
            deleted.discard(incident.number)
            time.sleep(0.005)

    def reader(engine: Engine) -> None:
        while not stop.is_set():
            answer = engine.similar(SimilarQuery(text=incidents[3].text(), top_k=3))
            if not answer.index_version.startswith(answer.model_version + "@"):
                mismatched.append(f"{answer.model_version} with {answer.index_version}")
            time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(a, "A", 1)), threading.Thread(target=writer, args=(b, "B", 2)),
               threading.Thread(target=reader, args=(b,))]
    for t in threads:
        t.start()
    try:
        # A rebuild whose final count or self-retrieval check fails is refused safely (nothing switches, nothing is
        # lost: the checks below still hold); under heavy load that happens in some runs (a known race in the
        # cross-replica reconciliation: Qdrant has no conditional writes), so an operator's retry is allowed.
        for _attempt in range(3):
            status = switcher.activate(bundle_b.model_version, background=False)
            if status.state == "switched" or "new index holds" not in str(status.error) and \
                    "self-retrieval" not in str(status.error):
                break
        assert status.state == "switched", status.error
        deadline = time.monotonic() + 5
        while b.bundle.model_version != bundle_b.model_version:  # the other replica follows within its interval
            assert time.monotonic() < deadline, "replica B never followed the switch"
            time.sleep(0.05)
        time.sleep(0.3)  # writes through both replicas after the switch too
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert b.current.index_name == a.current.index_name == cat_a.active() == status.index_version
    assert not mismatched, mismatched[:3]
    new = cat_a.open(str(status.index_version))
    stored = {s.payload["number"]: s.payload for s in new.fetch([i.point_id for i in written.values()],
                                                                 with_vectors=False)}
    lost = [n for n, inc in written.items() if stored.get(n) != inc.payload()]
    assert not lost, f"{len(lost)} acknowledged writes missing from the new version, e.g. {lost[:3]}"
    assert sum(n.startswith("INC9B") for n in written) > 0
    assert not new.fetch([Incident(number=n, short_description="x").point_id for n in deleted], with_vectors=False)
    assert cat_a.control() == {}
    a.close()
    b.close()


def test_a_replica_refuses_to_start_a_second_rebuild_while_another_runs(
        minilm_bundle: Bundle, bundle_b: Bundle, encoder: OnnxEncoder, incidents: list[Incident],
        tmp_path: Path) -> None:
    cat_a, _, a, b = two_replicas(minilm_bundle, bundle_b, encoder, incidents[:40], tmp_path)
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    cat_a.set_control({"rebuilding": "incidents-x", "model_version": bundle_b.model_version, "owner": a.replica_id,
                       "started_at": now, "heartbeat_at": now})
    with pytest.raises(SwapInProgressError, match="another replica is rebuilding"):
        ModelSwitcher(b).activate(bundle_b.model_version, background=False)
    cat_a.set_control({"rebuilding": "incidents-x", "model_version": bundle_b.model_version, "owner": a.replica_id,
                       "started_at": "2026-01-01T00:00:00+00:00", "heartbeat_at": "2026-01-01T00:00:00+00:00"})
    status = ModelSwitcher(b, replica_grace_s=0).activate(bundle_b.model_version, background=False)
    assert status.state == "switched", status.error  # a rebuild whose replica stopped beating does not block
    a.close()
    b.close()
