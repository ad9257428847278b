"""Constant BatchNorm channels after dead ReLU units.

In these models BN follows ReLU. A unit whose ReLU output is 0 on all the
training data has a running variance near 0, so its BN multiplies by about
``weight / sqrt(eps)`` (up to 316 with eps 1e-5). The gain never acts in the FP
model, because the input is always 0; the quantized model does, since rounding
noise can lift the pre-activation above 0, and one such unit can dominate the
reconstruction loss and the next layer's input.

Such a channel's BN output is a constant, and quantizing the constant leaves a
systematic error that the next layer's BN gains amplify as well.
``freeze_dead_channels`` finds the channels whose BN input is exactly 0 on every
calibration touch, makes their BN output exactly 0 (which every quantization
grid holds), and adds what the constant contributed to the next layer's output
as ``output_offset``, in floating point. The next layer is affine, so on the
calibration set the FP model is unchanged; a touch that would wake such a unit
is treated as the calibration set was. A channel in the last block keeps its
constant, since no layer follows to take it over.
"""

import logging

import torch
from torch import Tensor

from fingerquant.quant.correction import batch_norms, record_inputs
from fingerquant.quant.layers import FrozenBatchNorm
from fingerquant.quant.wrap import QuantizedModel

logger = logging.getLogger(__name__)


@torch.no_grad()
def freeze_dead_channels(models: list[QuantizedModel], images: Tensor) -> dict[str, int]:
    """Remove the BN channels fed only zeros by ``images`` in every model of ``models``.

    The channels are found on ``models[0]`` with quantization off, and the models
    must be copies of one network. Returns the number of channels removed per block.
    """
    probe = models[0]
    dead = _find_dead(probe, images)
    counts = {}
    for index, block in enumerate(probe.blocks):
        masks = [(norm, dead[norm]) for norm in batch_norms(block) if bool(dead[norm].any())]
        if not masks or index == len(probe.blocks) - 1:
            continue
        sample = images[:1]
        before = probe.forward_blocks(sample, 0, index + 1)
        for norm, mask in masks:
            _zero_channels(norm, mask)
        after = probe.forward_blocks(sample, 0, index + 1)
        next_layer = probe.blocks[index + 1]
        layer, pre = next_layer.layer, next_layer.pre
        layer.output_offset = (layer(pre(before)) - layer(pre(after)))[0]
        counts[block.name] = sum(int(mask.sum()) for _, mask in masks)

    for model in models[1:]:
        for source, target in zip(probe.blocks, model.blocks, strict=True):
            if source.layer.output_offset is not None:
                target.layer.output_offset = source.layer.output_offset.clone()
            pairs = zip(batch_norms(source), batch_norms(target), strict=True)
            for source_norm, target_norm in pairs:
                target_norm.load_state_dict(source_norm.state_dict())
    if counts:
        logger.info(
            "BN channels fed only zeros on the calibration set, folded into the next layer: %s",
            ", ".join(f"{name} {count}" for name, count in counts.items()),
        )
    return counts


def _find_dead(model: QuantizedModel, images: Tensor) -> dict[FrozenBatchNorm, Tensor]:
    """Return, per BN, the mask of channels whose input is exactly 0 on every image."""
    norms = [norm for block in model.blocks for norm in batch_norms(block)]
    with record_inputs(norms) as inputs:
        model(images)
    return {
        norm: activation.abs().amax(dim=[0, *range(2, activation.dim())]) == 0
        for norm, activation in zip(norms, inputs, strict=True)
    }


def _zero_channels(norm: FrozenBatchNorm, mask: Tensor) -> None:
    """Make the masked channels output exactly 0 whatever their input."""
    if norm.weight is None or norm.bias is None:
        raise NotImplementedError("BatchNorm without affine parameters cannot drop channels.")
    norm.weight[mask] = 0.0
    norm.bias[mask] = 0.0
    norm.running_mean[mask] = 0.0
