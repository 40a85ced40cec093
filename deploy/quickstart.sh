#!/usr/bin/env bash
# One command, end to end on the embedded defaults: install, build the baseline bundle (once), generate 5,000
# sample incidents, index the first 500 and serve /similar while the rest are indexed in the background.
#   INCIDENT_SIM_PORT=8000 INCIDENT_SIM_DATA_DIR=./var bash deploy/quickstart.sh [--search-int8] [--n N]
# It prints how long each step took, and the total since this script started (install included).
set -euo pipefail
export INCIDENT_SIM_QUICKSTART_STARTED="${INCIDENT_SIM_QUICKSTART_STARTED:-$(date +%s.%N)}"
cd "$(dirname "$0")/.."
install_started=$(date +%s)
bash deploy/install.sh train
echo "==> install took $(( $(date +%s) - install_started )) s"
export HF_HUB_OFFLINE=1
exec .venv/bin/incident-sim quickstart "$@"
