"""The always-on checks of a fine-tuned model, then its save (training/finetune.py runs them after training):
1. the trained model's embeddings differ from the base model's on a fixed sample by more than
   `adapter_effect_floor` (catches an adapter attached where the forward pass never goes);
2. after `merge_and_unload()` the merged model's embeddings equal the adapter model's
   (max abs difference <= `merge_tolerance`);
3. the saved merged model loads as a plain SentenceTransformer in a fresh interpreter where peft
   cannot be imported, and gives the same embeddings.
Any failure raises AdapterCheckError and nothing is left on disk."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.lora import AdapterCheckError, peft_wrapper, set_transformer, transformer_attribute

if TYPE_CHECKING:
    from training.finetune import TrainConfig

logger = logging.getLogger(__name__)

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



def within(a: np.ndarray, b: np.ndarray, tolerance: float, what: str) -> float:
    """Max abs difference of two embedding matrices; AdapterCheckError above the tolerance."""
    diff = float(np.abs(a - b).max())
    if diff > tolerance:
        raise AdapterCheckError(f"{what} by {diff:.2e} (tolerance {tolerance:.0e})")
    return diff


def embeddings(model: Any, texts: Sequence[str]) -> np.ndarray:
    return np.asarray(model.encode(list(texts), batch_size=16, convert_to_numpy=True,
                                   normalize_embeddings=False, show_progress_bar=False), dtype=np.float64)


def check_and_save(model: Any, base_embeddings: np.ndarray, cfg: TrainConfig, out_dir: Path,
                   max_seq_length: int, merge: bool) -> dict[str, Any]:
    """The always-on checks, in order; the merged model is saved to `out_dir` only if they pass."""
    trained = embeddings(model, CHECK_TEXTS)
    effect = float(np.abs(trained - base_embeddings).max())
    if effect <= cfg.adapter_effect_floor:
        raise AdapterCheckError(
            f"the trained model's embeddings differ from the base model's by at most {effect:.2e} (floor "
            f"{cfg.adapter_effect_floor:.0e}) on {len(CHECK_TEXTS)} fixed texts: the adapter is not applied where "
            "the SentenceTransformer runs (wrap model[0].auto_model), or training did not move it")
    checks: dict[str, Any] = {"adapter_effect_max_abs_diff": effect, "adapter_effect_floor": cfg.adapter_effect_floor}
    if merge:
        set_transformer(model, peft_wrapper(model).merge_and_unload())
        for name, child in list(model[0].named_children()):  # a stray wrapper must not be saved with the model
            if name != transformer_attribute(model) and hasattr(child, "merge_and_unload"):
                delattr(model[0], name)
        merged = embeddings(model, CHECK_TEXTS)
        checks["merge_max_abs_diff"] = within(merged, trained, cfg.merge_tolerance,
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
        reload_diff = within(reloaded, embeddings(model, CHECK_TEXTS), cfg.merge_tolerance,
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
