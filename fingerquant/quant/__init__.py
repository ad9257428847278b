"""Post-training quantization with PD-Quant: quantizers, range search, losses and model wrapping."""

from fingerquant.quant.activation import ActivationQuantizer
from fingerquant.quant.adaround import (
    AdaRoundQuantizer,
    inverse_rectified_sigmoid,
    rectified_sigmoid,
)
from fingerquant.quant.calibrate import calibrate_activation_ranges
from fingerquant.quant.layers import (
    FrozenBatchNorm,
    QuantConv2d,
    QuantLayer,
    QuantLinear,
    make_quant_layer,
)
from fingerquant.quant.losses import (
    BetaSchedule,
    lp_loss,
    prediction_difference_loss,
    rounding_loss,
)
from fingerquant.quant.observer import LpRangeObserver
from fingerquant.quant.qdrop import qdrop
from fingerquant.quant.quantizer import (
    QuantizerConfig,
    UniformQuantizer,
    dequantize,
    fake_quantize,
    quantize,
)
from fingerquant.quant.range_search import (
    RangeSearchConfig,
    qparams_from_range,
    search_range,
)
from fingerquant.quant.wrap import ModelQuantConfig, QuantBlock, QuantizedModel, quantize_model

__all__ = [
    "ActivationQuantizer",
    "AdaRoundQuantizer",
    "BetaSchedule",
    "FrozenBatchNorm",
    "LpRangeObserver",
    "ModelQuantConfig",
    "QuantBlock",
    "QuantConv2d",
    "QuantLayer",
    "QuantLinear",
    "QuantizedModel",
    "QuantizerConfig",
    "RangeSearchConfig",
    "UniformQuantizer",
    "calibrate_activation_ranges",
    "dequantize",
    "fake_quantize",
    "inverse_rectified_sigmoid",
    "lp_loss",
    "make_quant_layer",
    "prediction_difference_loss",
    "qdrop",
    "qparams_from_range",
    "quantize",
    "quantize_model",
    "rectified_sigmoid",
    "rounding_loss",
    "search_range",
]
