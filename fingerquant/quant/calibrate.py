"""Stage 1 of PD-Quant: initialise the input quantizers from calibration data."""

from collections.abc import Iterable

import torch
from torch import Tensor

from fingerquant.quant.wrap import QuantizedModel


def calibrate_activation_ranges(model: QuantizedModel, batches: Iterable[Tensor]) -> None:
    """Set every input quantizer's step size and zero-point by Lp range search, first layer to last.

    The input of layer ``k`` is computed with blocks ``0 .. k-1`` fully fake-quantized,
    weights and inputs, so each range fits what the quantized model feeds that layer.
    Each range is searched per batch and combined over the batches by the observer's EMA,
    in the order of ``batches``. The batches run in eval mode, so QDrop is off. Afterwards
    every block has weight and input quantization enabled and the model's training mode
    is restored.

    Args:
        model: a model from ``quantize_model``.
        batches: calibration inputs, each ``(N, ...)`` as the FP model takes them. They are
            read once and kept in a list, because every layer needs all of them.
    """
    batches = list(batches)
    if not batches:
        raise ValueError("no calibration batches were given: pass at least one input tensor.")

    was_training = model.training
    model.eval()
    model.set_quant_state(weight_quant=False, act_quant=False)
    with torch.no_grad():
        for index, block in enumerate(model.blocks):
            quantizer = block.layer.input_quantizer
            quantizer.observer.reset()
            for batch in batches:
                block_input = model.forward_blocks(batch, 0, index)
                quantizer.observer.observe(block.pre(block_input))
            quantizer.init_from_observer()
            block.set_quant_state(weight_quant=True, act_quant=True)
    model.train(was_training)
