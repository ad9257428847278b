"""Storage of integer weight codes in the ONNX file, and their feed to MatMulInteger.

A quantized weight is ``w_hat = s * (q - z)`` with codes ``q`` in ``[0, 2^b - 1]`` and
one zero-point ``z`` per output channel. Convs and linear layers both multiply by a
weight matrix ``B`` of shape ``(K, C_out)``, one column per output channel. Two
encodings, chosen by the bit width ``b``:

- ``b <= 6``: *centered* int8 weights ``q - z``, which lie in ``[-63, 63]``, with no
  weight zero-point. onnxruntime runs them with its u8s8 kernels. On x86 CPUs
  without VNNI (SSE4.1, AVX2, AVX-512) those kernels add pairs of u8 x s8 products
  in saturating int16 arithmetic (``vpmaddubsw``). That is exact only for weights
  in ``[-64, 63]`` (onnxruntime commit 040c2f4, "x86/64 U8S8 Gemm Precision Fix"),
  so wider weights must not take this path.
- ``b = 7, 8``: uint8 codes ``q`` with one uint8 zero-point per column, which
  MatMulInteger subtracts itself. onnxruntime runs them with its u8u8 kernels,
  which do not saturate.

Codes of 4 bits or fewer are stored packed, two per byte, as ONNX ``UINT4`` tensors
with ``UINT4`` zero-points. The graph casts both to int8 and subtracts. Those nodes
read only initializers, so onnxruntime's constant folding turns them into one int8
initializer when the session is created. The file contains 4-bit codes, and the
runtime computes with 8-bit integers. Codes of 5 to 8 bits are stored one per byte.
"""

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np
from onnx import TensorProto

from fingerquant.export.graph import GraphBuilder

CENTERED_MAX_BITS = 6
"""Widest weights stored centered as int8: ``|q - z| <= 63`` keeps the u8s8 kernels exact."""

PACKED_MAX_BITS = 4
"""Widest weights stored as packed ``UINT4`` codes."""


@dataclass(frozen=True)
class WeightOperand:
    """The weight inputs of one MatMulInteger node.

    Attributes:
        value: name of the ``(K, C_out)`` weight, int8 centered or uint8 codes.
        zero_point: name of the ``(C_out,)`` uint8 zero-point, or "" for centered weights.
    """

    value: str
    zero_point: str


def emit_weight(
    builder: GraphBuilder, name: str, codes: np.ndarray, zero_point: np.ndarray, bits: int
) -> WeightOperand:
    """Add the initializers (and folded nodes) of a ``(K, C_out)`` matrix of weight codes.

    Args:
        builder: graph to add to.
        name: layer name, the prefix of the value names.
        codes: ``(K, C_out)`` integer codes in ``[0, 2^bits - 1]``.
        zero_point: ``(C_out,)`` integer zero-points, one per column.
        bits: weight bit width ``b``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    zero_point = np.asarray(zero_point, dtype=np.int64)
    assert codes.ndim == 2, "weight codes form a (K, C_out) matrix"
    assert zero_point.shape == (codes.shape[1],), "one zero-point per column"
    assert codes.min() >= 0, "codes start at 0"
    assert codes.max() < 2**bits, f"codes lie on the {bits}-bit grid"

    if bits > CENTERED_MAX_BITS:
        value = builder.constant(f"{name}/weight_codes", codes.astype(np.uint8))
        column_zero_point = builder.constant(
            f"{name}/weight_zero_point", zero_point.astype(np.uint8)
        )
        return WeightOperand(value, column_zero_point)

    if bits > PACKED_MAX_BITS:
        centered = builder.constant(f"{name}/weight_centered", (codes - zero_point).astype(np.int8))
        return WeightOperand(centered, "")

    packed_codes = builder.constant(f"{name}/weight_codes", codes.astype(ml_dtypes.uint4))
    packed_zero_point = builder.constant(
        f"{name}/weight_zero_point", zero_point.astype(ml_dtypes.uint4)
    )
    codes_int8 = builder.node(
        "Cast", [packed_codes], f"{name}/weight_codes_int8", to=TensorProto.INT8
    )
    zero_point_int8 = builder.node(
        "Cast", [packed_zero_point], f"{name}/weight_zero_point_int8", to=TensorProto.INT8
    )
    centered = builder.node("Sub", [codes_int8, zero_point_int8], f"{name}/weight_centered")
    return WeightOperand(centered, "")


def stored_weight_bytes(count: int, bits: int) -> int:
    """Return the bytes the ONNX file spends on ``count`` weight codes of ``bits`` bits."""
    return math.ceil(count / 2) if bits <= PACKED_MAX_BITS else count


def packed_weight_bytes(count: int, bits: int) -> int:
    """Return the bytes of ``count`` codes of ``bits`` bits packed without gaps, as a device
    with bit-level packing would store them."""
    return math.ceil(count * bits / 8)
