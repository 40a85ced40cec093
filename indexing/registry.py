"""The bundle registry: a directory of immutable, versioned bundles and a pointer to the active one.

    bundles/<model_version>/...     one bundle each (never overwritten)
    bundles/ACTIVE.json             {"active": version, "history": [previous versions, newest first]}

Publishing validates a bundle (checksums, INT8 parity, a calibrated threshold) before it is copied in
(staging directory + rename, so a half-copied bundle is never visible). The pointer is replaced
atomically and durably (indexing/atomic.py). Without a pointer the newest bundle is the active one (the layout
before the registry existed)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexing.atomic import atomic_write_text, publish_directory
from indexing.bundle import (
    MANIFEST,
    Bundle,
    check_version_name,
    digest_path,
    find_latest_bundle,
    load_bundle,
    manifest_digest,
)
from indexing.errors import BundleError, InvalidVersionError, UnknownBundleError
from indexing.pointer import PointerFile

logger = logging.getLogger(__name__)

POINTER = "ACTIVE.json"
POINTER_BACKUP = "ACTIVE.json.bak"
HISTORY_KEPT = 10


@dataclass(frozen=True)
class RegistryEntry:
    model_version: str
    created_at: str
    threshold_source: str
    encoder_precision: str
    active: bool


def _check_pointer(data: dict[str, Any]) -> None:
    if data.get("active") is not None and not isinstance(data["active"], str):
        raise ValueError("'active' is not a version name")
    if not isinstance(data.get("history", []), list):
        raise ValueError("'history' is not a list")


class BundleRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._file = PointerFile(self.root / POINTER, _check_pointer, name="registry")

    # -- reading ---------------------------------------------------------------------------
    def path_of(self, version: str) -> Path:
        """The registry directory of `version`; the name must be a safe version name that resolves inside the
        registry (InvalidVersionError), and the bundle must be there (UnknownBundleError)."""
        path = self.root / check_version_name(version)
        if path.resolve().parent != self.root.resolve():
            raise InvalidVersionError(f"{version!r} does not resolve inside the registry {self.root}")
        if not (path / MANIFEST).is_file():
            raise UnknownBundleError(f"no bundle {version!r} in the registry {self.root}")
        return path

    def _pointer(self) -> dict[str, Any]:
        """The pointer, or its last good copy when it is missing or unreadable (indexing/pointer.py), or {} (the
        newest bundle) when neither is usable. What serves is decided by the index pointer, which names its
        bundle (see resolve_bundle_path); this pointer says what the registry considers active."""
        state = self._file.read()
        if state.source == "backup":
            logger.error("registry pointer unusable (%s): using its last good copy", "; ".join(state.problems))
        elif state.lost:
            logger.error("no usable registry pointer in %s (%s): the newest bundle is the registry's active one",
                         self.root, "; ".join(state.problems))
        return state.data or {}

    def active_version(self) -> str | None:
        active = self._pointer().get("active")
        if active:
            return str(active)
        latest = find_latest_bundle(self.root)
        return latest.name if latest else None

    def active_path(self) -> Path | None:
        version = self.active_version()
        return self.path_of(version) if version else None

    def entries(self) -> list[RegistryEntry]:
        active = self.active_version()
        out = []
        for child in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            manifest = child / MANIFEST
            if child.name.startswith(".") or child.name == POINTER_BACKUP or not manifest.is_file():
                continue
            try:
                m = json.loads(manifest.read_text())
            except json.JSONDecodeError:
                continue
            out.append(RegistryEntry(child.name, str(m.get("created_at", "")),
                                     str(m.get("threshold", {}).get("source", "?")),
                                     str(m.get("encoder", {}).get("precision", "?")), child.name == active))
        return sorted(out, key=lambda e: e.created_at)

    # -- writing ---------------------------------------------------------------------------
    def publish(self, source: Path, allow_uncalibrated: bool = False) -> Bundle:
        """Validate `source` and copy it into the registry under its model_version. Refuses a bundle
        that fails its checksums or parity record, an uncalibrated threshold (unless allowed), and a
        version that is already there."""
        bundle = load_bundle(source)  # checksums + parity, raises BundleError
        check_version_name(bundle.model_version)  # the manifest names the registry directory: never trust a path
        if bundle.threshold_source != "calibrated" and not allow_uncalibrated:
            raise BundleError(f"bundle {bundle.model_version} has an uncalibrated threshold "
                              f"({bundle.threshold_source}); run `incident-sim calibrate` first, or pass "
                              "--allow-uncalibrated")
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / POINTER).is_file() and (current := self.active_version()) is not None:
            self.set_active(current)  # pin what serves now: publishing must not make the new bundle active
        target = self.root / bundle.model_version
        if Path(source).resolve() == target.resolve():  # already in place (written by training into the registry)
            if not digest_path(target).is_file():  # just verified: record what its manifest is
                atomic_write_text(digest_path(target), manifest_digest((target / MANIFEST).read_bytes()) + "\n")
            return bundle
        if target.exists():
            raise BundleError(f"bundle {bundle.model_version} is already in the registry (bundles are immutable)")
        staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=self.root))
        try:
            shutil.copytree(source, staging / "b", symlinks=True)  # a link is copied as a link, never followed
            copied = load_bundle(staging / "b")  # verify the copy too (its paths confined to where it now is)
            # the manifest's digest, next to the bundle (load_bundle checks it): recorded before the bundle appears
            atomic_write_text(digest_path(target), manifest_digest((staging / "b" / MANIFEST).read_bytes()) + "\n")
            publish_directory(staging / "b", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("published bundle %s into %s", copied.model_version, self.root)
        return load_bundle(target, verify=False)

    def set_active(self, version: str) -> None:
        self.path_of(version)
        pointer = self._pointer()
        previous = pointer.get("active") or self.active_version()
        history = [v for v in pointer.get("history", []) if v != version]
        if previous and previous != version:
            history.insert(0, previous)
        data = {"active": version, "history": history[:HISTORY_KEPT], "updated_at": datetime.now(UTC).isoformat()}
        self._file.write(data)  # the pointer, then its last good copy
        logger.info("registry: active bundle is now %s (was %s)", version, previous)

    def clean_staging(self) -> list[str]:
        """Remove what a publish or a bundle write cut short left behind (`.publish-*`, `.staging-*`): such a
        directory is never a bundle, but it takes disk and confuses a person reading the registry."""
        removed = []
        for child in self.root.iterdir() if self.root.is_dir() else []:
            if child.is_dir() and child.name.startswith((".publish-", ".staging-")):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child.name)
        return removed

    def previous_version(self) -> str | None:
        for version in self._pointer().get("history", []):
            if (self.root / version / MANIFEST).is_file():
                return str(version)
        return None
