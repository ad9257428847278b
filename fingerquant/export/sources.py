"""Model files that fingerquant reads, loaded for export or for prediction.

Three kinds, recognized by content rather than by name, except that ``.onnx`` files
are read as ONNX:

- a quantized checkpoint (``quantized.pt`` from ``quantize.py``),
- a classifier checkpoint (``.ckpt`` from ``train.py``), an FP model,
- an ONNX model exported by ``python -m fingerquant.export``.

Checkpoints are unpickled with ``torch.load(weights_only=False)``, as ``quantize.py``
does, so open only checkpoints you trust.
"""

import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from torch import nn

from fingerquant.data.labels import TASKS, class_names
from fingerquant.errors import DataError
from fingerquant.export.fp32 import export_fp32
from fingerquant.export.graph import FORMAT, read_metadata
from fingerquant.export.quantized import export_quantized
from fingerquant.export.runtime import DEFAULT_THREADS, RUN_BATCH_SIZE, create_session, run_logits
from fingerquant.models import create_model
from fingerquant.quant.checkpoint import FORMAT as QUANTIZED_FORMAT
from fingerquant.quant.checkpoint import layer_record, load_quantized
from fingerquant.quant.pdquant import load_classifier
from fingerquant.quant.wrap import QuantizedModel

ModelKind = Literal["quantized", "classifier", "onnx"]

CHECKPOINT_FILES = (
    "a quantized checkpoint (quantized.pt from quantize.py) or a classifier checkpoint "
    "(.ckpt from train.py)"
)
EXPECTED_FILES = (
    "a quantized checkpoint (quantized.pt from quantize.py), a classifier checkpoint "
    "(.ckpt from train.py) or an ONNX model from python -m fingerquant.export"
)


@dataclass
class LoadedCheckpoint:
    """A PyTorch model read from a checkpoint, in eval mode, with what it classifies.

    Attributes:
        path: the file it was loaded from.
        kind: ``quantized`` (a ``QuantizedModel`` simulating integer inference) or
            ``classifier`` (the FP network).
        model: the network, mapping images ``(N, 1, 8, 8)`` to logits.
        model_name: registered architecture name, such as ``model1``.
        task: ``thumbs`` or ``fingers``, or None when the checkpoint stores none.
        class_names: name of each logit.
        payload: the quantized checkpoint's dict, or the classifier's hyperparameters.
    """

    path: Path
    kind: ModelKind
    model: nn.Module
    model_name: str
    task: str | None
    class_names: list[str]
    payload: dict[str, Any]


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Load a quantized or classifier checkpoint, telling them apart by content.

    Raises:
        DataError: if the file is missing, unreadable or neither kind of checkpoint.
    """
    path = _existing_file(path)
    if path.suffix == ".onnx":
        raise DataError(
            f"{path}: an ONNX model where a checkpoint was expected. Pass the quantized.pt or "
            ".ckpt file it was exported from."
        )
    try:
        stored = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError) as error:
        raise DataError(
            f"{path}: not a PyTorch checkpoint file. Expected {CHECKPOINT_FILES}."
        ) from error

    if isinstance(stored, dict) and stored.get("format") == QUANTIZED_FORMAT:
        model, payload = load_quantized(path)
        _check_stored_layers(path, model, payload)
        return LoadedCheckpoint(
            path,
            "quantized",
            model,
            payload["model"],
            payload["task"],
            payload["class_names"],
            payload,
        )
    if isinstance(stored, dict) and "state_dict" in stored and "hyper_parameters" in stored:
        network, hparams = load_classifier(str(path))
        task = hparams.get("task")
        names = hparams.get("class_names") or (class_names(task) if task in TASKS else None)
        names = list(names) if names else [str(i) for i in range(hparams["num_classes"])]
        return LoadedCheckpoint(path, "classifier", network, hparams["model"], task, names, hparams)
    raise DataError(f"{path}: not a fingerquant checkpoint. Expected {CHECKPOINT_FILES}.")


def export_checkpoint(loaded: LoadedCheckpoint) -> onnx.ModelProto:
    """Return the ONNX model of a loaded checkpoint: integer if quantized, FP32 otherwise."""
    if loaded.kind == "quantized":
        return export_quantized(loaded.model, loaded.model_name, loaded.task, loaded.class_names)
    return export_fp32(loaded.model, loaded.model_name, loaded.task, loaded.class_names)


def fp_network(loaded: LoadedCheckpoint) -> nn.Module:
    """Return the FP network of a checkpoint: the classifier itself, or the network a
    quantized checkpoint was made from (stored as ``fp_state``)."""
    if loaded.kind == "classifier":
        return loaded.model
    payload = loaded.payload
    network = create_model(payload["model"], payload["num_classes"])
    network.load_state_dict(payload["fp_state"])
    return network.eval()


@dataclass
class Predictor:
    """A model file ready to score touch images, whatever its kind.

    Attributes:
        path: the file it was loaded from.
        kind: ``quantized``, ``classifier`` or ``onnx``.
        model_name: registered architecture name.
        task: ``thumbs`` or ``fingers``, or None when the file stores none.
        class_names: name of each logit.
        precision: ``fp32`` or ``w<b>a<b>``.
        run: maps float32 images ``(N, 1, 8, 8)`` to float32 logits ``(N, C)``.
    """

    path: Path
    kind: ModelKind
    model_name: str
    task: str | None
    class_names: list[str]
    precision: str
    run: Callable[[np.ndarray], np.ndarray]

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Return the logits of float32 images ``(N, 1, 8, 8)``."""
        return self.run(np.ascontiguousarray(images, dtype=np.float32))


def load_predictor(path: str | Path, threads: int = DEFAULT_THREADS) -> Predictor:
    """Load an ONNX model or a checkpoint for scoring.

    ``threads`` sets onnxruntime's intra-op threads. PyTorch models use the threads
    that ``torch.set_num_threads`` set.

    Raises:
        DataError: if the file is missing, unreadable or not a model fingerquant wrote.
    """
    path = _existing_file(path)
    if path.suffix != ".onnx":
        loaded = load_checkpoint(path)
        precision = "fp32"
        if loaded.kind == "quantized":
            settings = loaded.payload["quant_config"]
            precision = f"w{settings['w_bits']}a{settings['a_bits']}"
        return Predictor(
            path,
            loaded.kind,
            loaded.model_name,
            loaded.task,
            loaded.class_names,
            precision,
            _torch_runner(loaded.model),
        )

    try:
        model = onnx.load(str(path))
        metadata = read_metadata(model)
    except (DecodeError, ValueError, OSError) as error:
        raise DataError(
            f"{path}: not a readable ONNX model ({error}). Expected {EXPECTED_FILES}."
        ) from error
    if metadata.get("format") != FORMAT:
        raise DataError(
            f"{path}: an ONNX model without fingerquant metadata (format {FORMAT!r}), so its "
            "classes are unknown. Export it with python -m fingerquant.export."
        )
    session = create_session(model, threads=threads)
    return Predictor(
        path,
        "onnx",
        metadata["model"],
        metadata.get("task"),
        list(metadata["class_names"]),
        metadata["precision"],
        lambda images: run_logits(session, images),
    )


def _torch_runner(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function that runs ``model`` in eval mode, batch by batch, without gradients."""
    model.eval()

    def run(images: np.ndarray) -> np.ndarray:
        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), RUN_BATCH_SIZE):
                batch = torch.from_numpy(images[start : start + RUN_BATCH_SIZE])
                outputs.append(model(batch).numpy())
        if not outputs:
            with torch.no_grad():
                empty = model(torch.zeros(1, *images.shape[1:]))[:0]
            return empty.numpy()
        return np.concatenate(outputs)

    return run


def _check_stored_layers(path: Path, model: QuantizedModel, payload: dict[str, Any]) -> None:
    """Raise DataError unless the rebuilt model has the integer weights the file lists.

    The export reads the codes from the rebuilt model, which ``verify`` also runs, so
    this check ties the ONNX file to the ``layers`` that ``quantize.py`` stored.
    """
    stored = {record["name"]: record for record in payload.get("layers", [])}
    for block in model.blocks:
        record = stored.get(block.name)
        rebuilt = layer_record(block.name, block.layer)
        if record is None or not torch.equal(record["weight_int"], rebuilt["weight_int"]):
            raise DataError(
                f"{path}: the stored integer weights of layer {block.name!r} differ from the "
                "rebuilt model's. The file is inconsistent. Quantize the model again."
            )


def _existing_file(path: str | Path) -> Path:
    """Return ``path`` as a Path, raising DataError when no file is there."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"Model file not found: {path}. Pass {EXPECTED_FILES}.")
    if not path.is_file():
        raise DataError(f"{path} is a folder, not a model file. Pass {EXPECTED_FILES}.")
    return path
