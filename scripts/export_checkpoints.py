"""Export training checkpoints as small release checkpoints without optimizer state.

Each source checkpoint (normally the best one of a ``train.py fit`` run) is
written to ``<output-dir>/<task>/<model>.ckpt``, with task and model read from
its hyperparameters. The result keeps the weights, the hyperparameters and
the fields Lightning needs to load it, adds a ``fingerquant`` entry with a
format version and the run's resolved ``config.yaml``, and drops optimizer,
scheduler, loop and callback state. It still works with
``Classifier.load_from_checkpoint`` and ``python train.py test --ckpt_path``
but cannot resume training.

Usage::

    python scripts/export_checkpoints.py \\
        runs/thumbs/model1/version_0/checkpoints/best-*.ckpt --output-dir checkpoints
"""

import argparse
import logging
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from fingerquant.classifier import Classifier

log = logging.getLogger("export_checkpoints")

FORMAT_VERSION = 1
"""Version of the ``fingerquant`` entry; raise it when its fields change."""

KEPT_KEYS = ("state_dict", "hyper_parameters", "pytorch-lightning_version", "epoch", "global_step")
"""Top-level Lightning checkpoint keys copied into the release checkpoint."""


def slim_checkpoint(source: Path) -> dict[str, Any]:
    """Return the release checkpoint built from the training checkpoint ``source``."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    missing = [key for key in ("state_dict", "hyper_parameters") if key not in checkpoint]
    if missing:
        raise ValueError(
            f"{source} has no {' or '.join(missing)}; expected a checkpoint written by train.py fit"
        )

    slim = {key: checkpoint[key] for key in KEPT_KEYS if key in checkpoint}
    # The run folder is two levels up: <run>/checkpoints/<name>.ckpt.
    config_file = source.resolve().parents[1] / "config.yaml"
    slim["fingerquant"] = {
        "format_version": FORMAT_VERSION,
        "config": config_file.read_text() if config_file.is_file() else None,
        "source": source.name,
    }
    return slim


def write_atomically(checkpoint: dict[str, Any], destination: Path) -> None:
    """Save ``checkpoint`` to a temporary file beside ``destination``, then rename it.

    A reader therefore sees either the old file or the complete new one.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    try:
        os.chmod(temporary, 0o644)  # mkstemp creates the file readable by its owner only
        with os.fdopen(descriptor, "wb") as stream:
            torch.save(checkpoint, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export(source: Path, output_dir: Path) -> Path:
    """Export ``source`` to ``output_dir/<task>/<model>.ckpt``, check it loads, return the path."""
    checkpoint = slim_checkpoint(source)
    hparams = checkpoint["hyper_parameters"]
    if not hparams.get("task") or not hparams.get("model"):
        raise ValueError(
            f"{source} does not store the task and model; train it with train.py, which "
            "links them from the datamodule"
        )
    destination = output_dir / hparams["task"] / f"{hparams['model']}.ckpt"
    write_atomically(checkpoint, destination)

    Classifier.load_from_checkpoint(destination, map_location="cpu", weights_only=True)
    log.info("wrote %s (%d bytes) from %s", destination, destination.stat().st_size, source)
    return destination


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="training checkpoints to export")
    parser.add_argument(
        "--output-dir", type=Path, default=Path("checkpoints"), help="folder of <task>/<model>.ckpt"
    )
    args = parser.parse_args()

    for source in args.sources:
        try:
            export(source, args.output_dir)
        except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as error:
            log.error("export_checkpoints.py: error: cannot export %s: %s", source, error)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
