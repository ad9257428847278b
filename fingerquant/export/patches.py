"""im2col in ONNX: the image patches that turn a conv into one MatMulInteger.

For output position ``p`` and kernel tap ``(i, j)``, the patch row contains the input
cells under that tap for every input channel, in the order ``(i, j, c)``. A conv is
then ``patches (N, out_h * out_w, kh * kw * C_in) @ weight (kh * kw * C_in, C_out)``.

Two constructions, both exact:

- ``emit_float_patches``: for a one-channel float image, a float conv with one-hot
  kernels copies each tap into its own channel before quantization.
- ``emit_gathered_patches``: for uint8 codes in the channels-last layout, a Pad with
  the zero-point and one Gather of ``C_in``-byte cells.

onnxruntime's ConvInteger would need neither, but version 1.32 accepts only one
weight zero-point per tensor and, measured on these models, runs 3 to 7 times slower
than the patches and MatMulInteger (``benchmarks/inference.py`` reports the result).
"""

import numpy as np
from torch import nn

from fingerquant.export.float_ops import conv_attributes, conv_output_shape
from fingerquant.export.graph import GraphBuilder, Value


def emit_float_patches(builder: GraphBuilder, name: str, module: nn.Conv2d, x: Value) -> Value:
    """Add the float patches of a one-channel NCHW image: ``(N, kh * kw, out_h, out_w)``.

    Output channel ``k`` of a float conv with one-hot kernels copies kernel tap ``k``
    of every window: it adds ``1.0 * x`` to zeros, which is exact for finite inputs.
    The zero padding becomes 0.0, which QuantizeLinear maps to ``z_a`` exactly. For
    one input channel this runs about 4 times faster than the Gather (onnxruntime 1.32).
    """
    _, height, width = x.shape
    out_h, out_w = conv_output_shape(module, height, width)
    taps = module.kernel_size[0] * module.kernel_size[1]
    one_hot = np.eye(taps, dtype=np.float32).reshape(taps, 1, *module.kernel_size)
    kernel = builder.constant(f"{name}/patch_kernel", one_hot)
    patches = builder.node(
        "Conv", [x.name, kernel], f"{name}/patches_float", **conv_attributes(name, module)
    )
    return Value(patches, (taps, out_h, out_w), "nchw")


def emit_patch_rows(builder: GraphBuilder, name: str, codes: Value) -> Value:
    """Add the Transpose of NCHW patch codes ``(N, K, out_h, out_w)`` to patch rows."""
    depth, out_h, out_w = codes.shape
    rows = builder.node("Transpose", [codes.name], f"{name}/patch_rows", perm=[0, 2, 3, 1])
    output = builder.node(
        "Reshape", [rows, builder.shape_constant([0, out_h * out_w, depth])], f"{name}/patches"
    )
    return Value(output, (out_h, out_w, depth), "channels_last")


def emit_gathered_patches(
    builder: GraphBuilder, name: str, module: nn.Conv2d, codes: Value, zero_point: str
) -> Value:
    """Add the patch rows of uint8 codes: Pad with ``z_a``, then Gather channels-last cells.

    Padded cells hold ``z_a``, so they count as 0 in ``sum (q_a - z_a) * w``.
    """
    codes = _to_channels_last(builder, name, codes)
    height, width, channels = codes.shape
    pad_h, pad_w = module.padding
    padded_h, padded_w = height + 2 * pad_h, width + 2 * pad_w
    out_h, out_w = conv_output_shape(module, height, width)

    padded = codes.name
    if pad_h or pad_w:
        pads = builder.constant(f"{name}/pads", np.asarray([0, 0, pad_h, pad_w, 0] * 2, np.int64))
        padded = builder.node("Pad", [codes.name, pads, zero_point], f"{name}/input_padded")
    cells = builder.node(
        "Reshape",
        [padded, builder.shape_constant([0, padded_h * padded_w, channels])],
        f"{name}/input_cells",
    )  # (N, padded_h * padded_w, C_in)
    index = _emit_patch_index(builder, name, module, padded_w, out_h, out_w)
    gathered = builder.node("Gather", [cells, index], f"{name}/patch_cells", axis=1)
    # (N, out_h * out_w, kh * kw, C_in)
    patches = builder.node(
        "Reshape", [gathered, builder.shape_constant([0, out_h * out_w, -1])], f"{name}/patches"
    )  # (N, out_h * out_w, kh * kw * C_in)
    taps = module.kernel_size[0] * module.kernel_size[1]
    return Value(patches, (out_h, out_w, taps * channels), "channels_last")


def _emit_patch_index(
    builder: GraphBuilder, name: str, module: nn.Conv2d, padded_w: int, out_h: int, out_w: int
) -> str:
    """Add the ``(out_h * out_w, kh * kw)`` Gather indices into the flattened padded image.

    Index = (top-left cell of the output position) + (offset of the kernel tap). The
    file stores the two short vectors, and onnxruntime folds their sum into one
    constant when the session is created.
    """
    (stride_h, stride_w), (dilation_h, dilation_w) = module.stride, module.dilation
    rows, cols = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    origins = (rows * stride_h * padded_w + cols * stride_w).reshape(-1, 1)
    taps_h, taps_w = np.meshgrid(
        np.arange(module.kernel_size[0]), np.arange(module.kernel_size[1]), indexing="ij"
    )
    offsets = (taps_h * dilation_h * padded_w + taps_w * dilation_w).reshape(-1)
    origin_name = builder.constant(f"{name}/patch_origins", origins.astype(np.int32))
    offset_name = builder.constant(f"{name}/patch_offsets", offsets.astype(np.int32))
    return builder.node("Add", [origin_name, offset_name], f"{name}/patch_index")


def _to_channels_last(builder: GraphBuilder, name: str, codes: Value) -> Value:
    """Return ``codes`` in the channels-last layout, adding a Transpose and Reshape if needed."""
    if codes.layout == "channels_last":
        return codes
    if codes.layout != "nchw":
        raise NotImplementedError(f"layer {name!r} receives a flat tensor: a conv needs an image.")
    channels, height, width = codes.shape
    source = codes.name
    if channels > 1:
        source = builder.node("Transpose", [source], f"{name}/input_nhwc", perm=[0, 2, 3, 1])
    # With one channel, NCHW and NHWC have the same memory order, and a Reshape suffices.
    shape = builder.shape_constant([0, 1, height, width, channels])
    output = builder.node("Reshape", [source, shape], f"{name}/input_channels_last")
    return Value(output, (height, width, channels), "channels_last")
