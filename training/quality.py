"""`evaluate` and `calibrate`: run the protocol, compare BM25 normalisations, pick the threshold by a rule."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from indexing import lexical, steps
from indexing.bundle import Bundle
from indexing.dense_text import DENSE_TEXT_MODES, TextEncoder
from indexing.encoder import OnnxEncoder
from indexing.errors import InputDataError
from indexing.incidents import Incident, load_incidents
from indexing.search import DEFAULT_TOP_K
from training.calibrate import UNIT_INCIDENT, UNIT_PAIR, ThresholdRule, choose_threshold
from training.data.labels import LabelledCorpus, from_incidents, load_seamonkey
from training.data.sample import generate_incidents
from training.evaluate import (
    INCIDENT_K,
    SPLITS,
    Evaluation,
    OfflineScorer,
    QueryPathEncoder,
    build_scorer,
    counts,
    evaluate_corpus,
    incident_summary,
    summarise,
)
from training.pools import compare_pools
from training.report import mean_with_ci, paired_difference, verdict

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


UNITS_EXPLAINED = [
    "**False-alarm rate per incident** (the unit the default threshold targets): of the new incidents that have "
    "no earlier duplicate (most of them), the share that get at least one result marked similar. This is what "
    "an agent meets: a flag on an incident that has no duplicate is a false alarm, and an agent who meets many "
    "learns to ignore the flag. At a given threshold it is the same for every k (an incident is flagged when its "
    "best result is at or above the threshold).",
    "**Hit rate per incident**: of the incidents that do have an earlier duplicate, the share whose top k holds a "
    "true duplicate marked similar: what the flag is for.",
    "**Precision of the flag**: of all results marked similar in the top k, the share that are true duplicates "
    "(some flags may be related incidents nobody linked, so this is a lower bound).",
    "**Pair metrics** (ROC-AUC, FPR, recall over linked vs not-linked query-candidate pairs, as in earlier "
    "reports): they describe the score, but a pair FPR of 5 % over ~1,000 earlier incidents still flags almost "
    "every new incident, so the threshold no longer targets it by default (`--target-fpr` still does).",
]


@contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Time one phase of a run into `phases` (seconds) and log it."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
        logger.info("phase %s: %.1f s", name, phases[name])


def rule_outcome(evaluation: Evaluation, threshold: float, split: str, n_boot: int = 1000) -> dict[str, Any]:
    """What a threshold reaches on one split: the per-incident rates (k = the service default and 1) and the
    pair FPR/recall, with 95 % intervals."""
    outcomes = evaluation.incident_split(split)
    per = incident_summary(outcomes, threshold, n_boot, INCIDENT_K).get("hybrid", {})
    out: dict[str, Any] = {"incidents": len(outcomes)}
    for k in INCIDENT_K:
        if f"top{k}" in per:
            out[f"top{k}"] = per[f"top{k}"]
    queries = evaluation.split(split)
    if queries:
        pairs = summarise(queries, threshold, n_boot)["hybrid"]["at_threshold"]
        out["pairs"] = {"fpr": pairs["fpr"], "fpr_ci95": pairs["fpr_ci95"], "recall": pairs["recall"]}
    return out


def compare_rules(evaluation: Evaluation, rules: list[tuple[str, ThresholdRule]], n_boot: int = 1000,
                  split: str = "test") -> list[dict[str, Any]]:
    """Each rule's threshold (chosen on its own calibration splits, never on `split`) and what it reaches on
    `split`, side by side."""
    rows = []
    for name, rule in rules:
        chosen = choose_threshold(evaluation, rule)
        rows.append({"rule": name, "unit": rule.unit, "target": rule.target, "confidence": rule.confidence,
                     "calibration_splits": list(rule.splits), "threshold": chosen.value,
                     "calibration": asdict(chosen), split: rule_outcome(evaluation, chosen.value, split, n_boot)})
    return rows


def _scorer(bundle: Bundle, corpus: LabelledCorpus, index_dir: Path | None, encoder: TextEncoder,
            normalization: str | None = None, progress: bool = True) -> OfflineScorer:
    if index_dir is not None:
        return build_scorer(bundle, corpus, index_dir, normalization, progress=progress, encoder=encoder)[0]
    with tempfile.TemporaryDirectory(prefix="incident-sim-eval-") as tmp:
        return build_scorer(bundle, corpus, Path(tmp) / "index", normalization, progress=progress, encoder=encoder)[0]


def choose_dense_text(bundle: Bundle, corpus: LabelledCorpus, evaluation: Evaluation, encoder: TextEncoder,
                      normalization: str, scorer: OfflineScorer, modes: Sequence[str], n_boot: int = 1000,
                      progress: bool = True) -> tuple[dict[str, Any], Evaluation]:
    """Evaluate each dense text mode with the product's indexer and searcher formulas, and keep the bundle's
    unless another one's validation hybrid MRR beats it with the paired 95 % interval above 0 (the best such
    by mean). Returns the comparison record and the evaluation under the chosen mode."""
    current = bundle.dense_text.mode
    evaluations = {current: evaluation}
    for mode in modes:
        if mode in evaluations:
            continue
        variant = bundle.with_dense_text(mode)
        logger.info("dense text: evaluating mode %s", mode)
        # the same incidents, BM25 side and texts: only the dense vectors differ, and they are combined from
        # the full-text and summary vectors the encoder already holds (each text encoded once per run)
        fields = [(i.short_description, i.description) for i in corpus.incidents]
        variant_scorer = scorer.with_dense(variant.dense_text.embed(encoder, fields).vectors)
        variant_scorer.normalization = normalization
        evaluations[mode] = evaluate_corpus(corpus, variant_scorer, encoder, progress=progress, query_vectors={},
                                            dense_text=variant.dense_text)
    base_val = evaluation.split("validation")
    comparison: dict[str, Any] = {}
    for mode, ev in evaluations.items():
        val, test = ev.split("validation"), ev.split("test")
        row: dict[str, Any] = {
            "validation_hybrid_mrr": float(np.mean([q.metrics["hybrid"]["mrr"] for q in val])) if val else None,
            "test_hybrid_mrr (reported, not used to choose)":
                float(np.mean([q.metrics["hybrid"]["mrr"] for q in test])) if test else None}
        if mode != current and val:
            row["validation_mrr_minus_current"] = mean_with_ci(np.array(
                [c.metrics["hybrid"]["mrr"] - b.metrics["hybrid"]["mrr"] for b, c in zip(base_val, val, strict=True)]),
                n_boot)
        comparison[mode] = row
    winners = [m for m, row in comparison.items()
               if "validation_mrr_minus_current" in row and row["validation_mrr_minus_current"]["ci95"][0] > 0]
    chosen = max(winners, key=lambda m: comparison[m]["validation_mrr_minus_current"]["value"]) if winners else current
    if chosen == current:
        why = (f"kept '{current}': no other mode's validation hybrid MRR beats it with the paired 95% interval above 0 "
               f"({len(base_val)} validation queries)")
    else:
        diff = comparison[chosen]["validation_mrr_minus_current"]
        why = (f"'{chosen}' beats '{current}' on validation hybrid MRR by {diff['value']:+.3f} "
               f"(paired 95% CI {diff['ci95'][0]:+.3f} .. {diff['ci95'][1]:+.3f}, {len(base_val)} queries)")
    logger.info("dense text: %s", why)
    record = {"mode": chosen, "previous": current, "why": why, "corpus": corpus.name, "comparison": comparison}
    return record, evaluations[chosen]


def run_quality(bundle: Bundle, corpus: LabelledCorpus, rule: ThresholdRule | None = None, n_boot: int = 1000,
                index_dir: Path | None = None, progress: bool = True,
                dense_text_modes: Sequence[str] = DENSE_TEXT_MODES,
                normalizations: Sequence[str] = lexical.NORMALIZATIONS) -> tuple[dict[str, Any], Evaluation, float]:
    """Evaluate the bundle on the corpus. With a `rule`, also choose the BM25 normalisation (among
    `normalizations`) and the dense text mode (among `dense_text_modes`) on validation and calibrate the threshold
    by the rule (compared with the other rules on the test split). Returns the report, the evaluation under the
    chosen normalisation and mode, and the threshold. `index_dir`: where to keep the evaluation index (default: a
    temporary directory)."""
    encoder = QueryPathEncoder(OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length))
    phases: dict[str, float] = {}
    with steps.step(f"index {corpus.name} for evaluation"), _phase(phases, "index (encode + store)"):
        scorer = _scorer(bundle, corpus, index_dir, encoder, progress=progress)
    cache: dict[str, np.ndarray] = {}
    evaluations: dict[str, Evaluation] = {}
    comparison: dict[str, Any] = {}
    current = bundle.scoring.normalization
    for mode in normalizations:
        scorer.normalization = mode
        with steps.step(f"evaluate {corpus.name} with BM25 normalisation {mode}"), \
                _phase(phases, f"evaluate (BM25 normalisation {mode})"):
            evaluations[mode] = evaluate_corpus(corpus, scorer, encoder, progress=progress, query_vectors=cache,
                                                dense_text=bundle.dense_text)
        val = evaluations[mode].split("validation") or evaluations[mode].split("train")
        s = summarise(val, None, n_boot=200)
        comparison[mode] = {"validation_hybrid_mrr": s["hybrid"]["mrr"]["value"],
                            "validation_hybrid_roc_auc": s["hybrid"]["roc_auc"]["value"],
                            "validation_hybrid_pr_auc": s["hybrid"]["pr_auc"]["value"]}
    if rule is None:
        chosen, why = current, "the bundle's (evaluate does not change it; calibrate compares and chooses)"
    else:
        chosen = max(normalizations, key=lambda m: (round(comparison[m]["validation_hybrid_mrr"], 4),
                                                            comparison[m]["validation_hybrid_roc_auc"]))
        why = (f"best validation hybrid MRR ({comparison[chosen]['validation_hybrid_mrr']:.3f}; ROC-AUC breaks ties) "
               "among the normalisations that do not depend on the other results")
    evaluation = evaluations[chosen]
    dense_text: dict[str, Any] = {"mode": bundle.dense_text.mode,
                                  "why": "the bundle's (calibrate compares and chooses)"}
    if rule is not None and len(dense_text_modes) > 1:
        with steps.step(f"compare {len(dense_text_modes)} dense text modes"), _phase(phases, "dense text modes"):
            dense_text, evaluation = choose_dense_text(bundle, corpus, evaluation, encoder, chosen, scorer,
                                                       dense_text_modes, n_boot, progress)
    test = evaluation.split("test")

    recorded = bundle.manifest["threshold"]
    rules_compared: list[dict[str, Any]] = []
    if rule is not None:
        with steps.step("calibrate the threshold"), _phase(phases, "calibrate"):
            chosen_threshold = choose_threshold(evaluation, rule)
            pools = compare_pools(evaluation, rule) if test else {}
        threshold, source = chosen_threshold.value, "calibrated"
        target = {"unit": rule.unit, "target": rule.target, "confidence": rule.confidence}
        calibration: dict[str, Any] | None = {**asdict(chosen_threshold), "splits": list(rule.splits),
                                              **({"pool": rule.pool} if rule.unit == UNIT_INCIDENT else {})}
        calibrated_on = (f"{corpus.name} {' + '.join(rule.splits)} split{'s' if len(rule.splits) > 1 else ''} "
                         f"({corpus.label_kind} labels)")
        today = ThresholdRule(UNIT_PAIR, rule.target, 0.0, ("validation",))
        candidates = [("before issue 12: pairs, point estimate, validation only", today)]
        for unit in (UNIT_PAIR, UNIT_INCIDENT):
            for confidence in sorted({0.0, rule.confidence}):
                candidates.append((f"{'per incident' if unit == UNIT_INCIDENT else 'pairs'}, "
                                   f"{'point estimate' if not confidence else f'{confidence:.0%} upper bound'}, "
                                   f"{' + '.join(rule.splits)}", ThresholdRule(
                                       unit, rule.target, confidence, rule.splits,
                                       rule.pool if unit == UNIT_INCIDENT else "earlier")))
        seen: set[ThresholdRule] = set()
        unique = [(n, r) for n, r in candidates if not (r in seen or seen.add(r))]  # type: ignore[func-returns-value]
        if test:
            with steps.step(f"compare {len(unique)} threshold rules (bootstrap {n_boot})"), \
                    _phase(phases, "compare threshold rules"):
                rules_compared = compare_rules(evaluation, unique, n_boot)
            for row in rules_compared:
                row["chosen"] = row["unit"] == rule.unit and row["confidence"] == rule.confidence and \
                    row["calibration_splits"] == list(rule.splits)
    else:
        threshold, source = bundle.threshold, bundle.threshold_source
        target = bundle.threshold_target
        calibration, calibrated_on = recorded.get("calibration"), recorded.get("calibrated_on")
        pools = {}
    with _phase(phases, "summaries"):
        summaries = {split: summarise(evaluation.split(split), threshold, n_boot) for split in SPLITS}
        per_incident = {split: incident_summary(evaluation.incident_split(split), threshold, n_boot)
                        for split in SPLITS}
        threshold_info = threshold_record(evaluation, threshold, source, target, calibration, calibrated_on, n_boot)
    headline_split = "test" if test else "validation"
    diff = paired_difference(evaluation.split(headline_split), "mrr", "hybrid", "dense", n_boot)
    report = {
        "corpus": corpus.name,
        "label_kind": corpus.label_kind,
        "notes": corpus.notes,
        "units": UNITS_EXPLAINED,
        "bundle": {"model_version": bundle.model_version, "encoder_id": bundle.encoder_id,
                   "precision": bundle.manifest["encoder"].get("precision"),
                   "hybrid_weights": [bundle.dense_weight, bundle.bm25_weight], "bm25": bundle.bm25},
        "protocol": {"description": "time-ordered; every incident is a query, its candidates all incidents opened "
                                    "before it; ranking and pair metrics over the incidents linked to an earlier "
                                    "one; splits 60/20/20 by time",
                     "splits": counts(corpus), "queries": len(evaluation.queries),
                     "incident_queries": {split: len(evaluation.incident_split(split)) for split in SPLITS},
                     "k": list(INCIDENT_K),
                     "hard_negatives_per_method": 5, "random_negatives": 10, "bootstrap_resamples": n_boot},
        "bm25_normalization": {"chosen": chosen, "why": why, "comparison": comparison},
        "dense_text": dense_text,
        "threshold": threshold_info,
        "rules_compared": rules_compared,
        "pools": pools,
        "timings": {"phases_s": phases, "total_s": sum(phases.values()), "texts_encoded": encoder.encoded,
                    "incidents": len(corpus.incidents)},
        "per_incident": per_incident,
        "splits": summaries,
        "hybrid_minus_dense_mrr": {"split": headline_split, **diff},
        "verdict": verdict(diff, "MRR", headline_split),
    }
    return report, evaluation, threshold


def calibrate_as_served(bundle: Bundle, corpus: LabelledCorpus, rule: ThresholdRule, n_boot: int = 200,
                        index_dir: Path | None = None, progress: bool = False) -> dict[str, Any]:
    """The offline calibration (`calibrate`'s rule and report) of the threshold alone: the bundle's BM25
    normalisation and dense text mode are kept, so the threshold it chooses is for the scores the bundle serves
    and a bundle that differs only in it reuses the serving index (a threshold-only bundle)."""
    report, _, _ = run_quality(bundle, corpus, rule=rule, n_boot=n_boot, index_dir=index_dir, progress=progress,
                               dense_text_modes=(bundle.dense_text.mode,),
                               normalizations=(bundle.scoring.normalization,))
    return report


def evaluation_summary(corpus: LabelledCorpus, report: dict[str, Any]) -> dict[str, Any]:
    """The manifest's `evaluation` entry of a calibrated bundle: the test split figures and the rules compared."""
    return {"corpus": corpus.name, "label_kind": corpus.label_kind,
            "test": report["splits"]["test"].get("hybrid", {}),
            "test_per_incident": report["per_incident"]["test"].get("hybrid", {}),
            "rules_compared": report["rules_compared"],
            "verdict": report["verdict"]}


def threshold_record(evaluation: Evaluation, value: float, source: str, target: dict[str, Any] | None,
                     calibration: dict[str, Any] | None, calibrated_on: str | None,
                     n_boot: int = 1000) -> dict[str, Any]:
    """The bundle manifest's `threshold` entry: the value, what it targets, how it was chosen, and what it
    reaches on the validation and test splits (pairs: fpr/recall; per incident at the service's default k:
    false-alarm rate, hit rate, precision of the flag)."""
    record: dict[str, Any] = {
        "value": value, "source": source,
        **({"unit": target["unit"], "target": target["target"], "confidence": target["confidence"]} if target
           else {"unit": None, "target": None, "confidence": None}),
        "target_fpr": target["target"] if target and target["unit"] == UNIT_PAIR else None,
        "calibrated_on": calibrated_on, "calibration": calibration,
    }
    for split in ("validation", "test"):
        reached = rule_outcome(evaluation, value, split, n_boot)
        pairs = reached.get("pairs", {})
        entry: dict[str, Any] = {"fpr": pairs.get("fpr", float("nan")), "recall": pairs.get("recall", float("nan"))}
        if split == "test":
            entry["fpr_ci95"] = pairs.get("fpr_ci95", (float("nan"), float("nan")))
        entry.update(reached.get(f"top{DEFAULT_TOP_K}", {}))
        record[split] = entry
    return record
