#!/usr/bin/env bash
# One command, end to end on the embedded defaults: install, build the baseline bundle (once),
# generate and index 5,000 sample incidents into Qdrant Edge (idempotent), serve /similar.
#   INCIDENT_SIM_PORT=8000 INCIDENT_SIM_DATA_DIR=./var bash deploy/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install.sh train
export HF_HUB_OFFLINE=1
exec .venv/bin/incident-sim quickstart "$@"
