"""Uniform affine fake quantization against the torch reference kernels."""

import pytest
import torch

from fingerquant.quant.quantizer import (
    QuantizerConfig,
    UniformQuantizer,
    dequantize,
    fake_quantize,
    quantize,
)
from fingerquant.quant.range_search import qparams_from_range, search_range


def _near_tie(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Elements whose x / s lies within 1e-3 of a half step.

    torch.fake_quantize_* multiplies by 1 / s where ``fake_quantize`` divides by s, so these
    may round differently.
    """
    fraction = torch.frac((x / scale).abs())
    return (fraction - 0.5).abs() < 1e-3


def test_per_channel_8bit_matches_torch() -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(16, 8, 3, 3, generator=generator)
    scale = torch.rand(16, generator=generator) * 0.02 + 0.005
    zero_point = torch.randint(0, 256, (16,), generator=generator, dtype=torch.int32)

    ours = fake_quantize(weight, scale, zero_point, 0, 255, ch_axis=0)
    reference = torch.fake_quantize_per_channel_affine(weight, scale, zero_point, 0, 0, 255)

    tie = _near_tie(weight, scale.reshape(-1, 1, 1, 1))
    assert torch.equal(ours[~tie], reference[~tie])
    assert torch.allclose(ours, reference, atol=float(scale.max()) * 1.001, rtol=0)


def test_power_of_two_scales_match_exactly() -> None:
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(8, 32, generator=generator)
    scale = 2.0 ** -torch.randint(3, 8, (8,), generator=generator).float()
    zero_point = torch.randint(0, 256, (8,), generator=generator, dtype=torch.int32)

    ours = fake_quantize(weight, scale, zero_point, 0, 255, ch_axis=0)
    reference = torch.fake_quantize_per_channel_affine(weight, scale, zero_point, 0, 0, 255)

    assert torch.equal(ours, reference)


def test_per_tensor_8bit_matches_torch() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(4, 16, 8, 8, generator=generator) * 3
    scale, zero_point = 0.037, 121

    ours = fake_quantize(x, torch.tensor(scale), torch.tensor(zero_point), 0, 255)
    reference = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255)

    tie = _near_tie(x, torch.tensor(scale))
    assert torch.equal(ours[~tie], reference[~tie])
    assert torch.allclose(ours, reference, atol=scale * 1.001, rtol=0)


@pytest.mark.parametrize("bits", [0, 1, 9, 16, -4])
def test_bits_out_of_range_raises(bits: int) -> None:
    with pytest.raises(
        ValueError, match=rf"bits={bits} is out of range: expected an integer from 2 to 8"
    ):
        QuantizerConfig(bits=bits)


@pytest.mark.parametrize("bits", [4.0, True, "8"])
def test_bits_of_wrong_type_raises(bits: object) -> None:
    with pytest.raises(ValueError, match="expected an integer from 2 to 8"):
        QuantizerConfig(bits=bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", range(2, 9))
def test_grid_bounds_follow_bits(bits: int) -> None:
    config = QuantizerConfig(bits=bits)
    assert config.quant_min == 0
    assert config.quant_max == 2**bits - 1


def test_ties_round_to_even() -> None:
    # With s = 1 and z = 8, x / s = k + 0.5 must round to the even neighbour.
    x = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5])
    expected = torch.tensor([0.0, 2.0, 2.0, 4.0, 0.0, -2.0, -2.0])

    x_hat = fake_quantize(x, torch.tensor(1.0), torch.tensor(8), 0, 15)

    assert torch.equal(x_hat, expected)
    assert torch.equal(quantize(x, torch.tensor(1.0), torch.tensor(8), 0, 15) - 8, expected.int())


def test_division_rounds_like_onnx_quantize_linear() -> None:
    # In float32, 1.55 / 0.1 is 15.499999 but 1.55 * (1 / 0.1) is 15.5, which rounds to 16.
    # ONNX QuantizeLinear divides, so the code must be 15. torch.fake_quantize_* multiplies.
    x = torch.tensor([1.55])
    scale = torch.tensor(0.1)
    assert float(x / scale) < 15.5

    assert int(quantize(x, scale, torch.tensor(0), 0, 255)) == 15
    assert float(torch.fake_quantize_per_tensor_affine(x, 0.1, 0, 0, 255)) == pytest.approx(1.6)


def test_zero_is_exactly_representable() -> None:
    generator = torch.Generator().manual_seed(3)
    config = QuantizerConfig(bits=3)
    for _ in range(50):
        lo = -torch.rand((), generator=generator) * 5
        hi = torch.rand((), generator=generator) * 5
        scale, zero_point = qparams_from_range(
            lo, hi, config.quant_min, config.quant_max, config.eps
        )

        x_hat = fake_quantize(torch.zeros(3), scale, zero_point, config.quant_min, config.quant_max)

        assert torch.equal(x_hat, torch.zeros(3))


def test_scales_positive_for_degenerate_ranges() -> None:
    config = QuantizerConfig(bits=4, ch_axis=0)
    weight = torch.stack(
        [torch.zeros(9), torch.full((9,), 2.5), torch.full((9,), -1.0), torch.randn(9)]
    )

    lo, hi = search_range(weight, config)
    scale, zero_point = qparams_from_range(lo, hi, config.quant_min, config.quant_max, config.eps)

    assert bool((scale > 0).all())
    assert bool(((zero_point >= config.quant_min) & (zero_point <= config.quant_max)).all())
    x_hat = fake_quantize(weight, scale, zero_point, config.quant_min, config.quant_max, ch_axis=0)
    assert torch.equal(x_hat[0], torch.zeros(9))
    assert torch.allclose(x_hat[1], weight[1])
    assert torch.allclose(x_hat[2], weight[2])


def test_quantize_then_dequantize_equals_fake_quantize() -> None:
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(6, 5, generator=generator)
    scale = torch.rand(6, generator=generator) * 0.1 + 0.01
    zero_point = torch.randint(0, 16, (6,), generator=generator, dtype=torch.int32)

    q = quantize(x, scale, zero_point, 0, 15, ch_axis=0)

    assert q.dtype == torch.int32
    assert int(q.min()) >= 0
    assert int(q.max()) <= 15
    assert torch.equal(
        dequantize(q, scale, zero_point, ch_axis=0), fake_quantize(x, scale, zero_point, 0, 15, 0)
    )


def test_straight_through_gradients() -> None:
    # s = 0.5, z = 2, 2 bits: the representable values are -1, -0.5, 0 and 0.5.
    x = torch.tensor([-2.0, -0.6, 0.2, 0.3, 2.0], requires_grad=True)
    scale = torch.tensor(0.5, requires_grad=True)

    fake_quantize(x, scale, torch.tensor(2), 0, 3).sum().backward()

    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))
    # LSQ: round(x / s) - x / s inside the range, quant_min - z or quant_max - z outside.
    expected = (-2.0) + (-1.0 - -1.2) + (0.0 - 0.4) + (1.0 - 0.6) + 1.0
    assert float(scale.grad) == pytest.approx(expected, abs=1e-6)


def test_uniform_quantizer_module() -> None:
    config = QuantizerConfig(bits=4, ch_axis=0)
    weight = torch.randn(3, 7, generator=torch.Generator().manual_seed(5))
    scale, zero_point = qparams_from_range(weight.amin(1), weight.amax(1), 0, 15, config.eps)

    quantizer = UniformQuantizer(config, scale, zero_point)

    assert torch.equal(quantizer(weight), fake_quantize(weight, scale, zero_point, 0, 15, 0))
    assert torch.equal(quantizer.quantize(weight), quantize(weight, scale, zero_point, 0, 15, 0))
    assert set(quantizer.state_dict()) == {"scale", "zero_point"}
