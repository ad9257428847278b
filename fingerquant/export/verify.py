"""Parity check: an exported ONNX model against the PyTorch model it came from, on the test split.

The integer graph sums products exactly in int32, and the simulation sums float
products. Layer outputs therefore differ by float rounding (a few ulps), and an
activation that lies that close to a rounding tie gets the neighbouring code in
one model but not the other. Almost every logit agrees to about 1e-6, and a touch
with such a flipped code differs by one code step times the weights it meets. When
a touch's top two logits are closer than that, its prediction can flip too. The
report then gives the largest top-two gap among such touches. That separates a near tie
from a real mismatch (wrong layout, scale or zero-point), which moves logits by far
more than the tolerance.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_accuracy

from fingerquant.data import CapFingerIdDataModule
from fingerquant.errors import DataError
from fingerquant.export.sources import Predictor, load_predictor

DEFAULT_TOLERANCE = 0.02
"""Largest allowed logit difference, as a fraction of the largest logit magnitude of the
PyTorch model on the split. Measured with onnxruntime 1.32 on this project's six
thumbs checkpoints quantized W4A4 and W8A8 (100 reconstruction iterations, 5,875
test touches), the largest fraction was 0.0063 (0.064 of logits up to 10.1), from 7
touches with a flipped code. All other logits agreed within 2e-6."""

CLOSE = 1e-4
"""Logit difference below which a touch counts as computed alike in both models. Larger
differences come from a flipped activation code."""


@dataclass(frozen=True)
class ParityReport:
    """Agreement of an ONNX model with its reference PyTorch model on labelled touches.

    Attributes:
        touches: number of touches compared.
        agreement: share of touches with the same predicted class, in percent.
        max_logit_difference: largest absolute difference of any logit.
        max_abs_logit: largest logit magnitude of the PyTorch model, the scale of the
            tolerance.
        touches_not_close: touches with a logit difference above ``CLOSE``.
        onnx_accuracy: accuracy of the ONNX model, in percent.
        reference_accuracy: accuracy of the PyTorch model, in percent.
        tolerance: the largest ``relative_difference`` that passes.
        max_disagreement_margin: among touches whose predictions differ, the largest gap
            between the PyTorch model's top two logits, or None when all agree. A gap
            below ``max_logit_difference`` means a near tie flipped, not a wrong graph.
    """

    touches: int
    agreement: float
    max_logit_difference: float
    max_abs_logit: float
    touches_not_close: int
    onnx_accuracy: float
    reference_accuracy: float
    tolerance: float
    max_disagreement_margin: float | None = None

    @property
    def relative_difference(self) -> float:
        """``max_logit_difference`` as a fraction of ``max_abs_logit``."""
        return self.max_logit_difference / max(self.max_abs_logit, np.finfo(np.float32).tiny)

    @property
    def passed(self) -> bool:
        """Whether every prediction agrees and no logit differs by more than the tolerance."""
        return self.agreement == 100.0 and self.relative_difference <= self.tolerance


def compare_logits(
    onnx_logits: np.ndarray, reference_logits: np.ndarray, labels: np.ndarray, tolerance: float
) -> ParityReport:
    """Compare two ``(N, C)`` logit arrays for the same touches with true ``labels``."""
    if onnx_logits.shape != reference_logits.shape:
        raise ValueError(
            f"logit shapes differ: ONNX {onnx_logits.shape}, PyTorch {reference_logits.shape}. "
            "Compare models with the same number of classes."
        )
    if len(labels) == 0:
        raise ValueError("no touches to compare: the test split is empty.")
    num_classes = onnx_logits.shape[1]
    onnx_classes = torch.from_numpy(onnx_logits.argmax(axis=1))
    reference_classes = torch.from_numpy(reference_logits.argmax(axis=1))
    target = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    difference = np.abs(onnx_logits.astype(np.float64) - reference_logits).max(axis=1)
    top_two = np.sort(reference_logits, axis=1)[:, -2:]
    disagreeing = (onnx_classes != reference_classes).numpy()
    margins = (top_two[:, 1] - top_two[:, 0])[disagreeing]

    def accuracy(predicted: torch.Tensor, expected: torch.Tensor) -> float:
        return 100.0 * float(multiclass_accuracy(predicted, expected, num_classes, average="micro"))

    return ParityReport(
        touches=len(labels),
        agreement=accuracy(onnx_classes, reference_classes),
        max_logit_difference=float(difference.max()),
        max_abs_logit=float(np.abs(reference_logits).max()),
        touches_not_close=int((difference > CLOSE).sum()),
        onnx_accuracy=accuracy(onnx_classes, target),
        reference_accuracy=accuracy(reference_classes, target),
        tolerance=tolerance,
        max_disagreement_margin=float(margins.max()) if len(margins) else None,
    )


def verify_parity(
    onnx_path: str | Path,
    checkpoint_path: str | Path,
    data_dir: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    """Run both models on the whole test split of the checkpoint's task and compare them.

    The split is the datamodule's default participant split, the one ``quantize.py``
    and ``train.py`` test on. Recordings are read from ``data_dir``, else
    ``$FINGERQUANT_DATA``, and never downloaded.

    Raises:
        DataError: if a file is missing or not a model, if the two models differ in
            architecture, task or classes, or if the checkpoint does not name its task.
    """
    onnx_model = load_predictor(onnx_path)
    reference = load_predictor(checkpoint_path)
    if onnx_model.kind != "onnx":
        raise DataError(f"{onnx_path}: expected an ONNX model (.onnx) as the first file.")
    if reference.kind == "onnx":
        raise DataError(
            f"{checkpoint_path}: expected the checkpoint the ONNX model was exported from "
            "(quantized.pt or .ckpt), not another ONNX model."
        )
    _check_same_model(onnx_model, reference)
    if reference.task is None:
        raise DataError(
            f"{checkpoint_path}: the checkpoint does not name its task, so the test split is "
            "unknown. Use a checkpoint written by train.py or quantize.py with a task."
        )

    datamodule = CapFingerIdDataModule(task=reference.task, data_dir=data_dir, download=False)
    datamodule.prepare_data()
    datamodule.setup("test")
    images, labels = datamodule.test_dataloader().dataset.tensors
    images = images.numpy()
    return compare_logits(
        onnx_model.logits(images), reference.logits(images), labels.numpy(), tolerance
    )


def _check_same_model(onnx_model: Predictor, reference: Predictor) -> None:
    """Raise DataError if the ONNX model and the checkpoint differ in what they classify."""
    for field in ("model_name", "task", "class_names"):
        exported, original = getattr(onnx_model, field), getattr(reference, field)
        if exported != original:
            raise DataError(
                f"{onnx_model.path} and {reference.path} differ in {field}: {exported!r} vs "
                f"{original!r}. Verify an ONNX model against the checkpoint it was exported from."
            )
