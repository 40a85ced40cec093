"""The model bundle: the one artifact that travels from training to indexing and serving.

A bundle is a directory holding `bundle.json` (the manifest) and the files it lists, each with its
SHA-256. Bundles are immutable: a loader re-hashes every file and refuses a bundle whose files do
not match, and a bundle whose recorded INT8 parity is below the bar."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from indexing.dense_text import DenseText
from indexing.errors import BundleError, InvalidVersionError
from indexing.scoring import LEGACY_NORMALIZATION, ScoringConfig

logger = logging.getLogger(__name__)

MANIFEST = "bundle.json"
DIGEST_SUFFIX = ".manifest.sha256"  # registry/<version>.manifest.sha256: the manifest's digest, recorded at publish
FORMAT_VERSION = 1
PARITY_MEAN_BAR = 0.99
PARITY_MIN_BAR = 0.97


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def files_digest(files: dict[str, dict[str, Any]]) -> str:
    """One hash over every file's name and hash: the content identity of a bundle."""
    canonical = json.dumps({k: v["sha256"] for k, v in sorted(files.items())}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]

    @property
    def model_version(self) -> str:
        return str(self.manifest["model_version"])

    @property
    def encoder_id(self) -> str:
        """Identity of what turns text into vectors (encoder + tokenizer + length + pooling). Two bundle
        versions that differ only in threshold or evaluation share it, and so can share an index."""
        files = self.manifest["files"]
        enc = self.manifest["encoder"]
        parts = [files[enc["file"]]["sha256"], files[self.manifest["tokenizer"]["file"]]["sha256"],
                 str(enc["max_seq_length"]), str(enc.get("pooling")), str(enc.get("normalize"))]
        if self.dense_text.mode != "full":  # what the encoder reads is part of what the vectors mean
            parts.append(f"dense_text={self.dense_text.mode}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    @property
    def dense_text(self) -> DenseText:
        """Which text the encoder reads and how its vectors combine (indexing/dense_text.py); `full` when the
        manifest names none."""
        return DenseText((self.manifest.get("dense_text") or {}).get("mode", "full"))

    def with_dense_text(self, mode: str, record: dict[str, Any] | None = None) -> Bundle:
        """The same bundle read with another dense text mode (in memory: to evaluate it, or to write it)."""
        manifest = json.loads(json.dumps(self.manifest))
        manifest["dense_text"] = {"mode": DenseText(mode).mode, **(record or {})}
        return Bundle(self.path, manifest)

    @property
    def encoder_path(self) -> Path:
        return self.path / self.manifest["encoder"]["file"]

    @property
    def tokenizer_path(self) -> Path:
        return self.path / self.manifest["tokenizer"]["file"]

    @property
    def dim(self) -> int:
        """Length of the stored and queried vector (the encoder's output length, doubled in `mean_cosine`)."""
        return int(self.manifest["encoder"]["dim"]) * self.dense_text.dim_factor

    @property
    def max_seq_length(self) -> int:
        return int(self.manifest["encoder"]["max_seq_length"])

    @property
    def dense_weight(self) -> float:
        return float(self.manifest["hybrid"]["dense_weight"])

    @property
    def bm25_weight(self) -> float:
        return float(self.manifest["hybrid"]["bm25_weight"])

    @property
    def bm25(self) -> dict[str, Any]:
        return dict(self.manifest["bm25"])

    @property
    def scoring(self) -> ScoringConfig:
        """The scoring configuration (weights, BM25 parameters, normalisation, query-term bound), typed."""
        return ScoringConfig.from_manifest(self.manifest)

    @property
    def max_query_terms(self) -> int | None:
        """Bound on a query's distinct BM25 terms (bm25.max_query_terms); None (older bundles): no bound."""
        return self.scoring.max_query_terms

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"]["value"])

    @property
    def threshold_source(self) -> str:
        return str(self.manifest["threshold"]["source"])

    @property
    def threshold_target(self) -> dict[str, Any] | None:
        """What the threshold was calibrated for: {unit, target, confidence}; None when uncalibrated.
        Units: "incident_false_alarm" (share of new incidents without an earlier duplicate that get a result
        marked similar) or "pair_fpr" (share of negative query-candidate pairs at or above it). Bundles
        calibrated before the per-incident unit recorded only `target_fpr` (pairs, point estimate)."""
        return threshold_target(self.manifest["threshold"])


THRESHOLD_UNITS = ("incident_false_alarm", "pair_fpr")
CALIBRATED = "calibrated"  # threshold.source of a threshold chosen on labelled data; anything else is a default
UNCALIBRATED_DEFAULT = "uncalibrated_default"


def threshold_target(threshold: dict[str, Any]) -> dict[str, Any] | None:
    if threshold.get("source") != CALIBRATED:
        return None
    if threshold.get("unit"):
        return {"unit": str(threshold["unit"]), "target": float(threshold["target"]),
                "confidence": float(threshold.get("confidence") or 0.0)}
    if threshold.get("target_fpr") is not None:
        return {"unit": "pair_fpr", "target": float(threshold["target_fpr"]), "confidence": 0.0}
    return None


def _require(manifest: dict[str, Any], dotted: str) -> Any:
    node: Any = manifest
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise BundleError(f"bundle manifest lacks '{dotted}'")
        node = node[part]
    return node


def digest_path(bundle_dir: Path) -> Path:
    """Where the registry records the manifest digest of the bundle at `bundle_dir`: next to it, outside it (so
    editing the bundle cannot edit its record)."""
    return bundle_dir.parent / f"{bundle_dir.name}{DIGEST_SUFFIX}"


def manifest_digest(manifest_bytes: bytes) -> str:
    return hashlib.sha256(manifest_bytes).hexdigest()


def check_confined(path: Path, manifest: dict[str, Any]) -> None:
    """Every path the manifest names (each `files` entry, `encoder.file`, `tokenizer.file`) is relative, plain
    (no '..', no backslash, no drive) and resolves inside the bundle directory, through no symlink that leaves
    it. Checked before any such file is opened or measured, so a refusal says nothing about files elsewhere: the
    message quotes the manifest, never the file system."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"bundle {path.name}: 'files' must be an object of relative paths")
    named = [(f"files[{rel!r}]"[:120], rel) for rel in files]
    named += [(f"{key}.file", (manifest.get(key) or {}).get("file")) for key in ("encoder", "tokenizer")]
    root = path.resolve()
    for where, rel in named:
        if not isinstance(rel, str) or not rel or "\x00" in rel:
            raise BundleError(f"bundle {path.name}: manifest entry {where} is not a file name")
        posix, windows = PurePosixPath(rel), PureWindowsPath(rel)
        if posix.is_absolute() or windows.is_absolute() or windows.drive or "\\" in rel or ".." in posix.parts:
            raise BundleError(f"bundle {path.name}: manifest entry {where} must be a relative path inside the "
                              "bundle (no '..', no absolute path)")
        if not (path / rel).resolve().is_relative_to(root):
            raise BundleError(f"bundle {path.name}: manifest entry {where} leaves the bundle (a symlink out of it)")


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Open a bundle directory, check its manifest (every path in it confined to the bundle, its digest against
    the registry's record where there is one), every file's checksum and its parity record."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise BundleError(f"no model bundle at {path} (build one with `incident-sim bundle baseline`)")
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise BundleError(f"{path} is not a model bundle: {MANIFEST} is missing (or a symlink)")
    raw = manifest_path.read_bytes()  # one read: what is checked is what is parsed
    recorded = digest_path(path)
    if recorded.is_file():
        expected = recorded.read_text().strip()
        if expected != manifest_digest(raw):
            raise BundleError(f"bundle {path.name}: its {MANIFEST} was changed after it was published (the digest "
                              "the registry recorded does not match); publish a new version instead")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{manifest_path}: unsupported bundle format {manifest.get('format_version')!r}")
    for key in ("model_version", "encoder.file", "encoder.dim", "encoder.max_seq_length", "tokenizer.file",
                "hybrid.dense_weight", "hybrid.bm25_weight", "bm25.k1", "bm25.b", "bm25.analyzer",
                "threshold.value", "threshold.source", "parity", "files"):
        _require(manifest, key)
    check_confined(path, manifest)  # before any listed file is touched
    files: dict[str, dict[str, Any]] = manifest["files"]
    if verify:
        for rel, meta in sorted(files.items()):
            file_path = path / rel
            if not file_path.is_file():
                raise BundleError(f"bundle {path} is incomplete: {rel} is missing")
            if file_path.stat().st_size != meta.get("bytes"):
                raise BundleError(f"bundle {path} is corrupt: {rel} has {file_path.stat().st_size} bytes, "
                                  f"manifest says {meta.get('bytes')}")
            if sha256_file(file_path) != meta.get("sha256"):
                raise BundleError(f"bundle {path} is corrupt: checksum of {rel} does not match the manifest")
        if manifest.get("files_digest") != files_digest(files):
            raise BundleError(f"bundle {path}: files_digest does not match its file list")
    for needed in (manifest["encoder"]["file"], manifest["tokenizer"]["file"]):
        if needed not in files:
            raise BundleError(f"bundle {path}: {needed} is not listed among its checksummed files")
    check_parity_record(manifest)
    check_scoring(manifest, path)
    unit = manifest["threshold"].get("unit")
    if unit is not None and unit not in THRESHOLD_UNITS:
        raise BundleError(f"bundle {path}: unknown threshold unit {unit!r} (known: {', '.join(THRESHOLD_UNITS)})")
    bundle = Bundle(path=path, manifest=manifest)
    logger.info("bundle %s loaded from %s (encoder %s, threshold %.3f [%s])", bundle.model_version, path,
                manifest["encoder"].get("precision"), bundle.threshold, bundle.threshold_source)
    gate = manifest.get("gate") or {}
    if gate.get("forced"):
        logger.warning("bundle %s was written with --force: it did NOT pass the promotion gate (%s)",
                       bundle.model_version, gate.get("reason", "no reason recorded"))
    return bundle


def check_scoring(manifest: dict[str, Any], path: Path) -> None:
    """Refuse at load what would fail every query later: the hybrid weights, BM25 parameters, analyzer,
    normalisation and dense text mode must be ones this code serves."""
    from indexing import lexical

    def number(dotted: str) -> float:
        value = _require(manifest, dotted)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise BundleError(f"bundle {path}: {dotted} must be a number, not {value!r}")
        return float(value)

    weights = number("hybrid.dense_weight"), number("hybrid.bm25_weight")
    if min(weights) < 0 or sum(weights) <= 0:
        raise BundleError(f"bundle {path}: hybrid weights {weights} must be >= 0 with a positive sum")
    if number("bm25.k1") <= 0 or not 0.0 <= number("bm25.b") <= 1.0:
        raise BundleError(f"bundle {path}: BM25 needs k1 > 0 and 0 <= b <= 1")
    normalization = manifest["bm25"].get("normalization", LEGACY_NORMALIZATION)
    if normalization not in lexical.NORMALIZATIONS:
        raise BundleError(f"bundle {path}: unknown BM25 normalization {normalization!r} "
                          f"(known: {', '.join(lexical.NORMALIZATIONS)})")
    max_terms = manifest["bm25"].get("max_query_terms")
    if max_terms is not None and (isinstance(max_terms, bool) or not isinstance(max_terms, int) or max_terms < 1):
        raise BundleError(f"bundle {path}: bm25.max_query_terms must be a positive integer or absent, not "
                          f"{max_terms!r}")
    try:
        lexical.Analyzer.from_name(str(manifest["bm25"]["analyzer"]))
        DenseText((manifest.get("dense_text") or {}).get("mode", "full"))
    except ValueError as exc:
        raise BundleError(f"bundle {path}: {exc}") from None
    number("threshold.value")


def check_parity_record(manifest: dict[str, Any]) -> None:
    """An INT8 encoder is only acceptable with measured parity to FP32 that meets the bar."""
    encoder = manifest["encoder"]
    if encoder.get("precision") != "int8":
        return
    parity = manifest.get("parity") or {}
    mean, minimum = parity.get("mean_cosine"), parity.get("min_cosine")
    if mean is None or minimum is None:
        raise BundleError("bundle ships an INT8 encoder without a recorded INT8-vs-FP32 parity")
    if mean < PARITY_MEAN_BAR or minimum < PARITY_MIN_BAR:
        raise BundleError(
            f"bundle ships an INT8 encoder whose parity fails the bar: mean cosine {mean:.4f} "
            f"(needs >= {PARITY_MEAN_BAR}), min {minimum:.4f} (needs >= {PARITY_MIN_BAR})"
        )
    retrieval = parity.get("retrieval")
    if retrieval is not None and not retrieval.get("passed"):
        raise BundleError(f"bundle ships an INT8 encoder whose retrieval parity fails: {retrieval.get('summary')}")


VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,199}$")


def check_version_name(version: str) -> str:
    """A bundle/index version name must be one plain path component: letters, digits and . _ + @ -, not
    starting with a dot (staging directories do), no '..', no separators. Raises InvalidVersionError."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version) or ".." in version:
        raise InvalidVersionError(f"{str(version)[:80]!r} is not a valid version name: use letters, digits and "
                                  ". _ + @ - (no path separators, no leading dot)")
    return version


def find_latest_bundle(bundles_dir: Path) -> Path | None:
    """The most recently created bundle under a directory (by manifest `created_at`). Staging directories
    (a copy or a write cut short) and anything not named like a version are never candidates."""
    if not bundles_dir.is_dir():
        return None
    candidates = []
    for child in bundles_dir.iterdir():
        if not VERSION_PATTERN.fullmatch(child.name) or ".." in child.name or not child.is_dir():
            continue
        manifest = child / MANIFEST
        if manifest.is_file():
            try:
                created = json.loads(manifest.read_text()).get("created_at", "")
            except json.JSONDecodeError:
                created = ""
            candidates.append((created, child.name, child))
    return max(candidates)[2] if candidates else None
