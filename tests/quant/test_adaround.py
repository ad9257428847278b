"""AdaRound: initialisation, soft and hard rounding, hardening, gradients and integer export."""

import pytest
import torch

from fingerquant.quant.adaround import (
    AdaRoundQuantizer,
    inverse_rectified_sigmoid,
    rectified_sigmoid,
)
from fingerquant.quant.quantizer import QuantizerConfig, UniformQuantizer, dequantize
from fingerquant.quant.range_search import qparams_from_range


def _weight_quantizer(bits: int = 4, seed: int = 0) -> tuple[torch.Tensor, UniformQuantizer]:
    """Return a conv weight and a per-channel quantizer on its min-max range."""
    weight = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(seed))
    config = QuantizerConfig(bits=bits, ch_axis=0)
    rows = weight.flatten(1)
    scale, zero_point = qparams_from_range(
        rows.amin(1), rows.amax(1), config.quant_min, config.quant_max, config.eps
    )
    return weight, UniformQuantizer(config, scale, zero_point)


def _inside_grid(weight: torch.Tensor, quantizer: UniformQuantizer) -> torch.Tensor:
    """Mask of weights inside ``[s * (quant_min - z), s * (quant_max - z)]``, which are not clipped.

    Rounding the zero-point can move the grid by up to half a step, so the min-max range
    does not always cover the extreme weights.
    """
    scale = quantizer.scale.reshape(-1, 1, 1, 1)
    zero_point = quantizer.zero_point.reshape(-1, 1, 1, 1)
    low = scale * (quantizer.quant_min - zero_point)
    high = scale * (quantizer.quant_max - zero_point)
    return (weight >= low) & (weight <= high)


def test_rectified_sigmoid_inverse_round_trip() -> None:
    h = torch.linspace(0.0, 1.0, 101)

    assert torch.allclose(rectified_sigmoid(inverse_rectified_sigmoid(h)), h, atol=1e-6)
    assert bool(torch.isfinite(inverse_rectified_sigmoid(h)).all())


def test_rectified_sigmoid_saturates_at_zero_and_one() -> None:
    h = rectified_sigmoid(torch.tensor([-20.0, 20.0]))

    assert torch.equal(h, torch.tensor([0.0, 1.0]))


def test_hard_threshold_is_alpha_sign() -> None:
    alpha = torch.linspace(-3.0, 3.0, 601)

    assert torch.equal(rectified_sigmoid(alpha) >= 0.5, alpha >= 0)


def test_soft_weights_at_init_equal_fp_weights() -> None:
    weight, uniform = _weight_quantizer()
    quantizer = AdaRoundQuantizer.from_quantizer(uniform, weight).train()

    soft = quantizer(weight).detach()

    inside = _inside_grid(weight, uniform)
    assert float(inside.float().mean()) > 0.9
    assert torch.allclose(soft[inside], weight[inside], atol=float(uniform.scale.max()) * 1e-5)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_hard_rounding_at_init_equals_round_to_nearest(bits: int) -> None:
    # Random weights have no exact ties, where hard rounding would round up and
    # round-to-nearest to even.
    weight, uniform = _weight_quantizer(bits=bits, seed=bits)
    quantizer = AdaRoundQuantizer.from_quantizer(uniform, weight).eval()

    assert torch.equal(quantizer(weight), uniform(weight))
    assert torch.equal(quantizer.quantize(weight), uniform.quantize(weight))


def test_harden_fixes_binary_rounding_in_training_mode() -> None:
    weight, uniform = _weight_quantizer()
    quantizer = AdaRoundQuantizer.from_quantizer(uniform, weight).train()
    with torch.no_grad():
        quantizer.alpha.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)))
    assert not quantizer.is_hard
    assert not torch.equal(quantizer.rounding(), quantizer.hard_rounding())

    quantizer.harden()

    rounding = quantizer.rounding()
    assert quantizer.is_hard
    assert bool(((rounding == 0) | (rounding == 1)).all())
    assert torch.equal(rounding, (quantizer.alpha >= 0).float())
    assert not quantizer.alpha.requires_grad
    assert torch.equal(quantizer(weight), quantizer.eval()(weight))


def test_hardened_flag_survives_state_dict() -> None:
    weight, uniform = _weight_quantizer()
    source = AdaRoundQuantizer.from_quantizer(uniform, weight)
    source.harden()
    target = AdaRoundQuantizer.from_quantizer(uniform, weight)

    target.load_state_dict(source.state_dict())

    assert target.is_hard


def test_gradients_reach_alpha() -> None:
    weight, uniform = _weight_quantizer()
    quantizer = AdaRoundQuantizer.from_quantizer(uniform, weight).train()

    (
        quantizer(weight) * torch.linspace(-1, 1, weight.numel()).reshape(weight.shape)
    ).sum().backward()

    grad = quantizer.alpha.grad
    assert grad is not None
    assert bool(torch.isfinite(grad).all())
    assert float(grad.abs().sum()) > 0


def test_int_weight_dequantizes_to_eval() -> None:
    weight, uniform = _weight_quantizer(bits=3)
    quantizer = AdaRoundQuantizer.from_quantizer(uniform, weight)
    with torch.no_grad():
        quantizer.alpha.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(2)))

    q = quantizer.quantize(weight)

    assert q.dtype == torch.int32
    assert int(q.min()) >= 0
    assert int(q.max()) <= 7
    expected = quantizer.eval()(weight)
    assert torch.equal(dequantize(q, quantizer.scale, quantizer.zero_point, ch_axis=0), expected)


def test_rounding_moves_by_at_most_one_step() -> None:
    weight, uniform = _weight_quantizer()
    quantizer = AdaRoundQuantizer.from_quantizer(uniform, weight)
    with torch.no_grad():
        quantizer.alpha.fill_(10.0)

    step = uniform.scale.reshape(-1, 1, 1, 1)
    difference = ((quantizer.eval()(weight) - weight) / step)[_inside_grid(weight, uniform)]

    assert bool((difference >= -1e-5).all())
    assert bool((difference <= 1 + 1e-5).all())
