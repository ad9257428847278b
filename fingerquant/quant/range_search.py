"""Lp clipping-range search over a grid of candidate ranges.

For a clipping range ``[lo, hi]`` the quantizer uses

    lo' = min(lo, 0),  hi' = max(hi, 0)
    s   = max((hi' - lo') / (quant_max - quant_min), eps)
    z   = clamp(quant_min - round(lo' / s), quant_min, quant_max)

Widening the range to contain 0 and rounding ``z`` to an integer keep zero exactly
representable. When ``lo == hi == 0`` the scale falls back to ``eps`` and ``z`` to
``quant_min``, so an all-zero tensor still quantizes to exactly 0. These are the formulas
of ``torch.ao.quantization.MinMaxObserver`` for affine quantization.

The search picks the range that minimises ``sum |x - x_hat|^p`` over a grid of
candidates that shrink the observed bounds by the fractions ``k / G`` with
``k = 1 .. G`` (``G = num_candidates``):

- one-sided tensor (all ``x >= 0`` or all ``x <= 0``): 1-D search over the nonzero bound,
  with the other bound at 0;
- two-sided tensor: 2-D search over both bounds, coarse to fine.

Every grid contains the min-max range (``k = G``), so the chosen range is never worse in
Lp error than min-max on the points that the search evaluates.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from fingerquant.quant.quantizer import QuantizerConfig

# Upper bound on the elements of one temporary in the error evaluation (16 MiB in float32).
# Candidates are evaluated in chunks of this size, so memory does not grow with the grid.
MAX_CHUNK_ELEMENTS = 2**22


@dataclass(frozen=True)
class RangeSearchConfig:
    """Settings of the Lp clipping-range search.

    Attributes:
        p: exponent of the Lp error ``sum |x - x_hat|^p`` (default 2.4).
        num_candidates: grid size ``G``, the number of fractions ``k / G`` tried per bound.
        num_bins: a tensor row with more elements than this is reduced to a histogram of
            this many bins, each represented by the mean of its elements and weighted by
            its count, before the search.
        ema_decay: decay ``m`` of the moving average over calibration batches,
            ``range <- m * range + (1 - m) * batch_range``.
    """

    p: float = 2.4
    num_candidates: int = 100
    num_bins: int = 2048
    ema_decay: float = 0.9

    def __post_init__(self) -> None:
        if not self.p > 0:
            raise ValueError(f"p={self.p} is invalid: expected a positive exponent such as 2.4.")
        if self.num_candidates < 1:
            raise ValueError(
                f"num_candidates={self.num_candidates} is invalid: expected at least 1."
            )
        if self.num_bins < 1:
            raise ValueError(f"num_bins={self.num_bins} is invalid: expected at least 1.")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(
                f"ema_decay={self.ema_decay} is out of range: expected 0 <= ema_decay < 1."
            )


def qparams_from_range(
    lo: Tensor, hi: Tensor, quant_min: int, quant_max: int, eps: float
) -> tuple[Tensor, Tensor]:
    """Return ``(scale, zero_point)`` for the clipping range ``[lo, hi]``.

    The formulas are in the module docstring. ``zero_point`` is an int32 tensor of the
    shape of ``lo``.
    """
    lo_neg = torch.clamp(lo, max=0.0)
    hi_pos = torch.clamp(hi, min=0.0)
    scale = torch.clamp((hi_pos - lo_neg) / (quant_max - quant_min), min=eps)
    zero_point = torch.clamp(quant_min - torch.round(lo_neg / scale), quant_min, quant_max)
    return scale, zero_point.to(torch.int32)


def channel_rows(x: Tensor, ch_axis: int | None) -> Tensor:
    """Flatten ``x`` to one row per channel, or to a single row per tensor."""
    if x.numel() == 0:
        raise ValueError(
            f"cannot search a clipping range for an empty tensor of shape {tuple(x.shape)}."
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(
            "the tensor contains NaN or inf, so no clipping range can be searched. "
            "Check the model and the calibration data for non-finite values."
        )
    x = x.detach().float()
    if ch_axis is None:
        return x.reshape(1, -1)  # (1, N)
    return x.movedim(ch_axis, 0).reshape(x.shape[ch_axis], -1)  # (C, N)


def reduce_to_points(rows: Tensor, num_bins: int) -> tuple[Tensor, Tensor]:
    """Return representative values and their counts, both ``(C, M)`` with ``M <= num_bins``.

    Rows with at most ``num_bins`` elements are kept exactly, with count 1 each. Longer
    rows become a histogram of ``num_bins`` equal bins between the row's min and max.
    """
    num_channels, num_elements = rows.shape
    if num_elements <= num_bins:
        return rows, torch.ones_like(rows)

    # NOTE: a bin stands for its elements by their mean, so the rounding error inside a
    # bin is not counted. With 2048 bins, a bin is 1/8 of the 8-bit step of the min-max range.
    row_min = rows.amin(dim=1, keepdim=True)
    row_max = rows.amax(dim=1, keepdim=True)
    width = ((row_max - row_min) / num_bins).clamp(min=torch.finfo(rows.dtype).tiny)
    index = ((rows - row_min) / width).floor().clamp(0, num_bins - 1).long()
    counts = rows.new_zeros(num_channels, num_bins).scatter_add_(1, index, torch.ones_like(rows))
    sums = rows.new_zeros(num_channels, num_bins).scatter_add_(1, index, rows)
    return sums / counts.clamp(min=1.0), counts


def _lp_errors(
    values: Tensor, counts: Tensor, lo: Tensor, hi: Tensor, config: QuantizerConfig, p: float
) -> Tensor:
    """Return ``sum_m counts * |v - x_hat(v)|^p`` for each candidate range, shape ``(C, K)``.

    ``values`` and ``counts`` are ``(C, M)``, ``lo`` and ``hi`` are ``(C, K)``.
    """
    scale, zero_point = qparams_from_range(lo, hi, config.quant_min, config.quant_max, config.eps)
    zero_point = zero_point.to(values.dtype)
    num_channels, num_points = values.shape
    chunk = max(1, MAX_CHUNK_ELEMENTS // (num_channels * num_points))

    v = values.unsqueeze(1)  # (C, 1, M)
    w = counts.unsqueeze(1)  # (C, 1, M)
    errors = []
    for start in range(0, lo.shape[1], chunk):
        s = scale[:, start : start + chunk, None]  # (C, k, 1)
        z = zero_point[:, start : start + chunk, None]  # (C, k, 1)
        q = torch.clamp(torch.round(v / s) + z, config.quant_min, config.quant_max)
        errors.append(((s * (q - z) - v).abs().pow(p) * w).sum(dim=2))  # (C, k)
    return torch.cat(errors, dim=1)


def _pick_best(errors: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Return the candidate range with the smallest error in each row (the first on ties)."""
    best = errors.argmin(dim=1, keepdim=True)
    return lo.gather(1, best).squeeze(1), hi.gather(1, best).squeeze(1)


def _search_1d(
    values: Tensor,
    counts: Tensor,
    lo_base: Tensor,
    hi_base: Tensor,
    config: QuantizerConfig,
    range_config: RangeSearchConfig,
) -> tuple[Tensor, Tensor]:
    """Search one bound of one-sided rows: candidates ``(lo_base, hi_base) * k / G``.

    One of ``lo_base`` and ``hi_base`` is 0 in each row, so only the other bound moves.
    """
    size = range_config.num_candidates
    fractions = torch.arange(1, size + 1, dtype=values.dtype, device=values.device) / size
    lo = lo_base[:, None] * fractions  # (C, G)
    hi = hi_base[:, None] * fractions  # (C, G)
    return _pick_best(_lp_errors(values, counts, lo, hi, config, range_config.p), lo, hi)


def _search_2d(
    values: Tensor,
    counts: Tensor,
    lo_base: Tensor,
    hi_base: Tensor,
    config: QuantizerConfig,
    range_config: RangeSearchConfig,
) -> tuple[Tensor, Tensor]:
    """Search both bounds of two-sided rows: ``lo = lo_base * i / G``, ``hi = hi_base * j / G``.

    The full ``G x G`` grid costs too much for per-channel weights and activation batches
    on a CPU, so the search runs coarse to fine. It first tries every ``stride``-th
    index, ``stride = round(sqrt(G))``, counting down from ``G`` so that the min-max
    range is included. Then it tries every index pair within ``stride - 1`` of the best
    coarse pair.
    """
    # NOTE: the fine step only looks near the best coarse pair, so a narrow optimum
    # elsewhere on the G x G grid can be missed.
    size = range_config.num_candidates
    stride = max(1, round(math.sqrt(size)))
    device = values.device
    num_channels = values.shape[0]

    coarse = torch.arange(size, 0, -stride, device=device)  # (Kc,), starts with G
    coarse_i = coarse.repeat_interleave(len(coarse)).expand(num_channels, -1)  # (C, Kc^2)
    coarse_j = coarse.repeat(len(coarse)).expand(num_channels, -1)  # (C, Kc^2)
    lo, hi = _bounds(lo_base, hi_base, coarse_i, coarse_j, size)
    coarse_errors = _lp_errors(values, counts, lo, hi, config, range_config.p)
    best_i, best_j = _pick_best(coarse_errors, coarse_i, coarse_j)

    offsets = torch.arange(-(stride - 1), stride, device=device)  # (W,)
    window = offsets.numel()
    fine_i = (best_i[:, None] + offsets).clamp(1, size)  # (C, W)
    fine_j = (best_j[:, None] + offsets).clamp(1, size)  # (C, W)
    fine_i = fine_i[:, :, None].expand(-1, -1, window).reshape(num_channels, -1)  # (C, W^2)
    fine_j = fine_j[:, None, :].expand(-1, window, -1).reshape(num_channels, -1)  # (C, W^2)
    lo, hi = _bounds(lo_base, hi_base, fine_i, fine_j, size)
    return _pick_best(_lp_errors(values, counts, lo, hi, config, range_config.p), lo, hi)


def _bounds(
    lo_base: Tensor, hi_base: Tensor, index_lo: Tensor, index_hi: Tensor, size: int
) -> tuple[Tensor, Tensor]:
    """Return the candidate bounds ``lo_base * i / G`` and ``hi_base * j / G``, ``(C, K)`` each."""
    lo = lo_base[:, None] * (index_lo.to(lo_base.dtype) / size)
    hi = hi_base[:, None] * (index_hi.to(hi_base.dtype) / size)
    return lo, hi


def search_rows(
    values: Tensor,
    counts: Tensor,
    row_min: Tensor,
    row_max: Tensor,
    one_sided: Tensor,
    config: QuantizerConfig,
    range_config: RangeSearchConfig,
) -> tuple[Tensor, Tensor]:
    """Search each row with the 1-D or 2-D grid, as ``one_sided`` ``(C,)`` decides."""
    lo_base = row_min.clamp(max=0.0)
    hi_base = row_max.clamp(min=0.0)
    lo = torch.empty_like(lo_base)
    hi = torch.empty_like(hi_base)
    for search, rows in ((_search_1d, one_sided), (_search_2d, ~one_sided)):
        if bool(rows.any()):
            lo[rows], hi[rows] = search(
                values[rows], counts[rows], lo_base[rows], hi_base[rows], config, range_config
            )
    return lo, hi


def search_range(
    x: Tensor, config: QuantizerConfig, range_config: RangeSearchConfig | None = None
) -> tuple[Tensor, Tensor]:
    """Return the clipping range ``(lo, hi)`` of ``x`` with the smallest Lp error.

    The range is per channel along ``config.ch_axis`` (shape ``(C,)``), or per tensor
    (shape ``()``) when ``ch_axis`` is None. Each channel is one-sided or two-sided on its
    own values.
    """
    range_config = range_config or RangeSearchConfig()
    rows = channel_rows(x, config.ch_axis)
    row_min, row_max = rows.amin(dim=1), rows.amax(dim=1)
    values, counts = reduce_to_points(rows, range_config.num_bins)
    one_sided = (row_min >= 0) | (row_max <= 0)
    lo, hi = search_rows(values, counts, row_min, row_max, one_sided, config, range_config)
    if config.ch_axis is None:
        return lo.squeeze(0), hi.squeeze(0)
    return lo, hi
