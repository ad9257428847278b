"""PNG plots: accuracy and agreement against bit width, and loss terms per block of one run."""

import io
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt

from fingerquant.errors import DataError
from fingerquant.paths import write_atomically
from fingerquant.report.losses import RECON_TERMS, read_loss_terms
from fingerquant.report.tables import BIT_WIDTHS, MODELS, TASKS

METHOD_STYLES = {"pdquant": ("PD-Quant", "-o"), "rtn": ("round-to-nearest", "--s")}


def plot_bit_widths(runs: list[dict], output: Path) -> None:
    """Plot test accuracy (top row) and agreement with FP (bottom row) against bit width.

    One column per task found in the runs and one line per model and method, over W8A8, W4A4,
    W3A3, W2A4 and W2A2. A dotted line marks each model's FP accuracy.
    """
    points: dict[tuple[str, str, str], dict[tuple[int, int], dict]] = defaultdict(dict)
    for run in runs:
        if run["method"] in METHOD_STYLES and (run["w_bits"], run["a_bits"]) in BIT_WIDTHS:
            points[(run["task"], run["model"], run["method"])][(run["w_bits"], run["a_bits"])] = run
    if not points:
        raise DataError("No finished round-to-nearest or PD-Quant runs to plot.")

    tasks = [task for task in TASKS if any(key[0] == task for key in points)]
    figure, axes = plt.subplots(
        2, len(tasks), figsize=(5.5 * len(tasks), 7.5), sharex=True, squeeze=False
    )
    positions = range(len(BIT_WIDTHS))
    colours = dict(zip(MODELS, plt.get_cmap("tab10").colors, strict=False))
    for column, task in enumerate(tasks):
        for model in MODELS:
            for method, (method_name, style) in METHOD_STYLES.items():
                by_bits = points.get((task, model, method), {})
                positions_with_runs = [i for i, bits in enumerate(BIT_WIDTHS) if bits in by_bits]
                if not positions_with_runs:
                    continue
                label = f"{model}, {method_name}"
                for row, metric in enumerate(("quant_accuracy", "agreement")):
                    values = [by_bits[BIT_WIDTHS[i]][metric] for i in positions_with_runs]
                    axes[row, column].plot(
                        positions_with_runs,
                        values,
                        style,
                        color=colours[model],
                        label=label,
                        markersize=4,
                    )
                fp_accuracy = next(iter(by_bits.values()))["fp_accuracy"]
                axes[0, column].axhline(fp_accuracy, color=colours[model], linestyle=":", lw=1)
        axes[0, column].set_title(f"{task}: test accuracy (dotted: FP)")
        axes[1, column].set_title(f"{task}: agreement with the FP model")
        for row in range(2):
            axes[row, column].set_ylabel("%")
            axes[row, column].grid(alpha=0.3)
        axes[1, column].set_xticks(list(positions), [f"W{w}A{a}" for w, a in BIT_WIDTHS])
    axes[1, 0].legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    _save(figure, output)


def plot_loss_terms(run_dir: Path, output: Path, title: str | None = None) -> None:
    """Plot each block's reconstruction loss terms against iteration, one panel per block.

    The axis is logarithmic, so zeros (``round`` during the warm-up, when
    AdaRound's rounding loss is off) are left out.
    """
    terms = read_loss_terms(run_dir)
    figure, axes = plt.subplots(1, len(terms), figsize=(3.6 * len(terms), 3.6), squeeze=False)
    for axis, (block, block_terms) in zip(axes[0], terms.items(), strict=True):
        for term in RECON_TERMS:
            if term in block_terms:
                iterations, values = block_terms[term]
                positive = [(i, v) for i, v in zip(iterations, values, strict=True) if v > 0]
                axis.plot(*zip(*positive, strict=True), label=term, lw=1.2)
        axis.set_yscale("log")
        axis.set_title(block, fontsize=10)
        axis.set_xlabel("iteration")
        axis.grid(alpha=0.3)
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].legend(fontsize=8)
    figure.suptitle(title or str(run_dir), fontsize=10)
    figure.tight_layout()
    _save(figure, output)


def _save(figure: plt.Figure, output: Path) -> None:
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    write_atomically(output, image.getvalue())
