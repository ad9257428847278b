"""Activation quantizer with a learned, always positive step size."""

import torch
from torch import Tensor, nn

from fingerquant.quant.observer import LpRangeObserver
from fingerquant.quant.qdrop import qdrop, validate_drop_prob
from fingerquant.quant.quantizer import ConfiguredGrid, QuantizerConfig, fake_quantize, quantize
from fingerquant.quant.range_search import RangeSearchConfig


class ActivationQuantizer(ConfiguredGrid, nn.Module):
    """Per-tensor fake quantizer of a layer input, with a learned step size and QDrop.

        x_hat = s_a * (clamp(round(x / s_a) + z, quant_min, quant_max) - z),   s_a = exp(log_scale)

    The step size ``s_a`` is trained (LSQ gradient, see ``fake_quantize``) and the integer
    zero-point ``z`` stays fixed. The parameter is ``log_scale``, so ``s_a`` is positive by
    construction. Adam then changes ``s_a`` by a relative amount of at most about ``lr``
    per step. An absolute learning rate ``lr_s`` on ``s_a`` itself corresponds to about
    ``lr_s / s_a`` on ``log_scale``.

    The quantizer starts uncalibrated. Calibration passes input batches to
    ``observer.observe`` and then calls ``init_from_observer()``, which sets ``s_a`` and
    ``z`` from the observed range.

    Args:
        config: bit width and eps. ``ch_axis`` must be None because activations are
            quantized per tensor.
        range_config: settings of the range search used by ``init_from_observer``.
        drop_prob: QDrop probability ``p`` of taking an element from the FP input. It
            applies in training mode only.
    """

    def __init__(
        self,
        config: QuantizerConfig,
        range_config: RangeSearchConfig | None = None,
        drop_prob: float = 0.0,
    ) -> None:
        super().__init__()
        if config.ch_axis is not None:
            raise ValueError(
                f"ch_axis={config.ch_axis} is invalid for an activation quantizer: "
                "activations are quantized per tensor, so pass ch_axis=None."
            )
        validate_drop_prob(drop_prob)
        self.config = config
        self.drop_prob = drop_prob
        self.observer = LpRangeObserver(config, range_config)
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.register_buffer("zero_point", torch.zeros((), dtype=torch.int32))
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def scale(self) -> Tensor:
        """Step size ``s_a = exp(log_scale)``."""
        return torch.exp(self.log_scale)

    @property
    def is_initialized(self) -> bool:
        return bool(self.initialized)

    def set_qparams(self, scale: Tensor, zero_point: Tensor) -> None:
        """Set ``s_a`` and ``z``. The scale must be positive and the zero-point on the grid."""
        if not bool(scale > 0):
            raise ValueError(f"scale={float(scale)} is invalid: expected a positive step size.")
        if not self.quant_min <= int(zero_point) <= self.quant_max:
            raise ValueError(
                f"zero_point={int(zero_point)} is out of range: expected an integer from "
                f"{self.quant_min} to {self.quant_max}."
            )
        with torch.no_grad():
            self.log_scale.copy_(torch.log(scale.float()))
            self.zero_point.fill_(int(zero_point))
            self.initialized.fill_(True)

    def init_from_observer(self) -> None:
        """Set ``s_a`` and ``z`` from the observed calibration batches, then clear them."""
        scale, zero_point = self.observer.calculate_qparams()
        self.set_qparams(scale, zero_point)
        self.observer.reset()

    def forward(self, x: Tensor, fp_input: Tensor | None = None) -> Tensor:
        """Fake-quantize ``x``.

        In training mode QDrop mixes in ``fp_input``, or ``x`` itself when it is None.
        """
        if not self.is_initialized:
            raise RuntimeError(
                "the activation quantizer is not calibrated: run calibrate_activation_ranges() "
                "or init_from_observer() before enabling activation quantization."
            )
        x_q = fake_quantize(x, self.scale, self.zero_point, self.quant_min, self.quant_max)
        if self.training and self.drop_prob > 0:
            return qdrop(x_q, x if fp_input is None else fp_input, self.drop_prob)
        return x_q

    def quantize(self, x: Tensor) -> Tensor:
        """Return the int32 codes ``q`` of ``x`` on this quantizer's grid."""
        return quantize(x, self.scale.detach(), self.zero_point, self.quant_min, self.quant_max)

    def extra_repr(self) -> str:
        return f"bits={self.config.bits}, drop_prob={self.drop_prob}"
