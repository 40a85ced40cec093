"""Lazy imports of the heavy training stack, with a message naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SystemExit(
            f"'{module}' is not installed: this command needs the training extra. "
            "Install it with: pip install -e '.[train]'"
        ) from exc
