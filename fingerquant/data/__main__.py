"""Command line of the data package: ``python -m fingerquant.data summarize [DIR] [--json OUT]``."""

import json
import sys
import time
from collections import Counter
from pathlib import Path

from jsonargparse import ArgumentParser
from rich.console import Console
from rich.table import Table

from fingerquant.data.cache import load_touches
from fingerquant.data.datamodule import default_data_dir
from fingerquant.data.labels import class_names, finger_class
from fingerquant.data.preprocess import TouchSet
from fingerquant.errors import DataError
from fingerquant.logs import setup_logging
from fingerquant.paths import write_atomically


def summarize(touches: TouchSet, seconds: float) -> dict:
    """Return the counts of a recordings folder as a JSON-ready dict."""
    labels = finger_class(touches.hand.astype(int), touches.finger.astype(int))
    per_class = Counter(labels.tolist())
    per_participant = Counter(touches.participant.tolist())
    return {
        **touches.counts,
        "repeats": int(touches.repeat.sum()),
        "touches_without_repeats": int((~touches.repeat).sum()),
        "per_class": {name: per_class[i] for i, name in enumerate(class_names("fingers"))},
        "per_participant": {f"P{p}": per_participant[p] for p in sorted(per_participant)},
        "seconds": round(seconds, 3),
    }


def render(summary: dict, console: Console) -> None:
    """Print the summary as small tables."""
    totals = Table(title="Recordings", show_header=False)
    for key in (
        "files",
        "lines",
        "pause_frames",
        "frames",
        "no_blob",
        "several_blobs",
        "too_large",
        "touches",
        "repeats",
        "touches_without_repeats",
        "seconds",
    ):
        totals.add_row(key.replace("_", " "), f"{summary[key]:,}")
    for reason, count in summary["skipped"].items():
        totals.add_row(f"skipped: {reason}", f"{count:,}")
    console.print(totals)

    if summary["skipped_per_file"]:
        skipped = Table(title="Skipped lines per file")
        skipped.add_column("file")
        skipped.add_column("lines by reason")
        for name, reasons in summary["skipped_per_file"].items():
            skipped.add_row(
                name, ", ".join(f"{count} {reason}" for reason, count in reasons.items())
            )
        console.print(skipped)

    for title, counts in (
        ("Touches per class", summary["per_class"]),
        ("Touches per participant", summary["per_participant"]),
    ):
        table = Table(title=title)
        table.add_column("name")
        table.add_column("touches", justify="right")
        for name, count in counts.items():
            table.add_row(name, f"{count:,}")
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = ArgumentParser(prog="python -m fingerquant.data", description=__doc__)
    commands = parser.add_subcommands()
    command = ArgumentParser(description="Count files, lines, skipped lines, frames and touches.")
    command.add_argument(
        "data_dir",
        nargs="?",
        default=None,
        help="Folder of recordings (default: $FINGERQUANT_DATA, else data/capfingerid).",
    )
    command.add_argument("--json", default=None, help="Also write the summary to this JSON file.")
    command.add_argument(
        "--no_cache", action="store_true", help="Process the recordings even if a cache exists."
    )
    commands.add_subcommand("summarize", command)
    args = parser.parse_args(argv).summarize

    setup_logging()
    console = Console()
    try:
        start = time.perf_counter()
        touches = load_touches(args.data_dir or default_data_dir(), use_cache=not args.no_cache)
        summary = summarize(touches, time.perf_counter() - start)
    except DataError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        return 1

    render(summary, console)
    if args.json:
        write_atomically(Path(args.json), json.dumps(summary, indent=2).encode())
        console.print(f"Summary written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
