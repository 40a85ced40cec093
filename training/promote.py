"""`incident-sim train`: mine pairs, fine-tune, export the candidate as a bundle, and promote it only if
it beats the baseline on held-out (time-later) data.

The gate compares the *exported* candidate bundle (ONNX, INT8 where parity holds; exactly what would
be served) with the baseline bundle on the test split, with the evaluation protocol of
training/evaluate.py: same queries, hybrid score, paired bootstrap interval of candidate - baseline.
Promotion needs the interval's lower end above `min_improvement` on the primary metric. Otherwise
the baseline is kept: the report is written and the caller exits with GATE_REFUSED_EXIT_CODE."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexing import steps
from indexing.bundle import MANIFEST, Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import InputDataError
from training.bundle_writer import write_bundle
from training.calibrate import (
    UNIT_INCIDENT,
    UNIT_PAIR,
    ThresholdRule,
    calibration_splits,
    choose_threshold,
    write_calibrated_bundle,
)
from training.data.feedback import TrainingFeedback
from training.data.labels import LabelledCorpus
from training.evaluate import METHODS, Evaluation, QueryResult, build_scorer, evaluate_corpus, summarise
from training.finetune import TrainConfig, train
from training.pairs import mine_pairs
from training.report import mean_with_ci, write_report

logger = logging.getLogger(__name__)

GATE_REFUSED_EXIT_CODE = 3
GATE_METRICS = ("recall@10", "mrr")


@dataclass
class TrainingOutcome:
    promoted: bool
    forced: bool
    bundle_path: Path | None  # the new bundle in the registry (promoted or forced), else None
    report: dict[str, Any]
    run_dir: Path


def corpus_digest(corpus: LabelledCorpus) -> str:
    h = hashlib.sha256()
    for inc in corpus.incidents:
        h.update(f"{inc.number}\0{inc.opened_at}\0{inc.text()}\0".encode())
    for a, b in sorted(corpus.links):
        h.update(f"{a}-{b}\0".encode())
    return h.hexdigest()


def evaluate_bundle(bundle: Bundle, corpus: LabelledCorpus, index_dir: Path, progress: bool = True) -> Evaluation:
    scorer, encoder = build_scorer(bundle, corpus, index_dir, progress=progress)
    return evaluate_corpus(corpus, scorer, encoder, progress=progress, dense_text=bundle.dense_text)


def paired(baseline: list[QueryResult], candidate: list[QueryResult], method: str, metric: str,
           n_boot: int) -> dict[str, Any]:
    """Mean candidate - baseline over the same queries, with a paired bootstrap interval."""
    if [q.number for q in baseline] != [q.number for q in candidate]:
        raise InputDataError("the baseline and candidate evaluations are over different queries")
    return mean_with_ci(np.array([c.metrics[method][metric] - b.metrics[method][metric]
                                  for b, c in zip(baseline, candidate, strict=True)]), n_boot)


def compare(baseline: Evaluation, candidate: Evaluation, cfg: TrainConfig, split: str = "test") -> dict[str, Any]:
    """The gate's comparison table and decision on `split`."""
    base_q, cand_q = baseline.split(split), candidate.split(split)
    if not base_q:
        raise InputDataError(f"{baseline.corpus}: the {split} split has no queries; the gate cannot decide")
    base_s, cand_s = summarise(base_q, None, cfg.bootstrap), summarise(cand_q, None, cfg.bootstrap)
    table: dict[str, Any] = {}
    for method in METHODS:
        table[method] = {}
        for metric in GATE_METRICS:
            table[method][metric] = {"baseline": base_s[method][metric], "candidate": cand_s[method][metric],
                                     "difference": paired(base_q, cand_q, method, metric, cfg.bootstrap)}
    primary = table["hybrid"][cfg.primary_metric]["difference"]
    lo = primary["ci95"][0]
    passed = bool(lo > cfg.min_improvement)
    reason = (f"hybrid {cfg.primary_metric} on the {split} split: candidate - baseline = {primary['value']:+.4f} "
              f"(95% CI {primary['ci95'][0]:+.4f} .. {primary['ci95'][1]:+.4f}); promotion needs the lower end "
              f"above {cfg.min_improvement:+.4f}")
    return {"split": split, "queries": len(base_q), "primary_metric": cfg.primary_metric, "method": "hybrid",
            "min_improvement": cfg.min_improvement, "passed": passed, "reason": reason, "table": table}


def gate_markdown(report: dict[str, Any]) -> str:
    gate = report["gate"]
    lines = [f"# Fine-tuning gate: {report['corpus']}", "",
             f"- baseline: `{report['baseline']['model_version']}`",
             f"- candidate: {report['candidate']['kind']} fine-tune of `{report['candidate']['base_model']}`, exported "
             f"as {report['candidate']['precision']}",
             f"- pairs: {report['pairs']['pairs']} from {report['pairs']['train_split_links']} train-split links; "
             f"baseline ROC-AUC on them (hybrid): mined negatives "
             f"{report['pairs']['hardness_baseline_roc_auc']['mined_negatives']['hybrid']:.3f}, random negatives "
             f"{report['pairs']['hardness_baseline_roc_auc']['random_negatives']['hybrid']:.3f}",
             f"- training: {report['training']['steps']} steps, {report['training']['train_seconds']} s on "
             f"{report['training']['device']}, mean loss per epoch {report['training']['epoch_mean_loss']}",
             f"- decision: **{report['decision']}**. {gate['reason']}", "",
             f"## {gate['split']} split ({gate['queries']} queries)", "",
             "| method | metric | baseline | candidate | candidate - baseline |", "|---|---|---|---|---|"]
    for method, metrics in gate["table"].items():
        for metric, row in metrics.items():
            cells = []
            for key in ("baseline", "candidate", "difference"):
                lo, hi = row[key]["ci95"]
                sign = "+" if key == "difference" else ""
                cells.append(f"{row[key]['value']:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]")
            lines.append(f"| {method} | {metric} | " + " | ".join(cells) + " |")
    lines += ["", "Intervals: 95% bootstrap over queries; the difference is paired (same queries)."]
    return "\n".join(lines) + "\n"


def write_gate_report(report: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    return write_report(report, out_dir, stem, render=gate_markdown)


def check_registry_dir(bundles_dir: Path) -> None:
    if (bundles_dir / MANIFEST).exists():
        raise InputDataError(f"{bundles_dir} is itself a bundle; bundles are immutable. Pass the directory that "
                             "holds bundles: the new one gets its own version there")


def run_training(corpus: LabelledCorpus, base_model_dir: Path, base_model_name: str, baseline: Bundle,
                 cfg: TrainConfig, data_dir: Path, bundles_dir: Path, name: str = "finetuned", force: bool = False,
                 progress: bool = True, feedback: TrainingFeedback | None = None) -> TrainingOutcome:
    """Mine pairs (with agents' feedback when given), fine-tune, export, evaluate both bundles on the held-out
    time-later split and promote the candidate only if the gate says so."""
    check_registry_dir(bundles_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    (data_dir / "training").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{corpus.name}-{stamp}-", dir=data_dir / "training"))
    logger.info("training run directory: %s", run_dir)

    mining_encoder = OnnxEncoder(baseline.encoder_path, baseline.tokenizer_path, baseline.max_seq_length)
    bm25 = baseline.bm25
    with steps.step("mine training pairs"):
        pair_set = mine_pairs(corpus, lambda texts: mining_encoder.encode(texts).vectors, analyzer=bm25["analyzer"],
                              k1=bm25["k1"], b=bm25["b"], normalization=baseline.scoring.normalization,
                              dense_weight=baseline.dense_weight, bm25_weight=baseline.bm25_weight,
                              negatives_per_source=cfg.negatives_per_source, relative_ceiling=cfg.relative_ceiling,
                              min_positives=cfg.min_positives, seed=cfg.seed, feedback=feedback)
    with steps.step(f"fine-tune ({'full' if cfg.full else 'LoRA'}, {cfg.epochs} epochs)"):
        trained = train(base_model_dir, pair_set, cfg, run_dir / "model", progress=progress)
    training_meta = {**trained.metadata, "base_model": base_model_name, "baseline_bundle": baseline.model_version,
                     "data": {"corpus": corpus.name, "label_kind": corpus.label_kind,
                              "corpus_sha256": corpus_digest(corpus), "pairs_sha256": pair_set.digest(),
                              "feedback": pair_set.stats.get("feedback")},
                     "pairs": pair_set.stats}
    with steps.step("export the candidate bundle (ONNX, INT8, parity)"):
        candidate_path = write_bundle(trained.model_dir, run_dir / "candidate", name=name, base_model=base_model_name,
                                      training=training_meta, bm25=dict(baseline.bm25),
                                      hybrid={"dense_weight": baseline.dense_weight,
                                              "bm25_weight": baseline.bm25_weight}, parity_corpus=corpus)
    candidate = load_bundle(candidate_path)

    from training.quality import evaluation_index_dir

    with steps.step(f"gate: evaluate the baseline {baseline.model_version}"):
        base_eval = evaluate_bundle(baseline, corpus, evaluation_index_dir(data_dir, corpus, baseline), progress)
    with steps.step(f"gate: evaluate the candidate {candidate.model_version}"):
        cand_eval = evaluate_bundle(candidate, corpus, run_dir / "eval-index", progress)
    gate = compare(base_eval, cand_eval, cfg)
    decision = "promoted" if gate["passed"] else ("forced (NOT gated)" if force else "baseline kept")
    report: dict[str, Any] = {
        "corpus": corpus.name, "label_kind": corpus.label_kind, "created_at": datetime.now(UTC).isoformat(),
        "baseline": {"model_version": baseline.model_version, "encoder_id": baseline.encoder_id},
        "candidate": {"model_version": candidate.model_version, "encoder_id": candidate.encoder_id,
                      "base_model": base_model_name, "kind": training_meta["kind"],
                      "model_dir": str(trained.model_dir),
                      "precision": candidate.manifest["encoder"]["precision"], "parity": candidate.manifest["parity"]},
        "pairs": pair_set.stats, "training": trained.metadata, "data": training_meta["data"],
        "gate": gate, "decision": decision,
    }
    bundle_path = None
    if gate["passed"] or force:
        from training.quality import threshold_record

        splits, _ = calibration_splits(candidate)  # fine-tuned: validation only
        rule = (ThresholdRule(UNIT_PAIR, cfg.target_fpr, cfg.confidence, splits) if cfg.target_fpr is not None
                else ThresholdRule(UNIT_INCIDENT, cfg.target_false_alarm, cfg.confidence, splits))
        if not cand_eval.incident_split(*splits):
            raise InputDataError(f"{corpus.name}: the validation split has no incidents to calibrate the threshold on")
        with steps.step("calibrate the candidate's threshold"):
            chosen = choose_threshold(cand_eval, rule)
        threshold_info = threshold_record(
            cand_eval, chosen.value, "calibrated",
            {"unit": rule.unit, "target": rule.target, "confidence": rule.confidence},
            {**asdict(chosen), "splits": list(splits)},
            f"{corpus.name} {' + '.join(splits)} split ({corpus.label_kind} labels)", cfg.bootstrap)
        evaluation = {"corpus": corpus.name, "label_kind": corpus.label_kind,
                      "gate_table": gate["table"], "gate_reason": gate["reason"]}
        gate_record = {"passed": gate["passed"], "forced": bool(force and not gate["passed"]),
                       "gated": gate["passed"], "reason": gate["reason"], "baseline": baseline.model_version}
        bundle_path = write_calibrated_bundle(candidate, bundles_dir, threshold_info, evaluation,
                                              extra={"gate": gate_record})
        report["promoted_bundle"] = str(bundle_path)
        report["threshold"] = threshold_info
    shutil.rmtree(run_dir / "eval-index", ignore_errors=True)
    return TrainingOutcome(gate["passed"], bool(force and not gate["passed"]), bundle_path, report, run_dir)
