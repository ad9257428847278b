"""Compare training throughput of the Lightning loop with a bare PyTorch loop.

Both loops train the same registered model with RMSprop on the same in-memory
tensors: random 8 x 8 images with random labels, the shape the datamodule
serves. Batch size, DataLoader settings and the number of timed epochs are the
same too, and each loop runs one untimed warm-up epoch first. The Lightning
run logs to TensorBoard like a real training run but has no progress bar and
no checkpointing. Its timed window runs from the start of each training epoch
to the start of validation, which is limited to one batch.

Usage::

    python benchmarks/train_throughput.py --samples 10000 --epochs 3 --repeats 3
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fingerquant.classifier import Classifier
from fingerquant.models import IMAGE_SIZE, create_model, list_models


class EpochTimer(pl.Callback):
    """Time each training epoch from its start to the start of validation."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - self._start)


def make_dataset(samples: int, num_classes: int, seed: int) -> TensorDataset:
    """Random images ``(samples, 1, 8, 8)`` in [0, 1] and labels ``(samples,)``."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(samples, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    labels = torch.randint(num_classes, (samples,), generator=generator)
    return TensorDataset(images, labels)


def make_loader(dataset: TensorDataset, batch_size: int, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


def time_bare(name: str, dataset: TensorDataset, args: argparse.Namespace) -> list[float]:
    """Return the seconds of each timed epoch of a plain PyTorch training loop."""
    torch.manual_seed(args.seed)
    model = create_model(name, args.num_classes)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    loader = make_loader(dataset, args.batch_size, args.seed)
    model.train()

    seconds = []
    for epoch in range(args.epochs + 1):
        start = time.perf_counter()
        for images, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        if epoch > 0:  # epoch 0 is the warm-up
            seconds.append(time.perf_counter() - start)
    return seconds


def time_lightning(name: str, dataset: TensorDataset, args: argparse.Namespace) -> list[float]:
    """Return the seconds of each timed epoch of ``Trainer.fit`` on :class:`Classifier`."""
    torch.manual_seed(args.seed)
    classifier = Classifier(model=name, num_classes=args.num_classes)
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as log_dir:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=args.epochs + 1,
            limit_val_batches=1,
            num_sanity_val_steps=0,
            logger=pl.loggers.TensorBoardLogger(log_dir),
            callbacks=[timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(
            classifier,
            train_dataloaders=make_loader(dataset, args.batch_size, args.seed),
            val_dataloaders=DataLoader(dataset, batch_size=args.batch_size),
        )
    return timer.seconds[1:]  # drop the warm-up epoch


def samples_per_second(
    timer: Callable[[str, TensorDataset, argparse.Namespace], list[float]],
    name: str,
    dataset: TensorDataset,
    args: argparse.Namespace,
) -> float:
    """Return training samples per second from the median timed epoch."""
    return len(dataset) / statistics.median(timer(name, dataset, args))


def compare(name: str, dataset: TensorDataset, args: argparse.Namespace) -> tuple[float, float]:
    """Return the median samples per second (bare, Lightning) over ``args.repeats`` runs.

    The two loops alternate so that load from other processes on a shared
    machine affects both alike.
    """
    bare, lightning = [], []
    for _ in range(args.repeats):
        bare.append(samples_per_second(time_bare, name, dataset, args))
        lightning.append(samples_per_second(time_lightning, name, dataset, args))
    return statistics.median(bare), statistics.median(lightning)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list_models(), help="registered models")
    parser.add_argument("--samples", type=int, default=10_000, help="training samples per epoch")
    parser.add_argument("--batch-size", type=int, default=50, help="samples per batch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up")
    parser.add_argument("--num-classes", type=int, default=10, help="number of classes")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each loop")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    dataset = make_dataset(args.samples, args.num_classes, args.seed)

    print(
        f"{args.samples} samples, batch {args.batch_size}, {args.epochs} timed epochs, "
        f"median of {args.repeats} runs, "
        f"{args.threads} thread(s), torch {torch.__version__}, lightning {pl.__version__}"
    )
    print(f"{'model':<12} {'bare (samples/s)':>17} {'Lightning (samples/s)':>22} {'ratio':>6}")
    for name in args.models:
        bare, lightning = compare(name, dataset, args)
        print(f"{name:<12} {bare:>17.0f} {lightning:>22.0f} {lightning / bare:>6.2f}")


if __name__ == "__main__":
    main()
