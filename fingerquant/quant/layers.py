"""Quantized conv and linear layers, and BatchNorm frozen as a per-channel affine step.

A quantized layer quantizes its input with an ``ActivationQuantizer`` and its weight per
output channel with a ``UniformQuantizer``, which ``use_adaround()`` replaces by an
``AdaRoundQuantizer``. The bias stays in floating point. ``QUANT_LAYER_TYPES`` is the
only place that decides which FP layer types can be quantized and how.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from fingerquant.quant.activation import ActivationQuantizer
from fingerquant.quant.adaround import AdaRoundQuantizer
from fingerquant.quant.quantizer import QuantizerConfig, UniformQuantizer
from fingerquant.quant.range_search import RangeSearchConfig, qparams_from_range, search_range

BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class FrozenBatchNorm(nn.Module):
    """BatchNorm with fixed statistics, the same in training and eval mode.

        y = (x - running_mean) / sqrt(running_var + eps) * weight + bias    (per channel, dim 1)

    In the models here BN follows the ReLU, so it cannot be folded back into the conv
    before it. Folding it forward into the next layer is exact only in some cases: always
    for a linear layer, for a padded conv only when the padding is handled, and through
    max-pooling only when the BN scale is positive. Keeping it as a separate per-channel
    affine step is exact in all cases. The block keeps training mode for AdaRound and
    QDrop, so BN must not switch to batch statistics there. It is therefore frozen.
    ``running_mean`` and ``running_var`` stay available as the targets of distribution
    correction.
    """

    def __init__(self, bn: nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d) -> None:
        super().__init__()
        if bn.running_mean is None or bn.running_var is None:
            raise NotImplementedError(
                f"{type(bn).__name__} without running statistics (track_running_stats=False) "
                "normalises with batch statistics and cannot be frozen for quantization."
            )
        self.eps = bn.eps
        self.register_buffer("running_mean", bn.running_mean.detach().clone())
        self.register_buffer("running_var", bn.running_var.detach().clone())
        self.register_buffer("weight", None if bn.weight is None else bn.weight.detach().clone())
        self.register_buffer("bias", None if bn.bias is None else bn.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        # The same kernel as BatchNorm in eval mode, so the output is bit-identical.
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )

    def extra_repr(self) -> str:
        return f"num_features={self.running_mean.numel()}, eps={self.eps}"


class QuantLayer(nn.Module):
    """Base of the quantized layers: input quantizer, weight quantizer, frozen FP module.

    The weight quantizer starts at the Lp-searched per-channel range of the weight, with
    round-to-nearest. The input quantizer starts uncalibrated. Both quantizers start
    disabled, so the layer computes the FP result until ``set_quant_state`` enables them.
    The FP weight and bias are frozen (``requires_grad`` False), because post-training
    quantization trains only rounding variables and step sizes.

    Args:
        name: qualified name of the FP module in the original model.
        module: the FP layer.
        weight_config: weight quantizer settings, per output channel.
        act_config: input quantizer settings, per tensor.
        range_config: range search settings of both quantizers.
    """

    def __init__(
        self,
        name: str,
        module: nn.Conv2d | nn.Linear,
        weight_config: QuantizerConfig,
        act_config: QuantizerConfig,
        range_config: RangeSearchConfig,
    ) -> None:
        super().__init__()
        assert weight_config.ch_axis == 0, "weights are quantized per output channel"
        self.name = name
        self.module = module.requires_grad_(False)

        lo, hi = search_range(module.weight, weight_config, range_config)
        scale, zero_point = qparams_from_range(
            lo, hi, weight_config.quant_min, weight_config.quant_max, weight_config.eps
        )
        self.weight_quantizer: UniformQuantizer | AdaRoundQuantizer = UniformQuantizer(
            weight_config, scale, zero_point
        )
        self.input_quantizer = ActivationQuantizer(act_config, range_config)
        self.weight_quant_enabled = False
        self.act_quant_enabled = False
        # Contribution of constant input channels, added to the output in floating point;
        # set by ``freeze_dead_channels``, None otherwise.
        self.register_buffer("output_offset", None)

    @property
    def weight(self) -> Tensor:
        return self.module.weight

    @property
    def bias(self) -> Tensor | None:
        return self.module.bias

    def set_quant_state(self, weight_quant: bool, act_quant: bool) -> None:
        """Enable or disable weight and input quantization."""
        self.weight_quant_enabled = weight_quant
        self.act_quant_enabled = act_quant

    def use_adaround(self) -> AdaRoundQuantizer:
        """Replace the round-to-nearest weight quantizer by AdaRound on its grid and return it."""
        if isinstance(self.weight_quantizer, AdaRoundQuantizer):
            return self.weight_quantizer
        self.weight_quantizer = AdaRoundQuantizer.from_quantizer(self.weight_quantizer, self.weight)
        return self.weight_quantizer

    def quantized_weight(self) -> Tensor:
        """Return the fake-quantized weight ``s * (q - z)`` of the current weight quantizer."""
        return self.weight_quantizer(self.weight)

    def int_weight(self) -> Tensor:
        """Return the integer weight codes ``q`` as int32, with AdaRound's hard rounding."""
        return self.weight_quantizer.quantize(self.weight)

    def forward(self, x: Tensor, fp_input: Tensor | None = None) -> Tensor:
        """Run the layer.

        ``fp_input`` is the FP version of ``x`` that QDrop mixes in while training.
        """
        if self.act_quant_enabled:
            x = self.input_quantizer(x, fp_input)
        weight = self.quantized_weight() if self.weight_quant_enabled else self.weight
        output = self.layer_forward(x, weight)
        if self.output_offset is not None:
            output = output + self.output_offset
        return output

    def layer_forward(self, x: Tensor, weight: Tensor) -> Tensor:
        """Apply the layer's operation with the given weight and the FP bias."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, weight_quant={self.weight_quant_enabled}, "
            f"act_quant={self.act_quant_enabled}"
        )


class QuantConv2d(QuantLayer):
    """Quantized ``nn.Conv2d`` with zero padding."""

    def __init__(
        self,
        name: str,
        module: nn.Conv2d,
        weight_config: QuantizerConfig,
        act_config: QuantizerConfig,
        range_config: RangeSearchConfig,
    ) -> None:
        if module.padding_mode != "zeros":
            raise NotImplementedError(
                f"layer {name!r} uses padding_mode={module.padding_mode!r}: "
                "only 'zeros' is supported."
            )
        super().__init__(name, module, weight_config, act_config, range_config)

    def layer_forward(self, x: Tensor, weight: Tensor) -> Tensor:
        conv = self.module
        return F.conv2d(x, weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class QuantLinear(QuantLayer):
    """Quantized ``nn.Linear``."""

    def layer_forward(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.linear(x, weight, self.module.bias)


# Exact types, not isinstance: a subclass may change forward() in ways these layers ignore.
QUANT_LAYER_TYPES: dict[type[nn.Module], type[QuantLayer]] = {
    nn.Conv2d: QuantConv2d,
    nn.Linear: QuantLinear,
}


def make_quant_layer(
    name: str,
    module: nn.Module,
    weight_bits: int,
    act_bits: int,
    range_config: RangeSearchConfig,
) -> QuantLayer:
    """Wrap one FP layer in its quantized class, with per-channel weights and a per-tensor input.

    Raises:
        NotImplementedError: if the type of ``module`` has no quantized class.
    """
    quant_type = QUANT_LAYER_TYPES.get(type(module))
    if quant_type is None:
        supported = ", ".join(t.__name__ for t in QUANT_LAYER_TYPES)
        raise NotImplementedError(
            f"layer {name!r} of type {type(module).__name__} cannot be quantized: "
            f"supported layer types are {supported}."
        )
    weight_config = QuantizerConfig(bits=weight_bits, ch_axis=0)
    act_config = QuantizerConfig(bits=act_bits)
    return quant_type(name, module, weight_config, act_config, range_config)
