"""Retrieval parity: does an INT8 encoder retrieve as well as its FP32 original on labelled incidents?

Both encoders run the evaluation protocol of training/evaluate.py over the same labelled corpus (all
its queries; BM25 from the corpus itself with the bundle's analyzer and formulas). The INT8 model
passes when hybrid Recall@10 and MRR are each within `tolerance` (0.005 = half a point) of FP32's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from indexing.encoder import OnnxEncoder
from indexing.scoring import LEGACY_NORMALIZATION
from training.data.labels import LabelledCorpus
from training.evaluate import evaluate_corpus, scorer_for_incidents
from training.export import RetrievalCheck

logger = logging.getLogger(__name__)

RETRIEVAL_PARITY_METRICS = ("recall@10", "mrr")
RETRIEVAL_PARITY_TOLERANCE = 0.005


def retrieval_metrics_of(model_path: Path, tokenizer_path: Path, max_seq_length: int, corpus: LabelledCorpus,
                         bm25: dict[str, Any], dense_weight: float, bm25_weight: float) -> dict[str, float]:
    encoder = OnnxEncoder(model_path, tokenizer_path, max_seq_length)
    dense = encoder.encode([i.text() for i in corpus.incidents], progress=f"{model_path.parent.name} on {corpus.name}"
                           ).vectors
    scorer = scorer_for_incidents(corpus.incidents, dense, bm25["analyzer"], bm25["k1"], bm25["b"],
                                  bm25.get("normalization", LEGACY_NORMALIZATION), dense_weight, bm25_weight)
    evaluation = evaluate_corpus(corpus, scorer, encoder, progress=False)
    out: dict[str, float] = {"queries": float(len(evaluation.queries))}
    for method in ("hybrid", "dense"):
        for metric in RETRIEVAL_PARITY_METRICS:
            out[f"{method}_{metric}"] = float(np.mean([q.metrics[method][metric] for q in evaluation.queries]))
    return out


def retrieval_parity_check(fp32_path: Path, tokenizer_path: Path, max_seq_length: int, corpus: LabelledCorpus,
                           bm25: dict[str, Any], dense_weight: float, bm25_weight: float,
                           tolerance: float = RETRIEVAL_PARITY_TOLERANCE) -> RetrievalCheck:
    """A check for choose_int8: FP32's metrics are computed once, on first use."""
    reference: dict[str, float] = {}

    def check(int8_path: Path) -> dict[str, Any]:
        if not reference:
            reference.update(retrieval_metrics_of(fp32_path, tokenizer_path, max_seq_length, corpus, bm25,
                                                  dense_weight, bm25_weight))
        int8 = retrieval_metrics_of(int8_path, tokenizer_path, max_seq_length, corpus, bm25, dense_weight,
                                    bm25_weight)
        diffs = {m: int8[f"hybrid_{m}"] - reference[f"hybrid_{m}"] for m in RETRIEVAL_PARITY_METRICS}
        passed = all(abs(d) <= tolerance for d in diffs.values())
        summary = ", ".join(f"hybrid {m} {int8[f'hybrid_{m}']:.4f} vs FP32 {reference[f'hybrid_{m}']:.4f}"
                            for m in RETRIEVAL_PARITY_METRICS)
        return {"corpus": corpus.name, "label_kind": corpus.label_kind, "queries": int(reference["queries"]),
                "fp32": dict(reference), "int8": int8, "difference": diffs, "tolerance": tolerance,
                "passed": passed, "summary": summary}

    return check
