"""FP32 ONNX export of a trained classifier: float Conv and Gemm, BatchNormalization after ReLU."""

import copy

import onnx
import torch
from torch import fx, nn

from fingerquant.export.float_ops import conv_attributes, conv_output_shape, emit_graph_module
from fingerquant.export.graph import GraphBuilder, Value, float32_array, image_value
from fingerquant.models.cnn import IMAGE_SIZE


def export_fp32(
    model: nn.Module, model_name: str, task: str | None, class_names: list[str] | None
) -> onnx.ModelProto:
    """Return the ONNX graph of an FP classifier, computed in float32 in NCHW layout.

    The graph computes the model in eval mode, whatever mode ``model`` is in: dropout
    is the identity and BatchNorm uses its running statistics. ``task`` and
    ``class_names`` go into the metadata. Checkpoints that predate them store None.

    Raises:
        NotImplementedError: for a layer or op without an ONNX translation here.
    """
    model = copy.deepcopy(model).eval()
    graph_module = fx.symbolic_trace(model)
    builder = GraphBuilder()
    logits = emit_graph_module(builder, graph_module, image_value(), emit_layer=_emit_float_layer)
    with torch.no_grad():
        num_classes = int(model(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)).shape[1])
    return builder.build(
        logits,
        num_classes,
        doc_string=f"{model_name} FP32 classifier of 8 x 8 touch images.",
        metadata={
            "precision": "fp32",
            "model": model_name,
            "task": task,
            "class_names": class_names or [str(index) for index in range(num_classes)],
        },
    )


def _emit_float_layer(builder: GraphBuilder, name: str, module: nn.Module, x: Value) -> Value:
    """Add a float ``Conv`` for ``nn.Conv2d`` or ``Gemm`` for ``nn.Linear``."""
    weight = builder.constant(f"{name}/weight", float32_array(module.weight))
    inputs = [x.name, weight]
    if module.bias is not None:
        inputs.append(builder.constant(f"{name}/bias", float32_array(module.bias)))

    if isinstance(module, nn.Linear):
        output = builder.node("Gemm", inputs, f"{name}/gemm", transB=1)
        return Value(output, (module.out_features,), "flat")

    attributes = conv_attributes(name, module)
    _, height, width = x.shape
    size = conv_output_shape(module, height, width)
    output = builder.node("Conv", inputs, f"{name}/conv", **attributes)
    return Value(output, (module.out_channels, *size), "nchw")
