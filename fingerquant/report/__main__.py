"""Build the README's tables and plots from finished sweeps and runs.

Each subcommand writes into the first sweep or run folder it is given unless
``--output`` names a file. Examples::

    python -m fingerquant.report writeup runs/sweeps/writeup runs/sweeps/writeup_long
    python -m fingerquant.report ablation runs/sweeps/ablation
    python -m fingerquant.report bit_widths runs/sweeps/main
    python -m fingerquant.report loss_terms RUN_DIR
    python -m fingerquant.report pd_share RUN_DIR [RUN_DIR ...]
"""

import json
import sys
from pathlib import Path

from jsonargparse import ArgumentParser
from rich.console import Console

from fingerquant.errors import DataError
from fingerquant.paths import RESULTS_FILE, write_atomically
from fingerquant.report.losses import pd_share_table
from fingerquant.report.plots import plot_bit_widths, plot_loss_terms
from fingerquant.report.runs import load_runs
from fingerquant.report.tables import MODELS, ablation_table, bit_width_table, writeup_table

DEFAULT_OUTPUTS = {
    "writeup": "writeup_sweeps.md",
    "ablation": "ablation.md",
    "bit_widths": "bit_widths.png",
    "loss_terms": "loss_terms.png",
    "pd_share": "pd_share.md",
}
"""File names written into the first sweep or run folder when ``--output`` is not given."""

MODEL_NAMES = {"capfingerid": "CapFingerId", "model1": "Model 1", "model2": "Model 2"}


def writeup_page(sweeps: list[Path]) -> str:
    """Return one Markdown table per model of PD-Quant W4A4 runs beside the write-up's."""
    runs = [
        run
        for run in load_runs(*sweeps)
        if run["method"] == "pdquant" and (run["w_bits"], run["a_bits"]) == (4, 4)
    ]
    if not runs:
        raise DataError(f"No finished PD-Quant W4A4 runs in {', '.join(map(str, sweeps))}.")
    sections = [f"### {MODEL_NAMES[model]}\n\n{writeup_table(runs, model)}" for model in MODELS]
    return "\n".join(sections)


def ablation_page(sweeps: list[Path]) -> str:
    """Return one Markdown table of methods per bit width found in the runs."""
    runs = load_runs(*sweeps)
    if not runs:
        raise DataError(f"No finished runs in {', '.join(map(str, sweeps))}.")
    bit_widths = sorted({(run["w_bits"], run["a_bits"]) for run in runs}, reverse=True)
    return "\n".join(
        f"### W{w_bits}A{a_bits}\n\n{ablation_table(runs, (w_bits, a_bits))}"
        for w_bits, a_bits in bit_widths
    )


def run_title(run_dir: Path) -> str:
    """Return a plot title naming the run's model, method and settings, if it finished."""
    results = run_dir / RESULTS_FILE
    if not results.is_file():
        return str(run_dir)
    run = json.loads(results.read_text())
    return (
        f"{run['task']} {MODEL_NAMES.get(run['model'], run['model'])}, {run['method']} "
        f"W{run['w_bits']}A{run['a_bits']}, lambda_r {run['lambda_r']}: "
        "L_recon = reg + pd / lambda_r + round"
    )


def build_parser() -> ArgumentParser:
    """Return the parser with one subcommand per table or plot."""
    parser = ArgumentParser(
        prog="python -m fingerquant.report",
        description="Build the README's tables and plots from finished sweeps and runs.",
    )
    commands = parser.add_subcommands()

    writeup = ArgumentParser(description="The write-up's sweep tables beside ours, per model.")
    writeup.add_argument("sweeps", nargs="+", help="Sweep folders of PD-Quant W4A4 runs.")
    writeup.add_argument("--output", default=None, help="Markdown file (SWEEP/writeup_sweeps.md).")
    commands.add_subcommand("writeup", writeup)

    ablation = ArgumentParser(description="Methods side by side, mean ± std over seeds.")
    ablation.add_argument("sweeps", nargs="+", help="Sweep folders of the ablation runs.")
    ablation.add_argument("--output", default=None, help="Markdown file (SWEEP/ablation.md).")
    commands.add_subcommand("ablation", ablation)

    bit_widths = ArgumentParser(description="Accuracy and agreement against bit width.")
    bit_widths.add_argument("sweeps", nargs="+", help="Sweep folders of RTN and PD-Quant runs.")
    bit_widths.add_argument("--output", default=None, help="PNG file (SWEEP/bit_widths.png).")
    bit_widths.add_argument(
        "--table", default=None, help="Markdown file of the accuracy (SWEEP/bit_widths.md)."
    )
    commands.add_subcommand("bit_widths", bit_widths)

    loss_terms = ArgumentParser(description="Reconstruction loss terms per block of one run.")
    loss_terms.add_argument("run_dir", help="Run folder with TensorBoard event files.")
    loss_terms.add_argument("--output", default=None, help="PNG file (RUN_DIR/loss_terms.png).")
    commands.add_subcommand("loss_terms", loss_terms)

    pd_share = ArgumentParser(description="Each block's loss terms at the end of reconstruction.")
    pd_share.add_argument("run_dirs", nargs="+", help="Finished PD-Quant run folders.")
    pd_share.add_argument(
        "--last_iters", type=int, default=200, help="Iterations averaged at the end of each block."
    )
    pd_share.add_argument("--output", default=None, help="Markdown file (RUN_DIR/pd_share.md).")
    commands.add_subcommand("pd_share", pd_share)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = build_parser().parse_args(argv)
    command = args.subcommand
    options = args[command]
    folders = [Path(folder) for folder in options.get("sweeps") or options.get("run_dirs") or []]
    first = folders[0] if folders else Path(options.run_dir)
    output = Path(options.output or first / DEFAULT_OUTPUTS[command])
    console = Console()
    try:
        if command == "writeup":
            page = writeup_page(folders)
        elif command == "ablation":
            page = ablation_page(folders)
        elif command == "bit_widths":
            runs = load_runs(*folders)
            plot_bit_widths(runs, output)
            console.print(f"Wrote {output}")
            page, output = bit_width_table(runs), Path(options.table or first / "bit_widths.md")
        elif command == "pd_share":
            page = pd_share_table(folders, options.last_iters)
        else:
            plot_loss_terms(first, output, title=run_title(first))
            page = None
    except DataError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        return 1

    if page is not None:
        write_atomically(output, page.encode())
        console.print(page, soft_wrap=True, markup=False, highlight=False)
    console.print(f"Wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
