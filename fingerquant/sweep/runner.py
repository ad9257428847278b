"""Run the cells of a sweep, each ``quantize.py`` in its own process, resuming where it stopped.

A cell is finished when its folder contains ``results.json``. A cell that fails
leaves ``error.txt`` with the end of its output, and the sweep goes on. The next
run of the sweep tries it again. A folder without either file is a cell that
was interrupted, and is cleared before it runs again.

With ``jobs`` above 1, that many cells run at once. Each ``quantize.py`` uses
one PyTorch thread by default, so ``jobs`` can be the number of cores.
"""

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fingerquant.paths import RESULTS_FILE
from fingerquant.sweep.config import Cell, SweepConfig

QUANTIZE_SCRIPT = Path(__file__).resolve().parents[2] / "quantize.py"
ERROR_FILE = "error.txt"
ERROR_TAIL_CHARS = 4000


@dataclass
class CellOutcome:
    """A cell and what came of it: its results, or the error that stopped it."""

    cell: Cell
    results: dict | None
    error: str | None


def run_sweep(config: SweepConfig, dry_run: bool = False, jobs: int = 1) -> list[CellOutcome]:
    """Run every unfinished cell, ``jobs`` at a time, and return the outcome of all cells."""
    config.output.mkdir(parents=True, exist_ok=True)
    pending = [
        cell for cell in config.cells if not (config.output / cell.name / RESULTS_FILE).exists()
    ]
    if not dry_run and pending:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        finished = len(config.cells) - len(pending)
        with Progress(*columns) as progress:
            task = progress.add_task("sweep", total=len(config.cells), completed=finished)

            def show_done(cell: Cell) -> None:
                progress.update(task, description=f"done {cell.name}")
                progress.advance(task)

            _run_cells(pending, config.output, jobs, show_done)
    return collect_outcomes(config)


def _run_cells(cells: list[Cell], output: Path, jobs: int, on_done: Callable[[Cell], None]) -> None:
    """Run ``cells`` in order, ``jobs`` at a time, calling ``on_done`` as each one ends."""
    queue = iter(cells)
    running: dict[Future, Cell] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:

        def start_next() -> None:
            cell = next(queue, None)
            if cell is not None:
                running[pool.submit(run_cell, cell, output / cell.name)] = cell

        # A cell starts only when another ends, so an error or Ctrl-C here starts no
        # more cells. Ctrl-C also reaches the running cells' processes, which stop.
        for _ in range(jobs):
            start_next()
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
                    on_done(running.pop(future))
                    start_next()
        except KeyboardInterrupt:
            # A cell stopped by Ctrl-C was interrupted, not failed. Without error.txt
            # its folder reads as interrupted, so the next run starts it afresh.
            wait(running)
            for cell in running.values():
                (output / cell.name / ERROR_FILE).unlink(missing_ok=True)
            raise


def collect_outcomes(config: SweepConfig) -> list[CellOutcome]:
    """Return the outcome of every cell of the sweep, as its folder records it."""
    return [read_outcome(cell, config.output / cell.name) for cell in config.cells]


def run_cell(cell: Cell, folder: Path) -> None:
    """Run one cell in a fresh process; on failure write its error to ``error.txt``."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    command = [sys.executable, str(QUANTIZE_SCRIPT), *cell.arguments(), "--run_dir", str(folder)]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or not (folder / RESULTS_FILE).exists():
        output = (completed.stdout + completed.stderr)[-ERROR_TAIL_CHARS:]
        # quantize.py removes a run folder it rejected before writing anything.
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ERROR_FILE).write_text(
            f"exit code {completed.returncode} after {time.perf_counter() - start:.0f} s\n"
            f"command: {' '.join(command)}\n{output}"
        )


def read_outcome(cell: Cell, folder: Path) -> CellOutcome:
    """Return the results or the recorded error of a cell, or neither if it has not run."""
    results_path, error_path = folder / RESULTS_FILE, folder / ERROR_FILE
    if results_path.exists():
        return CellOutcome(cell, json.loads(results_path.read_text()), None)
    if error_path.exists():
        return CellOutcome(cell, None, _error_summary(error_path.read_text()))
    return CellOutcome(cell, None, None)


def _error_summary(text: str) -> str:
    """Return the last line that mentions an error, joined with its indented continuation."""
    lines = text.splitlines()
    found = [i for i, line in enumerate(lines) if "error" in line.lower()]
    if not found:
        return "failed, see error.txt"
    summary = [lines[found[-1]].strip()]
    for line in lines[found[-1] + 1 :]:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        summary.append(line.strip())
    return " ".join(summary)
