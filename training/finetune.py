"""Fine-tune a sentence-transformers encoder on mined pairs: LoRA (peft) on the transformer inside the
SentenceTransformer (model[0].auto_model; the attribute behind it in sentence-transformers 5), or full
fine-tuning; then the always-on adapter checks and the merge.

Checks (any failure raises AdapterCheckError and nothing is exported):
1. the trained model's embeddings differ from the base model's on a fixed sample by more than
   `adapter_effect_floor` (catches an adapter attached where the forward pass never goes);
2. after `merge_and_unload()` the merged model's embeddings equal the adapter model's
   (max abs difference <= `merge_tolerance`);
3. the saved merged model loads as a plain SentenceTransformer in a fresh interpreter where peft
   cannot be imported, and gives the same embeddings."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from indexing.errors import IncidentSimError
from training.deps import require
from training.pairs import PairSet, TrainingPair

logger = logging.getLogger(__name__)

# LoRA targets by transformer family: the attention projections.
DEFAULT_TARGET_MODULES = {"mpnet": ["q", "k", "v", "o"], "bert": ["query", "key", "value"]}

CHECK_TEXTS = (
    "VPN connection drops every few minutes for remote users after the gateway certificate was renewed",
    "Outlook cannot connect to Exchange; mailbox shows disconnected on several laptops in building 2",
    "Printer on floor 3 prints blank pages after the driver update",
    "SAP payroll batch job PRD-PAY-01 stuck in running state since 02:00",
    "Disk /var on db-prod-07 at 97% usage, alert from monitoring",
    "user locked out of account after password reset, MFA prompt never arrives",
    "Wi-Fi in the London office slow, packet loss to the core switch",
    "error 0x80070005 access denied when installing the Teams update",
)


class AdapterCheckError(IncidentSimError):
    """A fine-tuned model failed one of the always-on checks; it must not be exported."""


class TrainConfig(BaseModel):
    """Everything that determines a training run. The values used are written to the run's metadata."""

    model_config = ConfigDict(extra="forbid")

    full: bool = Field(False, description="Full fine-tuning instead of LoRA.")
    epochs: int = Field(1, ge=1, le=50)
    batch_size: int = Field(16, ge=2, le=512)
    learning_rate: float = Field(2e-4, gt=0, lt=1, description="2e-4 suits LoRA; use ~2e-5 with --full.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    lora_rank: int = Field(16, ge=1, le=256)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="Default: the attention projections of the family.")
    max_seq_length: int = Field(128, ge=16, le=512, description="Truncation while training (speed); the bundle "
                                                                "keeps the base model's length.")
    max_pairs: int | None = Field(None, ge=1, description="Train on at most this many pairs (sampled).")
    negatives_per_source: int = Field(1, ge=0, le=10, description="Hard negatives per pair from BM25 and from "
                                                                   "the current encoder each.")
    relative_ceiling: float = Field(0.95, gt=0, le=1)
    min_positives: int = Field(20, ge=1)
    seed: int = 13
    primary_metric: Literal["recall@10", "mrr"] = "mrr"
    min_improvement: float = Field(0.0, ge=0, description="The lower end of the CI of candidate - baseline on the "
                                                           "primary metric must exceed this.")
    adapter_effect_floor: float = Field(1e-3, gt=0)
    merge_tolerance: float = Field(1e-5, gt=0)
    target_false_alarm: float = Field(0.05, ge=0, lt=0.5, description="Per-incident false-alarm rate the promoted "
                                                                      "bundle's threshold keeps under.")
    target_fpr: float | None = Field(None, ge=0, lt=0.5, description="Instead: pair FPR to keep under.")
    confidence: float = Field(0.95, ge=0, lt=1, description="Clopper-Pearson confidence of the threshold's bound "
                                                             "(0: point estimate; else >= 0.5).")

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, value: float) -> float:
        if 0.0 < value < 0.5:
            raise ValueError("confidence must be 0 (the point estimate) or at least 0.5")
        return value
    bootstrap: int = Field(1000, ge=100)

    @classmethod
    def from_file(cls, path: Path, **overrides: Any) -> TrainConfig:
        data = json.loads(path.read_text()) if path.suffix == ".json" else _load_toml(path)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(data)


def _load_toml(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text())


@dataclass
class TrainedModel:
    model_dir: Path  # plain SentenceTransformer folder (merged)
    metadata: dict[str, Any]


Attach = Callable[[Any, TrainConfig], None]


def target_modules_for(model: Any, cfg: TrainConfig) -> list[str]:
    if cfg.target_modules:
        return cfg.target_modules
    model_type = getattr(get_transformer(model).config, "model_type", "")
    if model_type not in DEFAULT_TARGET_MODULES:
        raise IncidentSimError(f"no default LoRA target modules for model type {model_type!r}: "
                               "pass --target-modules")
    return DEFAULT_TARGET_MODULES[model_type]


def transformer_attribute(model: Any) -> str:
    """Name of the attribute of model[0] that holds the Hugging Face transformer its forward pass runs.
    sentence-transformers 5.x keeps it in `model` and exposes `auto_model` as a read-only property:
    assigning a wrapper to `auto_model` there only registers a stray submodule that forward never calls."""
    return "model" if isinstance(getattr(type(model[0]), "auto_model", None), property) else "auto_model"


def get_transformer(model: Any) -> Any:
    return getattr(model[0], transformer_attribute(model))


def set_transformer(model: Any, module: Any) -> None:
    setattr(model[0], transformer_attribute(model), module)
    if get_transformer(model) is not module:
        raise AdapterCheckError("could not put the wrapped transformer where the SentenceTransformer runs it")


def attach_lora(model: Any, cfg: TrainConfig) -> None:
    """Wrap the transformer *inside* the SentenceTransformer (model[0].auto_model) with a LoRA adapter, so
    every forward pass of the SentenceTransformer, in training and evaluation, goes through it."""
    peft = require("peft")
    lora = peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                           target_modules=target_modules_for(model, cfg), bias="none")
    set_transformer(model, peft.get_peft_model(get_transformer(model), lora))


def _peft_wrapper(model: Any) -> Any:
    """The peft model wrapping the transformer that the SentenceTransformer's forward pass runs."""
    runs = get_transformer(model)
    if hasattr(runs, "merge_and_unload"):
        return runs
    for module in model.modules():
        if hasattr(module, "merge_and_unload") and hasattr(module, "get_base_model") \
                and module.get_base_model() is runs:
            return module
    raise AdapterCheckError(f"no peft adapter wraps the {type(runs).__name__} the SentenceTransformer runs: the "
                            "adapter was attached elsewhere")


def _batches(pairs: Sequence[TrainingPair], groups: dict[str, int], batch_size: int,
             rng: random.Random) -> Iterator[list[TrainingPair]]:
    """Shuffled batches in which no two pairs share a link component: with in-batch negatives, another
    pair's positive from the same problem would be a false negative."""
    pending = list(pairs)
    rng.shuffle(pending)
    while pending:
        batch: list[TrainingPair] = []
        used: set[int] = set()
        rest = []
        for pair in pending:
            group = groups[pair.anchor]
            if len(batch) < batch_size and group not in used:
                batch.append(pair)
                used.add(group)
            else:
                rest.append(pair)
        pending = rest
        if len(batch) >= 2:
            yield batch


def _within(a: np.ndarray, b: np.ndarray, tolerance: float, what: str) -> float:
    """Max abs difference of two embedding matrices; AdapterCheckError above the tolerance."""
    diff = float(np.abs(a - b).max())
    if diff > tolerance:
        raise AdapterCheckError(f"{what} by {diff:.2e} (tolerance {tolerance:.0e})")
    return diff


def _embeddings(model: Any, texts: Sequence[str]) -> np.ndarray:
    return np.asarray(model.encode(list(texts), batch_size=16, convert_to_numpy=True,
                                   normalize_embeddings=False, show_progress_bar=False), dtype=np.float64)


def train(base_model_dir: Path, pair_set: PairSet, cfg: TrainConfig, out_dir: Path,
          attach: Attach = attach_lora, progress: bool = True) -> TrainedModel:
    """Train, check, merge and save a plain SentenceTransformer to `out_dir` (must not exist)."""
    torch = require("torch")
    st = require("sentence_transformers")
    if out_dir.exists():
        raise IncidentSimError(f"{out_dir} already exists; a training run writes a new directory")
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = st.SentenceTransformer(str(base_model_dir), device=device)
    original_max_len = model.max_seq_length
    model.max_seq_length = min(cfg.max_seq_length, original_max_len)
    model.eval()
    base_embeddings = _embeddings(model, CHECK_TEXTS)

    if cfg.full:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        attach(model, cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_total = sum(p.numel() for p in model.parameters())
    if n_trainable == 0:
        raise AdapterCheckError("no trainable parameter is reachable from the SentenceTransformer: the adapter is "
                                "not attached to the model that is trained and exported")
    logger.info("training %s: %d of %d parameters trainable (%.2f%%) on %s", "full model" if cfg.full else "LoRA",
                n_trainable, n_total, 100 * n_trainable / n_total, device)

    rng = random.Random(cfg.seed)
    pairs = list(pair_set.pairs)
    if cfg.max_pairs and len(pairs) > cfg.max_pairs:
        pairs = rng.sample(pairs, cfg.max_pairs)
    width = min(len(p.negatives) for p in pairs)
    losses_mod = require("sentence_transformers.losses")
    loss_fn = losses_mod.MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    epoch_batches = [list(_batches(pairs, pair_set.groups, cfg.batch_size, random.Random(cfg.seed + e)))
                     for e in range(cfg.epochs)]
    total_steps = sum(len(b) for b in epoch_batches)
    if total_steps == 0:
        raise IncidentSimError("no training batch of at least two pairs from different problems could be formed")
    warmup = math.ceil(cfg.warmup_ratio * total_steps)

    def lr_factor(step: int) -> float:  # linear warm-up, then linear decay to 0
        return min((step + 1) / max(warmup, 1), max(0.0, (total_steps - step) / max(total_steps - warmup, 1)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    texts = pair_set.texts
    losses: list[float] = []
    started = time.monotonic()
    model.train()
    bar = tqdm(total=total_steps, desc="training", unit="step", disable=not progress)
    for epoch, batches in enumerate(epoch_batches):
        epoch_losses = []
        for batch in batches:
            columns = [[texts[p.anchor] for p in batch], [texts[p.positive] for p in batch]]
            columns += [[texts[p.negatives[j]] for p in batch] for j in range(width)]
            features = [{k: v.to(device) if hasattr(v, "to") else v for k, v in model.preprocess(col).items()}
                        for col in columns]
            loss = loss_fn(features, None)
            if not loss.requires_grad:
                raise AdapterCheckError("the training loss does not depend on any trainable parameter: the adapter "
                                        "is not on the SentenceTransformer's forward path (wrap model[0].auto_model)")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            epoch_losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{epoch_losses[-1]:.3f}")
        losses.append(float(np.mean(epoch_losses)) if epoch_losses else float("nan"))
        logger.info("epoch %d/%d: mean loss %.4f", epoch + 1, cfg.epochs, losses[-1])
    bar.close()
    model.eval()
    train_seconds = time.monotonic() - started

    checks = check_and_save(model, base_embeddings, cfg, out_dir, original_max_len, merge=not cfg.full)
    metadata = {
        "kind": "full" if cfg.full else "lora",
        "fine_tuned": True,
        "config": cfg.model_dump(),
        "target_modules": None if cfg.full else target_modules_for(model, cfg),
        "trainable_parameters": n_trainable,
        "total_parameters": n_total,
        "device": device,
        "pairs_used": len(pairs),
        "hard_negatives_per_pair": width,
        "steps": total_steps,
        "epoch_mean_loss": losses,
        "train_seconds": round(train_seconds, 1),
        "checks": checks,
        "versions": {"torch": torch.__version__, "sentence_transformers": st.__version__,
                     "peft": None if cfg.full else require("peft").__version__},
    }
    return TrainedModel(out_dir, metadata)


def check_and_save(model: Any, base_embeddings: np.ndarray, cfg: TrainConfig, out_dir: Path,
                   max_seq_length: int, merge: bool) -> dict[str, Any]:
    """The always-on checks, in order; the merged model is saved to `out_dir` only if they pass."""
    trained = _embeddings(model, CHECK_TEXTS)
    effect = float(np.abs(trained - base_embeddings).max())
    if effect <= cfg.adapter_effect_floor:
        raise AdapterCheckError(
            f"the trained model's embeddings differ from the base model's by at most {effect:.2e} (floor "
            f"{cfg.adapter_effect_floor:.0e}) on {len(CHECK_TEXTS)} fixed texts: the adapter is not applied where "
            "the SentenceTransformer runs (wrap model[0].auto_model), or training did not move it")
    checks: dict[str, Any] = {"adapter_effect_max_abs_diff": effect, "adapter_effect_floor": cfg.adapter_effect_floor}
    if merge:
        set_transformer(model, _peft_wrapper(model).merge_and_unload())
        for name, child in list(model[0].named_children()):  # a stray wrapper must not be saved with the model
            if name != transformer_attribute(model) and hasattr(child, "merge_and_unload"):
                delattr(model[0], name)
        merged = _embeddings(model, CHECK_TEXTS)
        checks["merge_max_abs_diff"] = _within(merged, trained, cfg.merge_tolerance,
                                               "merged embeddings differ from the adapter model's")
        trained = merged
    model.max_seq_length = max_seq_length
    model.save(str(out_dir))
    try:
        leftovers = [p.name for p in out_dir.rglob("adapter_config.json")]
        if leftovers:
            raise AdapterCheckError(f"{out_dir} still holds an adapter ({leftovers}); the merge did not happen")
        reloaded = load_without_peft(out_dir, CHECK_TEXTS)
        model.to("cpu")
        reload_diff = _within(reloaded, _embeddings(model, CHECK_TEXTS), cfg.merge_tolerance,
                              "the saved model, loaded without peft, differs from the trained one")
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)  # a model that failed its checks is not left behind
        raise
    checks["reload_without_peft_max_abs_diff"] = reload_diff
    logger.info("adapter checks passed: effect %.3e, merge %.1e, reload %.1e", effect,
                checks.get("merge_max_abs_diff", 0.0), reload_diff)
    return checks


_RELOAD_SCRIPT = """
import json, sys
sys.modules["peft"] = None  # the loading path of a served/exported model must not need peft
import numpy as np
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
texts = json.loads(sys.stdin.read())
vectors = model.encode(texts, batch_size=16, convert_to_numpy=True, normalize_embeddings=False)
np.save(sys.argv[2], vectors.astype(np.float64))
"""


def load_without_peft(model_dir: Path, texts: Sequence[str]) -> np.ndarray:
    """Load `model_dir` as a plain SentenceTransformer in a fresh interpreter with peft blocked."""
    out = model_dir.parent / f".{model_dir.name}-reload.npy"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _RELOAD_SCRIPT, str(model_dir), str(out)],
                          input=json.dumps(list(texts)), capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise AdapterCheckError(f"the saved model does not load as a plain SentenceTransformer without peft:\n"
                                f"{proc.stderr.strip()[-2000:]}")
    try:
        return np.load(out)
    finally:
        out.unlink(missing_ok=True)
