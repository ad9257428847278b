"""Reconstruction loss terms of a run, read from its TensorBoard event files."""

import json
import statistics
from collections import defaultdict
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fingerquant.errors import DataError
from fingerquant.paths import RESULTS_FILE

RECON_TERMS = ("total", "pd", "reg", "round")


def read_loss_terms(run_dir: Path) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """Return ``{block: {term: (iterations, values)}}`` of the reconstruction losses of a run.

    Reads the ``recon/<block>/<term>`` scalars of the TensorBoard event files in
    ``run_dir``. Iterations count from the start of each block's reconstruction.
    """
    if not run_dir.is_dir():
        raise DataError(f"Run folder not found: {run_dir}. Pass a quantize.py run folder.")
    event_files = sorted(run_dir.glob("events.out.tfevents.*"))
    if not event_files:
        raise DataError(
            f"No TensorBoard event files in {run_dir}; expected a quantize.py run folder."
        )
    terms: dict[str, dict[str, tuple[list[int], list[float]]]] = defaultdict(dict)
    for path in event_files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            parts = tag.split("/")
            if len(parts) != 3 or parts[0] != "recon" or parts[2] not in RECON_TERMS:
                continue
            scalars = events.Scalars(tag)
            start = scalars[0].step
            terms[parts[1]][parts[2]] = (
                [scalar.step - start for scalar in scalars],
                [scalar.value for scalar in scalars],
            )
    if not terms:
        raise DataError(f"{run_dir} logs no reconstruction losses (recon/<block>/<term>).")
    return dict(terms)


def pd_share_table(run_dirs: list[Path], last_iters: int = 200) -> str:
    """Return a Markdown table of each block's loss terms at the end of reconstruction.

    Each term is averaged over the block's last ``last_iters`` iterations. The
    share is ``(L_PD / lambda_r) / (L_reg + L_PD / lambda_r)``: how much of the
    output-matching loss comes from the prediction difference.
    """
    if last_iters < 1:
        raise DataError(f"last_iters must be at least 1, got {last_iters}.")
    lines = [
        "| run | block | L_reg | L_PD / lambda_r | PD share % | L_round |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run_dir in run_dirs:
        lambda_r = _lambda_r(run_dir)
        for block, terms in read_loss_terms(run_dir).items():
            if "reg" not in terms or "pd" not in terms:
                continue
            reg = _final_mean(terms["reg"], last_iters)
            pd = _final_mean(terms["pd"], last_iters) / lambda_r
            rounding = _final_mean(terms["round"], last_iters) if "round" in terms else 0.0
            share = 100 * pd / (reg + pd) if reg + pd > 0 else 0.0
            cells = [
                run_dir.name,
                block,
                f"{reg:.3g}",
                f"{pd:.3g}",
                f"{share:.2f}",
                f"{rounding:.3g}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _final_mean(curve: tuple[list[int], list[float]], last_iters: int) -> float:
    iterations, values = curve
    start = iterations[-1] - last_iters
    return statistics.fmean(v for i, v in zip(iterations, values, strict=True) if i > start)


def _lambda_r(run_dir: Path) -> float:
    results = run_dir / RESULTS_FILE
    if not results.is_file():
        raise DataError(f"{results} not found: the PD share needs a finished run's lambda_r.")
    return float(json.loads(results.read_text())["lambda_r"])
