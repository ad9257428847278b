"""Quantize a trained classifier post-training with PD-Quant or one of its ablations.

A LightningCLI over :class:`~fingerquant.quant.pdquant.PDQuantModule` and
:class:`~fingerquant.data.CapFingerIdDataModule`, without subcommands::

    python quantize.py --config configs/quantize/thumbs_model1.yaml
    python quantize.py --config configs/quantize/thumbs_model1.yaml \\
        --model.method rtn --model.w_bits 2 --run_dir runs/quantize/rtn-w2a4
    python quantize.py --print_config

Stage 1 (ranges) runs before ``fit``, and stage 2 (distribution correction and
reconstruction, block by block) runs inside one ``fit``. The test split then
measures the FP and quantized accuracy and their agreement. The run folder
receives the TensorBoard events (every loss term per block), ``config.yaml``,
``quantized.pt`` and ``results.json``. An existing run's results are never
overwritten.
"""

import contextlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from rich.console import Console
from rich.table import Table

from fingerquant.classifier import CheckpointMismatchError
from fingerquant.data import CapFingerIdDataModule
from fingerquant.errors import DataError
from fingerquant.logs import setup_logging
from fingerquant.paths import LOCK_FILE, RESULTS_FILE, claim_folder
from fingerquant.quant.pdquant import NonFiniteLossError, PDQuantModule
from fingerquant.quant.run import run_quantization

INPUT_ERRORS = (
    ValueError,
    DataError,
    FileNotFoundError,
    MisconfigurationException,
    CheckpointMismatchError,
    NonFiniteLossError,
)

logger = logging.getLogger("fingerquant.quantize")

CLAIMED_LOCKS: list[Path] = []
"""Run-folder locks this process took; ``main`` releases them however the run ends."""


class QuantizeCLI(LightningCLI):
    """LightningCLI with a run folder, the seed shared with the module, and fixed trainer set-up."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Folder for events, config, quantized.pt and results.json "
            "(default: runs/quantize/<checkpoint>-<method>-w<w_bits>a<a_bits>).",
        )
        parser.add_argument(
            "--num_threads",
            type=int,
            default=1,
            help="PyTorch intra-op threads. The tensors of these models are tiny, so one "
            "thread avoids OpenMP overhead and contention; raise it for larger models.",
        )
        parser.link_arguments("seed_everything", "model.seed")

    def before_instantiate_classes(self) -> None:
        """Choose the run folder and point the TensorBoard logger and config file at it."""
        config = self.config
        run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
        if (run_dir / RESULTS_FILE).exists():
            raise FileExistsError(
                f"{run_dir} already contains the results of a run. Choose another --run_dir; "
                "results are never overwritten."
            )
        CLAIMED_LOCKS.append(claim_folder(run_dir))
        config.run_dir = str(run_dir)
        torch.set_num_threads(config.num_threads)
        config.trainer.logger = {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": str(run_dir), "name": "", "version": ""},
        }


def default_run_dir(config: Any) -> Path:
    """Return the first free ``runs/quantize/<task>-<checkpoint>-<method>-w<w>a<a>[-N]`` folder.

    A folder is taken once it holds a config, results or another run's lock.
    """
    model = config.model
    stem = Path(model.checkpoint).stem
    name = f"{config.data.task}-{stem}-{model.method}-w{model.w_bits}a{model.a_bits}"
    base = Path("runs/quantize") / name
    candidate, number = base, 1
    occupied = (RESULTS_FILE, "config.yaml", LOCK_FILE)
    while any((candidate / file).exists() for file in occupied):
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def render(results: dict, run_dir: Path) -> None:
    """Print the results as a table."""
    table = Table(
        title=f"{results['task']} / {results['model']} / {results['method']} "
        f"W{results['w_bits']}A{results['a_bits']}"
    )
    for column in ("FP acc %", "quant acc %", "drop", "agreement %", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{results['fp_accuracy']:.2f}",
        f"{results['quant_accuracy']:.2f}",
        f"{results['accuracy_drop']:.2f}",
        f"{results['agreement']:.2f}",
        f"{results['seconds']:.1f}",
    )
    console = Console()
    console.print(table)
    console.print(f"Run folder: {run_dir}")


def main(args: list[str] | None = None) -> int:
    setup_logging()
    # The FP reference networks stay in eval mode on purpose. The LeafSpec notice comes
    # from Lightning 2.6's own code, so neither warning calls for a change by the user.
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    console = Console(stderr=True)
    try:
        cli = QuantizeCLI(
            PDQuantModule,
            CapFingerIdDataModule,
            run=False,
            seed_everything_default=0,
            # A run folder without results.json contains an interrupted run,
            # so its config may be replaced.
            save_config_kwargs={"overwrite": True},
            args=args,
            trainer_defaults={
                "max_epochs": 1,
                "enable_checkpointing": False,
                "num_sanity_val_steps": 0,
                "limit_val_batches": 0,
                "log_every_n_steps": 50,
                "enable_model_summary": False,
                "callbacks": [RichProgressBar()],
            },
        )
        run_dir = Path(cli.config.run_dir)
        results = run_quantization(cli.model, cli.datamodule, cli.trainer, run_dir)
    except (*INPUT_ERRORS, FileExistsError) as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        return 1
    finally:
        while CLAIMED_LOCKS:
            lock = CLAIMED_LOCKS.pop()
            lock.unlink(missing_ok=True)
            # A run rejected before it wrote anything leaves no empty folder behind.
            with contextlib.suppress(OSError):
                lock.parent.rmdir()
    render(results, run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
