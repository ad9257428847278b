"""Sweep configuration: a grid of ``quantize.py`` settings read from YAML.

    output: runs/sweeps/main          # cells, results.csv and results.md go here
    base:                             # options of every cell
      model.recon_iters: 2000
    grid:                             # the cartesian product of these axes
      config: [configs/quantize/thumbs_model1.yaml, configs/quantize/fingers_model1.yaml]
      bits:                           # a value may set several options at once
        - {model.w_bits: 4, model.a_bits: 4}
        - {model.w_bits: 2, model.a_bits: 4}
      model.method: [rtn, pdquant]
    aggregate_over: seed_everything   # optional: mean and std over this axis in results.md

Keys are ``quantize.py`` options without the leading dashes (``config`` is
``--config``). Options from ``base`` and the grid override the same keys of the
quantize config file. Relative paths (``output``, ``config`` files) are taken
from the current folder, as ``quantize.py`` takes them, not from the sweep file.
An axis whose values are mappings is named freely; its values' keys are the
options.
"""

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fingerquant.errors import DataError


@dataclass(frozen=True)
class Cell:
    """One grid point: its axis values (for tables), its options and its folder name."""

    labels: dict[str, str]
    options: dict[str, Any]
    name: str

    def arguments(self) -> list[str]:
        """Return the options as ``quantize.py`` command-line arguments, ``--config`` first.

        LightningCLI applies arguments in order, so a config file given after an
        option would reset it. With ``--config`` first, every other option wins.
        """
        ordered = sorted(self.options.items(), key=lambda item: item[0] != "config")
        return [part for key, value in ordered for part in (f"--{key}", _text(value))]


@dataclass(frozen=True)
class SweepConfig:
    """A parsed sweep: where it writes and the cells it runs, in grid order."""

    output: Path
    cells: list[Cell]
    aggregate_over: str | None = None


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and check a sweep file, raising ``DataError`` with the file and key on bad input."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Sweep config not found: {path} is not a file.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise DataError(f"{path}{where}: invalid YAML ({problem}).") from error
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping with a non-empty 'grid' of axes.")
    unknown = set(raw) - {"output", "base", "grid", "aggregate_over"}
    if unknown:
        raise DataError(
            f"{path}: unknown keys {', '.join(sorted(unknown))}: expected output, base, grid, "
            "aggregate_over."
        )
    if not isinstance(raw.get("grid"), dict) or not raw["grid"]:
        raise DataError(f"{path}: expected a non-empty 'grid' mapping of axes to value lists.")

    base = raw.get("base") or {}
    axes = []
    for axis, values in raw["grid"].items():
        if not isinstance(values, list) or not values:
            raise DataError(f"{path}: grid axis {axis!r} must be a non-empty list of values.")
        axes.append([(axis, value) for value in values])
    aggregate_over = raw.get("aggregate_over")
    if aggregate_over is not None and aggregate_over not in raw["grid"]:
        raise DataError(f"{path}: aggregate_over {aggregate_over!r} is not an axis of the grid.")

    cells = [_cell(base, point) for point in itertools.product(*axes)]
    for cell in cells:
        config_file = cell.options.get("config")
        if config_file is not None and not Path(config_file).is_file():
            raise DataError(f"{path}: quantize config {config_file} not found.")
    output = Path(raw.get("output") or Path("runs/sweeps") / path.stem)
    return SweepConfig(output=output, cells=cells, aggregate_over=aggregate_over)


def _cell(base: dict[str, Any], point: tuple[tuple[str, Any], ...]) -> Cell:
    options = dict(base)
    labels = {}
    for axis, value in point:
        if isinstance(value, dict):
            options.update(value)
            labels[axis] = " ".join(f"{key.split('.')[-1]}={_text(v)}" for key, v in value.items())
        else:
            options[axis] = value
            labels[axis] = Path(value).stem if axis == "config" else _text(value)
    name = "_".join(re.sub(r"[^A-Za-z0-9._=-]+", "-", label) for label in labels.values())
    return Cell(labels=labels, options=options, name=name)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
