"""Command line: ``python -m fingerquant.sweep --config configs/sweeps/<name>.yaml``."""

import sys
from pathlib import Path

from jsonargparse import ArgumentParser
from rich.console import Console

from fingerquant.errors import DataError
from fingerquant.paths import write_atomically
from fingerquant.sweep.config import load_sweep
from fingerquant.sweep.runner import run_sweep
from fingerquant.sweep.table import markdown_table, write_csv


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, then write ``results.csv`` and ``results.md`` beside its cells."""
    parser = ArgumentParser(prog="python -m fingerquant.sweep", description=__doc__)
    parser.add_argument("--config", required=True, help="Sweep YAML file.")
    parser.add_argument(
        "--output", default=None, help="Folder of the cells (overrides the file's output)."
    )
    parser.add_argument(
        "--dry_run", action="store_true", help="Only rebuild the tables from finished cells."
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="Cells run at once; up to the number of cores."
    )
    args = parser.parse_args(argv)

    console = Console()
    try:
        config = load_sweep(args.config)
    except DataError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        return 1
    if args.jobs < 1:
        console.print(f"[red]error:[/red] --jobs must be at least 1, got {args.jobs}.")
        return 1
    if args.output:
        config = type(config)(
            output=Path(args.output), cells=config.cells, aggregate_over=config.aggregate_over
        )

    outcomes = run_sweep(config, dry_run=args.dry_run, jobs=args.jobs)
    write_csv(config.output / "results.csv", outcomes)
    table = markdown_table(outcomes, config.aggregate_over)
    write_atomically(config.output / "results.md", table.encode())
    console.print(table)
    failed = sum(1 for outcome in outcomes if outcome.error)
    console.print(
        f"{len(outcomes) - failed} of {len(outcomes)} cells finished; tables in {config.output}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
