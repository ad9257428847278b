"""LightningDataModule of 8 x 8 touch images for the thumbs and fingers tasks."""

import logging
import os
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from fingerquant.data.blobs import CELL_SCALE
from fingerquant.data.cache import load_touches
from fingerquant.data.download import ARCHIVE_URL, download_recordings
from fingerquant.data.labels import FINGERS, TASKS, Task, class_names, finger_class
from fingerquant.data.preprocess import TouchSet, find_recordings
from fingerquant.data.split import Split, participant_split, random_split
from fingerquant.errors import DataError

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "data/capfingerid"


def default_data_dir() -> str:
    """Return ``$FINGERQUANT_DATA`` if set, else ``data/capfingerid``."""
    return os.environ.get("FINGERQUANT_DATA") or DEFAULT_DATA_DIR


class CapFingerIdDataModule(L.LightningDataModule):
    """Touch images from CapFingerId recordings, split by participant.

    Batches are ``(x, y)`` with ``x`` of shape (B, 1, 8, 8), float32 sensor
    deltas divided by ``CELL_SCALE``, and ``y`` of shape (B,), int64 class indices.

    Args:
        task: ``thumbs`` (left vs right thumb) or ``fingers`` (10 classes).
        data_dir: Folder of recordings, or a folder whose ``data/`` contains them.
            Defaults to ``$FINGERQUANT_DATA``, else ``data/capfingerid``.
        split: ``participant`` keeps each person on one side; ``random`` splits
            touches and only serves comparisons with results reported that way.
        test_fraction: Share of the touches that go to the test set.
        val_fraction: Share of the remaining touches that go to the validation set.
        batch_size: Touches per batch.
        num_workers: DataLoader worker processes; 0 suits these in-memory arrays.
        drop_repeats: Drop frames that repeat the previous frame of their file exactly.
        split_seed: Seed of the split, of the training order and, unless one is given,
            of the calibration-set sampler. It is apart from the training and
            quantization seeds, so that they never move participants between sides.
        test_dir: Folder of recordings used whole as the test set, to check a model
            on new people; ``data_dir`` then serves only training and validation.
        download: Fetch the CapFingerId archive when ``data_dir`` contains no recordings.
        download_url: Where to fetch it from.
    """

    def __init__(
        self,
        task: Task = "thumbs",
        data_dir: str | None = None,
        split: Literal["participant", "random"] = "participant",
        test_fraction: float = 0.2,
        val_fraction: float = 0.2,
        batch_size: int = 50,
        num_workers: int = 0,
        drop_repeats: bool = False,
        split_seed: int = 0,
        test_dir: str | None = None,
        download: bool = True,
        download_url: str = ARCHIVE_URL,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"Invalid task {task!r}: expected one of {', '.join(TASKS)}.")
        if split not in ("participant", "random"):
            raise ValueError(f"Invalid split {split!r}: expected 'participant' or 'random'.")
        for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"Invalid {name} {value}: expected a share between 0 and 1.")
        if batch_size < 1:
            raise ValueError(f"Invalid batch_size {batch_size}: expected at least 1.")
        self.save_hyperparameters()

        self.task = task
        self.data_dir = data_dir or default_data_dir()
        self.num_classes = len(class_names(task))
        self.class_names = class_names(task)
        self.split: Split | None = None
        self._datasets: dict[str, TensorDataset] = {}

    def prepare_data(self) -> None:
        """Download the recordings if ``data_dir`` contains none and downloading is allowed."""
        if self.hparams.test_dir is not None:
            find_recordings(self.hparams.test_dir)
        folder = Path(self.data_dir)
        if folder.is_dir() and find_recordings(folder):
            return
        if not self.hparams.download:
            raise DataError(
                f"No recordings in {folder}. Copy the data/ folder of the CapFingerId repository "
                "there, or set download: true to fetch it."
            )
        download_recordings(folder, url=self.hparams.download_url)

    def setup(self, stage: str) -> None:
        """Load the touches of the task and build the datasets of ``stage``."""
        test_dir = self.hparams.test_dir
        if test_dir is not None and stage in ("test", "predict"):
            images, labels, _ = self._select(load_touches(test_dir), test_dir)
            self._datasets["test"] = _dataset(images, labels)
            return
        if self.split is not None:
            return

        images, labels, participants = self._select(load_touches(self.data_dir), self.data_dir)
        if self.hparams.split == "participant":
            self.split = participant_split(
                participants,
                labels,
                self.class_names,
                self.hparams.test_fraction,
                self.hparams.val_fraction,
                self.hparams.split_seed,
            )
        else:
            self.split = random_split(
                len(labels),
                self.hparams.test_fraction,
                self.hparams.val_fraction,
                self.hparams.split_seed,
            )
        for stage_name in ("train", "val", "test"):
            if test_dir is None or stage_name != "test":
                index = getattr(self.split, stage_name)
                self._datasets[stage_name] = _dataset(images[index], labels[index])

    def calibration_set(self, size: int, seed: int | None = None) -> torch.Tensor:
        """Draw ``size`` training images without replacement, (size, 1, 8, 8).

        Returns the whole training split, with a warning, when it contains fewer
        than ``size`` touches; callers record the size they got.
        """
        if size < 1:
            raise ValueError(f"Invalid calibration set size {size}: expected at least 1.")
        if "train" not in self._datasets:
            self.setup("fit")
        images = self._datasets["train"].tensors[0]
        if size > len(images):
            logger.warning(
                "Calibration set of %d requested, but the training split contains %d touches; "
                "using all of them.",
                size,
                len(images),
            )
            size = len(images)
        generator = torch.Generator().manual_seed(self.hparams.split_seed if seed is None else seed)
        return images[torch.randperm(len(images), generator=generator)[:size]]

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.hparams.split_seed)
        # A last batch of one touch would break BatchNorm1d in training mode.
        drop_last = len(self._datasets["train"]) % self.hparams.batch_size == 1
        return self._loader("train", shuffle=True, generator=generator, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")

    def _loader(self, stage: str, **options) -> DataLoader:
        return DataLoader(
            self._datasets[stage],
            batch_size=self.hparams.batch_size,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            **options,
        )

    def _select(self, touches: TouchSet, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (images, labels, participants) of the touches that belong to the task."""
        if self.task == "thumbs":
            keep = touches.finger == FINGERS.index("thumb")
            labels = touches.hand.astype(np.int64)
        else:
            keep = np.ones(len(touches.finger), bool)
            labels = finger_class(touches.hand.astype(np.int64), touches.finger.astype(np.int64))
        if self.hparams.drop_repeats:
            keep &= ~touches.repeat
        if not keep.any():
            raise DataError(
                f"No {self.task} touches in {source}: its recordings hold no single-blob "
                f"frames of the task's fingers ({', '.join(self.class_names)})."
            )
        return touches.images[keep], labels[keep], touches.participant[keep]


def _dataset(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
    """Return model inputs (N, 1, 8, 8) scaled by ``CELL_SCALE`` with their labels."""
    inputs = torch.from_numpy(images.astype(np.float32) / CELL_SCALE).unsqueeze(1)
    return TensorDataset(inputs, torch.from_numpy(labels))
