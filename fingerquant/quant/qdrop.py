"""QDrop: randomly drop the quantization of activations (Wei et al., ICLR 2022)."""

import torch
from torch import Tensor


def validate_drop_prob(drop_prob: float) -> None:
    """Raise ValueError unless ``0 <= drop_prob <= 1``."""
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(
            f"drop_prob={drop_prob} is out of range: expected a probability from 0 to 1 "
            "(0 turns QDrop off, 0.5 is the QDrop default)."
        )


def qdrop(quantized: Tensor, full_precision: Tensor, drop_prob: float) -> Tensor:
    """Mix two tensors: each element comes from ``full_precision`` with probability ``drop_prob``.

    The other elements come from ``quantized``.

    ``x_out = where(u < drop_prob, x_fp, x_q)`` with ``u ~ U(0, 1)`` drawn per element
    from the global torch generator, so seeding torch makes it repeatable.
    """
    validate_drop_prob(drop_prob)
    if quantized.shape != full_precision.shape:
        raise ValueError(
            f"quantized shape {tuple(quantized.shape)} and full_precision shape "
            f"{tuple(full_precision.shape)} differ: pass the FP tensor of the same activation."
        )
    if drop_prob == 0.0:
        return quantized
    use_fp = torch.rand_like(quantized) < drop_prob
    return torch.where(use_fp, full_precision, quantized)
