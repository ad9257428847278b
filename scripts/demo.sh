#!/usr/bin/env bash
# Set up the environment, then run the main job on the CapFingerId recordings in
# $FINGERQUANT_DATA (default data/capfingerid).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m fingerquant.data summarize "$@"
