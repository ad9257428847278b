"""Loss terms of block reconstruction and the beta schedule of the rounding loss.

``L_recon = L_reg + L_PD / lambda_r + L_round`` (PD-Quant, Liu et al., CVPR 2023), with
``L_reg = lp_loss``, ``L_PD = prediction_difference_loss`` and ``L_round = rounding_loss``.
Tensor arguments are keyword-only, so a prediction and its target cannot be swapped.
"""

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


def lp_loss(*, pred: Tensor, target: Tensor, p: float = 2.4) -> Tensor:
    """Return ``mean_n sum_i |pred[n, i] - target[n, i]|^p``.

    The error is summed over the features ``i`` and averaged over the batch ``n``.
    ``pred`` and ``target`` have the same shape ``(N, ...)``.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred shape {tuple(pred.shape)} and target shape {tuple(target.shape)} differ: "
            "pass the block output and its target for the same batch."
        )
    return (pred - target).abs().pow(p).flatten(1).sum(dim=1).mean()


def prediction_difference_loss(
    *, quant_logits: Tensor, fp_logits: Tensor, temperature: float = 4.0
) -> Tensor:
    """Return ``KL(P_fp || P_q)`` between predictions softened by temperature ``T``.

        P_fp = softmax(fp_logits / T),  P_q = softmax(quant_logits / T)
        L_PD = mean_n sum_c P_fp[n, c] * (log P_fp[n, c] - log P_q[n, c])

    Logits are ``(N, C)``. As in PD-Quant, the loss is not multiplied by ``T^2``. Its weight
    comes from ``1 / lambda_r`` in the reconstruction loss instead.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} is invalid: expected a positive T such as 4.")
    if quant_logits.shape != fp_logits.shape:
        raise ValueError(
            f"quant_logits shape {tuple(quant_logits.shape)} and fp_logits shape "
            f"{tuple(fp_logits.shape)} differ: both must be (batch, classes)."
        )
    log_p_quant = F.log_softmax(quant_logits / temperature, dim=1)
    log_p_fp = F.log_softmax(fp_logits / temperature, dim=1)
    return (log_p_fp.exp() * (log_p_fp - log_p_quant)).sum(dim=1).mean()


def rounding_loss(*, h: Tensor, beta: float, round_weight: float = 0.01) -> Tensor:
    """Return ``L_round = w * sum(1 - |2 h - 1|^beta)`` over rounding variables ``h`` in ``[0, 1]``.

    It is 0 when every ``h`` is 0 or 1 and grows as ``h`` approaches 0.5. A large ``beta``
    flattens it away from 0.5, so annealing ``beta`` from high to low first lets ``h`` move
    freely and then pushes it to 0 or 1.
    """
    return round_weight * (1 - (2 * h - 1).abs().pow(beta)).sum()


@dataclass(frozen=True)
class BetaSchedule:
    """Linear decay of the rounding-loss exponent ``beta`` after a warmup.

    For iteration ``t`` of ``total_iters``, with ``t_w = warmup * total_iters``:
    ``beta(t) = beta_start`` while ``t < t_w``, then it falls linearly to ``beta_end``,
    which it reaches at ``t = total_iters``. During the warmup, AdaRound and BRECQ leave
    out the rounding loss, so that reconstruction alone moves ``h`` first. ``in_warmup``
    returns True for the iterations where the caller should leave it out too.

    Attributes:
        total_iters: number of reconstruction iterations.
        beta_range: ``(beta_start, beta_end)``, default ``(20, 2)``.
        warmup: fraction of iterations before the decay starts, default 0.2.
    """

    total_iters: int
    beta_range: tuple[float, float] = (20.0, 2.0)
    warmup: float = 0.2

    def __post_init__(self) -> None:
        if self.total_iters < 1:
            raise ValueError(f"total_iters={self.total_iters} is invalid: expected at least 1.")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup={self.warmup} is out of range: expected 0 <= warmup < 1.")
        if min(self.beta_range) <= 0:
            raise ValueError(
                f"beta_range={self.beta_range} is invalid: both exponents must be positive."
            )

    @property
    def warmup_iters(self) -> int:
        return int(self.warmup * self.total_iters)

    def in_warmup(self, iteration: int) -> bool:
        """Return whether ``iteration`` (0-based) lies in the warmup, without rounding loss."""
        return iteration < self.warmup_iters

    def __call__(self, iteration: int) -> float:
        """Return ``beta`` at ``iteration`` (0-based)."""
        beta_start, beta_end = self.beta_range
        if self.in_warmup(iteration):
            return beta_start
        progress = (iteration - self.warmup_iters) / (self.total_iters - self.warmup_iters)
        return beta_end + (beta_start - beta_end) * max(0.0, 1.0 - progress)
