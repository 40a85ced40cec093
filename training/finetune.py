"""Fine-tune a sentence-transformers encoder on mined pairs: LoRA (peft, training/lora.py) on the transformer
inside the SentenceTransformer, or full fine-tuning; then the always-on adapter checks and the merge
(training/adapter_checks.py: any failure raises AdapterCheckError and nothing is exported)."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from indexing.errors import IncidentSimError
from training.adapter_checks import CHECK_TEXTS, check_and_save, embeddings
from training.deps import require
from training.lora import AdapterCheckError, attach_lora, target_modules_for
from training.pairs import PairSet, TrainingPair

logger = logging.getLogger(__name__)
__all__ = ["AdapterCheckError", "TrainConfig", "TrainedModel", "train"]


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
    base_embeddings = embeddings(model, CHECK_TEXTS)

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
