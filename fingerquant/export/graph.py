"""A small builder of ONNX graphs: nodes, initializers, and values with their layout.

Both exporters write their graphs node by node with ``onnx.helper`` instead of
``torch.onnx.export``. The integer graph has no PyTorch counterpart to trace,
and building the FP32 graph the same way gives both files the same input, output,
opset and metadata.
"""

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

import fingerquant
from fingerquant.models.cnn import IMAGE_SIZE

OPSET = 21
"""ONNX opset of the exported models. Opset 21 is the first whose Cast accepts the
packed UINT4 tensors that store weights of 4 bits or fewer."""

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"

FORMAT = "fingerquant-onnx"
FORMAT_VERSION = 1

Layout = Literal["nchw", "channels_last", "flat"]


@dataclass(frozen=True)
class Value:
    """A tensor of the graph being built, with its static shape and memory layout.

    Layouts, with the batch dim N first:

    - ``nchw``: (N, C, H, W), PyTorch's layout. ``shape`` is (C, H, W).
    - ``channels_last``: (N, 1, H, W, C). ``shape`` is (H, W, C). The extra dim of size 1
      lets the standard 3-D ``MaxPool`` pool H and W with a kernel of 1 along C, so
      no transpose is needed.
    - ``flat``: (N, F). ``shape`` is (F,). ``torch_order[f]`` is the index in PyTorch's
      flattened (C, H, W) order of feature ``f``, or None when the orders agree.

    Attributes:
        name: value name in the graph.
        shape: static shape without the batch dim.
        layout: one of the layouts above.
        torch_order: feature permutation of a ``flat`` value made from a
            ``channels_last`` one.
    """

    name: str
    shape: tuple[int, ...]
    layout: Layout
    torch_order: np.ndarray | None = None

    @property
    def channels(self) -> int:
        return self.shape[-1] if self.layout == "channels_last" else self.shape[0]

    def channel_constant_shape(self) -> tuple[int, ...]:
        """Return the shape that broadcasts a per-channel vector over this value."""
        if self.layout == "nchw":
            return (-1,) + (1,) * (len(self.shape) - 1)
        return (-1,)

    def renamed(self, name: str) -> "Value":
        """Return this value's shape and layout under another name, for elementwise ops."""
        return Value(name, self.shape, self.layout, self.torch_order)


def image_value() -> Value:
    """Return the graph input ``image``, (N, 1, 8, 8) float32 in NCHW."""
    return Value(INPUT_NAME, (1, IMAGE_SIZE, IMAGE_SIZE), "nchw")


class GraphBuilder:
    """Builder of one ONNX graph: its nodes and initializers, in the order they are added.

    Every value gets a unique, readable name from the module and the step
    (``conv1/acc``), so the graph can be read in Netron or in onnxruntime's optimized
    model file. Names are short because they make up a tenth of a small model's file.
    """

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._used = Counter[str]()
        self._shapes: dict[tuple[int, ...], str] = {}

    def unique(self, name: str) -> str:
        """Return ``name`` without its module path, with a numeric suffix if it is taken.

        ``features.conv1/acc`` becomes ``conv1/acc``.
        """
        module, separator, step = name.partition("/")
        name = module.rpartition(".")[2] + separator + step
        self._used[name] += 1
        count = self._used[name]
        return name if count == 1 else f"{name}_{count}"

    def constant(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as an initializer and return its value name.

        The dtype of ``array`` is the stored type: ``ml_dtypes.uint4`` arrays are
        stored packed, two values per byte.
        """
        unique = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), unique))
        return unique

    def shape_constant(self, dims: list[int]) -> str:
        """Return an int64 shape for ``Reshape`` or ``Expand``, added once per distinct shape.

        In a ``Reshape`` shape, 0 copies the input's dim (the batch).
        """
        key = tuple(dims)
        if key not in self._shapes:
            label = "x".join(str(dim) for dim in dims)
            self._shapes[key] = self.constant(f"shape_{label}", np.asarray(dims, dtype=np.int64))
        return self._shapes[key]

    def node(self, op_type: str, inputs: list[str], name: str, **attributes: Any) -> str:
        """Add one node with a single output and return the output's value name.

        An empty string in ``inputs`` leaves an optional input out, as ONNX specifies.
        Nodes stay unnamed: the unique output name already identifies each one, and
        repeating it would add about a kilobyte to the smallest models.
        """
        output = self.unique(name)
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attributes))
        return output

    def build(
        self, output: Value, num_classes: int, doc_string: str, metadata: dict[str, Any]
    ) -> onnx.ModelProto:
        """Return the checked model with input ``image`` (N, 1, 8, 8) and output ``logits``.

        ``output`` is the value that becomes the ``logits`` output, (N, num_classes)
        float32. ``metadata`` is stored in ``metadata_props``, every value as JSON.
        """
        if output.layout != "flat":
            raise NotImplementedError(
                f"the model ends in a {output.layout} tensor: expected (N, num_classes) logits."
            )
        self._rename_output(output.name, OUTPUT_NAME)
        graph = helper.make_graph(
            self.nodes,
            "fingerquant",
            [
                helper.make_tensor_value_info(
                    INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, 1, IMAGE_SIZE, IMAGE_SIZE]
                )
            ],
            [
                helper.make_tensor_value_info(
                    OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, num_classes]
                )
            ],
            self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="fingerquant",
            producer_version=fingerquant.__version__,
            doc_string=doc_string,
        )
        properties = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
        helper.set_model_props(model, {key: json.dumps(value) for key, value in properties.items()})
        onnx.checker.check_model(model, full_check=True)
        return model

    def _rename_output(self, old: str, new: str) -> None:
        """Rename the value ``old``, the output of the last node that writes it, to ``new``."""
        for node in reversed(self.nodes):
            if old in node.output:
                node.output[list(node.output).index(old)] = new
                break
        else:
            raise NotImplementedError(f"the graph output {old!r} is not computed by any node.")
        for node in self.nodes:
            node.input[:] = [new if value == old else value for value in node.input]


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    """Return the ``metadata_props`` of a model written by ``GraphBuilder.build``, JSON decoded.

    Raises:
        ValueError: if a value is not JSON, so the model was not written by fingerquant.
    """
    metadata: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            metadata[prop.key] = json.loads(prop.value)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"metadata entry {prop.key!r} is not JSON ({error}): expected a model "
                "exported by fingerquant."
            ) from error
    return metadata


def float32_array(tensor: torch.Tensor) -> np.ndarray:
    """Return ``tensor`` as a float32 NumPy array, detached and on the CPU."""
    return tensor.detach().to(torch.float32).cpu().numpy()
