"""The facts about this machine that timings depend on: CPU model and the instruction sets that matter for INT8
and vector search, cores, and the versions of the engines. CPUs differ between machines of one kind (AVX-512
VNNI on some, AVX2 only on others), so every timing is recorded with them (benchmarks, the bundle's INT8
recipe search)."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
PACKAGES = ("onnxruntime", "qdrant-edge-py", "qdrant-client", "numpy")


def cpu_facts() -> dict[str, Any]:
    flags: set[str] = set()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            **{flag: flag in flags for flag in FLAGS}, "python": platform.python_version(), "versions": versions}
