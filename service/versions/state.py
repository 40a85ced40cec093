"""The serving set: the one owner of which index versions exist in this process and what writes go where.

* `current`: what requests use (read it once per request: one attribute read is one model + one index);
* `rebuild_target`: a version being built, which every incident write also goes to;
* `retired`: versions a switch replaced, kept open for a rollback that is then a pointer move;
* `draining`: versions a compaction replaced, open until requests that hold them have finished;
* the write lock, which orders incident writes against copies, catch-ups and the switch;
* the write journal: while a copy of the current version is made (compaction, a rebuild's optimize phase, a
  rollback's catch-up), the point id of every incident written meanwhile, replayed into the copy before it
  takes over.

Everything else (rebuild, rollback, compaction, replicas, the engine's writes) changes this state only through
the methods below."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from service.versions.serving import ServingVersion


class VersionSet:
    def __init__(self, current: ServingVersion) -> None:
        self.current = current
        self.rebuild_target: ServingVersion | None = None
        self.retired: list[ServingVersion] = []
        self.draining: list[tuple[float, ServingVersion]] = []
        self.write_lock = threading.RLock()
        self.journal: set[str] | None = None
        self.writes_since_build = 0  # incident writes since the current version was built (compaction policy)
        self.last_write_at = time.monotonic()

    # -- reading ---------------------------------------------------------------------------
    def write_targets(self) -> list[ServingVersion]:
        """The versions an incident write goes to, current first (call with the write lock held)."""
        return [v for v in (self.current, self.rebuild_target) if v is not None]

    def kept(self, index_name: str) -> ServingVersion | None:
        return next((v for v in self.retired if v.index_name == index_name), None)

    def draining_names(self) -> set[str | None]:
        return {v.index_name for _, v in self.draining}

    # -- changing (call with the write lock held) -----------------------------------------
    def swap(self, target: ServingVersion, retire: bool = True) -> ServingVersion:
        """Make `target` current; the version it replaces is kept (retired) unless it is `target` itself, or
        `retire` is False (a threshold-only switch: it shares `target`'s store, which stays open with it)."""
        old, self.current = self.current, target
        if target in self.retired:
            self.retired.remove(target)
        if retire and old is not target and old not in self.retired:
            self.retired.append(old)
        return old

    def set_rebuild_target(self, target: ServingVersion | None) -> None:
        self.rebuild_target = target

    def record_writes(self, point_ids: Sequence[str]) -> None:
        """Count applied writes (after the stores took them) and journal them while a copy is made."""
        self.writes_since_build += len(point_ids)
        self.last_write_at = time.monotonic()
        if self.journal is not None:
            self.journal.update(point_ids)

    def start_journal(self) -> None:
        self.journal = set()

    def take_journal(self) -> set[str]:
        """The ids journaled so far; journaling goes on with an empty set."""
        taken, self.journal = self.journal or set(), set()
        return taken

    def record_journaled(self, point_ids: set[str]) -> None:
        """Put ids taken from the journal back (a final pass under the lock will replay them)."""
        if self.journal is not None:
            self.journal.update(point_ids)

    def stop_journal(self) -> set[str]:
        taken, self.journal = self.journal or set(), None
        return taken

    def forget_writes(self, count: int) -> None:
        """A compaction took in `count` writes: they no longer count towards the next one."""
        self.writes_since_build = max(self.writes_since_build - count, 0)

    def start_draining(self, version: ServingVersion) -> None:
        if version in self.retired:
            self.retired.remove(version)
        self.draining.append((time.monotonic(), version))

    def release_drained(self, drain_s: float, force: bool = False) -> list[ServingVersion]:
        """Close and forget the draining versions whose requests have had `drain_s` seconds to finish."""
        now = time.monotonic()
        done = [v for since, v in self.draining if force or now - since >= drain_s]
        for version in done:
            version.store.close()
        self.draining = [(since, v) for since, v in self.draining if v not in done]
        return done

    def forget_retired(self, index_name: str) -> None:
        """Close a kept version that retention is about to drop."""
        for version in [v for v in self.retired if v.index_name == index_name]:
            version.store.close()
            self.retired.remove(version)

    def close(self) -> None:
        versions = [self.current, self.rebuild_target, *self.retired, *(v for _, v in self.draining)]
        for version in {id(v): v for v in versions if v is not None}.values():
            version.close()
