"""Advisory locks that keep a second process off an embedded index before it touches anything.

Qdrant Edge refuses a second opener of a shard only *after* `EdgeShard.load` has run, and that load already
writes (measured: a refused second opener deleted the live shard's `tracker_journal.dat` files). So every
process takes an exclusive `flock` first and loads, cleans up or repairs nothing unless it holds it:

* `CATALOG.lock` in the index directory: held for the life of a catalog opened for writing (a service, an
  `index`, `models …` or `sync` run). The holder writes its pid and command line into it, so a refused
  process can say who holds the directory.
* `SHARD.lock` in each index version's directory: held while that version's shard is open (the service,
  or the optimizer child that works on a closed version).

A lock dies with its process (the kernel drops it), so a SIGKILL never leaves a stale lock behind. Reading a
lock's holder opens the file read-only and changes nothing."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from indexing.errors import IndexLockedError

CATALOG_LOCK = "CATALOG.lock"
SHARD_LOCK = "SHARD.lock"


class DirectoryLock:
    """An exclusive, non-blocking flock on `path` (created if missing), released by `release` or at exit."""

    def __init__(self, path: Path, what: str, describe_holder: bool = False) -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None
        cloexec = getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | cloexec, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
                raise IndexLockedError(f"cannot open the lock of {what}: {exc.strerror}") from None
            try:  # read-only or full storage: an existing lock file still locks (flock needs no write access)
                fd = os.open(self.path, os.O_RDONLY | cloexec)
            except OSError:
                raise IndexLockedError(f"cannot open the lock of {what}: {exc.strerror}") from None
            describe_holder = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexLockedError(f"{what} is held by {holder_text(self.path)}") from None
        self._fd = fd
        if describe_holder:
            record = {"pid": os.getpid(), "command": " ".join(_command()), "since": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __del__(self) -> None:  # a lock object dropped without release (a test, an error path)
        self.release()


def is_held(path: Path) -> bool:
    """Whether another open file (this process's included) holds the lock; changes nothing on disk (a missing
    lock file is not held)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this probe took
    return False


def holder(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def holder_text(path: Path) -> str:
    info = holder(path)
    if not info.get("pid"):
        return "another process"
    return f"another process (pid {info['pid']}: {str(info.get('command', '?'))[:120]}, since {info.get('since')})"


def _command() -> list[str]:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "cli")):
        argv[0] = "incident-sim"
    return [Path(argv[0]).name, *argv[1:]] if argv else ["python"]
