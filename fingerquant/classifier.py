"""LightningModule that trains and evaluates one registered classifier on touch images."""

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from fingerquant.augment import mirror_class_map, mirror_images
from fingerquant.models import create_model

Batch = tuple[torch.Tensor, torch.Tensor]

# Hyperparameters that fix what a checkpoint can be used for: the layer shapes
# (model, num_classes) and the meaning of each logit (task, class_names).
_IDENTITY_KEYS = ("model", "num_classes", "task", "class_names")

# Mismatched tensors listed in an error message before the rest are only counted.
_MAX_LISTED_PROBLEMS = 3


class CheckpointMismatchError(ValueError):
    """A checkpoint or datamodule does not fit the model's task, classes or architecture."""


def _metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Build the accuracy metrics of one stage, logged as ``<prefix>acc`` and so on."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            # Mean per-class recall, which is not inflated by the larger class
            # (right thumbs outnumber left thumbs about two to one).
            "balanced_acc": MulticlassAccuracy(num_classes, average="macro"),
        },
        prefix=prefix,
    )


class Classifier(pl.LightningModule):
    """Cross-entropy training of a registered model, optimised with RMSprop.

    The learning rate is multiplied by ``lr_factor`` whenever ``val/loss`` has
    not improved for ``lr_patience`` epochs, so every fit needs validation data.
    Logged keys: ``train/loss_step`` (every ``log_every_n_steps`` steps),
    ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``,
    ``val/balanced_acc``, ``test/loss``, ``test/acc``, ``test/balanced_acc``
    and ``test/recall/<class>``. After a test run, ``test_confusion_matrix``
    contains the confusion matrix (rows: true class, columns: predicted class).

    Args:
        model: registered model name, see :func:`fingerquant.models.list_models`.
        num_classes: number of classes (2 for thumbs, 10 for fingers).
        lr: RMSprop learning rate.
        weight_decay: RMSprop L2 penalty.
        lr_factor: factor applied to the learning rate on a plateau.
        lr_patience: epochs without a lower ``val/loss`` before the rate drops.
        mirror_prob: probability that a training image is mirrored left to right,
            with its label changed to the same finger of the other hand (see
            :mod:`fingerquant.augment`). Needs ``class_names``. 0 turns it off.
        task: task the model is trained for. When given, it is checked against
            the datamodule and against loaded checkpoints.
        class_names: name of each class in label order; checked like ``task``.
    """

    def __init__(
        self,
        model: str,
        num_classes: int,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_factor: float = 0.5,
        lr_patience: int = 3,
        mirror_prob: float = 0.0,
        task: str | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"Invalid class_names: got {len(class_names)} names for {num_classes} classes. "
                "Give one name per class."
            )
        if not 0.0 <= mirror_prob <= 1.0:
            raise ValueError(f"Invalid mirror_prob {mirror_prob}: expected a value in [0, 1].")
        if mirror_prob > 0 and class_names is None:
            raise ValueError("mirror_prob > 0 needs class_names to find each class's mirror class.")
        self.save_hyperparameters()
        self.model = create_model(model, num_classes)

        # Not persistent: it follows from class_names, so checkpoints stay the same.
        mirror_map = mirror_class_map(class_names) if mirror_prob > 0 else range(num_classes)
        self.register_buffer("mirror_map", torch.tensor(list(mirror_map)), persistent=False)

        self.train_loss = MeanMetric()
        # Only plain accuracy in training: each metric update costs time on
        # every step, and the balanced accuracy matters for held-out data.
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_metrics = _metrics(num_classes, "val/")
        self.test_metrics = _metrics(num_classes, "test/")
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        self.test_confusion_matrix: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(B, 1, 8, 8)`` to logits ``(B, num_classes)``."""
        return self.model(x)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        x, y = batch
        if len(y) < 2:
            # BatchNorm1d cannot normalise a single sample in training mode. Such
            # a batch (the last one, when the training set size is 1 modulo the
            # batch size) is skipped: returning None skips the optimizer step.
            return None
        if self.hparams.mirror_prob > 0:
            x, y = self._mirror_some(x, y)
        logits = self(x)
        loss = F.cross_entropy(logits, y)

        # On CPU one self.log call costs about as much as a whole training step
        # of Model 1 (profiled with Lightning 2.6.6). The Trainer writes step
        # values to the logger only every log_every_n_steps steps, so the step
        # loss is logged only on those steps. Epoch means come from torchmetrics
        # and are logged in on_train_epoch_end.
        self.train_loss.update(loss.detach(), weight=len(y))
        self.train_acc.update(logits.detach(), y)
        if (self.global_step + 1) % max(self.trainer.log_every_n_steps, 1) == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self.train_loss.compute(), sync_dist=True)
        self.log("train/acc", self.train_acc.compute(), sync_dist=True)
        self.train_loss.reset()
        self.train_acc.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)

        self.val_metrics.update(logits, y)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_metrics["acc"], on_epoch=True, prog_bar=True)
        self.log("val/balanced_acc", self.val_metrics["balanced_acc"], on_epoch=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)

        self.test_metrics.update(logits, y)
        self.test_confusion.update(logits, y)
        self.log("test/loss", loss, on_epoch=True, sync_dist=True)
        self.log_dict(self.test_metrics, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        confusion = self.test_confusion.compute()
        self.test_confusion.reset()
        self.test_confusion_matrix = confusion.cpu()

        # Recall per class: the diagonal over the row sums; a class absent
        # from the test data has no recall and is skipped.
        support = confusion.sum(dim=1)
        for index, name in enumerate(self._class_names()):
            if support[index] > 0:
                recall = confusion[index, index].float() / support[index]
                self.log(f"test/recall/{name}", recall, sync_dist=True)

        if isinstance(self.logger, TensorBoardLogger):
            self.logger.experiment.add_text(
                "test/confusion_matrix", self._confusion_markdown(confusion), self.global_step
            )

    def predict_step(self, batch: torch.Tensor | Batch, batch_idx: int) -> torch.Tensor:
        """Return class probabilities ``(B, num_classes)``; labels in the batch are ignored."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).softmax(dim=-1)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.RMSprop(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.hparams.lr_factor, patience=self.hparams.lr_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"},
        }

    def setup(self, stage: str) -> None:
        """Check that the attached datamodule serves the task this model was built for."""
        datamodule = self.trainer.datamodule
        if datamodule is None:
            return
        data_identity = {
            key: getattr(datamodule, key)
            for key in ("num_classes", "task", "class_names")
            if hasattr(datamodule, key)
        }
        self._check_identity(data_identity, source="the datamodule")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Reject a checkpoint made for another model, task or class list before loading it.

        The stored hyperparameters are compared first. ``load_from_checkpoint``
        overwrites them with its keyword arguments before this hook runs, so
        the tensor shapes are compared as well.
        """
        stored = checkpoint.get("hyper_parameters", {})
        self._check_identity(
            {key: stored[key] for key in _IDENTITY_KEYS if key in stored}, source="the checkpoint"
        )
        self._check_state_shapes(checkpoint.get("state_dict", {}))

    def _check_identity(self, other: dict[str, Any], source: str) -> None:
        """Raise :class:`CheckpointMismatchError` if ``other`` contradicts the hyperparameters."""
        differing = [
            key
            for key in _IDENTITY_KEYS
            if key in other
            and self.hparams.get(key) is not None
            and other[key] is not None
            and _as_list(other[key]) != _as_list(self.hparams[key])
        ]
        # Other class names follow from another task or class count; listing
        # ten names then only hides the cause.
        if len(differing) > 1 and "class_names" in differing:
            differing.remove("class_names")
        if differing:
            details = "; ".join(
                f"{key} {other[key]!r} in {source}, {self.hparams[key]!r} in the model"
                for key in differing
            )
            raise CheckpointMismatchError(
                f"{source.capitalize()} does not match the model: {details}. Use a checkpoint "
                "trained for this task and model, or set --data.task and --model.model to match."
            )

    def _check_state_shapes(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Raise :class:`CheckpointMismatchError` if ``state_dict`` has other tensors or shapes."""
        own = self.state_dict()
        problems = [f"{key} is missing" for key in own if key not in state_dict]
        problems += [f"{key} is not in the model" for key in state_dict if key not in own]
        problems += [
            f"{key} has shape {tuple(state_dict[key].shape)} but the model expects "
            f"{tuple(own[key].shape)}"
            for key in own
            if key in state_dict and state_dict[key].shape != own[key].shape
        ]
        if problems:
            listed = "; ".join(problems[:_MAX_LISTED_PROBLEMS])
            more = len(problems) - _MAX_LISTED_PROBLEMS
            raise CheckpointMismatchError(
                f"The checkpoint's weights do not fit model {self.hparams.model!r} with "
                f"{self.hparams.num_classes} classes: {listed}"
                + (f" (and {more} more)" if more > 0 else "")
                + ". Use a checkpoint trained for this model and task."
            )

    def _mirror_some(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        """Mirror each sample with probability ``mirror_prob`` and swap its hand label."""
        chosen = torch.rand(len(y), device=y.device) < self.hparams.mirror_prob  # (B,)
        x = torch.where(chosen[:, None, None, None], mirror_images(x), x)
        y = torch.where(chosen, self.mirror_map[y], y)
        return x, y

    def _class_names(self) -> list[str]:
        names = self.hparams.get("class_names")
        return list(names) if names else [str(index) for index in range(self.hparams.num_classes)]

    def _confusion_markdown(self, confusion: torch.Tensor) -> str:
        """Format the confusion matrix as a Markdown table for the TensorBoard text tab."""
        names = self._class_names()
        lines = [
            "| true \\ predicted | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for name, row in zip(names, confusion.tolist(), strict=True):
            lines.append(f"| {name} | " + " | ".join(str(count) for count in row) + " |")
        return "\n".join(lines)


def _as_list(value: Any) -> Any:
    """Return sequences as lists so that a stored tuple equals the same list."""
    return list(value) if isinstance(value, (list, tuple)) else value
