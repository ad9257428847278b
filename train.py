"""Train, evaluate or apply a touch classifier on CapFingerId recordings.

A LightningCLI over :class:`~fingerquant.classifier.Classifier` and
:class:`~fingerquant.data.CapFingerIdDataModule` with the subcommands
``fit``, ``validate``, ``test`` and ``predict``::

    python train.py fit --config configs/thumbs/model1.yaml
    python train.py test --config configs/thumbs/model1.yaml \\
        --ckpt_path checkpoints/thumbs/model1.ckpt
    python train.py test --config configs/thumbs/model1.yaml \\
        --ckpt_path checkpoints/thumbs/model1.ckpt --data.test_dir DIR

With ``--data.test_dir DIR`` every recording in DIR is test data, which is how
a model is checked on a new person. ``predict`` writes the class
probabilities of the test data to ``predictions.csv`` in the run folder.

The class count, task and class names of the model come from the datamodule.
Each run logs to a new version folder of its TensorBoard logger and keeps the
checkpoint with the best ``val/acc`` there.

Invalid input (an unknown model, a checkpoint for another task, a folder
without touches, a missing file) ends the program with one error line and exit
code 1. The argument parser reports invalid options and missing config files
with its usage text and exit code 2.
"""

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import (
    BasePredictionWriter,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
    RichProgressBar,
)
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from fingerquant.classifier import Classifier
from fingerquant.data import CapFingerIdDataModule
from fingerquant.errors import DataError

# Errors caused by the options, the data or a checkpoint. They are reported
# as one line. Any other exception keeps its traceback.
INPUT_ERRORS = (ValueError, DataError, FileNotFoundError, MisconfigurationException)

PREDICTIONS_FILE = "predictions.csv"


class CsvPredictionWriter(BasePredictionWriter):
    """Write one row per predicted touch: predicted class name, then each class probability.

    Under several processes each rank writes ``predictions_rank<r>.csv``
    because the distributed sampler splits the samples between them.
    """

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        probabilities = torch.cat(list(predictions))  # (N, num_classes)
        names = pl_module.hparams.get("class_names") or [
            str(index) for index in range(probabilities.shape[1])
        ]
        file_name = PREDICTIONS_FILE
        if trainer.world_size > 1:
            file_name = f"predictions_rank{trainer.global_rank}.csv"
        path = Path(trainer.log_dir or ".") / file_name
        path.parent.mkdir(parents=True, exist_ok=True)

        with path.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["predicted", *(f"p({name})" for name in names)])
            for row in probabilities.tolist():
                best = max(range(len(row)), key=row.__getitem__)
                writer.writerow([names[best], *(f"{value:.6f}" for value in row)])


class TrainCLI(LightningCLI):
    """LightningCLI with class count linking, best-checkpoint selection and early stopping."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # The datamodule derives these from its task in __init__, so they are
        # known when the model is instantiated.
        for key in ("num_classes", "task", "class_names"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")

        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                # "val/acc" in a file name would create a folder "val", so
                # the metric name is written out by hand.
                "checkpoint.filename": "best-epoch{epoch:02d}-val_acc{val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults(
            {
                "early_stopping.monitor": "val/acc",
                "early_stopping.mode": "max",
                "early_stopping.patience": 10,
            }
        )

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        """Build the Trainer with a RichProgressBar, unless the config has its own or none."""
        trainer_config = self._get(self.config_init, "trainer", default={})
        configured = trainer_config.get("callbacks") or []
        if not isinstance(configured, list):
            configured = [configured]
        has_progress_bar = any(isinstance(callback, ProgressBar) for callback in configured)
        if trainer_config.get("enable_progress_bar") is not False and not has_progress_bar:
            defaults = self.trainer_defaults.get("callbacks", [])
            self.trainer_defaults["callbacks"] = [*defaults, RichProgressBar()]
        return super().instantiate_trainer(**kwargs)


def main(args: list[str] | None = None) -> int:
    """Run the command line ``args`` (default ``sys.argv[1:]``) and return the exit code."""
    try:
        TrainCLI(
            Classifier,
            CapFingerIdDataModule,
            trainer_defaults={
                "logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": "runs", "name": "default"},
                },
                "callbacks": [
                    LearningRateMonitor(logging_interval="epoch"),
                    CsvPredictionWriter(),
                ],
            },
            args=args,
        )
    except INPUT_ERRORS as error:
        sys.stderr.write(f"train.py: error: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
