"""The one way incidents are re-embedded from one index version into another (with the target's own model):
a rebuild's pages, a rollback's catch-up, the journal replay after an optimize, the replicas' reconciliation.

Two ways to stay correct while writes go on:
* `copy_unchanged`: used while writes go to both versions (a rebuild): a copy is written only for incidents
  still as they were read, so a stale copy never overwrites a newer dual write or revives a delete;
* `replay`: used while writes are journaled (a rollback's catch-up, an optimize phase): the incidents are
  copied as the source holds them now; whatever is written meanwhile is journaled and replayed again under
  the write lock before the target takes over."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from indexing.incidents import Incident
from indexing.indexer import build_points
from indexing.store.base import IndexPoint, stored_payloads
from service.versions.serving import ServingVersion

CHUNK = 64  # incidents written per hold of the write lock
EMBED_PAGE = 256  # incidents embedded together (indexing.indexer.PAGE_SIZE, benchmarks.onboarding)


def embed(payloads: Sequence[dict[str, Any]], target: ServingVersion) -> list[IndexPoint]:
    """Index points for stored incident payloads, embedded with `target`'s bundle."""
    points, _ = build_points([Incident.model_validate(p) for p in payloads], target.encoder, target.searcher().bm25,
                             dense_text=target.bundle.dense_text)
    return points


def copy_unchanged(items: Sequence[tuple[str, dict[str, Any]]], source: ServingVersion, target: ServingVersion,
                   write_lock: threading.RLock) -> int:
    """Embed `items` (point id, payload as read from `source`) outside the lock, all together (sorted by token
    length: a page's long and short texts batch apart), then write under it only those `source` still holds
    unchanged, `CHUNK` at a time (each hold of the lock stays short). Returns how many were written."""
    points = embed([payload for _, payload in items], target) if items else []
    written = 0
    for start in range(0, len(items), CHUNK):
        chunk = list(zip(points[start : start + CHUNK], items[start : start + CHUNK], strict=True))
        with write_lock:
            now = {x.point_id: x.payload for x in source.store.fetch([pid for _, (pid, _) in chunk],
                                                                      with_vectors=False)}
            unchanged = [pt for pt, (pid, payload) in chunk if now.get(pid) == payload]
            if unchanged:  # a Qdrant server refuses an empty update
                target.store.upsert(unchanged)
        written += len(unchanged)
    return written


def replay(point_ids: Iterable[str], source: ServingVersion, target: ServingVersion) -> int:
    """Make `target` hold these incidents as `source` holds them now (absent ones deleted). Returns the count."""
    ids = sorted(set(point_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = source.store.fetch(chunk, with_vectors=False)
        if found:
            target.store.upsert(embed([s.payload for s in found], target))
        gone = set(chunk) - {s.point_id for s in found}
        if gone:
            target.store.delete(sorted(gone))
    return len(ids)


def differences(source: ServingVersion, target: ServingVersion) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """What `target` must change to hold what `source` holds: (point id -> payload it lacks or holds otherwise,
    point ids `source` no longer has)."""
    want, have = stored_payloads(source.store), stored_payloads(target.store)
    stale = {pid: payload for pid, payload in want.items() if have.get(pid) != payload}
    return stale, [pid for pid in have if pid not in want]


def reconcile(source: ServingVersion, target: ServingVersion, write_lock: threading.RLock) -> int:
    """Make `target` hold what `source` holds while writes go to both (another replica's write that landed in the
    source only): what differs is re-embedded with `copy_unchanged`; deletes are checked under the lock."""
    stale, gone = differences(source, target)
    ids = sorted(stale)
    for start in range(0, len(ids), EMBED_PAGE):
        copy_unchanged([(pid, stale[pid]) for pid in ids[start : start + EMBED_PAGE]], source, target, write_lock)
    if gone:
        with write_lock:
            still_gone = [pid for pid in gone if not source.store.fetch([pid], with_vectors=False)]
            if still_gone:
                target.store.delete(still_gone)
    return len(stale) + len(gone)
