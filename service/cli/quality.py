"""Evaluation and training commands: evaluate, calibrate the threshold, fine-tune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from indexing.errors import IncidentSimError
from service.cli.common import DataDir, app, fail, load_settings, timed
from training.calibrate import DEFAULT_CONFIDENCE, DEFAULT_TARGET_FALSE_ALARM

DataSource = Annotated[str, typer.Option("--data", help="'seamonkey', 'sample' or an incident export (.csv/.json)")]


def _quality(data: str, data_dir: Path | None, n: int, weak_category: bool, bootstrap: int,
             rule_args: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir)
    from indexing.bundle import load_bundle
    from service.wiring import resolve_bundle_path
    from training.calibrate import ThresholdRule, calibration_splits
    from training.quality import evaluation_index_dir, load_labelled, run_quality

    bundle = load_bundle(resolve_bundle_path(settings))
    corpus = load_labelled(data, n=n, weak_category=weak_category)
    rule = None
    if rule_args is not None:
        splits, why = calibration_splits(bundle)
        typer.echo(f"calibrating on {why}")
        rule = ThresholdRule(splits=splits, **rule_args)
    report, evaluation, threshold = run_quality(bundle, corpus, rule=rule, n_boot=bootstrap,
                                                index_dir=evaluation_index_dir(settings.data_dir, corpus, bundle))
    return settings, bundle, corpus, report, evaluation, threshold


def _write(report, evaluation, threshold, out: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    from training.report import plots, write_report

    paths = write_report(report, out, name)
    split = "test" if evaluation.split("test") else "validation"
    paths += plots(evaluation, split, threshold, out / name, f"{report['corpus']} ({split} split)",
                   report["threshold"])
    for p in paths:
        typer.echo(f"wrote {p}")
    typer.echo(report["verdict"])


@app.command()
@timed("evaluate")
def evaluate(
    data: DataSource = "seamonkey",
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(help="Incidents to generate when --data sample.")] = 2000,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("benchmarks/results"),
    name: Annotated[str | None, typer.Option(help="Report file stem (default quality-<data>).")] = None,
    bootstrap: Annotated[int, typer.Option(min=100, help="Bootstrap resamples for the intervals.")] = 1000,
    weak_category: Annotated[bool, typer.Option(help="Also treat same category/subcategory as similar (weak, "
                                                     "warned about).")] = False,
) -> None:
    """Evaluate the bundle on labelled data (time-ordered protocol, every incident asked as a new one): dense,
    BM25 and hybrid side by side; per incident (false-alarm rate, hit rate, precision of the flag at the
    bundle's threshold) and per pair, with 95 % intervals; writes JSON, Markdown and PNG plots."""
    try:
        _, _, corpus, report, evaluation, threshold = _quality(data, data_dir, n, weak_category, bootstrap, None)
    except IncidentSimError as exc:
        fail(exc)
    _write(report, evaluation, threshold, out, name or f"quality-{corpus.name}")


@app.command()
@timed("calibrate")
def calibrate(
    data: DataSource = "seamonkey",
    target_false_alarm: Annotated[float | None, typer.Option(
        min=0.0, max=0.5, help="Per-incident false-alarm rate to stay under: the share of new incidents with no "
                               "earlier duplicate that get a result marked similar. The default unit "
                               f"(default {DEFAULT_TARGET_FALSE_ALARM}).")] = None,
    target_fpr: Annotated[float | None, typer.Option(
        min=0.0, max=0.5, help="Instead: false-positive rate over (query, candidate) pairs to stay under "
                               "(the unit used before per-incident calibration).")] = None,
    confidence: Annotated[float, typer.Option(
        min=0.0, max=0.999, help="Confidence that the target holds on later data: the threshold is the lowest whose "
                                 "one-sided Clopper-Pearson upper bound of the rate is <= the target. 0 = the point "
                                 "estimate; otherwise at least 0.5.")] = DEFAULT_CONFIDENCE,
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(help="Incidents to generate when --data sample.")] = 2000,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("benchmarks/results"),
    bootstrap: Annotated[int, typer.Option(min=100)] = 1000,
    pool: Annotated[str, typer.Option(
        help="Per incident: each duplicate-free calibration incident's best score among the incidents opened "
             "before it ('earlier') or among all other incidents except its links ('all', the pool the service "
             "searches; the default: SeaMonkey and the sample, README). Both are reported side by side on the test "
             "split.")] = "all",
    live: Annotated[bool, typer.Option(
        "--live", help="Instead: recalibrate the running service from its recent answers (the same as `incident-sim "
                       "recalibrate`): a dry run unless --apply; --service and INCIDENT_SIM_ADMIN_KEY say where.")]
    = False,
    apply: Annotated[bool, typer.Option("--apply", help="With --live: switch to the new threshold.")] = False,
    service: Annotated[str, typer.Option(help="With --live: the running service.")] = "http://127.0.0.1:8000",
    api_key: Annotated[str | None, typer.Option(envvar="INCIDENT_SIM_ADMIN_KEY",
                                                help="With --live: a key with the admin scope.")] = None,
) -> None:
    """Choose the threshold on labelled data and write it into a new bundle version. The threshold is the lowest
    whose targeted rate, bounded with --confidence, stays under the target on the calibration splits (train +
    validation for a bundle that was not fine-tuned, validation only for a fine-tuned one; never the test split).
    Also chooses the BM25 normalisation on validation, and reports side by side on the test split what each
    threshold rule reaches. With --live: from the running service's recent answers instead (no labelled data)."""
    from training.calibrate import UNIT_INCIDENT, UNIT_PAIR

    if live:
        from service.cli.live import recalibrate_live

        raise typer.Exit(recalibrate_live(service, api_key, apply, "clopper_pearson"))
    if apply:
        fail(ValueError("--apply goes with --live (an offline calibration always writes a new bundle version)"))

    if target_false_alarm is not None and target_fpr is not None:
        fail(ValueError("give --target-false-alarm (per incident) or --target-fpr (pairs), not both"))
    if 0.0 < confidence < 0.5:
        fail(ValueError("--confidence must be 0 (the point estimate) or at least 0.5"))
    if pool not in ("earlier", "all"):
        fail(ValueError("--pool must be 'earlier' or 'all'"))
    if target_fpr is not None:
        rule_args: dict[str, Any] = {"unit": UNIT_PAIR, "target": target_fpr, "confidence": confidence}
    else:
        rule_args = {"unit": UNIT_INCIDENT, "confidence": confidence, "pool": pool,
                     "target": DEFAULT_TARGET_FALSE_ALARM if target_false_alarm is None else target_false_alarm}
    try:
        settings, bundle, corpus, report, evaluation, threshold = _quality(data, data_dir, n, False, bootstrap,
                                                                             rule_args)
        from training.calibrate import write_calibrated_bundle
        from training.quality import evaluation_summary

        path = write_calibrated_bundle(
            bundle, settings.bundles_dir, report["threshold"], evaluation_summary(corpus, report),
            {"normalization": report["bm25_normalization"]["chosen"],
             "normalization_why": report["bm25_normalization"]["why"]},
            extra={"dense_text": report["dense_text"]})
    except IncidentSimError as exc:
        fail(exc)
    if report["dense_text"]["mode"] != bundle.dense_text.mode:
        typer.secho(f"dense text mode changed to {report['dense_text']['mode']!r}: the new bundle's vectors differ, "
                    "so it serves only after a re-index (publish it, then `incident-sim models activate`)",
                    fg=typer.colors.YELLOW, err=True)
    _write(report, evaluation, threshold, out, f"calibration-{corpus.name}")
    from training.report import threshold_summary

    typer.echo(threshold_summary(report["threshold"]))
    typer.echo(f"new bundle: {path}")


@app.command()
@timed("train")
def train(
    data: DataSource = "seamonkey",
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(help="Incidents to generate when --data sample.")] = 2000,
    base_model: Annotated[Path | None, typer.Option(
        help="sentence-transformers model folder to fine-tune (default: all-mpnet-base-v2 from its registry "
             "packages).")] = None,
    config: Annotated[Path | None, typer.Option(help="Training config (.json or .toml); flags override it.")] = None,
    full: Annotated[bool | None, typer.Option("--full/--lora", help="Full fine-tuning instead of LoRA.")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option()] = None,
    lora_rank: Annotated[int | None, typer.Option()] = None,
    lora_alpha: Annotated[int | None, typer.Option()] = None,
    target_modules: Annotated[str | None, typer.Option(help="Comma-separated LoRA target modules.")] = None,
    max_pairs: Annotated[int | None, typer.Option(help="Train on at most this many mined pairs.")] = None,
    max_seq_length: Annotated[int | None, typer.Option(help="Truncation while training.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    primary_metric: Annotated[str | None, typer.Option(help="Gate metric: 'mrr' or 'recall@10' (hybrid).")] = None,
    min_improvement: Annotated[float | None, typer.Option(help="Lower CI end must exceed this.")] = None,
    target_false_alarm: Annotated[float | None, typer.Option(
        help="Per-incident false-alarm rate the promoted bundle's threshold keeps under (default 0.05).")] = None,
    target_fpr: Annotated[float | None, typer.Option(help="Instead: pair FPR the threshold keeps under.")] = None,
    confidence: Annotated[float | None, typer.Option(
        help="Clopper-Pearson confidence of the threshold's bound (default 0.95; 0 = point estimate).")] = None,
    name: Annotated[str, typer.Option(help="Name prefix of the new bundle's version.")] = "finetuned",
    force: Annotated[bool, typer.Option(help="Write the bundle even if the gate refuses it (marked NOT gated).")]
    = False,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("benchmarks/results"),
    bundles_dir: Annotated[Path | None, typer.Option(help="Where the new bundle goes (default: DATA_DIR/bundles).")]
    = None,
    feedback: Annotated[Path | None, typer.Option(
        help="Agents' verdicts exported from GET /feedback (a page, or pages / records one per line): confirmed "
             "duplicates between train-split incidents become positives, not_similar verdicts hard negatives. "
             "The gate still decides on the time-later test split.")] = None,
) -> None:
    """Fine-tune the encoder on labelled incidents (train split only), export it as a bundle and promote it
    only if it beats the served baseline on the time-later test split (hybrid score, paired bootstrap CI).
    Exit status: 0 promoted (or --force), 3 baseline kept (gate refused), 2 bad input."""
    settings = load_settings(data_dir)
    import tempfile

    from indexing.bundle import load_bundle
    from service.wiring import resolve_bundle_path
    from training.finetune import TrainConfig
    from training.promote import GATE_REFUSED_EXIT_CODE, check_registry_dir, run_training, write_gate_report
    from training.quality import load_labelled

    overrides = {"full": full, "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                 "lora_rank": lora_rank, "lora_alpha": lora_alpha, "max_pairs": max_pairs,
                 "max_seq_length": max_seq_length, "seed": seed, "primary_metric": primary_metric,
                 "min_improvement": min_improvement, "target_fpr": target_fpr,
                 "target_false_alarm": target_false_alarm, "confidence": confidence,
                 "target_modules": [m.strip() for m in target_modules.split(",")] if target_modules else None}
    try:
        from pydantic import ValidationError

        try:
            cfg = (TrainConfig.from_file(config, **overrides) if config is not None
                   else TrainConfig.model_validate({k: v for k, v in overrides.items() if v is not None}))
        except (ValidationError, ValueError, OSError) as exc:
            raise IncidentSimError(f"training config: {exc}") from None
        registry = bundles_dir or settings.bundles_dir
        check_registry_dir(registry)
        verdicts = None
        if feedback is not None:
            from training.data.feedback import load_feedback

            verdicts = load_feedback(feedback)
        baseline = load_bundle(resolve_bundle_path(settings))
        corpus = load_labelled(data, n=n)
        with tempfile.TemporaryDirectory(prefix="base-model-") as tmp:
            if base_model is None:
                from training.baseline import BASE_MODEL, assemble_baseline

                model_dir, model_name = assemble_baseline(Path(tmp)), BASE_MODEL
            else:
                if not (base_model / "config.json").is_file():
                    raise IncidentSimError(f"{base_model} is not a sentence-transformers model folder (no config.json)")
                model_dir, model_name = base_model, str(base_model)
            outcome = run_training(corpus, model_dir, model_name, baseline, cfg, settings.data_dir,
                                   registry, name=name, force=force, feedback=verdicts)
    except IncidentSimError as exc:
        fail(exc)
    for p in write_gate_report(outcome.report, out, f"finetune-{corpus.name}"):
        typer.echo(f"wrote {p}")
    typer.echo(outcome.report["gate"]["reason"])
    if outcome.bundle_path is not None:
        label = "promoted" if outcome.promoted else "written WITHOUT passing the gate (--force)"
        typer.echo(f"new bundle {label}: {outcome.bundle_path}")
    if not outcome.promoted and not outcome.forced:
        typer.secho("baseline kept: the candidate did not beat it on held-out data", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(code=GATE_REFUSED_EXIT_CODE)
