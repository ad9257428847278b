"""ONNX nodes of one quantized layer: quantize the input, multiply in integers, rescale to float.

For a layer with input scale ``s_a`` and zero-point ``z_a`` (per tensor), weight codes
``q_w`` with scales ``s_w[c]`` and zero-points ``z_w[c]`` (per output channel), and
float bias ``b[c]``:

    q_a    = clamp(round(x / s_a) + z_a, 0, 2^b_a - 1)              QuantizeLinear, Clip
    acc[c] = sum (q_a - z_a) * (q_w[c] - z_w[c])                   MatMulInteger (int32)
    y[c]   = float(acc[c]) * (s_a * s_w[c]) + b[c]                  Cast, Mul, Add

QuantizeLinear divides by the scale and rounds half to even, as the simulation does,
so the codes of the same float input equal the simulated ones exactly, ties
included. Activations of fewer than 8 bits sit in a uint8 container, and a Clip
keeps them on their grid. The accumulator is exact in int32, while the simulation
sums float products, so ``y`` differs from the simulated layer output by float
rounding only (a few ulps).

NOTE: that rounding difference moves an activation lying within a few ulps of a
rounding tie to the neighbouring code in one model but not the other. Such flips are
rare, and ``verify`` counts the touches they reach. Only an integer accumulator in
the simulation as well would make the two bit-identical.

A conv runs as one MatMulInteger over image patches (im2col, see ``patches.py``).
"""

import numpy as np
import torch
from onnx import TensorProto
from torch import nn

from fingerquant.export.float_ops import emit_channel_constant
from fingerquant.export.graph import GraphBuilder, Value, float32_array
from fingerquant.export.patches import emit_float_patches, emit_gathered_patches, emit_patch_rows
from fingerquant.export.weights import WeightOperand, emit_weight

CONTAINER_BITS = 8
"""Width of the uint8 container of activation codes."""


def emit_integer_product(
    builder: GraphBuilder, name: str, module: nn.Module, record: dict, x: Value
) -> Value:
    """Add the quantization of float ``x`` and the integer conv or matrix product of a layer.

    Returns the int32 accumulator: channels-last for a conv, flat for a linear layer.
    ``record`` is the layer's entry of ``checkpoint.layer_record``. ``module`` is the FP
    ``nn.Conv2d`` or ``nn.Linear`` whose geometry the conv keeps. The codes are named
    ``<name>/input_codes`` (``<name>/patch_codes`` for a one-channel image, see
    ``patches.emit_float_patches``) and the accumulator ``<name>/acc``, so tests can read them.

    Raises:
        NotImplementedError: for another layer type, a grouped conv or non-zero padding.
    """
    zero_point = builder.constant(
        f"{name}/input_zero_point", np.asarray(int(record["input_zero_point"]), dtype=np.uint8)
    )
    if type(module) is nn.Conv2d:
        _check_conv(name, module)
        if x.layout == "nchw" and x.channels == 1:
            float_patches = emit_float_patches(builder, name, module, x)
            codes = _emit_quantize_input(
                builder, name, record, float_patches, zero_point, codes_name="patch_codes"
            )
            patches = emit_patch_rows(builder, name, codes)
        else:
            codes = _emit_quantize_input(builder, name, record, x, zero_point)
            patches = emit_gathered_patches(builder, name, module, codes, zero_point)
        return _emit_conv_matmul(builder, name, module, record, patches, zero_point)
    if type(module) is nn.Linear:
        codes = _emit_quantize_input(builder, name, record, x, zero_point)
        return _emit_linear_product(builder, name, record, codes, zero_point)
    raise NotImplementedError(
        f"layer {name!r} of type {type(module).__name__} has no integer export: "
        "supported layer types are Conv2d and Linear."
    )


def emit_cast_float(builder: GraphBuilder, name: str, accumulator: Value) -> Value:
    """Add the Cast of the int32 accumulator to float32 (exact below 2^24 in magnitude)."""
    output = builder.node("Cast", [accumulator.name], f"{name}/acc_float", to=TensorProto.FLOAT)
    return accumulator.renamed(output)


def emit_rescale(builder: GraphBuilder, name: str, record: dict, accumulator: Value) -> Value:
    """Add ``accumulator * (s_a * s_w) + bias (+ output_offset)`` on the float accumulator.

    ``output_offset`` is what constant input channels contribute (set by
    ``freeze_dead_channels``): ``(C_out, H, W)`` for a conv, ``(C_out,)`` for a linear
    layer. The simulation adds it after the bias, in floating point, and so does the graph.
    """
    multiplier = (record["input_scale"] * record["weight_scale"]).to(torch.float32)
    multiplier_name = emit_channel_constant(
        builder, f"{name}/output_scale", multiplier, accumulator
    )
    output = builder.node("Mul", [accumulator.name, multiplier_name], f"{name}/output")
    if record["bias"] is not None:
        bias = emit_channel_constant(builder, f"{name}/bias", record["bias"], accumulator)
        output = builder.node("Add", [output, bias], f"{name}/output_biased")
    offset = record.get("output_offset")
    if offset is not None:
        if accumulator.layout == "channels_last":
            offset = offset.permute(1, 2, 0)  # (H, W, C_out)
        offset_name = builder.constant(f"{name}/output_offset", float32_array(offset))
        output = builder.node("Add", [output, offset_name], f"{name}/output_offset_added")
    return accumulator.renamed(output)


def _emit_quantize_input(
    builder: GraphBuilder,
    name: str,
    record: dict,
    x: Value,
    zero_point: str,
    codes_name: str = "input_codes",
) -> Value:
    """Add QuantizeLinear of the float input (and a Clip below 8 bits) and return the codes."""
    scale = builder.constant(f"{name}/input_scale", float32_array(record["input_scale"]))
    bits = record["input_bits"]
    if bits == CONTAINER_BITS:
        codes = builder.node("QuantizeLinear", [x.name, scale, zero_point], f"{name}/{codes_name}")
        return x.renamed(codes)

    # uint8 saturation already clamps at quant_min = 0, and the Clip adds quant_max.
    unclipped = builder.node("QuantizeLinear", [x.name, scale, zero_point], f"{name}/input_uint8")
    low = builder.constant(f"{name}/input_quant_min", np.asarray(0, dtype=np.uint8))
    high = builder.constant(f"{name}/input_quant_max", np.asarray(2**bits - 1, dtype=np.uint8))
    return x.renamed(builder.node("Clip", [unclipped, low, high], f"{name}/{codes_name}"))


def _check_conv(name: str, module: nn.Conv2d) -> None:
    """Raise NotImplementedError for a conv the integer export does not handle."""
    if module.groups != 1:
        raise NotImplementedError(
            f"layer {name!r} has groups={module.groups}: only groups=1 convs export to integers."
        )
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise NotImplementedError(
            f"layer {name!r} uses padding={module.padding!r}, padding_mode="
            f"{module.padding_mode!r}: only explicit zero padding (an int or a pair) is supported."
        )


def _emit_conv_matmul(
    builder: GraphBuilder,
    name: str,
    module: nn.Conv2d,
    record: dict,
    patches: Value,
    zero_point: str,
) -> Value:
    """Add MatMulInteger of the patches by the weight and return the channels-last accumulator."""
    out_h, out_w, depth = patches.shape
    # Row (i, j, c) of the weight matrix multiplies input channel c at kernel tap (i, j),
    # the order of the patch rows.
    weight_codes = record["weight_int"].numpy().transpose(2, 3, 1, 0)  # (kh, kw, C_in, C_out)
    weight = emit_weight(
        builder,
        name,
        weight_codes.reshape(depth, module.out_channels),
        record["weight_zero_point"].numpy(),
        record["weight_bits"],
    )
    product = builder.node(
        "MatMulInteger", _matmul_inputs(patches.name, zero_point, weight), f"{name}/acc_rows"
    )  # (N, out_h * out_w, C_out)
    output_shape = [0, 1, out_h, out_w, module.out_channels]
    accumulator = builder.node(
        "Reshape", [product, builder.shape_constant(output_shape)], f"{name}/acc"
    )
    return Value(accumulator, (out_h, out_w, module.out_channels), "channels_last")


def _emit_linear_product(
    builder: GraphBuilder, name: str, record: dict, codes: Value, zero_point: str
) -> Value:
    """Add MatMulInteger on flat codes and return the flat accumulator."""
    if codes.layout != "flat":
        raise NotImplementedError(
            f"layer {name!r} receives a {codes.layout} tensor: a Linear layer needs a flattened "
            "input here."
        )
    weight_codes = record["weight_int"].numpy().T  # (K, C_out)
    if codes.torch_order is not None:
        # The input was flattened channels-last, so feature f is PyTorch's torch_order[f].
        weight_codes = weight_codes[codes.torch_order]
    weight = emit_weight(
        builder, name, weight_codes, record["weight_zero_point"].numpy(), record["weight_bits"]
    )
    accumulator = builder.node(
        "MatMulInteger", _matmul_inputs(codes.name, zero_point, weight), f"{name}/acc"
    )
    return Value(accumulator, (weight_codes.shape[1],), "flat")


def _matmul_inputs(codes: str, zero_point: str, weight: WeightOperand) -> list[str]:
    """Return the MatMulInteger inputs, leaving out the weight zero-point of centered weights."""
    inputs = [codes, weight.value, zero_point]
    if weight.zero_point:
        inputs.append(weight.zero_point)
    return inputs
