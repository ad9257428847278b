"""onnxruntime sessions for exported models: creation, batched runs, the optimized graph."""

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from fingerquant.export.graph import INPUT_NAME

DEFAULT_THREADS = 1
"""Intra-op threads of a session. One thread makes runs reproducible and suits the
tiny tensors of these models. Raise it for large batches on an idle machine."""

RUN_BATCH_SIZE = 4096
"""Touches per ``session.run`` call when scoring many touches."""

INTEGER_OP_TYPES = frozenset(
    {
        "ConvInteger",
        "MatMulInteger",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
    }
)
"""Op types whose products run in integer arithmetic in onnxruntime."""

_WARNING = 2
_ERROR = 3


def create_session(
    model: onnx.ModelProto | bytes | str | Path,
    threads: int = DEFAULT_THREADS,
    optimized_model_path: Path | None = None,
) -> ort.InferenceSession:
    """Create a CPU session for ``model`` with all graph optimizations enabled.

    ``optimized_model_path``, when given, receives the graph as onnxruntime runs it
    after constant folding and fusions.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = _WARNING
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
        # onnxruntime warns that a saved graph with NCHWc layouts fits only this CPU.
        # That is expected here, because the file is only read to list its ops.
        options.log_severity_level = _ERROR
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = str(model)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run_logits(
    session: ort.InferenceSession, images: np.ndarray, batch_size: int = RUN_BATCH_SIZE
) -> np.ndarray:
    """Return the logits ``(N, num_classes)`` of float32 images ``(N, 1, 8, 8)``."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    outputs = [
        session.run(None, {INPUT_NAME: images[start : start + batch_size]})[0]
        for start in range(0, len(images), batch_size)
    ]
    if not outputs:
        num_classes = session.get_outputs()[0].shape[1]
        return np.zeros((0, num_classes), np.float32)
    return np.concatenate(outputs)


def optimized_op_types(model: onnx.ModelProto) -> Counter[str]:
    """Count the op types of the graph that onnxruntime runs for ``model`` on this CPU.

    Ops outside the default domain are counted as ``domain.OpType``.
    """
    with tempfile.TemporaryDirectory(prefix="fingerquant-ort-") as folder:
        path = Path(folder) / "optimized.onnx"
        create_session(model, optimized_model_path=path)
        optimized = onnx.load(str(path))
    return Counter(
        f"{node.domain}.{node.op_type}" if node.domain else node.op_type
        for node in optimized.graph.node
    )


def integer_op_counts(op_types: Counter[str]) -> Counter[str]:
    """Return the entries of ``op_types`` that compute products in integers."""
    return Counter(
        {op: count for op, count in op_types.items() if op.rpartition(".")[2] in INTEGER_OP_TYPES}
    )
