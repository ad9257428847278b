"""Finished quantization runs of a sweep, read from each cell's ``results.json``."""

import json
from pathlib import Path

from fingerquant.errors import DataError
from fingerquant.paths import RESULTS_FILE


def load_runs(*sweep_folders: Path) -> list[dict]:
    """Return the results of every finished cell under the given sweep folders.

    A cell without ``results.json`` (failed, interrupted or not yet run) is left
    out, so tables built from a sweep still running show what has finished.
    """
    runs = []
    for folder in sweep_folders:
        if not folder.is_dir():
            raise DataError(
                f"Sweep folder not found: {folder}. Run its sweep first "
                "(python -m fingerquant.sweep --config configs/sweeps/<name>.yaml)."
            )
        if (folder / RESULTS_FILE).is_file():
            raise DataError(
                f"{folder} is the folder of one run; pass the sweep folder that contains its cells."
            )
        for path in sorted(folder.glob(f"*/{RESULTS_FILE}")):
            try:
                runs.append(json.loads(path.read_text()))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: invalid JSON ({error}).") from error
    return runs
