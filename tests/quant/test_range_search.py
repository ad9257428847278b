"""Lp clipping-range search, qparams from a range, and the EMA observer."""

import pytest
import torch
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from fingerquant.quant import range_search
from fingerquant.quant.observer import LpRangeObserver
from fingerquant.quant.quantizer import QuantizerConfig, fake_quantize
from fingerquant.quant.range_search import RangeSearchConfig, qparams_from_range, search_range

P = 2.4


def _lp_error(
    x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, config: QuantizerConfig
) -> torch.Tensor:
    """Return the exact Lp error of quantizing ``x`` with the range ``[lo, hi]``.

    The error is per channel when ``config.ch_axis`` is 0, and a scalar otherwise.
    """
    scale, zero_point = qparams_from_range(lo, hi, config.quant_min, config.quant_max, config.eps)
    x_hat = fake_quantize(x, scale, zero_point, config.quant_min, config.quant_max, config.ch_axis)
    error = (x - x_hat).abs().pow(P)
    return error.flatten(1).sum(1) if config.ch_axis == 0 else error.sum()


def _samples(kind: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if kind == "normal":
        return torch.randn(shape, generator=generator)
    if kind == "laplace":
        uniform = torch.rand(shape, generator=generator) - 0.5
        return -uniform.sign() * torch.log1p(-2 * uniform.abs())
    if kind == "skewed":
        return torch.randn(shape, generator=generator).exp() - 1.5
    assert kind == "relu"
    return torch.randn(shape, generator=generator).clamp(min=0)


@pytest.mark.parametrize("bits", [4, 8])
def test_qparams_match_torch_ao_min_max_per_tensor(bits: int) -> None:
    x = torch.randn(200, generator=torch.Generator().manual_seed(0)) + 0.3
    observer = MinMaxObserver(
        dtype=torch.quint8, qscheme=torch.per_tensor_affine, quant_min=0, quant_max=2**bits - 1
    )
    observer(x)
    expected_scale, expected_zero_point = observer.calculate_qparams()

    scale, zero_point = qparams_from_range(x.min(), x.max(), 0, 2**bits - 1, float(observer.eps))

    assert torch.equal(scale.reshape(1), expected_scale)
    assert torch.equal(zero_point.reshape(1), expected_zero_point)


def test_qparams_match_torch_ao_min_max_per_channel() -> None:
    weight = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    weight[2] = weight[2].abs()  # one-sided channel: min is clipped to 0
    weight[4] = 0.0  # min == max
    observer = PerChannelMinMaxObserver(
        ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine
    )
    observer(weight)
    expected_scale, expected_zero_point = observer.calculate_qparams()

    rows = weight.flatten(1)
    scale, zero_point = qparams_from_range(rows.amin(1), rows.amax(1), 0, 255, float(observer.eps))

    assert torch.equal(scale, expected_scale)
    assert torch.equal(zero_point, expected_zero_point)


def test_min_equal_max_uses_eps() -> None:
    scale, zero_point = qparams_from_range(torch.tensor(0.0), torch.tensor(0.0), 0, 15, 1e-8)

    assert float(scale) == pytest.approx(1e-8)
    assert int(zero_point) == 0


def test_one_sided_rows_use_1d_search(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, int] = {}

    def spy(name: str):
        original = getattr(range_search, name)

        def wrapper(values: torch.Tensor, *args: object) -> object:
            calls[name] = values.shape[0]
            return original(values, *args)

        return wrapper

    monkeypatch.setattr(range_search, "_search_1d", spy("_search_1d"))
    monkeypatch.setattr(range_search, "_search_2d", spy("_search_2d"))
    weight = torch.randn(5, 40, generator=torch.Generator().manual_seed(2))
    weight[0] = weight[0].abs()
    weight[3] = -weight[3].abs()

    search_range(weight, QuantizerConfig(bits=4, ch_axis=0))

    assert calls == {"_search_1d": 2, "_search_2d": 3}


def test_one_sided_bounds_stay_at_zero() -> None:
    config = QuantizerConfig(bits=4)
    x = _samples("relu", (1000,), seed=3)

    lo, hi = search_range(x, config)
    assert float(lo) == 0.0
    assert 0 < float(hi) <= float(x.max())

    lo, hi = search_range(-x, config)
    assert float(hi) == 0.0
    assert float(x.max()) >= -float(lo) > 0


def test_two_sided_bounds_move_independently() -> None:
    # A long right tail and a short left one: the search clips the upper bound much more
    # than the lower one, which a search that scales both bounds together could not do.
    x = _samples("skewed", (2000,), seed=12)

    lo, hi = search_range(x, QuantizerConfig(bits=4))

    lo_fraction = float(lo / x.min())
    hi_fraction = float(hi / x.max())
    assert lo_fraction > 0.9
    assert hi_fraction < lo_fraction - 0.1


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("kind", ["normal", "laplace", "skewed"])
def test_coarse_to_fine_matches_full_grid(bits: int, kind: str) -> None:
    config = QuantizerConfig(bits=bits)
    size = 36
    x = _samples(kind, (1500,), seed=bits)

    lo, hi = search_range(x, config, RangeSearchConfig(num_candidates=size))

    fractions = torch.arange(1, size + 1) / size
    grid_lo = (x.min() * fractions).repeat_interleave(size)
    grid_hi = (x.max() * fractions).repeat(size)
    full_grid_best = min(
        float(_lp_error(x, grid_lo[k], grid_hi[k], config)) for k in range(size * size)
    )
    assert float(_lp_error(x, lo, hi, config)) <= full_grid_best * 1.001


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("kind", ["normal", "laplace", "skewed", "relu"])
def test_lp_search_not_worse_than_min_max(bits: int, kind: str) -> None:
    per_tensor = QuantizerConfig(bits=bits)
    x = _samples(kind, (1500,), seed=bits)
    lo, hi = search_range(x, per_tensor)
    assert float(_lp_error(x, lo, hi, per_tensor)) <= float(
        _lp_error(x, x.min(), x.max(), per_tensor)
    ) * (1 + 1e-5)

    per_channel = QuantizerConfig(bits=bits, ch_axis=0)
    weight = _samples(kind, (8, 4, 3, 3), seed=bits + 10)
    lo, hi = search_range(weight, per_channel)
    rows = weight.flatten(1)
    searched = _lp_error(weight, lo, hi, per_channel)
    min_max = _lp_error(weight, rows.amin(1), rows.amax(1), per_channel)
    assert bool((searched <= min_max * (1 + 1e-5)).all())


def test_lp_search_clips_heavy_tails() -> None:
    config = QuantizerConfig(bits=4)
    x = _samples("laplace", (2000,), seed=5)

    lo, hi = search_range(x, config)

    assert float(_lp_error(x, lo, hi, config)) < 0.7 * float(_lp_error(x, x.min(), x.max(), config))


def test_histogram_search_close_to_exact_search() -> None:
    config = QuantizerConfig(bits=4)
    x = _samples("laplace", (20000,), seed=6)

    lo_hist, hi_hist = search_range(x, config, RangeSearchConfig(num_bins=2048))
    lo_exact, hi_exact = search_range(x, config, RangeSearchConfig(num_bins=x.numel()))

    exact_error = float(_lp_error(x, lo_exact, hi_exact, config))
    assert float(_lp_error(x, lo_hist, hi_hist, config)) <= exact_error * 1.02


@pytest.mark.parametrize("kind", ["normal", "skewed", "relu"])
def test_searched_range_contains_zero_exactly(kind: str) -> None:
    config = QuantizerConfig(bits=3, ch_axis=0)
    weight = _samples(kind, (6, 30), seed=7)

    lo, hi = search_range(weight, config)
    scale, zero_point = qparams_from_range(lo, hi, config.quant_min, config.quant_max, config.eps)

    zeros = torch.zeros(6, 2)
    assert torch.equal(fake_quantize(zeros, scale, zero_point, 0, 7, ch_axis=0), zeros)


def test_observer_combines_batches_with_ema() -> None:
    config = QuantizerConfig(bits=4)
    range_config = RangeSearchConfig(ema_decay=0.9)
    first = _samples("relu", (500,), seed=8)
    second = 2 * _samples("relu", (500,), seed=9)
    observer = LpRangeObserver(config, range_config)

    observer.observe(first)
    observer.observe(second)
    lo, hi = observer.compute_range()

    _, hi_first = search_range(first, config, range_config)
    _, hi_second = search_range(second, config, range_config)
    assert float(lo) == 0.0
    assert float(hi) == pytest.approx(0.9 * float(hi_first) + 0.1 * float(hi_second))


def test_observer_decides_one_sidedness_from_all_batches() -> None:
    config = QuantizerConfig(bits=4)
    first = _samples("relu", (500,), seed=10)
    second = torch.randn(500, generator=torch.Generator().manual_seed(11))
    observer = LpRangeObserver(config, RangeSearchConfig(ema_decay=0.5))

    observer.observe(first)
    observer.observe(second)
    lo, _ = observer.compute_range()

    # The first batch alone is one-sided, but the second batch's negatives must count.
    assert float(search_range(first, config)[0]) == 0.0
    assert float(lo) < -0.5


def test_observer_qparams_and_reset() -> None:
    config = QuantizerConfig(bits=8)
    observer = LpRangeObserver(config)
    observer.observe(torch.linspace(-1.0, 3.0, 101))

    scale, zero_point = observer.calculate_qparams()
    assert float(scale) > 0
    assert 0 <= int(zero_point) <= 255
    assert observer.num_batches == 1

    observer.reset()
    assert observer.num_batches == 0


def test_observer_without_batches_raises() -> None:
    observer = LpRangeObserver(QuantizerConfig(bits=4))

    with pytest.raises(RuntimeError, match="has seen no calibration batch"):
        observer.compute_range()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises(bad: float) -> None:
    x = torch.randn(10)
    x[3] = bad

    with pytest.raises(ValueError, match="contains NaN or inf"):
        search_range(x, QuantizerConfig(bits=4))


def test_empty_input_raises() -> None:
    with pytest.raises(ValueError, match="empty tensor"):
        search_range(torch.empty(0), QuantizerConfig(bits=4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 0.0}, "p=0.0 is invalid"),
        ({"num_candidates": 0}, "num_candidates=0 is invalid"),
        ({"num_bins": 0}, "num_bins=0 is invalid"),
        ({"ema_decay": 1.0}, "ema_decay=1.0 is out of range"),
    ],
)
def test_config_rejects_invalid_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RangeSearchConfig(**kwargs)
