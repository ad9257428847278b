"""Uniform affine fake quantization with integer zero-points.

For a tensor ``x`` with scale ``s > 0`` and integer zero-point ``z``, a quantizer of
``b`` bits computes

    q     = clamp(round(x / s) + z, quant_min, quant_max),   quant_min = 0, quant_max = 2^b - 1
    x_hat = s * (q - z)

``round`` rounds half to even (``torch.round``), and ``x / s`` is a true division.
ONNX ``QuantizeLinear`` defines the same formula, and onnxruntime's MLAS kernel divides
too, so the simulation matches an exported model value by value.
``torch.fake_quantize_per_*_affine`` multiplies by ``1 / s`` instead, which can move a
value that lies within one ulp of a half step to the neighbouring grid point.

Because ``z`` is an integer in ``[quant_min, quant_max]``, ``x = 0`` maps to ``q = z``
and back to exactly 0.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

MIN_BITS = 2
MAX_BITS = 8


@dataclass(frozen=True)
class QuantizerConfig:
    """Settings of one uniform affine quantizer.

    Attributes:
        bits: bit width ``b``, from 2 to 8. The integer grid is ``[0, 2^b - 1]``.
        ch_axis: axis with one scale and zero-point per index (0 for the output
            channels of a weight), or None for one scale and zero-point per tensor.
        eps: smallest allowed scale. It keeps ``s`` positive when the range is empty.
    """

    bits: int = 8
    ch_axis: int | None = None
    eps: float = torch.finfo(torch.float32).eps

    def __post_init__(self) -> None:
        validate_bits(self.bits)
        if self.eps <= 0:
            raise ValueError(f"eps={self.eps} is invalid: expected a positive float.")

    @property
    def quant_min(self) -> int:
        return 0

    @property
    def quant_max(self) -> int:
        return 2**self.bits - 1


def validate_bits(bits: int, name: str = "bits") -> None:
    """Raise ValueError unless ``bits`` is an integer from 2 to 8."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f"{name}={bits!r} is out of range: expected an integer from {MIN_BITS} to "
            f"{MAX_BITS}. Choose a bit width in that range."
        )


def round_ste(x: Tensor) -> Tensor:
    """Round half to even in the forward pass and pass the gradient through unchanged.

    This is the straight-through estimator: d round_ste(x) / dx = 1.
    """
    return x + (torch.round(x) - x).detach()


def broadcast_qparam(param: Tensor, x: Tensor, ch_axis: int | None) -> Tensor:
    """Reshape a per-channel scale or zero-point so it broadcasts against ``x``.

    A per-tensor parameter (``ch_axis`` None) is returned unchanged.
    """
    if ch_axis is None:
        return param
    shape = [1] * x.dim()
    shape[ch_axis] = -1
    return param.reshape(shape)  # (1, ..., C, ..., 1)


def quantize(
    x: Tensor,
    scale: Tensor,
    zero_point: Tensor,
    quant_min: int,
    quant_max: int,
    ch_axis: int | None = None,
) -> Tensor:
    """Return the integer codes ``q = clamp(round(x / s) + z, quant_min, quant_max)`` as int32."""
    s = broadcast_qparam(scale, x, ch_axis)
    z = broadcast_qparam(zero_point, x, ch_axis)
    q = torch.clamp(torch.round(x / s) + z, quant_min, quant_max)
    return q.to(torch.int32)


def fake_quantize(
    x: Tensor,
    scale: Tensor,
    zero_point: Tensor,
    quant_min: int,
    quant_max: int,
    ch_axis: int | None = None,
) -> Tensor:
    """Quantize and dequantize ``x``: ``x_hat = s * (clamp(round(x / s) + z, ...) - z)``.

    Rounding uses the straight-through estimator, so the gradient with respect to ``x`` is
    1 inside the clipping range and 0 outside it. The gradient with respect to ``s`` is the
    LSQ one: ``round(x / s) - x / s`` inside the range and ``quant_min - z`` or
    ``quant_max - z`` outside it.
    """
    s = broadcast_qparam(scale, x, ch_axis)
    z = broadcast_qparam(zero_point, x, ch_axis).to(x.dtype)
    q = torch.clamp(round_ste(x / s) + z, quant_min, quant_max)
    return s * (q - z)


def dequantize(q: Tensor, scale: Tensor, zero_point: Tensor, ch_axis: int | None = None) -> Tensor:
    """Map integer codes back to real values: ``x_hat = s * (q - z)``."""
    s = broadcast_qparam(scale, q, ch_axis)
    z = broadcast_qparam(zero_point, q, ch_axis)
    return s * (q - z).to(s.dtype)


class ConfiguredGrid:
    """Mixin exposing the grid of ``self.config`` under the torch.ao names."""

    config: QuantizerConfig

    @property
    def quant_min(self) -> int:
        return self.config.quant_min

    @property
    def quant_max(self) -> int:
        return self.config.quant_max

    @property
    def ch_axis(self) -> int | None:
        return self.config.ch_axis


class UniformQuantizer(ConfiguredGrid, nn.Module):
    """Fake quantizer with a fixed scale and zero-point, rounding to nearest.

    Weights use it per output channel (``ch_axis=0``) until AdaRound replaces it. The
    scale and zero-point are buffers, so they are saved with the model but not trained.

    Args:
        config: bit width, channel axis and eps.
        scale: positive scales, shape ``()`` per tensor or ``(C,)`` per channel.
        zero_point: integer zero-points of the same shape, each in ``[quant_min, quant_max]``.
    """

    def __init__(self, config: QuantizerConfig, scale: Tensor, zero_point: Tensor) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("scale", scale.detach().clone().float())
        self.register_buffer("zero_point", zero_point.detach().clone().to(torch.int32))
        assert self.scale.shape == self.zero_point.shape, "scale and zero_point shapes differ"
        assert bool((self.scale > 0).all()), "scale must be positive"

    def forward(self, x: Tensor) -> Tensor:
        return fake_quantize(
            x, self.scale, self.zero_point, self.quant_min, self.quant_max, self.ch_axis
        )

    def quantize(self, x: Tensor) -> Tensor:
        """Return the int32 codes ``q`` of ``x`` on this quantizer's grid."""
        return quantize(
            x, self.scale, self.zero_point, self.quant_min, self.quant_max, self.ch_axis
        )

    def extra_repr(self) -> str:
        return f"bits={self.config.bits}, ch_axis={self.ch_axis}"
