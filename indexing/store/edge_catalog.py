"""The index versions of the embedded store (Qdrant Edge) and the pointer that says which one serves.

    <base>/CATALOG.lock            held by the one process that may change anything here (indexing/store/edge_lock.py)
    <base>/ACTIVE.json (+ .bak)    {"active": index version, "model_version": bundle, "switched_at": ...}
    <base>/versions/<name>/        one index version: index.json, shard/, SHARD.lock; BUILDING while unfinished

The pointer names the index version *and* the bundle that serves with it: it is the one commit point of a
switch, so no crash can pair a model with another model's index (the registry pointer follows it). A catalog
opened `read_only` (doctor) takes no lock and never opens a shard, cleans or repairs: reading changes nothing."""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexing.atomic import atomic_write_text, fsync_dir
from indexing.errors import IndexLockedError, NotWritableError, PointerLostError, StoreUnavailableError
from indexing.pointer import PointerFile
from indexing.store.base import IndexCatalog, IndexMeta
from indexing.store.edge import _LOCKED_ADVICE, META_FILE, EdgeStore, GraphConfig
from indexing.store.edge_disk import free_bytes
from indexing.store.edge_lock import CATALOG_LOCK, SHARD_LOCK, DirectoryLock, holder_text, is_held

logger = logging.getLogger(__name__)

LEGACY = "legacy"  # an index written straight into the collection directory (before versions existed)
BUILDING = "BUILDING"
POINTER = "ACTIVE.json"
RECOVER_COMMAND = "incident-sim models recover INDEX_VERSION"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where `indexing` is importable from


def _child_setup() -> None:  # runs in the optimizer child before exec
    os.nice(10)  # serving keeps the CPU first
    with contextlib.suppress(OSError, AttributeError):  # Linux: die with the parent, never outlive a SIGKILL
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class EdgeCatalog(IndexCatalog):
    def __init__(self, base: Path, graph: GraphConfig | None = None, read_only: bool = False,
                 min_free_bytes: int = 0, warm_on_open: bool = False) -> None:
        """Opened for writing (the default), the catalog takes the directory's lock before anything else
        (IndexLockedError, naming the holder, when another process has it) and then brings the pointer and its
        copy back in step. `min_free_bytes`: the disk reserve below which writes are refused. `warm_on_open`:
        every version `open()` returns reads its files into the page cache in the background."""
        self.base = Path(base)
        self.graph = graph  # how new versions build their HNSW graph (None: GraphConfig's defaults)
        self.read_only = read_only
        self.min_free_bytes = min_free_bytes
        self.warm_on_open = warm_on_open
        self._pointer = PointerFile(self.base / POINTER, self._check_pointer, name="index")
        self._lock: DirectoryLock | None = None
        self._reported: str | None = None
        if read_only:
            return
        try:
            self.base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NotWritableError(f"cannot create the index directory: {exc.strerror}") from None
        try:
            self._lock = DirectoryLock(self.base / CATALOG_LOCK, "the index directory", describe_holder=True)
        except IndexLockedError as exc:
            raise IndexLockedError(_LOCKED_ADVICE.format(what=f"the index directory {self.base}",
                                                         holder=str(exc).rpartition(" is held by ")[2])) from None
        if self.versions():
            try:
                self._pointer.heal()
                self._pin_only_version()
            except OSError as exc:  # read-only or full: readiness and the writes say so
                logger.error("could not repair the index pointer in %s: %s", self.base, exc)

    def _pin_only_version(self) -> None:
        """No pointer written yet (a legacy layout, a first index cut short before its switch) and one complete
        version: name it, so that a second complete version (a rebuild) can never leave the choice open."""
        if self._pointer.read().source != "absent":
            return
        complete = [n for n, done in self.versions().items() if done]
        if len(complete) == 1:
            self._pointer.write({"active": complete[0], "model_version": self.model_of(complete[0]),
                                 "switched_at": datetime.now(UTC).isoformat()})

    # -- the pointer -------------------------------------------------------------------------
    def _check_pointer(self, data: dict[str, Any]) -> None:
        active = data.get("active")
        if not isinstance(active, str) or not active:
            raise ValueError("names no index version")
        if not self.versions().get(active):
            raise ValueError(f"names {active[:80]!r}, not a complete index version")
        if not isinstance(data.get("model_version", ""), str):
            raise ValueError("model_version is not a string")

    def active(self) -> str | None:
        """The version the pointer names (or its last good copy). None when nothing is indexed yet. With both
        unusable: the only complete version when there is just one, else PointerLostError (naming the versions
        and the command that fixes it): never a guess that may miss acknowledged writes."""
        state = self._pointer.read()
        if state.data is not None:
            if state.source == "backup":
                self._report(f"index pointer unusable ({'; '.join(state.problems)}): serving {state.data['active']} "
                             "from its last good copy")
            return str(state.data["active"])
        complete = [n for n, done in self.versions().items() if done]
        if not complete:
            return None
        if len(complete) == 1:  # the only version there is received every write (a legacy layout, a first index)
            if state.source != "absent":
                self._report(f"no usable index pointer ({'; '.join(state.problems)}): serving the only complete "
                             f"index version {complete[0]}")
            return complete[0]
        problems = state.problems or [f"{POINTER}: missing", f"{POINTER}.bak: missing"]
        raise PointerLostError(self.lost_message(problems, complete))

    def active_model(self) -> str | None:
        state = self._pointer.read()
        model = (state.data or {}).get("model_version")
        return str(model) if model else None

    def lost_message(self, problems: list[str], complete: list[str]) -> str:
        rows = []
        for name in self.by_age(complete):
            rows.append(f"{name} (model {self.model_of(name) or '?'}, created {self.created_at(name) or '?'}, "
                        f"last written {self.last_written(name)})")
        return (f"the index pointer and its copy are unusable ({'; '.join(problems)}), so which index version served "
                f"last is unknown. Versions on disk: {'; '.join(rows)}. The one written last most likely holds every "
                f"acknowledged write: name it with `{RECOVER_COMMAND}` (writes are refused until then). Do not "
                "re-index into this directory: a fresh index would drop what these versions hold")

    def last_written(self, name: str) -> str:
        newest = max((st.st_mtime for st in self._file_stats(name)), default=0.0)
        return datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds") if newest else "?"

    def _file_stats(self, name: str) -> list[os.stat_result]:
        """The stat of every file of version `name` (the legacy layout: everything under the directory)."""
        stats = []
        for root, _, files in os.walk(self._dir(name)):
            for f in files:
                with contextlib.suppress(OSError):
                    stats.append(os.stat(Path(root) / f))
        return stats

    def _report(self, message: str) -> None:
        if message != self._reported:
            logger.error(message)
            self._reported = message

    def switch(self, name: str, model_version: str | None = None) -> None:
        """Commit: the pointer names `name` and the bundle serving with it (default: the one that built it)."""
        self._require_writer()
        if not self.versions().get(name):
            raise StoreUnavailableError(f"index version {name} is missing or incomplete; not switching")
        data = {"active": name, "model_version": model_version or self.model_of(name),
                "switched_at": datetime.now(UTC).isoformat()}
        try:
            self._pointer.write(data)
        except OSError as exc:
            raise NotWritableError(f"cannot write the index pointer: {exc.strerror}") from None

    # -- versions ----------------------------------------------------------------------------
    def version_dir(self, name: str) -> Path:
        return self._dir(name)

    def _dir(self, name: str) -> Path:
        if name == LEGACY:
            return self.base
        if not name or "/" in name or name.startswith(".") or ".." in name:
            raise ValueError(f"bad index version name {name!r}")
        return self.base / "versions" / name

    def versions(self) -> dict[str, bool]:
        out = {LEGACY: True} if (self.base / META_FILE).is_file() else {}
        root = self.base / "versions"
        for child in sorted(root.iterdir()) if root.is_dir() else []:
            if child.is_dir():
                out[child.name] = not (child / BUILDING).exists() and (child / META_FILE).is_file()
        return out

    def meta_of(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads((self._dir(name) / META_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def meta_of_version(self, name: str) -> IndexMeta | None:
        data = self.meta_of(name)
        try:
            return IndexMeta.from_dict(data) if data else None
        except (KeyError, TypeError, ValueError):
            return None

    def count_of(self, name: str) -> int | None:
        """None when read-only: counting means loading the shard, and Qdrant Edge's load writes to it."""
        return None if self.read_only else super().count_of(name)

    def created_at(self, name: str) -> str:
        return str(self.meta_of(name).get("created_at", ""))

    def model_of(self, name: str) -> str:
        return str(self.meta_of(name).get("model_version", ""))

    def holder(self) -> str | None:
        """Who holds this directory, when another process does (read-only callers: doctor)."""
        return holder_text(self.base / CATALOG_LOCK) if self._lock is None and is_held(self.base / CATALOG_LOCK) \
            else None

    def open(self, name: str) -> EdgeStore:
        self._require_writer()
        path = self._dir(name)
        if not (path / META_FILE).is_file():
            raise StoreUnavailableError(f"index version {name} has no index at {path}")
        store = EdgeStore(path, min_free_bytes=self.min_free_bytes)
        if self.warm_on_open:
            store.start_warming()
        return store

    def create(self, name: str) -> EdgeStore:
        self._require_writer()
        self.check_room()
        path = self._dir(name)
        if path.exists():
            raise FileExistsError(f"index version {name} already exists at {path}")
        try:
            path.mkdir(parents=True)
            atomic_write_text(path / BUILDING, "building")
        except OSError as exc:
            raise NotWritableError(f"cannot create index version {name}: {exc.strerror}") from None
        return EdgeStore(path, graph=self.graph, min_free_bytes=self.min_free_bytes)

    def mark_complete(self, name: str) -> None:
        self._require_writer()
        path = self._dir(name)
        self._pin_only_version()  # before a second complete version exists
        (path / BUILDING).unlink(missing_ok=True)
        fsync_dir(path)  # the version is complete on disk before any pointer may name it

    def drop(self, name: str) -> None:
        self._require_writer()
        with contextlib.suppress(PointerLostError):
            if name == self.active():
                raise ValueError(f"index version {name} is active; switch away from it first")
        path = self._dir(name)
        if name != LEGACY and is_held(path / SHARD_LOCK):
            raise IndexLockedError(f"index version {name} is open elsewhere; not removing it")
        if name == LEGACY:
            (self.base / META_FILE).unlink(missing_ok=True)
            shutil.rmtree(self.base / "shard", ignore_errors=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
        logger.info("dropped index version %s", name)

    def clean_incomplete(self) -> list[str]:
        self._require_writer()
        return super().clean_incomplete()

    # -- writability -------------------------------------------------------------------------
    def check_room(self, need_bytes: int = 0) -> None:
        """NotWritableError unless the disk has the reserve plus `need_bytes` free (a copy of a version)."""
        free = free_bytes(self.base)
        if free < self.min_free_bytes + need_bytes:
            raise NotWritableError(f"the disk holding the index has {free / 2**20:.0f} MiB free; this needs "
                                   f"{(self.min_free_bytes + need_bytes) / 2**20:.0f} MiB (the reserve "
                                   "INCIDENT_SIM_MIN_FREE_DISK_MB plus room for the work): free disk space")

    def size_of(self, name: str) -> int:
        return sum(st.st_size for st in self._file_stats(name))

    def writable(self) -> str | None:
        """None when the index directory takes writes; otherwise why not (readiness: not_writable)."""
        try:
            self.check_room()
            # a name of its own per call: concurrent probes (readiness checks in the thread pool) sharing one name
            # removed each other's file and reported a writable directory as not writable
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=self.base)
            os.close(fd)
            os.unlink(probe)
        except NotWritableError as exc:
            return str(exc)
        except OSError as exc:
            return f"the index directory cannot be written: {exc.strerror}"
        return None

    def _require_writer(self) -> None:
        if self.read_only:
            raise IndexLockedError("this catalog was opened read-only (it never opens, changes or repairs anything)")

    # -- optimizing --------------------------------------------------------------------------
    self_optimizing = False  # Edge builds HNSW and vacuums deletes only when asked

    def optimize_apart(self, name: str, timeout_s: float = 3600.0) -> float:
        """Run the optimizers of version `name` in a child process at lower CPU priority (indexing.store.
        edge_optimize), which dies with this process. The version must not be open here: the child takes its
        shard lock (and refuses if it cannot)."""
        self._require_writer()
        path = self._dir(name)
        t0 = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "indexing.store.edge_optimize", str(path)], capture_output=True, text=True,
                timeout=timeout_s, preexec_fn=_child_setup, check=False,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT,
                                                                               os.environ.get("PYTHONPATH")]))})
        except subprocess.TimeoutExpired:
            raise StoreUnavailableError(f"optimizing index version {name} took longer than {timeout_s:.0f} s; "
                                        "it was stopped") from None
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise StoreUnavailableError(f"optimizing index version {name} failed: {reason}")
        return time.perf_counter() - t0

    def close(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

