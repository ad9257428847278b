"""Plot the test confusion matrix of a classifier checkpoint as a PNG.

The datamodule is rebuilt from the ``data`` section of the run's config stored
in the checkpoint by ``scripts/export_checkpoints.py``, so the test
participants are the ones of that run. ``--data-dir`` only changes where the
recordings are read from. Needs matplotlib, which is not a package dependency.

Usage::

    python scripts/plot_confusion.py checkpoints/fingers/model2.ckpt \\
        --output docs/confusion_fingers.png
"""

import argparse
import logging
import sys
from pathlib import Path

import lightning.pytorch as pl
import matplotlib
import matplotlib.pyplot as plt
import torch
import yaml

from fingerquant.classifier import Classifier
from fingerquant.data import CapFingerIdDataModule

log = logging.getLogger("plot_confusion")


def datamodule_from_checkpoint(
    checkpoint_path: Path, data_dir: str | None
) -> CapFingerIdDataModule:
    """Rebuild the datamodule of the run that wrote ``checkpoint_path``."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    config_text = checkpoint.get("fingerquant", {}).get("config")
    if config_text is None:
        raise ValueError(
            f"{checkpoint_path} stores no run config; export it with scripts/export_checkpoints.py"
        )
    data_options = yaml.safe_load(config_text)["data"]
    if data_dir is not None:
        data_options["data_dir"] = data_dir
    return CapFingerIdDataModule(**data_options)


def plot(confusion: torch.Tensor, class_names: list[str], title: str, output: Path) -> None:
    """Draw ``confusion`` (rows: true class) as row-normalised colours with counts."""
    counts = confusion.float()
    recall = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    size = 1.0 + 0.65 * len(class_names)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))

    image = axes.imshow(recall.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class")
    for row in range(len(class_names)):
        for column in range(len(class_names)):
            share = recall[row, column].item()
            axes.text(
                column,
                row,
                f"{share:.2f}\n({int(counts[row, column])})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share > 0.5 else "black",
            )
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)

    output.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(output, dpi=150)
    plt.close(figure)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    matplotlib.use("Agg")  # render to files only, so no display is needed
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by export_checkpoints.py")
    parser.add_argument("--output", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--data-dir", help="folder of recordings (default: the run's setting)")
    args = parser.parse_args()

    try:
        datamodule = datamodule_from_checkpoint(args.checkpoint, args.data_dir)
        classifier = Classifier.load_from_checkpoint(args.checkpoint, map_location="cpu")
    except (OSError, ValueError, KeyError) as error:
        log.error("plot_confusion.py: error: cannot load %s: %s", args.checkpoint, error)
        return 1

    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    (results,) = trainer.test(classifier, datamodule=datamodule, verbose=False)
    confusion = classifier.test_confusion_matrix
    assert confusion is not None, "Classifier.on_test_epoch_end sets the confusion matrix"

    hparams = classifier.hparams
    title = (
        f"{hparams.model} on {hparams.task}: test accuracy {100 * results['test/acc']:.2f} % "
        f"({int(confusion.sum())} touches)"
    )
    plot(confusion, list(hparams.class_names), title, args.output)
    log.info("%s; wrote %s", title, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
