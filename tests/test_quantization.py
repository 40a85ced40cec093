"""INT8 quantisation: the variant search, parity that can fail, FP32 fallback, runtime vs sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from training.data.sample import parity_texts
from training.export import export_onnx, measure_parity


@pytest.fixture(scope="module")
def minilm_fp32(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    return export_onnx(minilm_dir, tmp_path_factory.mktemp("fp32"))


def broken_copy(fp32: Path, out: Path, noise: float = 0.5) -> Path:
    """The FP32 model with every MatMul weight disturbed by Gaussian noise (noise x the weight's std)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fp32))
    weights = {n.input[1] for n in model.graph.node if n.op_type == "MatMul"}
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        if init.name in weights:
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((w + rng.normal(0, noise * w.std(), w.shape)).astype(w.dtype),
                                                  init.name))
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def test_parity_is_one_for_the_same_model_and_fails_for_a_broken_one(minilm_fp32: Path, tmp_path: Path) -> None:
    texts = list(parity_texts(48))
    tokenizer = minilm_fp32.parent / "tokenizer.json"
    same = measure_parity(minilm_fp32, minilm_fp32, tokenizer, 256, texts)
    assert same["passed"] and same["mean_cosine"] == pytest.approx(1.0, abs=1e-5)
    broken = measure_parity(minilm_fp32, broken_copy(minilm_fp32, tmp_path / "broken" / "model.onnx"), tokenizer,
                            256, texts)
    assert not broken["passed"]
    assert broken["mean_cosine"] < 0.99 and broken["n_texts"] == 48


def test_bundle_ships_fp32_when_no_int8_variant_keeps_parity(minilm_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Every INT8 candidate is replaced by a broken model before its parity is measured (with the real
    measurement): the bundle must ship FP32 and say why, never a degraded INT8."""
    import training.export as export
    from training.bundle_writer import write_bundle
    from training.export import RECIPES

    real = export.measure_parity

    def measure_broken(fp32: Path, int8: Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return real(fp32, broken_copy(fp32, int8.with_name("broken.onnx")), *args, **kwargs)

    monkeypatch.setattr(export, "measure_parity", measure_broken)
    bundle = load_bundle(write_bundle(minilm_dir, tmp_path, "fp32-only", "minilm", parity_sample=32,
                                      recipes=RECIPES[:2]))
    m = bundle.manifest
    assert m["encoder"]["precision"] == "fp32"
    assert not m["parity"]["passed"] and "no INT8 variant" in m["parity"]["why_fp32"]
    search = m["encoder"]["quantization_search"]
    assert search["chosen"] is None
    measured = [c for c in search["candidates"] if isinstance(c.get("parity"), dict)]
    assert measured and all(not c["parity"]["passed"] for c in measured)


def test_the_fastest_faithful_variant_is_chosen_and_recorded(minilm_bundle: Bundle) -> None:
    m = minilm_bundle.manifest
    search = m["encoder"]["quantization_search"]
    assert m["encoder"]["precision"] == "int8" and search["chosen"] == m["encoder"]["quantization"]["name"]
    names = [c["recipe"] for c in search["candidates"] if "single_query_ms" in c]
    times = [c["single_query_ms"] for c in search["candidates"] if "single_query_ms" in c]
    assert len(names) >= 4 and times == sorted(times)  # tried fastest first
    chosen_at = names.index(search["chosen"])
    for c in search["candidates"][:chosen_at]:  # every faster variant was measured and failed
        assert isinstance(c["parity"], dict) and not c["parity"]["passed"]
    assert m["encoder"]["quantization"]["single_query_ms"] < search["fp32_single_query_ms"]
    from indexing.cpu import cpu_facts

    timed_on, here = search["timed_on"], cpu_facts()  # the timings name the CPU they hold for
    assert (timed_on["cpu"], timed_on["cores"], timed_on["avx512_vnni"]) == (here["cpu"], here["cores"],
                                                                            here["avx512_vnni"])
    retrieval = m["parity"]["retrieval"]
    assert retrieval["passed"] and retrieval["queries"] > 50
    for metric in ("recall@10", "mrr"):
        assert abs(retrieval["int8"][f"hybrid_{metric}"] - retrieval["fp32"][f"hybrid_{metric}"]) <= 0.005


def test_runtime_matches_sentence_transformers_within_the_recorded_parity(minilm_bundle: Bundle, minilm_dir: Path,
                                                                          minilm_fp32: Path) -> None:
    from sentence_transformers import SentenceTransformer

    texts = list(parity_texts(40, seed=5)) + ["vpn down", "x " * 400]  # short, and cut at the model's limit
    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(texts, normalize_embeddings=True)
    fp32 = OnnxEncoder(minilm_fp32, minilm_fp32.parent / "tokenizer.json", 256).encode(texts).vectors
    assert np.sum(fp32 * reference, axis=1).min() > 0.9999  # export + runtime (pooling, truncation) are exact
    int8 = OnnxEncoder(minilm_bundle.encoder_path, minilm_bundle.tokenizer_path,
                       minilm_bundle.max_seq_length).encode(texts).vectors
    recorded_min = minilm_bundle.manifest["parity"]["min_cosine"]
    assert np.sum(int8 * reference, axis=1).min() >= recorded_min - 0.005
    single = np.stack([OnnxEncoder(minilm_bundle.encoder_path, minilm_bundle.tokenizer_path,
                                   minilm_bundle.max_seq_length).encode_one(t)[0] for t in texts[:5]])
    assert np.sum(single * reference[:5], axis=1).min() >= recorded_min - 0.005
    assert json.loads((minilm_bundle.path / "bundle.json").read_text())["parity"]["n_texts"] == 64
