"""ONNX export (optimum), INT8 quantisation (ONNX Runtime) and measured INT8-vs-FP32 parity."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexing import steps
from indexing.bundle import PARITY_MEAN_BAR, PARITY_MIN_BAR, sha256_file
from indexing.encoder import OnnxEncoder
from training.deps import require
from training.int8_recipes import WORST_TEXTS_KEPT, RecordedRecipe, texts_checksum

logger = logging.getLogger(__name__)

# The FFN output projections are the layers whose INT8 error hurts most (DESIGN.md: leaving them in
# FP32 took mean cosine from 0.917 to 0.993 on mpnet).
FFN_OUTPUT = re.compile(r"/layer\.\d+/output/dense/MatMul$")


def export_onnx(model_dir: Path, out_dir: Path) -> Path:
    """Export the transformer (last_hidden_state; pooling is done by the runtime) to ONNX FP32."""
    with steps.step("load the exporter (torch, optimum)"):
        exporters = require("optimum.exporters.onnx")
    t0 = time.perf_counter()
    with steps.step("export ONNX FP32"):
        exporters.main_export(
            model_name_or_path=str(model_dir),
            output=str(out_dir),
            task="feature-extraction",
            library_name="transformers",
            do_validation=False,
            device="cpu",
        )
    logger.info("exported ONNX FP32 in %.1fs", time.perf_counter() - t0)
    return out_dir / "model.onnx"


@dataclass(frozen=True)
class QuantizationRecipe:
    name: str = "u8-ffnout-fp32"
    per_channel: bool = True
    # Signed-int8 weights without reduce_range gave mean cosine 0.07 on mpnet here (u8s8 saturation on
    # the AVX2/AVX-512 kernels); with reduce_range (7-bit weights) they do not saturate.
    weight_type: str = "QUInt8"
    reduce_range: bool = False
    op_types: tuple[str, ...] = ("MatMul",)
    exclude_ffn_output: bool = True
    preprocess: bool = False  # ONNX Runtime's quant_pre_process (shape inference + graph optimisation) first


# Tried on every export; the fastest one whose parity holds ships (see choose_int8).
RECIPES: tuple[QuantizationRecipe, ...] = (
    QuantizationRecipe("u8-all", exclude_ffn_output=False),
    QuantizationRecipe("s8rr-all", weight_type="QInt8", reduce_range=True, exclude_ffn_output=False),
    QuantizationRecipe("s8rr-ffnout-fp32", weight_type="QInt8", reduce_range=True),
    QuantizationRecipe("u8-ffnout-fp32"),
    QuantizationRecipe("u8-ffnout-fp32-preopt", preprocess=True),
    QuantizationRecipe("s8rr-ffnout-fp32-preopt", weight_type="QInt8", reduce_range=True, preprocess=True),
)


def quantize_int8(fp32_path: Path, int8_path: Path, recipe: QuantizationRecipe) -> dict[str, Any]:
    onnx = require("onnx")
    quantization = require("onnxruntime.quantization")
    source = fp32_path
    t0 = time.perf_counter()
    if recipe.preprocess:
        source = int8_path.with_name(int8_path.stem + "-preprocessed.onnx")
        quantization.quant_pre_process(str(fp32_path), str(source), skip_symbolic_shape=True)
    model = onnx.load(str(source))
    excluded = [n.name for n in model.graph.node
                if recipe.exclude_ffn_output and n.op_type == "MatMul" and FFN_OUTPUT.search(n.name)]
    if recipe.exclude_ffn_output and not excluded:
        raise ValueError(f"{recipe.name}: no FFN output projection found to keep in FP32")
    quantization.quantize_dynamic(
        model_input=str(source),
        model_output=str(int8_path),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type=getattr(quantization.QuantType, recipe.weight_type),
        op_types_to_quantize=list(recipe.op_types),
        nodes_to_exclude=excluded,
    )
    if source != fp32_path:
        source.unlink()
    logger.info("quantised to INT8 (%s, %d nodes kept FP32) in %.1fs", recipe.name, len(excluded),
                time.perf_counter() - t0)
    return {**asdict(recipe), "nodes_excluded": len(excluded)}


def single_query_ms(model_path: Path, tokenizer_path: Path, max_seq_length: int, texts: list[str],
                    threads: int = 0) -> float:
    """Median single-text encode latency (ms) over `texts`, after one warm-up call."""
    encoder = OnnxEncoder(model_path, tokenizer_path, max_seq_length, intra_op_threads=threads)
    encoder.encode_one(texts[0])
    times = []
    for text in texts:
        t0 = time.perf_counter()
        encoder.encode_one(text)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


RetrievalCheck = Callable[[Path], dict[str, Any]]


def choose_int8(fp32_path: Path, work_dir: Path, tokenizer_path: Path, max_seq_length: int, texts: list[str],
                retrieval_check: RetrievalCheck | None = None,
                recipes: tuple[QuantizationRecipe, ...] = RECIPES) -> tuple[Path | None, dict[str, Any]]:
    """Quantise with every recipe, time each, then measure parity fastest-first and take the first that
    meets the bar (embedding parity, then retrieval parity when a check is given). Returns the chosen
    model (None: no INT8 variant is faithful enough, ship FP32) and the record of the search."""
    latency_texts = texts[: min(len(texts), 40)]
    with steps.step(f"time FP32 ({len(latency_texts)} texts one at a time)"):
        fp32_ms = single_query_ms(fp32_path, tokenizer_path, max_seq_length, latency_texts)
    with steps.step(f"encode {len(texts)} parity texts with FP32"):
        fp32_vectors = OnnxEncoder(fp32_path, tokenizer_path, max_seq_length).encode(
            texts, progress="FP32 parity texts").vectors
    tried: list[dict[str, Any]] = []
    built: list[tuple[float, QuantizationRecipe, Path, dict[str, Any]]] = []
    for recipe in tqdm(recipes, desc="INT8 recipes (quantise + time)", unit="recipe", leave=False):
        path = work_dir / recipe.name / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        with steps.step(f"quantise and time INT8 recipe {recipe.name}"):
            try:
                meta = quantize_int8(fp32_path, path, recipe)
            except Exception as exc:  # a recipe that does not apply to this graph is skipped, not fatal
                logger.warning("INT8 recipe %s failed: %s", recipe.name, exc)
                tried.append({"recipe": recipe.name, "error": str(exc)})
                continue
            ms = single_query_ms(path, tokenizer_path, max_seq_length, latency_texts)
            logger.info("INT8 %s: %.1f ms per query (FP32 %.1f ms)", recipe.name, ms, fp32_ms)
        built.append((ms, recipe, path, meta))
    chosen: tuple[Path, dict[str, Any]] | None = None
    for ms, recipe, path, meta in sorted(built, key=lambda b: b[0]):
        entry: dict[str, Any] = {"recipe": recipe.name, "single_query_ms": round(ms, 2),
                                 "speedup_vs_fp32": round(fp32_ms / ms, 2)}
        tried.append(entry)
        if chosen is not None:
            entry["parity"] = "not measured (a faster variant passed)"
            continue
        if ms >= fp32_ms:
            entry["parity"] = "not measured (not faster than FP32)"
            continue
        with steps.step(f"embedding parity of {recipe.name} ({len(texts)} texts)"):
            parity = measure_parity(fp32_path, path, tokenizer_path, max_seq_length, texts, fp32_vectors)
        entry["parity"] = parity
        if parity["passed"] and retrieval_check is not None:
            with steps.step(f"retrieval parity of {recipe.name}"):
                parity["retrieval"] = retrieval_check(path)
            parity["passed"] = bool(parity["retrieval"]["passed"])
        logger.info("INT8 %s: %.1f ms (FP32 %.1f ms), mean cosine %.4f, min %.4f%s -> %s", recipe.name, ms, fp32_ms,
                    parity["mean_cosine"], parity["min_cosine"],
                    "" if "retrieval" not in parity else f", retrieval {parity['retrieval']['summary']}",
                    "chosen" if parity["passed"] else "rejected")
        if parity["passed"]:
            chosen = (path, {**meta, "single_query_ms": round(ms, 2), "fp32_single_query_ms": round(fp32_ms, 2),
                             "int8_sha256": sha256_file(path), "parity": parity})
    record = {"fp32_single_query_ms": round(fp32_ms, 2), "candidates": tried,
              "chosen": chosen[1]["name"] if chosen else None}
    if chosen is None:
        logger.warning("no INT8 variant meets the parity bar: the bundle ships FP32 ONNX")
        return None, record
    return chosen[0], {**record, "chosen_recipe": chosen[1]}


def measure_parity(fp32_path: Path, int8_path: Path, tokenizer_path: Path, max_seq_length: int,
                   texts: list[str], fp32_vectors: np.ndarray | None = None) -> dict[str, Any]:
    """Cosine between INT8 and FP32 embeddings of the same texts (both encoded in the same batches, as
    indexing does). `fp32_vectors`: the FP32 embeddings when already computed."""
    if fp32_vectors is None:
        fp32_vectors = OnnxEncoder(fp32_path, tokenizer_path, max_seq_length).encode(
            texts, progress="FP32 parity texts").vectors
    int8_vectors = OnnxEncoder(int8_path, tokenizer_path, max_seq_length).encode(
        texts, progress="INT8 parity texts").vectors
    cosines = np.sum(fp32_vectors * int8_vectors, axis=1)
    result: dict[str, Any] = {
        "n_texts": len(texts),
        "mean_cosine": round(float(cosines.mean()), 6),
        "min_cosine": round(float(cosines.min()), 6),
        "p05_cosine": round(float(np.percentile(cosines, 5)), 6),
        "bar": {"mean_cosine": PARITY_MEAN_BAR, "min_cosine": PARITY_MIN_BAR},
        # the texts that came closest to failing, lowest cosine first (positions in `texts`)
        "worst_texts": [int(i) for i in np.argsort(cosines, kind="stable")[:WORST_TEXTS_KEPT]],
    }
    result["passed"] = result["mean_cosine"] >= PARITY_MEAN_BAR and result["min_cosine"] >= PARITY_MIN_BAR
    return result


# Parity texts measured when a recorded recipe is reused and its INT8 file is byte-identical to the recorded one:
# the WORST_TEXTS_KEPT texts that came closest to failing in the full search, and evenly spaced others up to this
# many. The min bar then reads the same texts that set the full search's minimum, and the worst 5 % weigh 5 times
# their share in the mean, so the sample's mean is lower than the full set's: the bar is no easier to pass.
REUSE_PARITY_TEXTS = 200


def reuse_sample(n_texts: int, worst: list[int], size: int = REUSE_PARITY_TEXTS) -> list[int]:
    """Positions of the parity texts to measure on a reuse: the recorded worst ones, then evenly spaced others."""
    chosen = [i for i in dict.fromkeys(worst) if 0 <= i < n_texts][:size]
    rest = [i for i in range(n_texts) if i not in set(chosen)]
    room = max(0, min(size, n_texts) - len(chosen))
    if room and rest:
        step = len(rest) / room
        chosen += [rest[int(k * step)] for k in range(room)]
    return sorted(set(chosen))


def reuse_recorded(fp32_path: Path, work_dir: Path, tokenizer_path: Path, max_seq_length: int, texts: list[str],
                   entry: RecordedRecipe, retrieval_check: RetrievalCheck | None = None,
                   recipes: tuple[QuantizationRecipe, ...] = RECIPES) -> tuple[Path | None, dict[str, Any]]:
    """Export the recipe a recorded search chose for this model on this kind of CPU and measure its parity again.
    Byte-identical to the recorded INT8 file: embedding parity on `reuse_sample` of the texts, retrieval parity
    from the record (it was measured on this very file). Otherwise: embedding parity on every text and retrieval
    parity measured again. Returns (None, record) when the recipe is unknown or its parity fails now: the caller
    runs the full search."""
    record: dict[str, Any] = {"mode": "recorded", "recorded": {
        "recipe": entry.recipe, "recorded_at": entry.recorded_at, "cpu": entry.cpu, "key": entry.key.describe(),
        "int8_sha256": entry.int8_sha256}}
    recipe = next((r for r in recipes if r.name == entry.recipe), None)
    if recipe is None:
        record["rejected"] = f"recipe {entry.recipe} is not among this version's recipes"
        logger.warning("recorded INT8 recipe %s is unknown to this version: running the full search", entry.recipe)
        return None, record
    path = work_dir / f"recorded-{recipe.name}" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with steps.step(f"quantise with the recorded INT8 recipe {recipe.name}"):
        meta = quantize_int8(fp32_path, path, recipe)
        digest = sha256_file(path)
    identical = digest == entry.int8_sha256 and entry.parity_texts_sha256 == texts_checksum(texts)
    positions = reuse_sample(len(texts), entry.worst_texts) if identical else list(range(len(texts)))
    with steps.step(f"embedding parity of {recipe.name} ({len(positions)} texts)"):
        parity = measure_parity(fp32_path, path, tokenizer_path, max_seq_length, [texts[i] for i in positions])
    parity["worst_texts"] = [positions[i] for i in parity["worst_texts"]]
    parity["texts"] = (f"{len(positions)} of {len(texts)}: the {len(entry.worst_texts)} recorded as closest to "
                       "failing, then evenly spaced others" if identical else f"all {len(texts)}")
    record["identical_to_recorded"] = identical
    if parity["passed"]:
        recorded_retrieval = entry.parity.get("retrieval")
        if identical and recorded_retrieval is not None:
            parity["retrieval"] = {**recorded_retrieval, "measured": f"on this byte-identical INT8 file (sha256 "
                                   f"{digest[:16]}) when the recipe was recorded, {entry.recorded_at}"}
        elif retrieval_check is not None:
            with steps.step(f"retrieval parity of {recipe.name}"):
                parity["retrieval"] = retrieval_check(path)
            parity["passed"] = bool(parity["retrieval"]["passed"])
    logger.info("recorded INT8 %s: mean cosine %.4f, min %.4f over %d texts%s -> %s", recipe.name,
                parity["mean_cosine"], parity["min_cosine"], parity["n_texts"],
                "" if "retrieval" not in parity else f", retrieval {parity['retrieval']['summary']}",
                "ships" if parity["passed"] else "rejected, running the full search")
    if not parity["passed"]:
        record["rejected"] = "parity failed"
        record["parity"] = parity
        return None, record
    chosen = {**meta, "single_query_ms": entry.single_query_ms, "fp32_single_query_ms": entry.fp32_single_query_ms,
              "timings": f"recorded {entry.recorded_at} on {entry.cpu}", "int8_sha256": digest, "parity": parity}
    return path, {**record, "chosen": recipe.name, "chosen_recipe": chosen}
