"""Grids of quantization runs: resumable, one process per cell, with CSV and Markdown tables."""

from fingerquant.sweep.config import Cell, SweepConfig, load_sweep
from fingerquant.sweep.runner import CellOutcome, run_sweep

__all__ = ["Cell", "CellOutcome", "SweepConfig", "load_sweep", "run_sweep"]
