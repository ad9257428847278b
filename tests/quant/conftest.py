"""Fixtures for quantization tests: a small FP classifier trained on synthetic recordings."""

from pathlib import Path

import lightning as L
import pytest

from fingerquant.classifier import Classifier
from fingerquant.data import CapFingerIdDataModule


@pytest.fixture(scope="session")
def fingers_checkpoint(recordings_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train Model 1 on the synthetic fingers task for a few epochs; return its checkpoint."""
    folder = tmp_path_factory.mktemp("fp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINGERQUANT_CACHE", str(tmp_path_factory.mktemp("cache")))
        L.seed_everything(0)
        datamodule = CapFingerIdDataModule(
            task="fingers", data_dir=str(recordings_dir), batch_size=16
        )
        classifier = Classifier(
            "model1", datamodule.num_classes, task="fingers", class_names=datamodule.class_names
        )
        trainer = L.Trainer(
            max_epochs=8,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=folder,
        )
        trainer.fit(classifier, datamodule=datamodule)
        path = folder / "fingers_model1.ckpt"
        trainer.save_checkpoint(path, weights_only=True)
    return path
