"""Recorded outcomes of the INT8 recipe search, so a build of a model already searched on the same kind of CPU
does not run the whole search again.

The search (training/export.choose_int8) exports every recipe, times each, then measures parity fastest-first:
about 8 minutes for all-mpnet-base-v2 on 2 cores. Its outcome depends on the model (its weights' checksum), on the
CPU's instruction sets (the INT8 kernels ONNX Runtime picks: AVX2, AVX-512, VNNI, AMX) and on ONNX Runtime's
version, and on nothing else. So an outcome is recorded under those three, with the recipe that shipped, its
timings, its parity, the checksum of the INT8 file it produced and the parity texts on which it came closest to
failing. Two tables are read: `training/int8_recipes.json`, carried by the repository, and `int8-recipes.json`
beside the bundles, where every full search run here appends its outcome (copy an entry into the repository's
table to share it).

A matching entry does not skip parity: the recorded recipe is exported again and its parity measured on every
build (training/export.reuse_recorded), and a failure falls back to the full search."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from indexing.atomic import atomic_write_json
from indexing.bundle import sha256_file
from indexing.cpu import FLAGS, cpu_facts

logger = logging.getLogger(__name__)

REPOSITORY_TABLE = Path(__file__).with_name("int8_recipes.json")
LOCAL_TABLE_NAME = "int8-recipes.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
# How many of the parity texts that came closest to failing the bar an entry keeps (see reuse_recorded)
WORST_TEXTS_KEPT = 50


@dataclass(frozen=True)
class RecipeKey:
    """What an INT8 search outcome depends on."""

    model_sha256: str
    cpu_features: dict[str, bool]
    onnxruntime: str | None

    def matches(self, other: RecipeKey) -> bool:
        return (self.model_sha256 == other.model_sha256 and self.onnxruntime == other.onnxruntime
                and all(self.cpu_features.get(f) == other.cpu_features.get(f) for f in FLAGS))

    def describe(self) -> str:
        flags = ",".join(f for f in FLAGS if self.cpu_features.get(f)) or "no AVX2"
        return f"model {self.model_sha256[:12]}, CPU [{flags}], onnxruntime {self.onnxruntime}"


@dataclass(frozen=True)
class RecordedRecipe:
    key: RecipeKey
    recipe: str
    int8_sha256: str
    single_query_ms: float
    fp32_single_query_ms: float
    parity: dict[str, Any]  # embedding parity of the full search (mean/min/p05 over n_texts), retrieval parity
    parity_texts_sha256: str  # the parity texts the worst indices refer to
    worst_texts: list[int]  # indices into those texts, lowest cosine first
    cpu: str = ""
    recorded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedRecipe:
        return cls(**{**data, "key": RecipeKey(**data["key"])})


def model_checksum(model_dir: Path) -> str:
    """SHA-256 over the model's weight files (names and contents), the model's identity for the table."""
    digest = hashlib.sha256()
    weights = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not weights:
        raise FileNotFoundError(f"{model_dir}: no weight files (*.safetensors, *.bin)")
    for path in weights:
        digest.update(f"{path.relative_to(model_dir)}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def texts_checksum(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def key_for(model_dir: Path) -> RecipeKey:
    facts = cpu_facts()
    try:
        ort_version: str | None = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        ort_version = None
    return RecipeKey(model_checksum(model_dir), {f: bool(facts[f]) for f in FLAGS}, ort_version)


def read_table(path: Path) -> list[RecordedRecipe]:
    """The entries of one table; an unreadable table or entry is skipped with a warning (it only costs a search)."""
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())["entries"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("INT8 recipe table %s is unreadable (%s): ignoring it", path, exc)
        return []
    entries = []
    for row in rows:
        try:
            entries.append(RecordedRecipe.from_json(row))
        except (TypeError, KeyError) as exc:
            logger.warning("INT8 recipe table %s: skipping a malformed entry (%s)", path, exc)
    return entries


def find(key: RecipeKey, tables: list[Path]) -> tuple[RecordedRecipe, Path] | None:
    """The newest entry matching `key` in the first table that has one."""
    for table in tables:
        matching = [e for e in read_table(table) if e.key.matches(key)]
        if matching:
            return max(matching, key=lambda e: e.recorded_at), table
    return None


def record(table: Path, entry: RecordedRecipe) -> None:
    """Add `entry` to a table, replacing an older entry for the same key (written atomically)."""
    kept = [e for e in read_table(table) if not e.key.matches(entry.key)]
    table.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(table, {"about": "INT8 recipe search outcomes (training/int8_recipes.py)",
                              "entries": [e.to_json() for e in [*kept, entry]]})
    logger.info("recorded INT8 recipe %s for %s in %s", entry.recipe, entry.key.describe(), table)

