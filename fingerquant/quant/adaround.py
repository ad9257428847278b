"""AdaRound weight quantizer with learned rounding (Nagel et al., ICML 2020).

Each weight rounds down or up, as a learned variable decides:

    W_tilde = s * (clamp(floor(W / s) + h(alpha) + z, quant_min, quant_max) - z)
    h(alpha) = clamp(sigmoid(alpha) * (zeta - gamma) + gamma, 0, 1)    (rectified sigmoid)

with ``zeta = 1.1`` and ``gamma = -0.1``. ``alpha`` starts where ``h(alpha)`` equals the
fractional part ``W / s - floor(W / s)``, so the soft weights start equal to the FP
weights inside the clipping range. The rounding loss pushes ``h`` towards 0 or 1, and
hard rounding uses ``h(alpha) >= 0.5``, which is the same as ``alpha >= 0``.
"""

import torch
from torch import Tensor, nn

from fingerquant.quant.quantizer import (
    ConfiguredGrid,
    QuantizerConfig,
    UniformQuantizer,
    broadcast_qparam,
)

ZETA = 1.1
GAMMA = -0.1


def rectified_sigmoid(alpha: Tensor) -> Tensor:
    """Return ``h(alpha) = clamp(sigmoid(alpha) * (zeta - gamma) + gamma, 0, 1)``."""
    return torch.clamp(torch.sigmoid(alpha) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def inverse_rectified_sigmoid(h: Tensor) -> Tensor:
    """Return ``alpha`` with ``h(alpha) = h`` for ``h`` in ``[0, 1]``.

    ``alpha = log(t / (1 - t))`` with ``t = (h - gamma) / (zeta - gamma)``. Because
    ``gamma < 0`` and ``zeta > 1``, ``t`` stays in ``[1/12, 11/12]`` and ``alpha`` is finite.
    """
    t = (h - GAMMA) / (ZETA - GAMMA)
    return torch.log(t / (1 - t))


class AdaRoundQuantizer(ConfiguredGrid, nn.Module):
    """Weight fake quantizer whose per-weight rounding direction is learned.

    In training mode the rounding is the soft ``h(alpha)``. In eval mode, and always after
    ``harden()``, it is the hard ``1[alpha >= 0]``. Block reconstruction therefore runs in
    training mode and evaluation in eval mode.

    Args:
        weight: the FP weight that ``alpha`` is initialised from. Its shape fixes the shape
            of ``alpha``.
        scale: per-channel scales along ``config.ch_axis``, shape ``(C,)``.
        zero_point: per-channel integer zero-points, shape ``(C,)``.
        config: bit width and channel axis. The clipping range comes from ``scale`` and
            ``zero_point``.
    """

    def __init__(
        self, weight: Tensor, scale: Tensor, zero_point: Tensor, config: QuantizerConfig
    ) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("scale", scale.detach().clone().float())
        self.register_buffer("zero_point", zero_point.detach().clone().to(torch.int32))
        self.register_buffer("hardened", torch.tensor(False))

        w_div = weight.detach() / broadcast_qparam(self.scale, weight, config.ch_axis)
        fraction = w_div - torch.floor(w_div)
        self.alpha = nn.Parameter(inverse_rectified_sigmoid(fraction))

    @classmethod
    def from_quantizer(cls, quantizer: UniformQuantizer, weight: Tensor) -> "AdaRoundQuantizer":
        """Create an AdaRound quantizer on the grid of a round-to-nearest weight quantizer."""
        return cls(weight, quantizer.scale, quantizer.zero_point, quantizer.config)

    @property
    def is_hard(self) -> bool:
        """Whether ``harden()`` has fixed the rounding."""
        return bool(self.hardened)

    def soft_rounding(self) -> Tensor:
        """Return ``h(alpha)`` in ``[0, 1]``, the input of the rounding loss."""
        return rectified_sigmoid(self.alpha)

    def hard_rounding(self) -> Tensor:
        """Return ``1[h(alpha) >= 0.5]`` as floats 0 and 1."""
        return (self.alpha >= 0).to(self.alpha.dtype)

    def rounding(self) -> Tensor:
        """Return the rounding added to ``floor(W / s)``: soft in training, hard otherwise."""
        if self.training and not self.is_hard:
            return self.soft_rounding()
        return self.hard_rounding()

    def harden(self) -> None:
        """Fix the rounding at ``1[h(alpha) >= 0.5]`` in every mode and stop training ``alpha``."""
        self.hardened.fill_(True)
        self.alpha.requires_grad_(False)

    def _codes(self, weight: Tensor, rounding: Tensor) -> Tensor:
        """Return ``clamp(floor(W / s) + rounding + z, quant_min, quant_max)`` as floats."""
        assert weight.shape == self.alpha.shape, "weight and alpha shapes differ"
        s = broadcast_qparam(self.scale, weight, self.ch_axis)
        z = broadcast_qparam(self.zero_point, weight, self.ch_axis).to(weight.dtype)
        return torch.clamp(torch.floor(weight / s) + rounding + z, self.quant_min, self.quant_max)

    def forward(self, weight: Tensor) -> Tensor:
        s = broadcast_qparam(self.scale, weight, self.ch_axis)
        z = broadcast_qparam(self.zero_point, weight, self.ch_axis).to(weight.dtype)
        return s * (self._codes(weight, self.rounding()) - z)

    def quantize(self, weight: Tensor) -> Tensor:
        """Return the int32 codes ``q`` of ``weight`` with hard rounding."""
        return self._codes(weight.detach(), self.hard_rounding()).to(torch.int32)

    def extra_repr(self) -> str:
        return f"bits={self.config.bits}, ch_axis={self.ch_axis}, hardened={self.is_hard}"
