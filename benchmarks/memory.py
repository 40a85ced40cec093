"""Where a process's resident memory lives: /proc/self/smaps summed by what each mapping holds (the index's
dense vectors, its HNSW graph, payload storage and payload indexes, the sparse index, the WAL) plus anonymous
memory (the engine's in-RAM structures and the Python heap). Linux only; elsewhere an empty breakdown.

Sums are of Pss, not Rss: Qdrant Edge maps its vector file twice (seen in smaps: one mapping resident once the
index opens, the other filled by exact scans), and Rss, like VmRSS, counts a page once per mapping: at 300k
incidents, after the recall check's exact scans, the 879 MiB vector file showed 1,758 MiB of Rss. Pss counts
each physical page once in a single process."""

from __future__ import annotations

import re
from pathlib import Path

_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def category(path: str) -> str:
    """What a mapped file holds, from its path inside a Qdrant Edge shard."""
    if "/segments/" not in path:
        return "wal" if "/wal/" in path else ("anonymous" if not path.startswith("/") else "libraries")
    inside = path.split("/segments/", 1)[1].split("/", 1)[-1]
    for prefix, name in (("vector_storage-dense", "dense vectors"), ("vector_index-dense", "dense graph"),
                         ("vector_storage-bm25", "sparse vectors"), ("vector_index-bm25", "sparse index"),
                         ("payload_storage", "payload storage"), ("payload_index", "payload indexes")):
        if inside.startswith(prefix):
            return name
    return "other segment files"


def pss_by_category(smaps: Path = Path("/proc/self/smaps")) -> dict[str, float]:
    """MiB of physical memory (Pss) per category, largest first."""
    totals: dict[str, int] = {}
    current = "anonymous"
    try:
        lines = smaps.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        if _MAPPING.match(line):
            parts = line.split(None, 5)
            current = category(parts[5].strip() if len(parts) > 5 else "")
        elif line.startswith("Pss:"):
            totals[current] = totals.get(current, 0) + int(line.split()[1])
    return {k: round(v / 1024, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def pss_total_kib(rollup: Path = Path("/proc/self/smaps_rollup")) -> int:
    """The process's physical memory (Pss) in KiB; 0 where the kernel does not say."""
    try:
        for line in rollup.read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
