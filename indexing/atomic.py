"""Crash-safe file and directory publication: the one helper behind every pointer file, manifest and
bundle directory (registry, index catalog, bundle writer, calibration).

A reader sees the old content or the new one, never a mix, an empty file or a missing one, even after a
power cut or SIGKILL at any instruction: the new content goes to a temporary file with a unique name in
the same directory, is flushed and fsync'ed, renamed over the target (atomic on POSIX), and the
directory itself is fsync'ed so the rename survives a crash."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root` (before it is renamed into place)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def publish_directory(staging: Path, final: Path) -> None:
    """Move a fully written staging directory (same file system) to its final name, durably: its files are
    fsync'ed first, then it is renamed (refused if `final` exists), then the parent is fsync'ed."""
    fsync_tree(staging)
    if final.exists():
        raise FileExistsError(f"{final} already exists")
    os.rename(staging, final)
    fsync_dir(final.parent)
