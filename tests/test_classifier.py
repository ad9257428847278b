"""Classifier: logged keys, metrics, hyperparameters and checkpoint checks."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fingerquant.classifier import CheckpointMismatchError, Classifier

THUMB_NAMES = ["left thumb", "right thumb"]


class TensorDataModule(pl.LightningDataModule):
    """Random 8 x 8 images with labels, the same tensors for every stage."""

    def __init__(self, num_classes: int = 2, task: str = "thumbs", samples: int = 40) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.task = task
        self.class_names = THUMB_NAMES if num_classes == 2 else [str(i) for i in range(num_classes)]
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(samples, 1, 8, 8, generator=generator)
        labels = torch.arange(samples) % num_classes
        self.dataset = TensorDataset(images, labels)

    def _loader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=10)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()


def _trainer(root: Path, **kwargs: object) -> pl.Trainer:
    options: dict[str, object] = {
        "max_epochs": 1,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": root,
    }
    options.update(kwargs)
    return pl.Trainer(**options)


def _thumbs_classifier() -> Classifier:
    return Classifier(model="model1", num_classes=2, task="thumbs", class_names=THUMB_NAMES)


@pytest.fixture
def thumbs_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint of Model 1 trained one epoch on the thumbs task."""
    torch.manual_seed(0)
    trainer = _trainer(tmp_path, enable_checkpointing=False)
    trainer.fit(_thumbs_classifier(), datamodule=TensorDataModule())
    path = tmp_path / "thumbs.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_fit_logs_namespaced_keys(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, enable_checkpointing=False)
    trainer.fit(_thumbs_classifier(), datamodule=TensorDataModule())

    logged = trainer.callback_metrics
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/balanced_acc"):
        assert key in logged, f"{key} missing from {sorted(logged)}"
    assert 0.0 <= float(logged["val/acc"]) <= 1.0


def test_test_confusion_matrix(tmp_path: Path) -> None:
    classifier = _thumbs_classifier()
    datamodule = TensorDataModule(samples=40)
    results = _trainer(tmp_path).test(classifier, datamodule=datamodule)

    confusion = classifier.test_confusion_matrix
    assert confusion is not None
    assert confusion.shape == (2, 2)
    assert int(confusion.sum()) == 40
    accuracy = confusion.diagonal().sum().item() / 40
    assert results[0]["test/acc"] == pytest.approx(accuracy)
    assert "test/recall/left thumb" in results[0]


def test_predict_returns_probabilities(tmp_path: Path) -> None:
    batches = _trainer(tmp_path).predict(
        _thumbs_classifier(), dataloaders=DataLoader(torch.rand(6, 1, 8, 8), batch_size=3)
    )
    probabilities = torch.cat(batches)
    assert probabilities.shape == (6, 2)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(6))


def test_hyperparameters_are_primitive() -> None:
    hparams = dict(_thumbs_classifier().hparams)
    assert hparams == {
        "model": "model1",
        "num_classes": 2,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "lr_factor": 0.5,
        "lr_patience": 3,
        "mirror_prob": 0.0,
        "task": "thumbs",
        "class_names": THUMB_NAMES,
    }


def test_class_names_length_checked() -> None:
    with pytest.raises(ValueError, match="Invalid class_names: got 2 names for 10 classes"):
        Classifier(model="model1", num_classes=10, class_names=THUMB_NAMES)


def test_unknown_model_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        Classifier(model="nope", num_classes=2)


def test_checkpoint_round_trip(thumbs_checkpoint: Path) -> None:
    checkpoint = torch.load(thumbs_checkpoint, weights_only=True)
    restored = Classifier.load_from_checkpoint(thumbs_checkpoint)
    assert restored.hparams.task == "thumbs"
    assert torch.equal(
        restored.model.classifier.fc2.weight,
        checkpoint["state_dict"]["model.classifier.fc2.weight"],
    )


def test_checkpoint_wrong_num_classes(thumbs_checkpoint: Path) -> None:
    with pytest.raises(
        CheckpointMismatchError,
        match=r"model.classifier.fc2.weight has shape \(2, 64\) but the model expects \(10, 64\)",
    ):
        Classifier.load_from_checkpoint(thumbs_checkpoint, num_classes=10, class_names=None)


def test_checkpoint_wrong_task_in_trainer(thumbs_checkpoint: Path, tmp_path: Path) -> None:
    fingers = Classifier(model="model1", num_classes=10, task="fingers")
    with pytest.raises(
        CheckpointMismatchError, match="task 'thumbs' in the checkpoint, 'fingers' in the model"
    ):
        _trainer(tmp_path).test(
            fingers, datamodule=TensorDataModule(10, "fingers"), ckpt_path=thumbs_checkpoint
        )


def test_checkpoint_wrong_model(thumbs_checkpoint: Path) -> None:
    with pytest.raises(CheckpointMismatchError, match="do not fit model 'model2' with 2 classes"):
        Classifier.load_from_checkpoint(thumbs_checkpoint, model="model2")


def test_datamodule_wrong_task(tmp_path: Path) -> None:
    with pytest.raises(
        CheckpointMismatchError, match="task 'fingers' in the datamodule, 'thumbs' in the model"
    ):
        _trainer(tmp_path).validate(_thumbs_classifier(), datamodule=TensorDataModule(2, "fingers"))


def test_single_sample_batch_skipped(tmp_path: Path) -> None:
    """A last training batch of one sample must not crash BatchNorm1d."""
    images = torch.rand(11, 1, 8, 8)
    labels = torch.arange(11) % 2
    loader = DataLoader(TensorDataset(images, labels), batch_size=10)
    trainer = _trainer(tmp_path, enable_checkpointing=False, limit_val_batches=0)
    classifier = Classifier(model="model1", num_classes=2)
    classifier.configure_optimizers = lambda: torch.optim.RMSprop(classifier.parameters())
    trainer.fit(classifier, train_dataloaders=loader)
    assert trainer.state.finished

    single = (torch.rand(1, 1, 8, 8), torch.tensor([0]))
    assert classifier.training_step(single, batch_idx=0) is None
