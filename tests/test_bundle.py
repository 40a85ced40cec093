"""Bundles are verified on load; the baseline assembly refuses corrupt registry parts."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from indexing.bundle import Bundle, check_parity_record, load_bundle
from indexing.errors import BundleError
from training.baseline import assemble_baseline


def copy_bundle(bundle: Bundle, tmp_path: Path) -> Path:
    target = tmp_path / bundle.path.name
    shutil.copytree(bundle.path, target)
    for p in target.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    return target


def test_bundle_manifest_records_what_the_runtime_needs(minilm_bundle: Bundle) -> None:
    m = minilm_bundle.manifest
    assert m["hybrid"] == {"dense_weight": 0.7, "bm25_weight": 0.3}
    assert m["encoder"]["dim"] == 384 and m["encoder"]["max_seq_length"] == 256
    assert m["encoder"]["pooling"] == "mean" and m["encoder"]["normalize"] is True
    assert m["parity"]["measured"] and m["parity"]["n_texts"] == 64
    assert m["threshold"]["source"] == "uncalibrated_default"
    assert set(m["files"]) >= {"encoder/model.onnx", "tokenizer/tokenizer.json"}
    # the shipped precision follows the measured parity
    assert m["encoder"]["precision"] == ("int8" if m["parity"]["passed"] else "fp32")


def test_tampered_file_is_refused(minilm_bundle: Bundle, tmp_path: Path) -> None:
    path = copy_bundle(minilm_bundle, tmp_path)
    tok = path / "tokenizer" / "tokenizer.json"
    data = bytearray(tok.read_bytes())
    data[100] ^= 0x01  # same size, one bit flipped
    tok.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum of tokenizer/tokenizer.json"):
        load_bundle(path)


def test_truncated_and_missing_files_are_refused(minilm_bundle: Bundle, tmp_path: Path) -> None:
    path = copy_bundle(minilm_bundle, tmp_path)
    onnx_file = path / "encoder" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(BundleError, match="corrupt: encoder/model.onnx has 1000 bytes"):
        load_bundle(path)
    onnx_file.unlink()
    with pytest.raises(BundleError, match="incomplete: encoder/model.onnx is missing"):
        load_bundle(path)


def test_missing_or_garbled_manifest(minilm_bundle: Bundle, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no model bundle"):
        load_bundle(tmp_path / "nope")
    path = copy_bundle(minilm_bundle, tmp_path)
    (path / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(path)
    (path / "bundle.json").unlink()
    with pytest.raises(BundleError, match="bundle.json is missing"):
        load_bundle(path)


def test_manifest_edit_is_refused(minilm_bundle: Bundle, tmp_path: Path) -> None:
    path = copy_bundle(minilm_bundle, tmp_path)
    manifest = json.loads((path / "bundle.json").read_text())
    del manifest["files"]["tokenizer/config.json"]  # hide a file from the checksum list
    (path / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="files_digest"):
        load_bundle(path)


def test_int8_bundle_with_failing_parity_is_refused() -> None:
    manifest = {"encoder": {"precision": "int8"}, "parity": {"mean_cosine": 0.92, "min_cosine": 0.90}}
    with pytest.raises(BundleError, match="parity fails the bar"):
        check_parity_record(manifest)
    with pytest.raises(BundleError, match="without a recorded"):
        check_parity_record({"encoder": {"precision": "int8"}, "parity": {}})
    check_parity_record({"encoder": {"precision": "int8"}, "parity": {"mean_cosine": 0.995, "min_cosine": 0.98}})
    with pytest.raises(BundleError, match="retrieval parity fails: hybrid mrr 0.70 vs FP32 0.72"):
        check_parity_record({"encoder": {"precision": "int8"}, "parity": {
            "mean_cosine": 0.995, "min_cosine": 0.98,
            "retrieval": {"passed": False, "summary": "hybrid mrr 0.70 vs FP32 0.72"}}})
    check_parity_record({"encoder": {"precision": "fp32"}, "parity": {"mean_cosine": 0.1, "min_cosine": 0.0}})


def _split_zip(tmp_path: Path, files: dict[str, bytes]) -> list[Path]:
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    blob = archive.read_bytes()
    size = len(blob) // 5 + 1
    parts = []
    for i in range(5):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(blob[i * size : (i + 1) * size])
        parts.append(part)
    return parts


def test_baseline_assembly_refuses_wrong_weights(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, {"all-mpnet-base-v2/model.safetensors": b"not the real weights",
                                  "all-mpnet-base-v2/config.json": b"{}"})
    with pytest.raises(BundleError, match="checksum mismatch"):
        assemble_baseline(tmp_path / "out", parts)


def test_baseline_assembly_refuses_missing_or_reordered_part(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, {"all-mpnet-base-v2/model.safetensors": b"x" * 5000})
    with pytest.raises(BundleError, match="do not form a valid zip|corrupt"):
        assemble_baseline(tmp_path / "out", parts[:4])
    with pytest.raises(BundleError, match="do not form a valid zip|corrupt"):
        assemble_baseline(tmp_path / "out", [parts[1], parts[0], *parts[2:]])
