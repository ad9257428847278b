"""Sweep tables: a CSV of every cell and a Markdown summary, both written atomically."""

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path

from fingerquant.paths import write_atomically
from fingerquant.sweep.runner import CellOutcome

METRICS = ("fp_accuracy", "quant_accuracy", "accuracy_drop", "agreement", "seconds")


def write_csv(path: Path, outcomes: list[CellOutcome]) -> None:
    """Write one row per cell: its axis values, its metrics, and its status."""
    axes = list(outcomes[0].cell.labels)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*axes, *METRICS, "status"])
    for outcome in outcomes:
        metrics = [outcome.results[key] if outcome.results else "" for key in METRICS]
        writer.writerow([*outcome.cell.labels.values(), *metrics, _status(outcome)])
    write_atomically(path, buffer.getvalue().encode())


def markdown_table(outcomes: list[CellOutcome], aggregate_over: str | None = None) -> str:
    """Return a Markdown table of the cells; with ``aggregate_over``, mean ± std over that axis."""
    axes = [axis for axis in outcomes[0].cell.labels if axis != aggregate_over]
    groups: dict[tuple[str, ...], list[CellOutcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[tuple(outcome.cell.labels[axis] for axis in axes)].append(outcome)

    headers = [*axes, "FP acc %", "quant acc %", "drop", "agreement %", "seconds"]
    if aggregate_over:
        headers.append("runs")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for key, members in groups.items():
        done = [member.results for member in members if member.results]
        failed = [member for member in members if member.error]
        if not done:
            status = _status(failed[0]) if failed else "not run"
            lines.append(
                "| "
                + " | ".join([*key, status, "", "", "", ""])
                + (" |  |" if aggregate_over else " |")
            )
            continue
        cells = [
            _summary([run[metric] for run in done], aggregate_over is not None)
            for metric in METRICS
        ]
        if aggregate_over:
            cells.append(f"{len(done)}" + (f" ({len(failed)} failed)" if failed else ""))
        lines.append("| " + " | ".join([*key, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _summary(values: list[float], with_std: bool) -> str:
    mean = statistics.fmean(values)
    if with_std and len(values) > 1:
        return f"{mean:.2f} ± {statistics.stdev(values):.2f}"
    return f"{mean:.2f}"


def _status(outcome: CellOutcome) -> str:
    if outcome.results:
        return "done"
    if outcome.error:
        return f"failed: {outcome.error}"
    return "not run"
