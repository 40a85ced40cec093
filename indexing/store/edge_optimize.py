"""Run Qdrant Edge's segment optimizers on one index version, in a process of its own.

`EdgeShard.optimize()` holds the Python GIL for its whole run (seconds at 5,000 incidents, minutes at
100,000), so run in the serving process it would stop every request. The service closes the version,
runs this module as a child process (lower CPU priority), then reopens it:

    python -m indexing.store.edge_optimize INDEX_VERSION_DIR

Exit status 0 when done (prints the seconds taken), 1 with a reason on stderr otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    import qdrant_edge as qe

    from indexing import failpoints
    from indexing.errors import IndexLockedError
    from indexing.store.edge_lock import SHARD_LOCK, DirectoryLock

    shard_dir = Path(argv[0]) / "shard"
    if not shard_dir.is_dir():
        print(f"no Qdrant Edge shard at {shard_dir}", file=sys.stderr)
        return 1
    try:  # never load a shard another process holds: Qdrant Edge's load writes to it before it refuses
        lock = DirectoryLock(Path(argv[0]) / SHARD_LOCK, f"index version {Path(argv[0]).name}")
    except IndexLockedError as exc:
        print(f"not optimizing: {exc}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    try:
        shard = qe.EdgeShard.load(str(shard_dir))
        failpoints.pause("optimize.child")
        shard.optimize()
        shard.flush()
        shard.close()
    except Exception as exc:  # the engine's runtime errors are plain Exception
        print(f"optimizing {shard_dir} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    print(f"{time.perf_counter() - t0:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
