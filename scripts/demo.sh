#!/usr/bin/env bash
# Set up the environment, then run the main job on the CapFingerId recordings in
# $FINGERQUANT_DATA (default data/capfingerid): the data summary, then PD-Quant W4A4
# of the shipped thumbs Model 1, which prints its results table and leaves a run
# folder under runs/quantize/. Extra arguments go to quantize.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m fingerquant.data summarize
exec .venv/bin/python quantize.py --config configs/quantize/thumbs_model1.yaml "$@"
