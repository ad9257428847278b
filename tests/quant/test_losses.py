"""Reconstruction loss terms against torch.nn.functional, and the beta schedule."""

import pytest
import torch
import torch.nn.functional as F

from fingerquant.quant.losses import (
    BetaSchedule,
    lp_loss,
    prediction_difference_loss,
    rounding_loss,
)


def _pair(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def test_lp_loss_p2_matches_mse() -> None:
    pred, target = _pair((5, 4, 3, 3), seed=0)

    expected = F.mse_loss(pred, target, reduction="none").flatten(1).sum(1).mean()

    assert torch.allclose(lp_loss(pred=pred, target=target, p=2.0), expected)
    assert torch.allclose(
        lp_loss(pred=pred, target=target, p=2.0), F.mse_loss(pred, target, reduction="sum") / 5
    )


def test_lp_loss_p1_matches_l1() -> None:
    pred, target = _pair((6, 10), seed=1)

    expected = F.l1_loss(pred, target, reduction="sum") / 6

    assert torch.allclose(lp_loss(pred=pred, target=target, p=1.0), expected)


def test_lp_loss_default_exponent_is_2_4() -> None:
    pred, target = _pair((3, 7), seed=2)

    expected = (pred - target).abs().pow(2.4).sum() / 3

    assert torch.allclose(lp_loss(pred=pred, target=target), expected)


def test_lp_loss_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match=r"pred shape \(2, 3\) and target shape \(2, 4\) differ"):
        lp_loss(pred=torch.zeros(2, 3), target=torch.zeros(2, 4))


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_prediction_difference_matches_kl_div(temperature: float) -> None:
    quant_logits, fp_logits = _pair((8, 10), seed=3)

    expected = F.kl_div(
        F.log_softmax(quant_logits / temperature, dim=1),
        F.softmax(fp_logits / temperature, dim=1),
        reduction="batchmean",
    )
    loss = prediction_difference_loss(
        quant_logits=quant_logits, fp_logits=fp_logits, temperature=temperature
    )

    assert torch.allclose(loss, expected, atol=1e-6)


def test_prediction_difference_zero_for_equal_logits() -> None:
    logits, _ = _pair((4, 2), seed=4)

    loss = prediction_difference_loss(quant_logits=logits, fp_logits=logits.clone())

    assert float(loss) == pytest.approx(0.0, abs=1e-7)


def test_prediction_difference_rejects_bad_temperature() -> None:
    logits = torch.zeros(2, 3)

    with pytest.raises(ValueError, match="temperature=0 is invalid"):
        prediction_difference_loss(quant_logits=logits, fp_logits=logits, temperature=0)


def test_loss_tensors_are_keyword_only() -> None:
    a, b = _pair((2, 3), seed=5)

    with pytest.raises(TypeError):
        lp_loss(a, b)  # type: ignore[misc]
    with pytest.raises(TypeError):
        prediction_difference_loss(a, b)  # type: ignore[misc]


def test_rounding_loss_values() -> None:
    binary = torch.tensor([0.0, 1.0, 1.0, 0.0])
    half = torch.full((6,), 0.5)
    h = torch.tensor([0.25, 0.9])

    assert float(rounding_loss(h=binary, beta=2.0, round_weight=0.01)) == 0.0
    assert float(rounding_loss(h=half, beta=20.0, round_weight=0.01)) == pytest.approx(0.06)
    expected = 0.5 * ((1 - 0.5**3) + (1 - 0.8**3))
    assert float(rounding_loss(h=h, beta=3.0, round_weight=0.5)) == pytest.approx(expected)


def test_rounding_loss_gradient_pushes_away_from_half() -> None:
    h = torch.tensor([0.3, 0.7], requires_grad=True)

    rounding_loss(h=h, beta=2.0).backward()

    # Gradient descent lowers h below 0.5 and raises it above 0.5.
    assert float(h.grad[0]) > 0
    assert float(h.grad[1]) < 0


def test_beta_schedule_warmup_then_linear_decay() -> None:
    schedule = BetaSchedule(total_iters=100, beta_range=(20.0, 2.0), warmup=0.2)

    assert schedule.warmup_iters == 20
    assert schedule(0) == 20.0
    assert schedule(19) == 20.0
    assert schedule.in_warmup(19)
    assert not schedule.in_warmup(20)
    assert schedule(20) == 20.0
    assert schedule(60) == pytest.approx(11.0)
    assert schedule(100) == pytest.approx(2.0)
    values = [schedule(t) for t in range(100)]
    assert values == sorted(values, reverse=True)


def test_beta_schedule_without_warmup() -> None:
    schedule = BetaSchedule(total_iters=10, warmup=0.0)

    assert not schedule.in_warmup(0)
    assert schedule(0) == 20.0
    assert schedule(5) == pytest.approx(11.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total_iters": 0}, "total_iters=0 is invalid"),
        ({"total_iters": 10, "warmup": 1.0}, "warmup=1.0 is out of range"),
        ({"total_iters": 10, "beta_range": (20.0, 0.0)}, "beta_range=.* is invalid"),
    ],
)
def test_beta_schedule_rejects_invalid_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BetaSchedule(**kwargs)  # type: ignore[arg-type]
