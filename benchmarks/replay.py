"""Replay a labelled corpus in time order through the service's engine and compare threshold rules on the later
period (issue 24 item 4; README "Keeping the flag honest").

    python -m benchmarks.replay --data seamonkey
    python -m benchmarks.replay --data sample --n 2503
    python -m benchmarks.replay --data FILE --bundle DATA_DIR/bundles/<version> --feedback-delay 50

The stream: a throw-away data directory whose index starts empty; each incident, in the order it was opened, is
first asked as a new incident (`Engine.similar`, the code /similar runs, top 10) and then pushed
(`Engine.upsert_incidents`, the code PUT /incidents runs), so every answer searches exactly the incidents opened
before it, as a live service would. The splits are the calibration protocol's (60/20/20 of the queries by time):
the static threshold is chosen on train + validation with the offline rule (per-incident false-alarm target,
one-sided Clopper-Pearson bound), and the service is "deployed" at the start of the test split, the later period,
with an empty answer log. Rules compared there, each flagging with the threshold it holds when the answer is given:

* `static (pool all)` / `static (pool earlier)`: the calibrated threshold, never changed (`calibrate --pool`).
* `windowed`: every `--every` answers (once `--min-answers` are logged), the live recalibration
  (service.flag.recalibrate.live_threshold, what POST /admin/threshold/recalibrate applies) on the last `--window`
  answers; feedback `duplicate` for an incident with an earlier duplicate arrives `--feedback-delay` answers after
  its answer (an agent's verdict or the link ServiceNow records); every other answer counts as a negative.
* `online (aci)`: service.flag.online.AdaptiveThreshold, fed every answer as the service feeds it (every answer a
  negative when it is given), starting at the static threshold. `online (aci, after feedback)`: the same rule fed
  each answer `--feedback-delay` answers late, a confirmed duplicate not counted as a negative.

Scores do not depend on the rule (a threshold-only switch changes no vector), so the stream runs once and each
rule is applied to the same answers (the rules and their summaries: benchmarks/replay_rules.py). Reported per
rule on the later period: false alarms per incident (the
duplicate-free incidents flagged), hit rate (incidents with an earlier duplicate whose top 10 holds a true
duplicate marked similar), flag precision (results marked similar that are true duplicates), with 95 % exact
intervals; answers until the alert condition (the flagged share of the last `--alert-window` answers has a lower
bound above what the calibration promises); and, in hindsight from the labels, when the false-alarm share of the
last `--alert-window` duplicate-free answers first exceeded the target (its lower 95 % bound above it) and how
many more answers it took for that share to be back at the target.
The stream's answers (numbers and scores, no text) can be kept (`--save-answers`) and the rules re-run on them
without streaming again (`--answers`). Writes benchmarks/results/replay-<data>.json|md."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.corpus import bundle_or_minilm
from benchmarks.machine import cpu_facts, suite_header, write_suite
from benchmarks.replay_rules import (
    ReplayAnswer,
    promised_share,
    run_online,
    run_online_after_feedback,
    run_static,
    run_windowed,
    static_thresholds,
    summarise,
)
from indexing.bundle import Bundle
from indexing.encoder import OnnxEncoder
from indexing.incidents import Incident
from indexing.indexer import index_into_catalog
from indexing.registry import BundleRegistry
from indexing.store.edge_catalog import EdgeCatalog
from service.engine import Engine
from service.settings import Settings
from training.data.labels import LabelledCorpus
from training.protocol import split_of, time_boundaries
from training.quality import load_labelled

logger = logging.getLogger(__name__)

TOP_K = 10


def stream(corpus: LabelledCorpus, bundle: Bundle, root: Path) -> tuple[list[ReplayAnswer], float]:
    """Every incident asked (except the first) and then pushed, in time order. At the deployment moment (the
    first later-period incident), the calibration period's duplicate-free incidents are asked again against the
    whole calibration period (pool `all`: what `incident-sim calibrate` would have seen then). Returns the
    answers and the stream's seconds."""
    incidents = corpus.incidents
    boundaries = time_boundaries(corpus)
    linked = corpus.linked()
    opened = {i.number: i.opened_at for i in incidents}
    registry = BundleRegistry(root / "bundles")
    registry.publish(bundle.path, allow_uncalibrated=True)
    registry.set_active(bundle.model_version)
    settings = Settings(data_dir=root, dev_mode=True)
    catalog = EdgeCatalog(settings.edge_index_dir)
    calibration_period = [i for p, i in enumerate(incidents) if split_of(p, boundaries) != "test"]
    index_into_catalog(incidents[:1], bundle, OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path,
                                                          bundle.max_seq_length),
                       catalog, progress=False, avgdl_corpus=calibration_period)
    catalog.close()
    engine = Engine.from_settings(settings)
    answers: list[ReplayAnswer] = []
    started = time.perf_counter()
    try:
        for p, inc in enumerate(incidents[1:], start=1):
            split = split_of(p, boundaries)
            if split == "test" and answers[-1].split != "test":
                answers = pool_all(engine, incidents, answers, linked)
            result = engine.similar(engine.build_query(inc.short_description, inc.description, None, TOP_K))
            suggested = tuple((str(r.payload.get("number", r.point_id)), r.score) for r in result.results)
            earlier = frozenset(n for n in linked.get(inc.number, ()) if opened[n] < inc.opened_at)  # type: ignore[operator]
            answers.append(ReplayAnswer(p, inc.number, split, suggested[0][1] if suggested else None, suggested,
                                        earlier))
            engine.upsert_incidents([inc])
            if p % 200 == 0:
                logger.info("replay: %d of %d incidents asked and pushed", p, len(incidents))
    finally:
        engine.close()
    return answers, time.perf_counter() - started


def pool_all(engine: Engine, incidents: Sequence[Incident], answers: list[ReplayAnswer],
             linked: dict[str, set[str]]) -> list[ReplayAnswer]:
    """Each duplicate-free answer so far with its best score among every incident indexed now except itself and
    its links (`calibrate --pool all`)."""
    out = []
    for answer in answers:
        if not answer.has_duplicate:
            inc = incidents[answer.position]
            result = engine.similar(engine.build_query(inc.short_description, inc.description, None, 1,
                                                       exclude=[inc.number, *linked.get(inc.number, ())]))
            answer = replace(answer, best_all=result.results[0].score if result.results else None)
        out.append(answer)
    return out

@dataclass(frozen=True)
class StreamedAnswers:
    """What the stream gave, kept so the rules can run again without it (`--save-answers`, `--answers`)."""

    corpus: str
    incidents: int
    bundle: str
    seconds: float
    answers: list[ReplayAnswer]

    def save(self, path: Path) -> None:
        rows = [{**a.__dict__, "duplicates": sorted(a.duplicates), "suggested": [list(s) for s in a.suggested]}
                for a in self.answers]
        path.write_text(json.dumps({"corpus": self.corpus, "incidents": self.incidents, "bundle": self.bundle,
                                    "stream_s": self.seconds, "answers": rows}))

    @classmethod
    def load(cls, path: Path) -> StreamedAnswers:
        data = json.loads(path.read_text())
        answers = [ReplayAnswer(int(r["position"]), str(r["number"]), str(r["split"]), r["best"],
                                tuple((str(n), float(v)) for n, v in r["suggested"]), frozenset(r["duplicates"]),
                                r.get("best_all")) for r in data["answers"]]
        return cls(data["corpus"], int(data["incidents"]), data["bundle"], float(data["stream_s"]), answers)


def replay(streamed: StreamedAnswers, args: argparse.Namespace) -> dict[str, Any]:
    answers = streamed.answers
    statics = static_thresholds(answers, args.target, args.confidence)
    calibration = [a for a in answers if a.split != "test"]
    later = [a for a in answers if a.split == "test"]
    start = statics["all"]
    windowed, changes = run_windowed(later, start, args.target, args.confidence, args.every, args.window,
                                     args.min_answers, args.feedback_delay)
    runs = [run_static(later, start, "static (pool all)"), run_static(later, statics["earlier"],
                                                                      "static (pool earlier)"),
            windowed, run_online(later, start, args.target, args.gamma, args.aci_window),
            run_online_after_feedback(later, start, args.target, args.gamma, args.aci_window, args.feedback_delay)]
    promise = promised_share(calibration, start, args.target)
    rules = [summarise(r, later, args.target, promise, args.alert_window) for r in runs]
    static_hit_low = rules[0]["hit_rate"]["ci95"][0]
    for r in rules:
        fa, hit = r["false_alarm_rate"], r["hit_rate"]["value"]
        r["meets_target"] = bool(fa["value"] is not None and fa["value"] <= args.target
                                 and (hit is None or hit >= static_hit_low))
    return {"corpus": streamed.corpus, "incidents": streamed.incidents, "bundle": streamed.bundle,
            "stream_s": round(streamed.seconds, 1),
            "answers": {"calibration": len(calibration), "later": len(later),
                        "later_with_duplicate": sum(a.has_duplicate for a in later)},
            "static_thresholds": statics, "promised_flagged_share": round(promise, 4),
            "windowed_changes": changes, "rules": rules}


def markdown(figures: dict[str, Any], args: argparse.Namespace) -> list[str]:
    lines = [f"Bundle: {figures['bundle']}. Corpus {figures['corpus']}: {figures['incidents']} incidents, "
             f"{figures['answers']['calibration']} answers in the calibration period (train + validation), "
             f"{figures['answers']['later']} in the later period ({figures['answers']['later_with_duplicate']} with "
             f"an earlier duplicate). Stream: {figures['stream_s']} s. Target: false alarms per incident <= "
             f"{args.target} ({args.confidence:.0%} one-sided bound). Static thresholds: pool all "
             f"{figures['static_thresholds']['all']:.4f}, pool earlier {figures['static_thresholds']['earlier']:.4f}. "
             f"Windowed: every {args.every} answers on the last {args.window} (from {args.min_answers} logged), "
             f"feedback {args.feedback_delay} answers late; {figures['windowed_changes']} recalibrations moved the "
             f"threshold. Online: gamma {args.gamma}, window {args.aci_window}. Alert: flagged share of the last "
             f"{args.alert_window} answers with its lower 95 % bound above {figures['promised_flagged_share']} "
             "(what the calibration promises).", "",
             "| rule | false alarms per incident [95 % CI] | hit rate [95 % CI] | flag precision | threshold first "
             "/ last (min-max) | answers to alert | false-alarm drift (duplicate-free answers) | meets target |",
             "|---|---|---|---|---|---|---|---|"]

    def drift(r: dict[str, Any]) -> str:
        if r["drift_at_negative"] is None:
            return "none"
        back = "never back" if r["negatives_to_correct"] is None else f"back after {r['negatives_to_correct']}"
        return f"at {r['drift_at_negative']}, {back}"

    def show(r: dict[str, Any]) -> str:
        if r["value"] is None:
            return "-"
        return f"{r['value']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] ({r['count']}/{r['of']})"

    for r in figures["rules"]:
        t = r["threshold"]
        lines.append(f"| {r['rule']} | {show(r['false_alarm_rate'])} | {show(r['hit_rate'])} | "
                     f"{show(r['flag_precision'])} | {t['first']:.4f} / {t['last']:.4f} ({t['min']:.4f}-"
                     f"{t['max']:.4f}) | {r['answers_to_alert'] or 'never'} | {drift(r)} | "
                     f"{'yes' if r['meets_target'] else 'no'} |")
    lines += ["", f"False-alarm share per block of {args.alert_window} duplicate-free answers, in time order:", "",
              "| rule | blocks |", "|---|---|"]
    lines += [f"| {r['rule']} | {' '.join(f'{b:.3f}' for b in r['false_alarm_share_by_block'])} |"
              for r in figures["rules"]]
    lines += ["", "'meets target': false alarms per incident at or below the target and a hit rate not below the "
                  "static (pool all) rule's lower 95 % bound (issue 24's bar)."]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="seamonkey", help="seamonkey, sample or a file of labelled incidents")
    parser.add_argument("--n", type=int, default=2503, help="sample size (with --data sample)")
    parser.add_argument("--bundle", type=Path, help="the bundle to replay (default: all-MiniLM-L6-v2 INT8 built here)")
    parser.add_argument("--target", type=float, default=0.05)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--every", type=int, default=50, help="answers between windowed recalibrations")
    parser.add_argument("--window", type=int, default=500, help="logged answers a recalibration reads")
    parser.add_argument("--min-answers", type=int, default=100, help="logged answers before the first one")
    parser.add_argument("--feedback-delay", type=int, default=20, help="answers until a duplicate is confirmed")
    parser.add_argument("--gamma", type=float, default=0.005, help="the online rule's step")
    parser.add_argument("--aci-window", type=int, default=1000)
    parser.add_argument("--alert-window", type=int, default=100)
    parser.add_argument("--save-answers", type=Path, help="keep the stream's answers (JSON, no text) here")
    parser.add_argument("--answers", type=Path, help="run the rules on answers kept with --save-answers")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("indexing").setLevel(logging.WARNING)
    logging.getLogger("service").setLevel(logging.WARNING)
    command = "python -m benchmarks.replay " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.answers is not None:
        streamed = StreamedAnswers.load(args.answers)
    else:
        corpus = load_labelled(args.data, n=args.n)
        with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
            bundle = bundle_or_minilm(args.bundle, Path(tmp) / "bundle")
            answers, seconds = stream(corpus, bundle, Path(tmp) / "data")
        streamed = StreamedAnswers(corpus.name, len(corpus.incidents), bundle.model_version, seconds, answers)
        if args.save_answers is not None:
            streamed.save(args.save_answers)
    figures = {"machine": cpu_facts(), "command": command, **replay(streamed, args)}
    name = Path(args.data).stem if args.data not in ("seamonkey", "sample") else args.data
    lines = suite_header(f"Replay of {figures['corpus']} in time order: threshold rules on the later period",
                         command, figures["machine"])
    write_suite(args.out, f"replay-{name}", figures, lines + markdown(figures, args))
    for r in figures["rules"]:
        logger.info("%s: false alarms %s, hit rate %s", r["rule"], r["false_alarm_rate"]["value"],
                    r["hit_rate"]["value"])


if __name__ == "__main__":
    main()
