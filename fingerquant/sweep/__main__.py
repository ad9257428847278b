"""Run a grid of quantize.py settings and tabulate the results.

python -m fingerquant.sweep --config configs/sweeps/<name>.yaml [--jobs N]
"""

import sys
from pathlib import Path

from jsonargparse import ArgumentParser
from rich.console import Console

from fingerquant.errors import DataError
from fingerquant.paths import write_atomically
from fingerquant.sweep.config import SweepConfig, load_sweep
from fingerquant.sweep.runner import collect_outcomes, run_sweep
from fingerquant.sweep.table import markdown_table, write_csv

INTERRUPTED_STATUS = 130
"""Exit status of a sweep stopped by Ctrl-C, as shells report SIGINT."""


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, then write ``results.csv`` and ``results.md`` beside its cells."""
    parser = ArgumentParser(
        prog="python -m fingerquant.sweep",
        description="Run a grid of quantize.py settings, one process per cell, skipping "
        "finished cells, and write results.csv and results.md into the sweep's folder.",
    )
    parser.add_argument("--config", required=True, help="Sweep YAML file.")
    parser.add_argument(
        "--output", default=None, help="Folder of the cells (overrides the file's output)."
    )
    parser.add_argument(
        "--dry_run", action="store_true", help="Only rebuild the tables from finished cells."
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="Cells run at once. Each uses one PyTorch thread, so the number of cores is a "
        "good value.",
    )
    args = parser.parse_args(argv)

    console = Console()
    try:
        config = _load(args.config, args.output, args.jobs)
    except DataError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        return 1

    interrupted = False
    try:
        outcomes = run_sweep(config, dry_run=args.dry_run, jobs=args.jobs)
    except KeyboardInterrupt:
        interrupted = True
        outcomes = collect_outcomes(config)

    write_csv(config.output / "results.csv", outcomes)
    table = markdown_table(outcomes, config.aggregate_over)
    write_atomically(config.output / "results.md", table.encode())
    console.print(table, soft_wrap=True, markup=False, highlight=False)

    finished = sum(1 for outcome in outcomes if outcome.results)
    failed = sum(1 for outcome in outcomes if outcome.error)
    not_run = len(outcomes) - finished - failed
    console.print(
        f"{finished} of {len(outcomes)} cells finished, {failed} failed, {not_run} not run; "
        f"tables in {config.output}",
        soft_wrap=True,
    )
    if interrupted:
        console.print("Interrupted. Run the same command again to resume.")
        return INTERRUPTED_STATUS
    return 1 if failed or not_run else 0


def _load(path: str, output: str | None, jobs: int) -> SweepConfig:
    """Read the sweep file and check the command-line options against it."""
    if jobs < 1:
        raise DataError(f"--jobs must be at least 1, got {jobs}.")
    config = load_sweep(path)
    if output:
        config = SweepConfig(
            output=Path(output), cells=config.cells, aggregate_over=config.aggregate_over
        )
    if config.output.exists() and not config.output.is_dir():
        raise DataError(f"Sweep output {config.output} is a file; expected a folder.")
    return config


if __name__ == "__main__":
    sys.exit(main())
