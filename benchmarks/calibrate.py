"""The `calibrate` suite: a calibrate run's phases on the path before block scoring and on today's, side by side.

    python -m benchmarks.calibrate [--bundle DIR] [--sample-sizes 2503] [--scoring-sizes 5000,20000]
    python -m benchmarks.run --suites calibrate

* end to end with the bundle's encoder, on SeaMonkey (1,076 reports) and the generated sample at each
  `--sample-sizes`: index (encode + store), the evaluation pass for each BM25 normalisation, the other dense
  text modes; texts sent to the encoder; the threshold each path chooses (per incident, 5 %, 95 % bound);
* scoring only, at `--scoring-sizes` of the sample with a word-hash stand-in encoder (instant, so the time is
  the protocol's): the per-query loop against block scoring, to show how each grows with the corpus.

The path before block scoring (`evaluate_per_query`, commit e22400e) lives here only as the timing baseline
and as the oracle tests/test_calibration_speed.py compares today's path with."""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.corpus import bundle_or_minilm
from benchmarks.machine import cpu_facts, suite_header, write_suite
from indexing import lexical
from indexing.bundle import Bundle
from indexing.dense_text import DENSE_TEXT_MODES, DenseText, MemoEncoder, TextEncoder
from indexing.encoder import EncodedBatch, OnnxEncoder
from training.calibrate import UNIT_INCIDENT, ThresholdRule, calibration_splits, choose_threshold
from training.data.labels import LabelledCorpus
from training.evaluate import (
    METHODS,
    TOP_KEPT,
    Evaluation,
    IncidentOutcome,
    OfflineScorer,
    QueryPathEncoder,
    QueryResult,
    build_scorer,
    evaluate_corpus,
    scorer_for_incidents,
    split_of,
    time_boundaries,
)
from training.metrics import retrieval_metrics
from training.quality import load_labelled

logger = logging.getLogger(__name__)


def evaluate_per_query(corpus: LabelledCorpus, scorer: OfflineScorer, encoder: TextEncoder,
                       dense_text: DenseText, hard_negatives: int = 5, random_negatives: int = 10,
                       seed: int = 0, cache: dict[str, np.ndarray] | None = None) -> Evaluation:
    """The evaluation loop as it was before block scoring (commit e22400e), kept here only as the oracle: one
    query at a time, encoded alone, scored with `OfflineScorer.score`, every candidate list fully sorted."""
    incidents = corpus.incidents
    linked = corpus.linked()
    opened = [i.opened_at for i in incidents]
    rng = np.random.default_rng(seed)
    results: list[QueryResult] = []
    outcomes: list[IncidentOutcome] = []
    position_of = {inc.number: p for p, inc in enumerate(incidents)}
    boundaries = time_boundaries(corpus)
    first_at: dict[Any, int] = {}
    for p, moment in enumerate(opened):
        first_at.setdefault(moment, p)
    for p in range(len(incidents)):
        inc = incidents[p]
        n_candidates = first_at[opened[p]]
        if n_candidates == 0:
            continue
        candidates = np.arange(n_candidates)
        positives = {position_of[n] for n in linked.get(inc.number, ()) if position_of[n] < n_candidates}
        if cache is not None and inc.number in cache:
            vector = cache[inc.number]
        else:
            vector, _ = dense_text.embed_one(encoder, inc.short_description, inc.description)
            if cache is not None:
                cache[inc.number] = vector
        scores = scorer.score(vector, inc.text())
        top: dict[str, list[tuple[float, bool]]] = {}
        orders: dict[str, np.ndarray] = {}
        for method in METHODS:
            cand_scores = scores[method][candidates]
            order = candidates[np.lexsort((candidates, -cand_scores))]
            orders[method] = order
            top[method] = [(float(cand_scores[c]), bool(c in positives)) for c in order[:TOP_KEPT]]
        split = split_of(p, boundaries)
        outcomes.append(IncidentOutcome(inc.number, split, bool(positives), top))
        if not positives:
            continue
        metrics, negatives = {}, set()
        for method in METHODS:
            order = orders[method]
            relevance = [c in positives for c in order]
            metrics[method] = retrieval_metrics(relevance, len(positives))
            negatives.update(int(c) for c in order[[not r for r in relevance]][:hard_negatives])
        rest = [int(c) for c in candidates if c not in positives and c not in negatives]
        if rest:
            negatives.update(int(c) for c in rng.choice(rest, size=min(random_negatives, len(rest)), replace=False))
        pairs = [(incidents[c].number, c in positives, {m: float(scores[m][c]) for m in METHODS})
                 for c in sorted(positives | negatives)]
        results.append(QueryResult(inc.number, split, metrics, pairs))
    return Evaluation(corpus.name, corpus.label_kind, results, list(corpus.notes), outcomes)


class WordHashEncoder:
    """A deterministic stand-in for the ONNX encoder: the normalised sum of one fixed random vector per word
    (texts that share words are close). `calls` counts texts sent to it."""

    dim = 48

    def __init__(self) -> None:
        self.calls = 0
        self._words: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        if word not in self._words:
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            self._words[word] = np.random.default_rng(seed).standard_normal(self.dim)
        return self._words[word]

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim)
        for word in re.findall(r"\w+", text.lower()):
            v += self._word(word)
        v = v if np.linalg.norm(v) else np.ones(self.dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch:
        self.calls += len(texts)
        vectors = np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return EncodedBatch(vectors.astype(np.float32), 0, (False,) * len(texts))

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        self.calls += 1
        return self._vector(text), False




class CountingEncoder:
    """Counts the texts that reach the model (batch or single)."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.texts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> EncodedBatch:
        self.texts += len(texts)
        return self.encoder.encode(texts, batch_size=batch_size)

    def encode_one(self, text: str) -> tuple[np.ndarray, bool]:
        self.texts += 1
        return self.encoder.encode_one(text)


def _timed(phases: dict[str, float], name: str, started: float) -> float:
    now = time.perf_counter()
    phases[name] = round(now - started, 2)
    logger.info("phase %s: %.1f s", name, now - started)
    return now


def _threshold(bundle: Bundle, evaluation: Evaluation, pool: str = "earlier") -> float:
    splits, _ = calibration_splits(bundle)
    return choose_threshold(evaluation, ThresholdRule(UNIT_INCIDENT, 0.05, 0.95, splits, pool)).value


def run_path(path: str, bundle: Bundle, corpus: LabelledCorpus, work: Path) -> dict[str, Any]:
    """One calibrate run's encode/score phases on `path` ("before": batched index + per-query evaluation;
    "now": each text encoded once + block scoring), every dense text mode."""
    counting = CountingEncoder(OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length))
    encoder: Any = MemoEncoder(counting) if path == "before" else QueryPathEncoder(counting)
    phases: dict[str, float] = {}
    t = time.perf_counter()
    scorer, _ = build_scorer(bundle, corpus, work / f"{path}-index", progress=False, encoder=encoder)
    t = _timed(phases, "index (encode + store)", t)
    thresholds: dict[str, float] = {}
    cache: dict[str, np.ndarray] = {}
    evaluations: dict[str, Evaluation] = {}
    for norm in lexical.NORMALIZATIONS:
        scorer.normalization = norm
        if path == "before":
            evaluations[norm] = evaluate_per_query(corpus, scorer, encoder, bundle.dense_text, cache=cache)
        else:
            evaluations[norm] = evaluate_corpus(corpus, scorer, encoder, progress=False, dense_text=bundle.dense_text)
        t = _timed(phases, f"evaluate (BM25 normalisation {norm})", t)
        thresholds[f"{bundle.dense_text.mode}/{norm}"] = _threshold(bundle, evaluations[norm])
    norm = bundle.scoring.normalization
    for mode in DENSE_TEXT_MODES:
        if mode == bundle.dense_text.mode:
            continue
        variant = bundle.with_dense_text(mode)
        if path == "before":
            variant_scorer, _ = build_scorer(variant, corpus, work / f"{path}-{mode}", norm, progress=False,
                                             encoder=encoder)
            evaluation = evaluate_per_query(corpus, variant_scorer, encoder, variant.dense_text, cache={})
        else:
            fields = [(i.short_description, i.description) for i in corpus.incidents]
            variant_scorer = scorer.with_dense(variant.dense_text.embed(encoder, fields).vectors)
            variant_scorer.normalization = norm
            evaluation = evaluate_corpus(corpus, variant_scorer, encoder, progress=False,
                                         dense_text=variant.dense_text)
        t = _timed(phases, f"dense text mode {mode}", t)
        thresholds[f"{mode}/{norm}"] = _threshold(bundle, evaluation)
    out = {"phases_s": phases, "total_s": round(sum(phases.values()), 1), "texts_encoded": counting.texts,
           "thresholds": thresholds}
    if path == "now":
        out["threshold_pool_all"] = _threshold(bundle, evaluations[norm], "all")
    return out


def scoring_only(sizes: Sequence[int], before_up_to: int) -> list[dict[str, Any]]:
    """The protocol's own cost (no model): the per-query loop and block scoring on the sample at each size."""
    rows = []
    for n in sizes:
        corpus = load_labelled("sample", n=n)
        encoder = QueryPathEncoder(WordHashEncoder())
        dense = DenseText().embed(encoder, [(i.short_description, i.description) for i in corpus.incidents]).vectors
        t = time.perf_counter()
        scorer = scorer_for_incidents(corpus.incidents, dense, lexical.ANALYZER_NAME, 1.2, 0.75, "idf_upper_bound",
                                      0.7, 0.3)
        row: dict[str, Any] = {"incidents": n, "scorer_build_s": round(time.perf_counter() - t, 2)}
        t = time.perf_counter()
        new = evaluate_corpus(corpus, scorer, encoder, progress=False)
        row["block_s"] = round(time.perf_counter() - t, 2)
        if n <= before_up_to:
            t = time.perf_counter()
            old = evaluate_per_query(corpus, scorer, encoder, DenseText())
            row["per_query_s"] = round(time.perf_counter() - t, 2)
            row["ratio"] = round(row["per_query_s"] / row["block_s"], 1)
            rule = ThresholdRule(UNIT_INCIDENT, 0.05, 0.95, ("train", "validation"))
            row["same_threshold"] = abs(choose_threshold(new, rule).value - choose_threshold(old, rule).value) < 1e-6
        logger.info("scoring only at %d incidents: %s", n, row)
        rows.append(row)
    return rows


def run_suite(bundle: Bundle, sample_sizes: Sequence[int], scoring_sizes: Sequence[int], before_up_to: int,
              out: Path, command: str, seamonkey: bool = True, name: str = "calibrate") -> dict[str, Any]:
    machine = cpu_facts()
    corpora: list[tuple[str, LabelledCorpus]] = [("seamonkey", load_labelled("seamonkey"))] if seamonkey else []
    corpora += [(f"sample-{n}", load_labelled("sample", n=n)) for n in sample_sizes]
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp:
        for name, corpus in corpora:
            logger.info("calibrate suite: %s (%d incidents)", name, len(corpus.incidents))
            before = run_path("before", bundle, corpus, Path(tmp) / name)
            now = run_path("now", bundle, corpus, Path(tmp) / name)
            runs[name] = {"incidents": len(corpus.incidents), "before": before, "now": now,
                          "ratio": round(before["total_s"] / now["total_s"], 2)}
    scoring = scoring_only(scoring_sizes, before_up_to)
    figures = {"machine": machine, "command": command, "bundle": bundle.model_version, "runs": runs,
               "scoring_only": scoring}
    lines = suite_header("Calibration phases: before (batched index + per-query evaluation) and now (each text "
                         "encoded once + block scoring)", command, machine)
    lines += [f"Bundle: {bundle.model_version} ({bundle.manifest['encoder'].get('precision')}).", "",
              "| corpus | incidents | path | index (encode + store) s | evaluation passes s | other dense modes s "
              "| total s | texts encoded | threshold (bundle mode) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, run in runs.items():
        for path in ("before", "now"):
            r = run[path]
            ph = r["phases_s"]
            evals = sum(v for k, v in ph.items() if k.startswith("evaluate"))
            modes = sum(v for k, v in ph.items() if k.startswith("dense text mode"))
            key = f"{bundle.dense_text.mode}/{bundle.scoring.normalization}"
            lines.append(f"| {name} | {run['incidents']} | {path} | {ph['index (encode + store)']:.1f} | {evals:.1f} "
                         f"| {modes:.1f} | {r['total_s']:.1f} | {r['texts_encoded']} | {r['thresholds'][key]:.4f} |")
        lines.append(f"| {name} | | before / now | | | | **{run['ratio']:.2f}x** | | |")
    lines += ["", "Thresholds differ between the paths only through the stored vectors: before, the index held "
                  "batch-encoded vectors (the INT8 encoder's activations are quantised per call, so a text's vector "
                  "depends on its batch mates); now it holds each text's single encode, the vector /similar computes "
                  "for it. With an encoder whose batch and single vectors agree, the two paths give the same "
                  "reports (tests/test_calibration_speed.py).", "",
              "Scoring only (word-hash stand-in encoder, one normalisation, one dense mode):", "",
              "| incidents | per-query loop s | block scoring s | ratio | same threshold |", "|---|---|---|---|---|"]
    for row in scoring:
        lines.append(f"| {row['incidents']} | {row.get('per_query_s', '-')} | {row['block_s']} | "
                     f"{row.get('ratio', '-')} | {row.get('same_threshold', '-')} |")
    write_suite(out, name, figures, lines)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--sample-sizes", default="2503")
    parser.add_argument("--scoring-sizes", default="2503,10000")
    parser.add_argument("--before-up-to", type=int, default=10_000, help="largest size the per-query loop runs at")
    parser.add_argument("--no-seamonkey", action="store_true", help="skip the end-to-end SeaMonkey run")
    parser.add_argument("--name", default="calibrate", help="results file stem")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = "python -m benchmarks.calibrate " + " ".join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        bundle = bundle_or_minilm(args.bundle, Path(tmp) / "bundle")
        run_suite(bundle, [int(n) for n in args.sample_sizes.split(",") if n],
                  [int(n) for n in args.scoring_sizes.split(",") if n], args.before_up_to, args.out, command,
                  seamonkey=not args.no_seamonkey, name=args.name)


if __name__ == "__main__":
    main()
