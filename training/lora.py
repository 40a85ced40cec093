"""LoRA plumbing for a SentenceTransformer: which modules to adapt, where its forward pass keeps the Hugging
Face transformer (sentence-transformers 5 moved it), attaching a peft adapter there and finding it again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from indexing.errors import IncidentSimError
from training.deps import require

if TYPE_CHECKING:
    from training.finetune import TrainConfig


class AdapterCheckError(IncidentSimError):
    """A fine-tuned model failed one of the always-on checks; it must not be exported."""


# LoRA targets by transformer family: the attention projections.
DEFAULT_TARGET_MODULES = {"mpnet": ["q", "k", "v", "o"], "bert": ["query", "key", "value"]}


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


def peft_wrapper(model: Any) -> Any:
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
