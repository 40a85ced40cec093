"""Pick the decision threshold for a target false-positive rate, and write it into a new bundle version."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexing.bundle import MANIFEST, Bundle, load_bundle
from indexing.errors import InputDataError


def threshold_for_fpr(scores: np.ndarray, labels: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold t with FPR(t) = #{negatives with score >= t} / #negatives <= target_fpr."""
    if not 0.0 <= target_fpr < 1.0:
        raise ValueError("target_fpr must be in [0, 1)")
    negatives = np.sort(scores[~labels])[::-1]
    if negatives.size == 0:
        raise InputDataError("calibration needs negative pairs; the split has none")
    if labels.sum() == 0:
        raise InputDataError("calibration needs positive pairs; the split has none")
    allowed = math.floor(target_fpr * negatives.size + 1e-9)  # false positives we may let through
    if allowed >= negatives.size:
        return float(negatives[-1])
    # every negative strictly above negatives[allowed] may pass; negatives[allowed] itself must not
    return float(np.nextafter(negatives[allowed], np.inf))


def write_calibrated_bundle(bundle: Bundle, bundles_dir: Path, threshold: dict[str, Any],
                            evaluation: dict[str, Any], bm25_updates: dict[str, Any] | None = None,
                            extra: dict[str, Any] | None = None) -> Path:
    """Bundles are immutable: copy the files, write a new manifest with the threshold and evaluation,
    under a new model_version. The encoder files are unchanged, so indexes stay usable."""
    manifest = json.loads(json.dumps(bundle.manifest))
    stamp = datetime.now(UTC)
    base = manifest["model_version"].split("+cal")[0]
    manifest["model_version"] = f"{base}+cal{stamp.strftime('%Y%m%d%H%M%S')}"
    manifest["created_at"] = stamp.isoformat()
    manifest["derived_from"] = bundle.model_version
    manifest["threshold"] = threshold
    manifest["evaluation"] = evaluation
    if bm25_updates:
        manifest["bm25"].update(bm25_updates)
    manifest.update(extra or {})
    bundles_dir.mkdir(parents=True, exist_ok=True)
    final = bundles_dir / manifest["model_version"]
    if final.exists():
        raise FileExistsError(f"bundle {final} already exists; bundles are immutable")
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=bundles_dir))
    try:
        for rel in manifest["files"]:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(bundle.path / rel, staging / rel)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for p in final.rglob("*"):
        if p.is_file():
            p.chmod(0o444)
    load_bundle(final)
    return final
