"""Model hot-swap: build a new index version with a new bundle in the background, then switch bundle
and index together. No HTTP here; the admin routes and the CLI drive it.

1. The bundle is validated (checksums, parity) before anything starts; a bad one is refused and the
   current version keeps serving.
2. A new index version is built by re-embedding every stored incident from its stored text, page by
   page. Each page is copied under the engine's write lock, and incident writes during the rebuild go
   to both versions, so no update is lost or overwritten by a stale copy.
3. Verification: same incident count as the serving version, and a sampled self-retrieval check (an
   incident's own text must find it in the top 5).
4. The switch, under the write lock: mark the version complete, move the index pointer (Edge pointer
   file / server alias), move the registry pointer, replace the engine's current version. Requests in
   flight finish on the version they started with.
5. Rollback switches back to the previous complete index version and its bundle (kept until the
   retention drops it). A failure removes the half-built version; a crash leaves it to be removed at
   the next start (Engine.from_settings)."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from indexing import failpoints, lexical
from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import BundleError, IncidentSimError, SwapInProgressError, SwapRefusedError
from indexing.incidents import Incident
from indexing.indexer import build_points, new_index_version
from indexing.registry import BundleRegistry
from indexing.store.base import IncidentStore, IndexCatalog, IndexMeta, rebuild_in_progress, stored_payloads
from service.engine import Engine, ServingVersion
from service.metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass
class RebuildStatus:
    state: str = "idle"  # idle | building | switched | failed | rolled_back
    model_version: str | None = None
    index_version: str | None = None
    previous_model_version: str | None = None
    total: int = 0
    done: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    swap_seconds: float | None = None
    self_retrieval: float | None = None
    replayed: int | None = None  # rollback: writes the version rolled back to had missed, replayed into it
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["progress"] = round(self.done / self.total, 4) if self.total else (1.0 if self.state == "switched"
                                                                               else 0.0)
        return data


class ModelSwitcher:
    def __init__(self, engine: Engine, metrics: Metrics | None = None, page_size: int = 64, retain: int = 2,
                 verify_sample: int = 20, min_self_retrieval: float = 0.9, encoder_threads: int = 0,
                 encoder_spinning: bool = False, replica_grace_s: float = 2.0) -> None:
        if engine.catalog is None or engine.registry is None:
            raise SwapRefusedError("this engine has no index catalog or bundle registry (store unreachable?)")
        self.engine = engine
        self.catalog: IndexCatalog = engine.catalog
        self.registry: BundleRegistry = engine.registry
        self.metrics = metrics
        self.page_size = page_size
        self.retain = retain
        self.verify_sample = verify_sample
        self.min_self_retrieval = min_self_retrieval
        self.encoder_threads = encoder_threads
        self.encoder_spinning = encoder_spinning
        self.replica_grace_s = replica_grace_s
        self._status = RebuildStatus()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._exclusive: str | None = None  # other index work that must not overlap a switch (a compaction)

    # -- public --------------------------------------------------------------------------------
    def status(self) -> RebuildStatus:
        return self._status

    @contextlib.contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Hold off model switches and rollbacks while `what` (e.g. an index compaction) runs; refused with
        SwapInProgressError while a rebuild or other such work runs."""
        with self._guard:
            self._refuse_if_busy()
            self._exclusive = what
        try:
            yield
        finally:
            with self._guard:
                self._exclusive = None

    def _refuse_if_busy(self) -> None:  # call with _guard held
        if self._thread is not None and self._thread.is_alive():
            raise SwapInProgressError(f"a rebuild for {self._status.model_version} is running "
                                      f"({self._status.done}/{self._status.total}); wait for it")
        if self._exclusive is not None:
            raise SwapInProgressError(f"{self._exclusive} is running; try again when it has finished")
        if self.catalog.shared:
            other = self.catalog.control()
            if rebuild_in_progress(other) and other.get("owner") != self.engine.replica_id:
                raise SwapInProgressError(f"another replica is rebuilding index {other['rebuilding']} for "
                                          f"{other.get('model_version')} (since {other.get('started_at')}); wait "
                                          "for it")

    def activate(self, model_version: str, background: bool = True) -> RebuildStatus:
        """Validate the bundle now (BundleError if it fails), then rebuild and switch."""
        with self._guard:
            self._refuse_if_busy()
            bundle = load_bundle(self.registry.path_of(model_version))  # checksums + parity
            if bundle.model_version == self.engine.bundle.model_version:
                raise SwapRefusedError(f"{model_version} is already serving")
            self._status = RebuildStatus(state="building", model_version=bundle.model_version,
                                         previous_model_version=self.engine.bundle.model_version,
                                         started_at=datetime.now(UTC).isoformat())
            self._set_progress(0.0)
            if background:
                self._thread = threading.Thread(target=self._run, args=(bundle,), name="rebuild", daemon=True)
                self._thread.start()
            else:
                self._run(bundle)
            return self._status

    def wait(self, timeout: float | None = None) -> RebuildStatus:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._status

    def rollback(self) -> RebuildStatus:
        """Switch back to the newest other complete index version whose bundle is in the registry."""
        with self._guard:
            self._refuse_if_busy()
            current = self.engine.current
            candidates = [n for n, complete in self.catalog.versions().items()
                          if complete and n != current.index_name
                          and not self._same_model(n, current.bundle.model_version)]
            for name in self.catalog.by_age(candidates):
                kept = next((v for v in self.engine.retired if v.index_name == name), None)
                if kept is not None:  # still loaded: the rollback is a pointer move
                    return self._switch_back(kept, current)
                store = self.catalog.open(name)
                meta = store.meta()
                try:
                    bundle = load_bundle(self.registry.path_of(meta.model_version)) if meta else None
                except BundleError:
                    bundle = None
                if bundle is None or bundle.encoder_id != meta.encoder_id:  # type: ignore[union-attr]
                    store.close()
                    continue
                encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length,
                                      intra_op_threads=self.encoder_threads,
                                      allow_spinning=self.encoder_spinning)
                return self._switch_back(ServingVersion(bundle, encoder, store, name, current.candidate_k), current)
            raise SwapRefusedError("no earlier complete index version with its bundle in the registry to roll back to")

    def _switch_back(self, target: ServingVersion, current: ServingVersion) -> RebuildStatus:
        target.searcher()  # checks the index against the bundle before anything moves
        assert target.index_name is not None
        t0 = time.perf_counter()
        with self.engine.write_lock:
            replayed = self._catch_up(target, current)
            self._commit(target)
            if target in self.engine.retired:
                self.engine.retired.remove(target)
        logger.info("rollback replayed %d incident writes the kept version had missed", replayed)
        self._status = RebuildStatus(state="rolled_back", model_version=target.bundle.model_version,
                                     index_version=target.index_version,
                                     previous_model_version=current.bundle.model_version, replayed=replayed,
                                     finished_at=datetime.now(UTC).isoformat(), swap_seconds=time.perf_counter() - t0)
        self._observe_swap("rollback", self._status.swap_seconds or 0.0)
        logger.info("rolled back to model %s, index %s", target.bundle.model_version, target.index_name)
        return self._status

    def _commit(self, target: ServingVersion, move_registry: bool = True) -> None:
        """Make `target` serve, on disk and in the process (call with the write lock held). The registry pointer
        moves first (a failure there changes nothing); the index pointer is the commit point (a failure
        there puts the registry pointer back); once it has moved the engine swaps, so the process never
        serves one version while the disk names another, and writes made from now on go where a restart
        will look."""
        assert target.index_name is not None
        if not move_registry:  # same model (a compaction): only the index pointer moves
            self.catalog.switch(target.index_name)
            self.engine.swap(target)
            return
        before = self.registry.active_version()
        self.registry.set_active(target.bundle.model_version)
        failpoints.pause("switch.between_pointers")
        try:
            self.catalog.switch(target.index_name)
        except BaseException:
            if before is not None:
                try:
                    self.registry.set_active(before)
                except Exception:  # the index pointer decides what serves at the next start (resolve_bundle_path)
                    logger.exception("could not put the registry pointer back to %s", before)
            raise
        self.engine.swap(target)

    def _reconcile(self, target: ServingVersion, source: ServingVersion) -> int:
        """Make `target` hold what `source` holds (payloads compared), re-embedding with its own model; a write
        made meanwhile by any replica goes to both versions, so an incident changed since it was read is left to
        that write."""
        want, have = stored_payloads(source.store), stored_payloads(target.store)
        stale = {pid: payload for pid, payload in want.items() if have.get(pid) != payload}
        gone = [pid for pid in have if pid not in want]
        bm25 = target.searcher().bm25
        ids = sorted(stale)
        for start in range(0, len(ids), 64):
            chunk = ids[start : start + 64]
            incidents = [Incident.model_validate(stale[pid]) for pid in chunk]
            points, _ = build_points(incidents, target.encoder, bm25, dense_text=target.bundle.dense_text,
                                     batch_size=32)
            with self.engine.write_lock:
                now = {x.point_id: x.payload for x in source.store.fetch(chunk, with_vectors=False)}
                target.store.upsert([p for p in points if now.get(p.point_id) == stale[p.point_id]])
        if gone:
            with self.engine.write_lock:
                still_gone = [pid for pid in gone
                              if not source.store.fetch([pid], with_vectors=False)]
                target.store.delete(still_gone)
        return len(stale) + len(gone)

    def _catch_up(self, target: ServingVersion, source: ServingVersion) -> int:
        """Bring `target`, a version about to serve again, up to date with `source`, which received every
        acknowledged write: incidents it lacks or holds in another state are re-embedded with its own bundle,
        incidents `source` no longer has are deleted. Call with the write lock held. Returns the writes
        replayed."""
        want, have = stored_payloads(source.store), stored_payloads(target.store)
        stale = [Incident.model_validate(payload) for pid, payload in want.items() if have.get(pid) != payload]
        gone = [pid for pid in have if pid not in want]
        bm25 = target.searcher().bm25
        failpoints.pause("rollback.catch_up")
        for start in range(0, len(stale), 64):
            points, _ = build_points(stale[start : start + 64], target.encoder, bm25,
                                     dense_text=target.bundle.dense_text, batch_size=32)
            target.store.upsert(points)
        if gone:
            target.store.delete(gone)
        return len(stale) + len(gone)

    # -- the rebuild ---------------------------------------------------------------------------
    def _run(self, bundle: Bundle) -> None:
        status = self._status
        name = new_index_version(bundle)
        status.index_version = name
        target: ServingVersion | None = None
        try:
            source = self.engine.current
            encoder = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length,
                                  intra_op_threads=self.encoder_threads,
                                  allow_spinning=self.encoder_spinning)
            analyzer = lexical.Analyzer.from_name(bundle.bm25["analyzer"])
            status.total, avgdl = self._survey(source, analyzer)
            store = self.catalog.create(name)
            store.create_index(IndexMeta(
                index_version=name, model_version=bundle.model_version, encoder_id=bundle.encoder_id,
                dim=bundle.dim, analyzer=analyzer.name, k1=float(bundle.bm25["k1"]), b=float(bundle.bm25["b"]),
                avgdl=avgdl, created_at=datetime.now(UTC).isoformat(), extra={"rebuilt_from": source.index_version}))
            target = ServingVersion(bundle, encoder, store, name, source.candidate_k)
            bm25 = target.searcher().bm25
            with self.engine.write_lock:
                self.engine.rebuild_target = target  # from now on writes also go to the new version
            if self.catalog.shared:  # the other replicas write to it too from their next write on
                control = {"rebuilding": name, "model_version": bundle.model_version, "owner": self.engine.replica_id,
                           "started_at": datetime.now(UTC).isoformat()}
                self.catalog.set_control({**control, "heartbeat_at": control["started_at"]})
                time.sleep(self.replica_grace_s)  # writes that checked before the record finish first
            logger.info("rebuilding index %s for model %s from %s (%d incidents)", name, bundle.model_version,
                        source.index_version, status.total)
            offset: str | None = None
            bar = tqdm(total=status.total, desc=f"re-embedding for {bundle.model_version}", unit="inc",
                       disable=None, leave=False)  # a terminal only: the service's JSON log gets no bars
            while True:
                # encode outside the write lock (seconds per page): pushes never wait for the encoder
                page, offset = source.store.scroll(offset, self.page_size)
                incidents = [Incident.model_validate(s.payload) for s in page]
                if incidents:
                    points, _ = build_points(incidents, encoder, bm25, dense_text=bundle.dense_text, batch_size=32)
                    with self.engine.write_lock:
                        # copy only what did not change since it was read: a write made meanwhile went to both
                        # versions already (and a deleted incident must not come back)
                        now = {x.point_id: x.payload for x in source.store.fetch([x.point_id for x in page],
                                                                                 with_vectors=False)}
                        unchanged = [pt for pt, x in zip(points, page, strict=True) if now.get(x.point_id) == x.payload]
                        store.upsert(unchanged)
                status.done += len(page)
                bar.update(len(page))
                if self.catalog.shared:  # the others tell a live rebuild from one whose replica died
                    self.catalog.set_control({**control, "heartbeat_at": datetime.now(UTC).isoformat()})
                self._set_progress(status.done / max(status.total, 1))
                if offset is None:
                    break
            bar.close()
            store = self._optimize(target, source)
            status.self_retrieval = self._self_retrieval(target)
            if status.self_retrieval < self.min_self_retrieval:
                raise IncidentSimError(f"self-retrieval check failed: {status.self_retrieval:.2f} of sampled "
                                       f"incidents find themselves in the top 5 (need {self.min_self_retrieval})")
            if self.catalog.shared:
                # another replica's write that began before it saw the control record, and landed in the source
                # only after its page was copied: re-embed what differs (the other replicas dual-write by now)
                replayed = self._reconcile(target, source)
                if replayed:
                    logger.info("reconciled %d incidents written by other replicas during the rebuild", replayed)
            t0 = time.perf_counter()
            with self.engine.write_lock:
                expected, got = source.store.count(), store.count()
                if expected != got:
                    raise IncidentSimError(f"new index holds {got} incidents, the serving one {expected}")
                self.catalog.mark_complete(name)
                self._commit(target)
                self.engine.rebuild_target = None
                if self.catalog.shared:
                    self.catalog.set_control({})
            status.swap_seconds = time.perf_counter() - t0
            status.state = "switched"
            status.finished_at = datetime.now(UTC).isoformat()
            self._observe_swap("ok", status.swap_seconds)
            logger.info("switched to model %s, index %s (%d incidents, swap %.1f ms)", bundle.model_version, name,
                        got, status.swap_seconds * 1000)
            self._retention()
        except Exception as exc:  # any failure: the old version keeps serving, the new one is removed
            logger.exception("rebuild for %s failed; %s keeps serving", bundle.model_version,
                             self.engine.bundle.model_version)
            with self.engine.write_lock:
                self.engine.rebuild_target = None
                self.engine.write_journal = None
            if self.catalog.shared:
                try:
                    self.catalog.set_control({})  # the other replicas stop writing to the abandoned version
                except Exception:
                    logger.warning("could not clear the replicas' control record", exc_info=True)
            if target is not None:
                target.store.close()
            try:
                if name in self.catalog.versions() and name != self.catalog.active():
                    self.catalog.drop(name)
            except Exception:  # cleanup is best effort; the next start removes incomplete versions
                logger.warning("could not remove index version %s", name, exc_info=True)
            status.state = "failed"
            status.error = str(exc)
            status.finished_at = datetime.now(UTC).isoformat()
            if self.metrics is not None:
                self.metrics.swaps.labels(result="failed").inc()

    def _optimize(self, target: ServingVersion, source: ServingVersion) -> IncidentStore:
        """Optimize the new version without holding this process (Qdrant Edge: in a child process, see
        IndexCatalog.optimize_apart). While it is closed for that, writes are journaled instead of
        dual-written, then re-embedded into it from the serving version; dual writes resume after."""
        assert target.index_name is not None
        if self.catalog.self_optimizing:
            target.store.optimize()
            return target.store
        with self.engine.write_lock:
            self.engine.rebuild_target = None
            self.engine.write_journal = set()
        target.store.close()
        failpoints.pause("rebuild.optimize")
        self.catalog.optimize_apart(target.index_name)
        target.store = self.catalog.open(target.index_name)
        target.reset_searcher()
        with self.engine.write_lock:  # most of the catch-up without the lock: pushes go on meanwhile
            pending, self.engine.write_journal = self.engine.write_journal or set(), set()
        self._reembed(pending, source, target)
        with self.engine.write_lock:
            self._reembed(self.engine.write_journal or set(), source, target)
            self.engine.write_journal = None
            self.engine.rebuild_target = target
        return target.store

    @staticmethod
    def _reembed(point_ids: set[str], source: ServingVersion, target: ServingVersion) -> None:
        """Make `target` hold these incidents as `source` holds them now, embedded with its own model."""
        ids = sorted(point_ids)
        bm25 = target.searcher().bm25
        for start in range(0, len(ids), 64):
            chunk = ids[start : start + 64]
            found = source.store.fetch(chunk, with_vectors=False)
            if found:
                points, _ = build_points([Incident.model_validate(s.payload) for s in found], target.encoder, bm25,
                                         dense_text=target.bundle.dense_text, batch_size=32)
                target.store.upsert(points)
            gone = set(chunk) - {s.point_id for s in found}
            if gone:
                target.store.delete(sorted(gone))

    def _survey(self, source: ServingVersion, analyzer: lexical.Analyzer) -> tuple[int, float]:
        """Count the stored incidents and their mean analysed length (avgdl of the new index), streaming."""
        count = 0

        def documents() -> Iterator[tuple[str, str]]:
            nonlocal count
            offset: str | None = None
            while True:
                page, offset = source.store.scroll(offset, 256)
                for s in page:
                    count += 1
                    yield str(s.payload.get("short_description", "")), str(s.payload.get("description", ""))
                if offset is None:
                    return

        try:
            avgdl = lexical.average_document_length(analyzer, documents())
        except ValueError:  # an empty index: any positive avgdl will do
            avgdl = 1.0
        return count, avgdl

    def _self_retrieval(self, target: ServingVersion) -> float:
        """Share of sampled incidents whose own text finds them in the new index's top 5."""
        page, _ = target.store.scroll(None, 1000)
        if not page:
            return 1.0
        sample = random.Random(0).sample(page, min(self.verify_sample, len(page)))
        searcher = target.searcher()
        found = 0
        for s in sample:
            incident = Incident.model_validate(s.payload)
            text = incident.text()
            vector, _ = target.bundle.dense_text.embed_one(target.encoder, incident.short_description,
                                                           incident.description)
            top = searcher.search(vector, text, 5).results
            found += any(r.point_id == s.point_id for r in top)
        return found / len(sample)

    def _same_model(self, name: str, model_version: str) -> bool:
        """Whether index version `name` was built by `model_version` (a copy the compaction replaced)."""
        return self.catalog.model_of(name) == model_version

    def _retention(self) -> None:
        """Keep the active version and the `retain - 1` newest other complete ones (for rollback). Older
        versions of the active model (replaced by a compaction) are no rollback target: dropped, once no
        longer draining (requests may still read a version a compaction has just replaced)."""
        active = self.catalog.active()
        serving = self.engine.bundle.model_version
        draining = {v.index_name for _, v in self.engine.draining}
        others = self.catalog.by_age(n for n, complete in self.catalog.versions().items()
                                     if complete and n != active and n not in draining)
        superseded = [n for n in others if self._same_model(n, serving)]
        others = [n for n in others if n not in superseded]
        for name in superseded + others[max(self.retain - 1, 0):]:
            for version in list(self.engine.retired):
                if version.index_name == name:
                    version.store.close()
                    self.engine.retired.remove(version)
            self.catalog.drop(name)

    def _set_progress(self, ratio: float) -> None:
        if self.metrics is not None:
            self.metrics.rebuild_progress.set(ratio)

    def _observe_swap(self, result: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.swaps.labels(result=result).inc()
            self.metrics.swap_duration.observe(seconds)
