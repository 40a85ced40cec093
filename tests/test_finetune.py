"""Fine-tuning with LoRA and the promotion gate, on a tiny model (all-MiniLM-L6-v2 from its package) and a
corpus built so that the baseline is weak (tests/codename_corpus.py)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from codename_corpus import codename_corpus
from typer.testing import CliRunner

from indexing.bundle import Bundle, load_bundle
from indexing.encoder import OnnxEncoder
from indexing.errors import InputDataError
from indexing.incidents import Incident
from training.adapter_checks import load_without_peft
from training.data.labels import LabelledCorpus, from_incidents
from training.evaluate import time_boundaries
from training.finetune import AdapterCheckError, TrainConfig, TrainedModel, train
from training.pairs import PairSet, link_components, mine_pairs
from training.promote import GATE_REFUSED_EXIT_CODE, compare, evaluate_bundle

# Enough to learn the codenames on 2 CPU cores in about a minute.
GOOD_TRAINING = {"epochs": 8, "learning_rate": 1e-3, "batch_size": 16}


def corpus_of(rows: list[dict[str, Any]]) -> LabelledCorpus:
    return from_incidents([Incident.model_validate(r) for r in rows], "codename")


@pytest.fixture(scope="module")
def corpus() -> LabelledCorpus:
    return corpus_of(codename_corpus())


@pytest.fixture(scope="module")
def pair_set(corpus: LabelledCorpus, encoder: OnnxEncoder) -> PairSet:
    return mine_pairs(corpus, lambda texts: encoder.encode(texts).vectors, "incident-v1+stem")


def stage_registry(tmp_path: Path, baseline: Bundle) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(baseline.path, data_dir / "bundles" / baseline.path.name)
    return data_dir


def test_pairs_come_from_the_train_split_and_skip_false_negatives(corpus: LabelledCorpus,
                                                                   pair_set: PairSet) -> None:
    train_end, _ = time_boundaries(corpus)
    train_numbers = {i.number for i in corpus.incidents[:train_end]}
    linked = corpus.linked()
    groups = link_components([i.number for i in corpus.incidents], sorted(corpus.links))
    assert pair_set.pairs
    for pair in pair_set.pairs:
        assert {pair.anchor, pair.positive, *pair.negatives} <= train_numbers
        assert pair.positive in linked[pair.anchor]
        assert all(groups[n] != groups[pair.anchor] for n in pair.negatives)
    hardness = pair_set.stats["hardness_baseline_roc_auc"]
    # mined negatives must be harder for the baseline than random ones, or they teach nothing
    assert hardness["mined_negatives"]["hybrid"] < hardness["random_negatives"]["hybrid"]


def test_too_few_positives_is_refused_with_a_clear_message(corpus: LabelledCorpus, encoder: OnnxEncoder) -> None:
    with pytest.raises(InputDataError, match=r"only \d+ links .* needs at least 1000"):
        mine_pairs(corpus, lambda texts: encoder.encode(texts).vectors, "incident-v1", min_positives=1000)


def attach_to_a_copy(model: Any, cfg: TrainConfig) -> None:
    """The notebook-era mistake, constructed: the adapter wraps a transformer that the SentenceTransformer's
    forward pass never runs (here a copy kept beside it), so training and evaluation use the base model."""
    import peft

    side = peft.get_peft_model(copy.deepcopy(model[0].auto_model),
                               peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
    model[0].side_adapter = side


def test_adapter_attached_at_the_wrong_level_is_caught(minilm_dir: Path, pair_set: PairSet, tmp_path: Path) -> None:
    with pytest.raises(AdapterCheckError, match="not on the SentenceTransformer's forward path"):
        train(minilm_dir, pair_set, TrainConfig(max_pairs=32, learning_rate=1e-3), tmp_path / "model",
              attach=attach_to_a_copy, progress=False)
    assert not (tmp_path / "model").exists()  # nothing saved


def test_adapter_effect_check_fails_when_the_exported_model_is_the_base_model(minilm_dir: Path,
                                                                              tmp_path: Path) -> None:
    """The other half of the notebook bug: an adapter trained somewhere, the base model evaluated/exported."""
    from sentence_transformers import SentenceTransformer

    from training.adapter_checks import CHECK_TEXTS, check_and_save
    from training.adapter_checks import embeddings as _embeddings

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    base = _embeddings(model, CHECK_TEXTS)
    with pytest.raises(AdapterCheckError, match="differ from the base model's by at most 0.00e"):
        check_and_save(model, base, TrainConfig(), tmp_path / "model", 256, merge=True)
    assert not (tmp_path / "model").exists()


def test_training_refuses_an_existing_output_directory(minilm_dir: Path, pair_set: PairSet, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(Exception, match="already exists"):
        train(minilm_dir, pair_set, TrainConfig(), tmp_path / "model", progress=False)


def test_cli_promotes_a_fine_tune_that_beats_a_weak_baseline(minilm_dir: Path, minilm_bundle: Bundle,
                                                             tmp_path: Path) -> None:
    from service.cli import app

    data_file = tmp_path / "codename.json"
    data_file.write_text(json.dumps(codename_corpus()))
    data_dir = stage_registry(tmp_path, minilm_bundle)
    # agents' feedback restating a train-split link (no new pair) and one outside the train split: the pairs
    # and so the training stay those of the corpus, and the bundle records what the feedback gave
    corpus = corpus_of(codename_corpus())
    train_end, _ = time_boundaries(corpus)
    in_train = {i.number for i in corpus.incidents[:train_end]}
    known = next((a, b) for a, b in sorted(corpus.links) if a in in_train and b in in_train)
    later = next((a, b) for a, b in sorted(corpus.links) if a not in in_train and b not in in_train)
    verdicts = tmp_path / "feedback.jsonl"
    verdicts.write_text("\n".join(json.dumps({"incident": a, "suggested": b, "verdict": "duplicate",
                                              "source": "servicenow"}) for a, b in (known, later)))
    result = CliRunner().invoke(app, [
        "train", "--data", str(data_file), "--data-dir", str(data_dir), "--base-model", str(minilm_dir),
        "--epochs", str(GOOD_TRAINING["epochs"]), "--learning-rate", str(GOOD_TRAINING["learning_rate"]),
        "--name", "minilm-lora", "--out", str(tmp_path / "reports"), "--feedback", str(verdicts)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "finetune-codename.json").read_text())
    gate = report["gate"]
    assert gate["passed"] and report["decision"] == "promoted"
    hybrid = gate["table"]["hybrid"]["mrr"]
    assert hybrid["difference"]["ci95"][0] > 0
    assert hybrid["candidate"]["value"] > hybrid["baseline"]["value"]
    new = [p for p in (data_dir / "bundles").iterdir() if p.name.startswith("minilm-lora-")]
    assert len(new) == 1 and "+cal" in new[0].name
    bundle = load_bundle(new[0])
    manifest = bundle.manifest
    assert manifest["gate"]["passed"] and manifest["gate"]["gated"] and not manifest["gate"]["forced"]
    assert manifest["threshold"]["source"] == "calibrated"
    # a fine-tuned bundle saw the train split: its threshold is chosen on validation only, per incident
    assert manifest["threshold"]["calibration"]["splits"] == ["validation"]
    assert bundle.threshold_target == {"unit": "incident_false_alarm", "target": 0.05, "confidence": 0.95}
    training = manifest["training"]
    assert training["kind"] == "lora" and training["target_modules"] == ["query", "key", "value"]
    assert training["config"]["epochs"] == GOOD_TRAINING["epochs"]
    assert len(training["data"]["corpus_sha256"]) == 64 and len(training["data"]["pairs_sha256"]) == 64
    assert training["data"]["feedback"] == {"pairs": 2, "duplicate": 2, "not_similar": 0, "related": 0,
                                            "conflicting": 0, "duplicates_used": 0,
                                            "duplicates_outside_train_split": 1, "not_similar_used": 0}
    checks = training["checks"]
    assert checks["adapter_effect_max_abs_diff"] > checks["adapter_effect_floor"]
    assert checks["merge_max_abs_diff"] <= 1e-5 and checks["reload_without_peft_max_abs_diff"] <= 1e-5
    assert manifest["bm25"]["analyzer"] == minilm_bundle.bm25["analyzer"]
    # the merged model that was exported is a plain SentenceTransformer: no adapter files, loads without peft
    model_dir = Path(report["candidate"]["model_dir"])
    assert not list(model_dir.rglob("adapter_config.json"))
    from sentence_transformers import SentenceTransformer

    texts = ["zumbrak fails the nightly job", "file share fails the nightly job"]
    in_process = SentenceTransformer(str(model_dir), device="cpu").encode(texts)
    assert np.abs(load_without_peft(model_dir, texts) - in_process).max() <= 1e-5
    # the promoted bundle's ONNX encoder serves what was trained: the codename now sits next to its system
    onnx = OnnxEncoder(bundle.encoder_path, bundle.tokenizer_path, bundle.max_seq_length)
    tuned = onnx.encode(["zumbrak fails the nightly job", "file share fails the nightly job",
                         "vexor fails the nightly job"]).vectors
    assert tuned[0] @ tuned[1] > tuned[0] @ tuned[2]


def test_gate_refuses_a_model_trained_on_shuffled_labels(minilm_dir: Path, minilm_bundle: Bundle, encoder: OnnxEncoder,
                                                         corpus: LabelledCorpus, tmp_path: Path) -> None:
    from training.bundle_writer import write_bundle

    shuffled = corpus_of(codename_corpus(shuffled_links=True))
    pairs = mine_pairs(shuffled, lambda texts: encoder.encode(texts).vectors, minilm_bundle.bm25["analyzer"])
    trained = train(minilm_dir, pairs, TrainConfig(**GOOD_TRAINING), tmp_path / "model", progress=False)
    candidate = load_bundle(write_bundle(trained.model_dir, tmp_path / "candidate", "shuffled", "minilm",
                                         parity_sample=32, bm25=dict(minilm_bundle.bm25)))
    cfg = TrainConfig()
    gate = compare(evaluate_bundle(minilm_bundle, corpus, tmp_path / "base-index", progress=False),
                   evaluate_bundle(candidate, corpus, tmp_path / "cand-index", progress=False), cfg)
    assert not gate["passed"], gate["reason"]
    assert gate["table"]["hybrid"]["mrr"]["difference"]["ci95"][0] <= 0


def copy_of_base(base_model_dir: Path, pair_set: PairSet, cfg: TrainConfig, out_dir: Path, **_: Any) -> TrainedModel:
    """A 'training' that returns the base model unchanged: a candidate no better than the baseline."""
    shutil.copytree(base_model_dir, out_dir)
    return TrainedModel(out_dir, {"kind": "lora", "fine_tuned": True, "config": cfg.model_dump(), "steps": 0,
                                  "train_seconds": 0.0, "device": "cpu", "epoch_mean_loss": []})


def test_cli_keeps_the_baseline_with_a_distinct_exit_status(minilm_dir: Path, minilm_bundle: Bundle, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    monkeypatch.setattr("training.promote.train", copy_of_base)
    data_file = tmp_path / "codename.json"
    data_file.write_text(json.dumps(codename_corpus()))
    data_dir = stage_registry(tmp_path, minilm_bundle)
    before = sorted(p.name for p in (data_dir / "bundles").iterdir())
    # the candidate is the baseline's weights; its INT8 recipe may differ (chosen by timing), so its scores can
    # differ in the 5th decimal: a one-point margin makes the refusal certain
    result = CliRunner().invoke(app, ["train", "--data", str(data_file), "--data-dir", str(data_dir),
                                      "--base-model", str(minilm_dir), "--out", str(tmp_path / "reports"),
                                      "--min-improvement", "0.01"])
    assert result.exit_code == GATE_REFUSED_EXIT_CODE, result.output
    assert "baseline kept" in result.output
    assert sorted(p.name for p in (data_dir / "bundles").iterdir()) == before
    report = json.loads((tmp_path / "reports" / "finetune-codename.json").read_text())
    assert report["decision"] == "baseline kept"
    assert abs(report["gate"]["table"]["hybrid"]["mrr"]["difference"]["value"]) < 0.01

    # --force writes the bundle, marked as not gated; an interruption while writing it leaves nothing behind
    real_copy = shutil.copy2
    calls = {"n": 0}

    def interrupted_copy(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if str(dst).startswith(str(data_dir / "bundles")):  # only the copy into the registry fails
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(28, "No space left on device")
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr("training.calibrate.shutil.copy2", interrupted_copy)
    result = CliRunner().invoke(app, ["train", "--data", str(data_file), "--data-dir", str(data_dir), "--force",
                                      "--min-improvement", "0.01",
                                      "--base-model", str(minilm_dir), "--out", str(tmp_path / "reports")])
    assert result.exit_code != 0 and calls["n"] == 2
    assert sorted(p.name for p in (data_dir / "bundles").iterdir()) == before  # no half-written bundle, no staging
    monkeypatch.setattr("training.calibrate.shutil.copy2", real_copy)
    result = CliRunner().invoke(app, ["train", "--data", str(data_file), "--data-dir", str(data_dir), "--force",
                                      "--min-improvement", "0.01",
                                      "--base-model", str(minilm_dir), "--out", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    forced = [p for p in (data_dir / "bundles").iterdir() if p.name not in before]
    assert len(forced) == 1
    gate = load_bundle(forced[0]).manifest["gate"]
    assert gate["forced"] and not gate["gated"] and not gate["passed"]


def test_cli_refuses_to_write_into_a_bundle(minilm_bundle: Bundle, tmp_path: Path) -> None:
    from service.cli import app

    data_dir = stage_registry(tmp_path, minilm_bundle)
    result = CliRunner().invoke(app, ["train", "--data", "sample", "--n", "300", "--data-dir", str(data_dir),
                                      "--bundles-dir", str(minilm_bundle.path)])
    assert result.exit_code == 2
    assert "is itself a bundle" in result.output


def test_training_config_from_file_with_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text('epochs = 3\nlora_rank = 8\ntarget_modules = ["q", "v"]\nprimary_metric = "recall@10"\n')
    cfg = TrainConfig.from_file(path, epochs=5, seed=None)
    assert (cfg.epochs, cfg.lora_rank, cfg.target_modules, cfg.primary_metric) == (5, 8, ["q", "v"], "recall@10")
    path.write_text("epochs = 3\nlearnin_rate = 0.1\n")
    with pytest.raises(ValueError, match="learnin_rate"):
        TrainConfig.from_file(path)
    with pytest.raises(ValueError, match="primary_metric"):
        TrainConfig(primary_metric="accuracy")  # type: ignore[arg-type]
