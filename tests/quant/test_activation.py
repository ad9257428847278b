"""Activation quantizer: calibration, positive learned step size, LSQ gradient and QDrop."""

import pytest
import torch

from fingerquant.quant.activation import ActivationQuantizer
from fingerquant.quant.qdrop import qdrop
from fingerquant.quant.quantizer import QuantizerConfig, fake_quantize


def _calibrated(bits: int = 4, drop_prob: float = 0.0) -> ActivationQuantizer:
    quantizer = ActivationQuantizer(QuantizerConfig(bits=bits), drop_prob=drop_prob)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        quantizer.observer.observe(torch.randn(16, 8, generator=generator))
    quantizer.init_from_observer()
    return quantizer


def test_uncalibrated_quantizer_raises() -> None:
    quantizer = ActivationQuantizer(QuantizerConfig(bits=4))

    with pytest.raises(RuntimeError, match="not calibrated"):
        quantizer(torch.zeros(2, 3))


def test_init_from_observer_sets_qparams_and_clears_batches() -> None:
    quantizer = _calibrated()

    assert quantizer.is_initialized
    assert quantizer.scale.item() > 0
    assert 0 <= int(quantizer.zero_point) <= 15
    assert quantizer.observer.num_batches == 0


def test_per_channel_config_raises() -> None:
    with pytest.raises(ValueError, match="ch_axis=0 is invalid for an activation quantizer"):
        ActivationQuantizer(QuantizerConfig(bits=4, ch_axis=0))


def test_forward_is_fake_quantization_with_learned_scale() -> None:
    quantizer = _calibrated().eval()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))

    expected = fake_quantize(x, quantizer.scale, quantizer.zero_point, 0, 15)

    assert torch.equal(quantizer(x), expected)


def test_scale_stays_positive_when_driven_to_zero() -> None:
    # Minimising |x_hat|^2 pulls the step size towards 0, where a plain parameter would
    # cross into negative values.
    quantizer = _calibrated().train()
    optimizer = torch.optim.Adam(quantizer.parameters(), lr=1.0)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(2))
    initial_scale = quantizer.scale.item()

    for _ in range(30):
        optimizer.zero_grad()
        quantizer(x).pow(2).sum().backward()
        optimizer.step()

    scale = quantizer.scale.item()
    assert 0 < scale < 1e-3 * initial_scale


def test_gradient_reaches_log_scale() -> None:
    quantizer = _calibrated().train()
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(3))

    (quantizer(x) - x).pow(2).sum().backward()

    assert quantizer.log_scale.grad is not None
    assert float(quantizer.log_scale.grad.abs()) > 0


def test_set_qparams_rejects_invalid_values() -> None:
    quantizer = ActivationQuantizer(QuantizerConfig(bits=4))

    with pytest.raises(ValueError, match=r"scale=0\.0 is invalid"):
        quantizer.set_qparams(torch.tensor(0.0), torch.tensor(0))
    with pytest.raises(ValueError, match="zero_point=16 is out of range"):
        quantizer.set_qparams(torch.tensor(0.1), torch.tensor(16))


def test_qdrop_applies_in_training_only() -> None:
    quantizer = _calibrated(drop_prob=1.0)
    x = torch.randn(8, 8, generator=torch.Generator().manual_seed(4))
    fp_input = x + 100.0

    assert torch.equal(quantizer.train()(x, fp_input), fp_input)
    assert torch.equal(quantizer.train()(x), x)
    assert torch.equal(quantizer.eval()(x, fp_input), quantizer.eval()(x))


def test_qdrop_mixes_elements_at_drop_prob() -> None:
    torch.manual_seed(5)
    quantized = torch.zeros(200, 100)
    full_precision = torch.ones(200, 100)

    mixed = qdrop(quantized, full_precision, drop_prob=0.5)

    assert bool(((mixed == 0) | (mixed == 1)).all())
    assert float(mixed.mean()) == pytest.approx(0.5, abs=0.02)


def test_qdrop_is_repeatable_with_the_same_seed() -> None:
    quantized = torch.zeros(10, 10)
    full_precision = torch.ones(10, 10)

    torch.manual_seed(6)
    first = qdrop(quantized, full_precision, drop_prob=0.3)
    torch.manual_seed(6)
    second = qdrop(quantized, full_precision, drop_prob=0.3)

    assert torch.equal(first, second)


@pytest.mark.parametrize("drop_prob", [-0.1, 1.5])
def test_qdrop_rejects_invalid_probability(drop_prob: float) -> None:
    with pytest.raises(ValueError, match=rf"drop_prob={drop_prob} is out of range"):
        qdrop(torch.zeros(2), torch.zeros(2), drop_prob)


def test_qdrop_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"quantized shape \(2,\) and full_precision shape \(3,\)"):
        qdrop(torch.zeros(2), torch.zeros(3), 0.5)
