"""Disk facts for the embedded store: free space (the write reserve) and which engine errors mean the disk cannot
take writes (full or read-only), so they become NotWritableError (503, readiness not_writable), not a crash."""

from __future__ import annotations

import os
from pathlib import Path

from indexing.errors import NotWritableError, StoreUnavailableError

_DISK_FULL = ("No space left on device", "os error 28", "Read-only file system", "os error 30")


def free_bytes(path: Path) -> int:
    """Free bytes for unprivileged writers on the file system holding `path` (or its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stat = os.statvfs(probe)
    return stat.f_bavail * stat.f_frsize


def storage_error(path: Path, exc: BaseException) -> StoreUnavailableError:
    """The engine's runtime error as ours: a full or read-only disk is NotWritableError (the index still reads)."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno in (28, 30) or any(mark in text for mark in _DISK_FULL):
        return NotWritableError(f"the Qdrant Edge index cannot take writes: {text[:300]}")
    return StoreUnavailableError(f"the Qdrant Edge index at {path} failed: {text[:500]}")
