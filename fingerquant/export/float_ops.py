"""ONNX nodes for the floating-point ops of a traced model: ReLU, BatchNorm, pooling, flatten.

The FP32 exporter walks the whole traced classifier with ``emit_graph_module``, and
the integer exporter walks the ``pre`` and ``post`` graphs of each quantized block.
Conv and linear calls are handed to a callback, because the two exporters write
them differently. Any other op raises ``NotImplementedError`` naming it, so a new
architecture fails at export time instead of producing a different graph. Every
function takes and returns a ``Value``, so the ops work in each layout it describes.
"""

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

from fingerquant.export.graph import GraphBuilder, Value, float32_array
from fingerquant.quant.layers import BATCH_NORM_TYPES, FrozenBatchNorm
from fingerquant.quant.wrap import DROPOUT_TYPES

LayerEmitter = Callable[[GraphBuilder, str, nn.Module, Value], Value]
"""``emit(builder, name, module, x) -> y`` for a conv or linear module called on ``x``."""

PASS_THROUGH_TYPES = (nn.Identity, *DROPOUT_TYPES)
"""Modules that compute the identity at inference."""


def chain_modules(graph_module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """Return the ``(name, module)`` calls of a graph that is a plain chain of module calls.

    Returns an empty list for ``nn.Identity`` and None for any other graph, such as one
    with a function call or a value used twice.
    """
    if isinstance(graph_module, nn.Identity):
        return []
    if not isinstance(graph_module, fx.GraphModule):
        return None
    calls: list[tuple[str, nn.Module]] = []
    previous = None
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            previous = node
        elif node.op == "call_module" and node.args == (previous,) and not node.kwargs:
            calls.append((node.target, graph_module.get_submodule(node.target)))
            previous = node
        elif node.op == "output" and node.args[0] is previous:
            return calls
        else:
            return None
    return None


def emit_graph_module(
    builder: GraphBuilder, graph_module: nn.Module, x: Value, emit_layer: LayerEmitter | None = None
) -> Value:
    """Add the ops of a one-input ``torch.fx`` graph (or an ``nn.Identity``) applied to ``x``.

    Raises:
        NotImplementedError: for an op other than a module call, an unsupported module,
            or a conv or linear layer when ``emit_layer`` is None.
    """
    if isinstance(graph_module, nn.Identity):
        return x
    if not isinstance(graph_module, fx.GraphModule):
        raise NotImplementedError(
            f"cannot export a {type(graph_module).__name__}: expected a torch.fx GraphModule."
        )

    values: dict[fx.Node, Value] = {}
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            values[node] = x
        elif node.op == "output":
            return values[node.args[0]]
        elif node.op == "call_module" and len(node.args) == 1 and not node.kwargs:
            module = graph_module.get_submodule(node.target)
            source = values[node.args[0]]
            if type(module) in (nn.Conv2d, nn.Linear):
                if emit_layer is None:
                    raise NotImplementedError(
                        f"layer {node.target!r} sits among the FP ops of a quantized block: "
                        "every conv and linear layer must be quantized."
                    )
                values[node] = emit_layer(builder, node.target, module, source)
            else:
                values[node] = emit_module(builder, node.target, module, source)
        else:
            raise NotImplementedError(
                f"cannot export node {node.name!r} ({node.op} {node.target}): only calls of "
                "modules on one tensor (ReLU, BatchNorm, MaxPool2d, Flatten, dropout) export."
            )
    raise AssertionError("a traced graph always ends in an output node")


def emit_module(builder: GraphBuilder, name: str, module: nn.Module, x: Value) -> Value:
    """Add the ONNX op of one FP module applied to ``x`` and return its output.

    Raises:
        NotImplementedError: for a module type or a setting without an ONNX translation here.
    """
    if isinstance(module, PASS_THROUGH_TYPES):
        return x
    if type(module) is nn.ReLU:
        return x.renamed(builder.node("Relu", [x.name], f"{name}/relu"))
    if isinstance(module, FrozenBatchNorm):
        return emit_affine_batch_norm(builder, name, module, x)
    if isinstance(module, BATCH_NORM_TYPES):
        return emit_batch_norm(builder, name, module, x)
    if type(module) is nn.MaxPool2d:
        return emit_max_pool(builder, name, module, x)
    if type(module) is nn.Flatten:
        return emit_flatten(builder, name, module, x)
    raise NotImplementedError(
        f"layer {name!r} of type {type(module).__name__} cannot be exported: supported FP ops "
        "are ReLU, BatchNorm1d/2d, MaxPool2d, Flatten, Identity and dropout."
    )


def batch_norm_terms(module: FrozenBatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the per-channel ``(alpha, beta)`` with ``BN(x) = x * alpha + beta``.

        alpha = weight / sqrt(running_var + eps),   beta = bias - running_mean * alpha

    This is the affine map of BatchNorm in eval mode. PyTorch may order the float
    operations differently, so results can differ in the last bit.
    """
    invstd = 1.0 / torch.sqrt(module.running_var + module.eps)
    alpha = invstd if module.weight is None else module.weight * invstd
    beta = -module.running_mean * alpha
    if module.bias is not None:
        beta = module.bias + beta
    return alpha, beta


def emit_channel_constant(builder: GraphBuilder, name: str, vector: torch.Tensor, x: Value) -> str:
    """Add a per-channel float32 vector shaped to broadcast over ``x`` and return its name.

    For a channels-last ``x`` the vector is expanded to (H, W, C) by an ``Expand`` of
    constants, which onnxruntime folds into one constant when the session is created.
    The file keeps the short vector. onnxruntime's Mul and Add broadcast a (C,) vector
    row by row, and with 16 to 128 channels that is about 4 times slower than an
    operand that repeats only over the batch (measured with onnxruntime 1.32).
    """
    vector_name = builder.constant(name, float32_array(vector).reshape(x.channel_constant_shape()))
    if x.layout != "channels_last":
        return vector_name
    shape = builder.shape_constant(list(x.shape))
    return builder.node("Expand", [vector_name, shape], f"{name}_expanded")


def emit_affine_batch_norm(
    builder: GraphBuilder, name: str, module: FrozenBatchNorm, x: Value
) -> Value:
    """Add frozen BatchNorm as ``x * alpha + beta`` per channel (Mul, Add), in any layout."""
    alpha, beta = batch_norm_terms(module)
    scale = emit_channel_constant(builder, f"{name}/alpha", alpha, x)
    shift = emit_channel_constant(builder, f"{name}/beta", beta, x)
    scaled = builder.node("Mul", [x.name, scale], f"{name}/mul")
    return x.renamed(builder.node("Add", [scaled, shift], f"{name}/add"))


def emit_batch_norm(
    builder: GraphBuilder, name: str, module: nn.BatchNorm1d | nn.BatchNorm2d, x: Value
) -> Value:
    """Add an FP BatchNorm as the standard ONNX ``BatchNormalization`` op (inference mode)."""
    if module.running_mean is None or module.running_var is None:
        raise NotImplementedError(
            f"layer {name!r} has no running statistics (track_running_stats=False): its "
            "inference output depends on the batch and has no fixed ONNX form."
        )
    if x.layout == "channels_last":
        raise NotImplementedError(f"layer {name!r}: BatchNormalization needs channels at dim 1.")
    channels = module.num_features
    weight = module.weight if module.affine else torch.ones(channels)
    bias = module.bias if module.affine else torch.zeros(channels)
    inputs = [
        x.name,
        builder.constant(f"{name}/scale", float32_array(weight)),
        builder.constant(f"{name}/bias", float32_array(bias)),
        builder.constant(f"{name}/mean", float32_array(module.running_mean)),
        builder.constant(f"{name}/var", float32_array(module.running_var)),
    ]
    output = builder.node("BatchNormalization", inputs, f"{name}/batch_norm", epsilon=module.eps)
    return x.renamed(output)


def emit_max_pool(builder: GraphBuilder, name: str, module: nn.MaxPool2d, x: Value) -> Value:
    """Add ``nn.MaxPool2d`` as ONNX ``MaxPool`` with the same kernel, stride, padding and
    dilation: 2-D on NCHW, 3-D with a kernel of 1 along C on channels-last values."""
    if module.return_indices:
        raise NotImplementedError(f"layer {name!r} returns indices: only the pooled values export.")
    if x.layout == "flat":
        raise NotImplementedError(f"layer {name!r} pools a flat tensor: expected an image.")

    kernel = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    padding = _pair(module.padding)
    dilation = _pair(module.dilation)
    channels_last = x.layout == "channels_last"
    height, width = x.shape[:2] if channels_last else x.shape[1:]
    pooled = tuple(
        _pooled_size(size, *setting, module.ceil_mode)
        for size, setting in zip(
            (height, width), zip(kernel, stride, padding, dilation, strict=True), strict=True
        )
    )

    # Channels-last values pool over (H, W, C) with a kernel, stride and dilation of 1
    # along C and no padding there.
    along_channels, no_padding = ([1], [0]) if channels_last else ([], [])
    output = builder.node(
        "MaxPool",
        [x.name],
        f"{name}/max_pool",
        kernel_shape=[*kernel, *along_channels],
        strides=[*stride, *along_channels],
        pads=[*padding, *no_padding, *padding, *no_padding],
        dilations=[*dilation, *along_channels],
        ceil_mode=int(module.ceil_mode),
    )

    if channels_last:
        return Value(output, (*pooled, x.channels), x.layout)
    return Value(output, (x.channels, *pooled), x.layout)


def emit_flatten(builder: GraphBuilder, name: str, module: nn.Flatten, x: Value) -> Value:
    """Add ``nn.Flatten(1, -1)``. A flattened channels-last value records PyTorch's order."""
    if module.start_dim != 1 or module.end_dim != -1:
        raise NotImplementedError(
            f"layer {name!r} flattens dims {module.start_dim} to {module.end_dim}: only "
            "Flatten(start_dim=1, end_dim=-1) is supported."
        )
    if x.layout == "flat":
        return x
    output = builder.node("Flatten", [x.name], f"{name}/flatten", axis=1)
    features = math.prod(x.shape)
    if x.layout == "nchw":
        return Value(output, (features,), "flat")
    height, width, channels = x.shape
    # Feature (h, w, c) of the channels-last tensor is PyTorch's feature (c, h, w).
    order = torch.arange(features).reshape(channels, height, width).permute(1, 2, 0)
    return Value(output, (features,), "flat", order.reshape(-1).numpy())


def conv_attributes(name: str, module: nn.Conv2d) -> dict[str, Any]:
    """Return the ONNX Conv attributes with the geometry of ``module``.

    Raises:
        NotImplementedError: for padding other than explicit zeros.
    """
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise NotImplementedError(
            f"layer {name!r} uses padding={module.padding!r}, padding_mode="
            f"{module.padding_mode!r}: only explicit zero padding (an int or a pair) is supported."
        )
    pad_h, pad_w = module.padding
    return {
        "kernel_shape": list(module.kernel_size),
        "strides": list(module.stride),
        "pads": [pad_h, pad_w, pad_h, pad_w],
        "dilations": list(module.dilation),
        "group": module.groups,
    }


def conv_output_shape(module: nn.Conv2d, height: int, width: int) -> tuple[int, int]:
    """Return ``(out_h, out_w)`` of ``module`` on an input of ``height x width``."""
    sizes = []
    for size, kernel, stride, padding, dilation in zip(
        (height, width),
        module.kernel_size,
        module.stride,
        module.padding,
        module.dilation,
        strict=True,
    ):
        sizes.append((size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1)
    out_h, out_w = sizes
    return out_h, out_w


def _pooled_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Return a max-pool's output size as PyTorch computes it, ``ceil_mode`` included."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    pooled = -(-span // stride) + 1
    # PyTorch drops a last window that would start inside the right padding.
    if (pooled - 1) * stride >= size + padding:
        pooled -= 1
    return pooled


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return first, second
