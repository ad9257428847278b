#!/usr/bin/env bash
# Create .venv if absent and install fingerquant into it: the CPU build of torch
# first (a plain `pip install torch` would pull a CUDA build of several GB), then
# the project with its dev extras. Safe to run again: it installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_SPEC=${FINGERQUANT_TORCH:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/pip install --quiet --disable-pip-version-check "$TORCH_SPEC"
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
