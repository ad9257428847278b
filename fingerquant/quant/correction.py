"""Distribution correction (DC) of a block's input, as in PD-Quant.

A small calibration set rarely has the activation statistics that BatchNorm
saw in training. DC treats the block's FP input ``x`` as a trainable tensor
``x_c`` and moves it so that the activations entering each BN of the block
match that BN's running statistics, while staying close to ``x``:

    L_DC = L_mean + L_var + L_input
    L_mean = sum_c (mu_c(x_c) - running_mean_c)^2
    L_var  = sum_c (sigma_c(x_c) - sqrt(running_var_c))^2
    L_input = mean((x_c - x)^2) / lambda_c

mu_c and sigma_c are taken per channel over the batch and, for BatchNorm2d,
over space; BatchNorm1d has no space, so its statistics run over the batch
only. sigma uses the biased variance, as BatchNorm normalises with it, so a
1 x 1 map or a batch of one gives a finite value.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from fingerquant.quant.layers import FrozenBatchNorm


def batch_norms(module: nn.Module) -> list[FrozenBatchNorm]:
    """Return the frozen BatchNorms inside ``module``, in registration order."""
    return [child for child in module.modules() if isinstance(child, FrozenBatchNorm)]


@contextmanager
def record_inputs(norms: list[FrozenBatchNorm]) -> Iterator[list[Tensor]]:
    """Collect the input of each BN in ``norms`` during the forward passes inside the block."""
    inputs: list[Tensor] = []
    handles = [
        norm.register_forward_hook(lambda _m, args, _out: inputs.append(args[0])) for norm in norms
    ]
    try:
        yield inputs
    finally:
        for handle in handles:
            handle.remove()


def statistics_losses(activation: Tensor, norm: FrozenBatchNorm) -> tuple[Tensor, Tensor]:
    """Return (L_mean, L_var) of one BN input ``(N, C)`` or ``(N, C, H, W)``."""
    dims = [0, *range(2, activation.dim())]
    mean = activation.mean(dim=dims)
    std = (activation.var(dim=dims, unbiased=False) + norm.eps).sqrt()
    loss_mean = (mean - norm.running_mean).pow(2).sum()
    loss_var = (std - (norm.running_var + norm.eps).sqrt()).pow(2).sum()
    return loss_mean, loss_var


def correction_loss(
    block: nn.Module, corrected: Tensor, original: Tensor, lambda_c: float
) -> dict[str, Tensor]:
    """Return the DC loss terms of ``block`` for the corrected input ``x_c``.

    Keys: ``mean``, ``var``, ``input`` and ``total``.
    """
    norms = batch_norms(block)
    with record_inputs(norms) as inputs:
        block(corrected)
    terms = [
        statistics_losses(activation, norm) for activation, norm in zip(inputs, norms, strict=True)
    ]
    loss_mean = torch.stack([mean for mean, _ in terms]).sum()
    loss_var = torch.stack([var for _, var in terms]).sum()
    loss_input = (corrected - original).pow(2).mean() / lambda_c
    return {
        "mean": loss_mean,
        "var": loss_var,
        "input": loss_input,
        "total": loss_mean + loss_var + loss_input,
    }
