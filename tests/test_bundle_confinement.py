"""A bundle's manifest can name no file outside the bundle (absolute paths, '..', symlinks out): refused at
publish and at load, with messages that tell nothing about files elsewhere. The manifest's own digest is recorded
next to the bundle at publish; a manifest edited afterwards is refused at load."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from indexing.bundle import MANIFEST, check_version_name, digest_path, files_digest, load_bundle, sha256_file
from indexing.errors import BundleError, InvalidVersionError
from indexing.registry import BundleRegistry

SECRET = b"s3cr3t-value-outside-the-bundle\n"  # 32 bytes


def listing(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def rewrite(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    change(manifest)
    manifest["files_digest"] = files_digest(manifest["files"])  # consistent: only confinement can refuse it
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2))


@pytest.fixture()
def copy(minilm_bundle: Any, tmp_path: Path) -> Path:
    target = tmp_path / "src" / minilm_bundle.path.name
    shutil.copytree(minilm_bundle.path, target)
    return target


@pytest.fixture()
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET)
    return path


def escape_relative(copy: Path, secret: Path) -> None:
    rewrite(copy, lambda m: m["files"].__setitem__("../../secret.txt", listing(secret)))


def escape_absolute(copy: Path, secret: Path) -> None:
    rewrite(copy, lambda m: m["files"].__setitem__(str(secret), listing(secret)))


def escape_encoder(copy: Path, secret: Path) -> None:
    def change(m: dict[str, Any]) -> None:
        m["files"]["../../secret.txt"] = listing(secret)
        m["tokenizer"]["file"] = "../../secret.txt"
    rewrite(copy, change)


def escape_symlink(copy: Path, secret: Path) -> None:
    (copy / "extra.txt").symlink_to(secret)
    rewrite(copy, lambda m: m["files"].__setitem__("extra.txt", listing(secret)))


def escape_size_probe(copy: Path, secret: Path) -> None:  # the probe that told "secret.txt has 32 bytes"
    rewrite(copy, lambda m: m["files"].__setitem__(str(secret), {"sha256": "0" * 64, "bytes": 1}))


ESCAPES = {"relative": escape_relative, "absolute": escape_absolute, "encoder": escape_encoder,
           "symlink": escape_symlink, "size probe": escape_size_probe}


@pytest.mark.parametrize("how", sorted(ESCAPES))
def test_a_manifest_naming_files_outside_is_refused_at_publish_and_at_load(copy: Path, secret: Path,
                                                                           tmp_path: Path, how: str) -> None:
    ESCAPES[how](copy, secret)
    registry = BundleRegistry(tmp_path / "registry")
    with pytest.raises(BundleError) as refused:
        registry.publish(copy, allow_uncalibrated=True)
    message = str(refused.value)
    assert "leaves the bundle" in message or "relative path" in message, message
    # nothing about the file outside (its size, whether it exists); "32" alone would also match a temp path
    assert "32 bytes" not in message and " bytes" not in message and "missing" not in message
    assert not (tmp_path / "registry" / copy.name).exists()
    with pytest.raises(BundleError, match="leaves the bundle|relative path"):
        load_bundle(copy)


def test_a_bundle_in_the_registry_with_an_escaping_manifest_is_refused_at_load(copy: Path, secret: Path,
                                                                              tmp_path: Path) -> None:
    registry = BundleRegistry(tmp_path / "registry")
    published = registry.publish(copy, allow_uncalibrated=True).path
    digest_path(published).unlink()  # as a bundle published before digests were recorded
    escape_relative(published, secret)
    with pytest.raises(BundleError, match="relative path"):
        load_bundle(published)


def test_a_manifest_edited_after_publish_is_refused(copy: Path, tmp_path: Path) -> None:
    registry = BundleRegistry(tmp_path / "registry")
    published = registry.publish(copy, allow_uncalibrated=True).path
    assert digest_path(published).is_file()
    load_bundle(published)  # as published: fine
    manifest = json.loads((published / MANIFEST).read_text())
    manifest["threshold"]["value"] = 0.01  # every result "similar"; no file checksum covers this
    manifest["hybrid"]["dense_weight"], manifest["hybrid"]["bm25_weight"] = 0.0, 1.0
    (published / MANIFEST).write_text(json.dumps(manifest, indent=2))
    with pytest.raises(BundleError, match="changed after it was published"):
        load_bundle(published)


def test_version_names_with_a_trailing_newline_are_refused() -> None:
    for name in ("v1\n", "v1\r\n", "../v1", ".v1", "v1/x"):
        with pytest.raises(InvalidVersionError):
            check_version_name(name)
    assert check_version_name("mpnet-baseline-20261122071937-a357ef6f+cal1") == \
        "mpnet-baseline-20261122071937-a357ef6f+cal1"
