"""`evaluate` and `calibrate`: run the protocol, compare BM25 normalisations, pick the threshold."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from indexing import lexical
from indexing.bundle import Bundle
from indexing.errors import InputDataError
from indexing.incidents import Incident, load_incidents
from training.calibrate import threshold_for_fpr
from training.data.labels import LabelledCorpus, from_incidents, load_seamonkey
from training.data.sample import generate_incidents
from training.evaluate import Evaluation, build_scorer, counts, evaluate_corpus, pair_arrays, summarise
from training.metrics import at_threshold
from training.report import paired_difference, verdict

logger = logging.getLogger(__name__)

DEFAULT_SEAMONKEY = Path(__file__).resolve().parents[2] / "shared" / "data" / "seamonkey"


def load_labelled(source: str, n: int = 2000, weak_category: bool = False) -> LabelledCorpus:
    """`seamonkey`, `sample` (the generator's ground truth, n incidents) or a path to an export."""
    if source == "seamonkey":
        folder = Path(os.environ.get("INCIDENT_SIM_SEAMONKEY_DIR", DEFAULT_SEAMONKEY))
        return load_seamonkey(folder)
    if source == "sample":
        rows = generate_incidents(n, seed=7)
        return from_incidents([Incident.model_validate(r) for r in rows], "sample", weak_category)
    path = Path(source)
    if not path.exists():
        raise InputDataError(f"unknown data source {source!r}: use 'seamonkey', 'sample' or a file path")
    return from_incidents(load_incidents(path), path.stem, weak_category)


def evaluation_index_dir(data_dir: Path, corpus: LabelledCorpus, bundle: Bundle) -> Path:
    """Where the evaluation index of this corpus and encoder is kept, so evaluate and calibrate re-use it."""
    return data_dir / "eval" / f"{corpus.name}-{bundle.encoder_id}-{bundle.bm25['analyzer']}"


def run_quality(bundle: Bundle, corpus: LabelledCorpus, target_fpr: float | None = None, n_boot: int = 1000,
                index_dir: Path | None = None, progress: bool = True) -> tuple[dict[str, Any], Evaluation, float]:
    """Evaluate the bundle on the corpus. With `target_fpr`, also calibrate the threshold on the
    validation split. Returns the report, the evaluation under the chosen normalisation, and the threshold.
    `index_dir`: where to keep the evaluation index (default: a temporary directory)."""
    if index_dir is not None:
        scorer, encoder = build_scorer(bundle, corpus, index_dir, progress=progress)
    else:
        with tempfile.TemporaryDirectory(prefix="incident-sim-eval-") as tmp:
            scorer, encoder = build_scorer(bundle, corpus, Path(tmp) / "index", progress=progress)
    cache: dict[str, np.ndarray] = {}
    evaluations: dict[str, Evaluation] = {}
    comparison: dict[str, Any] = {}
    for mode in lexical.NORMALIZATIONS:
        scorer.normalization = mode
        evaluations[mode] = evaluate_corpus(corpus, scorer, encoder, progress=progress, query_vectors=cache)
        val = evaluations[mode].split("validation") or evaluations[mode].split("train")
        s = summarise(val, None, n_boot=200)
        comparison[mode] = {"validation_hybrid_mrr": s["hybrid"]["mrr"]["value"],
                            "validation_hybrid_roc_auc": s["hybrid"]["roc_auc"]["value"],
                            "validation_hybrid_pr_auc": s["hybrid"]["pr_auc"]["value"]}
    current = bundle.bm25.get("normalization", "idf_upper_bound")
    if target_fpr is None:
        chosen, why = current, "the bundle's (evaluate does not change it; calibrate compares and chooses)"
    else:
        chosen = max(lexical.NORMALIZATIONS, key=lambda m: (round(comparison[m]["validation_hybrid_mrr"], 4),
                                                            comparison[m]["validation_hybrid_roc_auc"]))
        why = (f"best validation hybrid MRR ({comparison[chosen]['validation_hybrid_mrr']:.3f}; ROC-AUC breaks ties) "
               "among the normalisations that do not depend on the other results")
    evaluation = evaluations[chosen]
    validation = evaluation.split("validation")
    test = evaluation.split("test")

    threshold_info: dict[str, Any]
    if target_fpr is not None:
        if not validation:
            raise InputDataError(f"{corpus.name}: the validation split has no queries to calibrate on")
        scores, labels, _ = pair_arrays(validation, "hybrid")
        threshold = threshold_for_fpr(scores, labels, target_fpr)
        source = "calibrated"
    else:
        threshold, source = bundle.threshold, bundle.threshold_source
    summaries = {split: summarise(evaluation.split(split), threshold, n_boot)
                 for split in ("train", "validation", "test")}
    val_at = at_threshold(*pair_arrays(validation, "hybrid")[:2], threshold) if validation else {}
    test_hybrid = summaries["test"].get("hybrid", {}).get("at_threshold", {})
    threshold_info = {
        "value": threshold, "source": source,
        "target_fpr": target_fpr if target_fpr is not None else bundle.manifest["threshold"].get("target_fpr"),
        "calibrated_on": f"{corpus.name} validation split ({corpus.label_kind} labels)" if target_fpr is not None
        else bundle.manifest["threshold"].get("calibrated_on"),
        "validation": {"fpr": val_at.get("fpr", float("nan")), "recall": val_at.get("recall", float("nan"))},
        "test": {"fpr": test_hybrid.get("fpr", float("nan")), "recall": test_hybrid.get("recall", float("nan")),
                 "fpr_ci95": test_hybrid.get("fpr_ci95", (float("nan"), float("nan")))},
    }
    headline_split = "test" if test else "validation"
    diff = paired_difference(evaluation.split(headline_split), "mrr", "hybrid", "dense", n_boot)
    report = {
        "corpus": corpus.name,
        "label_kind": corpus.label_kind,
        "notes": corpus.notes,
        "bundle": {"model_version": bundle.model_version, "encoder_id": bundle.encoder_id,
                   "precision": bundle.manifest["encoder"].get("precision"),
                   "hybrid_weights": [bundle.dense_weight, bundle.bm25_weight], "bm25": bundle.bm25},
        "protocol": {"description": "time-ordered; queries = incidents linked to an earlier one; candidates = all "
                                    "incidents opened before the query; splits 60/20/20 by time",
                     "splits": counts(corpus), "queries": len(evaluation.queries),
                     "hard_negatives_per_method": 5, "random_negatives": 10, "bootstrap_resamples": n_boot},
        "bm25_normalization": {"chosen": chosen, "why": why, "comparison": comparison},
        "threshold": threshold_info,
        "splits": summaries,
        "hybrid_minus_dense_mrr": {"split": headline_split, **diff},
        "verdict": verdict(diff, "MRR", headline_split),
    }
    return report, evaluation, threshold
