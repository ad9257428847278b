"""Observer that searches a clipping range per calibration batch and averages them."""

import torch
from torch import Tensor

from fingerquant.quant.quantizer import QuantizerConfig
from fingerquant.quant.range_search import (
    RangeSearchConfig,
    channel_rows,
    qparams_from_range,
    reduce_to_points,
    search_rows,
)


class LpRangeObserver:
    """Clipping-range observer for calibration batches: Lp search per batch, then an EMA.

    ``observe`` stores each batch reduced to at most ``num_bins`` points per channel.
    ``compute_range`` decides one-sidedness from the min and max over all observed batches.
    It then searches every batch with that decision and combines the batch ranges in
    order with ``range <- m * range + (1 - m) * batch_range``, starting from the first
    batch's range. One-sidedness comes from the whole set, because deciding it from the
    first batch would clip the negative values of a tensor whose first batch happens to
    be all positive.
    """

    def __init__(
        self, config: QuantizerConfig, range_config: RangeSearchConfig | None = None
    ) -> None:
        self.config = config
        self.range_config = range_config or RangeSearchConfig()
        self._batches: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []

    @property
    def num_batches(self) -> int:
        return len(self._batches)

    def observe(self, x: Tensor) -> None:
        """Store the reduced points and the min and max of one calibration batch."""
        rows = channel_rows(x, self.config.ch_axis)
        values, counts = reduce_to_points(rows, self.range_config.num_bins)
        self._batches.append((values, counts, rows.amin(dim=1), rows.amax(dim=1)))

    def reset(self) -> None:
        """Forget all observed batches."""
        self._batches.clear()

    def compute_range(self) -> tuple[Tensor, Tensor]:
        """Return the EMA of the per-batch Lp ranges, ``(lo, hi)`` shaped like ``search_range``."""
        if not self._batches:
            raise RuntimeError(
                "the observer has seen no calibration batch: call observe() on at least one "
                "batch before compute_range()."
            )
        set_min = torch.stack([batch[2] for batch in self._batches]).amin(dim=0)
        set_max = torch.stack([batch[3] for batch in self._batches]).amax(dim=0)
        one_sided = (set_min >= 0) | (set_max <= 0)

        decay = self.range_config.ema_decay
        lo_ema, hi_ema = None, None
        for values, counts, row_min, row_max in self._batches:
            lo, hi = search_rows(
                values, counts, row_min, row_max, one_sided, self.config, self.range_config
            )
            if lo_ema is None:
                lo_ema, hi_ema = lo, hi
            else:
                lo_ema = decay * lo_ema + (1 - decay) * lo
                hi_ema = decay * hi_ema + (1 - decay) * hi

        if self.config.ch_axis is None:
            return lo_ema.squeeze(0), hi_ema.squeeze(0)
        return lo_ema, hi_ema

    def calculate_qparams(self) -> tuple[Tensor, Tensor]:
        """Return ``(scale, zero_point)`` for the EMA range."""
        lo, hi = self.compute_range()
        return qparams_from_range(
            lo, hi, self.config.quant_min, self.config.quant_max, self.config.eps
        )
