"""PD-Quant module: distribution correction, reconstruction, guard rails and determinism."""

import json
import logging
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fingerquant.data import CapFingerIdDataModule
from fingerquant.quant import pdquant
from fingerquant.quant.adaround import AdaRoundQuantizer
from fingerquant.quant.checkpoint import load_quantized
from fingerquant.quant.correction import batch_norms, correction_loss
from fingerquant.quant.pdquant import NonFiniteLossError, PDQuantModule
from fingerquant.quant.run import run_quantization

QUICK = {"recon_iters": 40, "dc_iters": 5, "calib_size": 128, "log_every_n_iters": 5}


def quantize(
    checkpoint: Path, data_dir: Path, run_dir: Path, seed: int = 0, **options
) -> tuple[PDQuantModule, dict]:
    """Run one quantization with a fresh trainer; return the module and its results."""
    L.seed_everything(seed)
    module = PDQuantModule(str(checkpoint), seed=seed, **{**QUICK, **options})
    datamodule = CapFingerIdDataModule(task="fingers", data_dir=str(data_dir), download=False)
    trainer = L.Trainer(
        max_epochs=1,
        logger=TensorBoardLogger(run_dir, name="", version=""),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    results = run_quantization(module, datamodule, trainer, run_dir)
    return module, results


def test_run_writes_results_checkpoint_and_events(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path
) -> None:
    module, results = quantize(fingers_checkpoint, recordings_dir, tmp_path)

    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored == results
    for key in ("fp_accuracy", "quant_accuracy", "accuracy_drop", "agreement", "seconds"):
        assert key in stored
    assert stored["accuracy_drop"] == pytest.approx(
        stored["fp_accuracy"] - stored["quant_accuracy"], abs=1e-2
    )

    events = EventAccumulator(str(tmp_path)).Reload()
    tags = set(events.Tags()["scalars"])
    first, last = module.block_names[0], module.block_names[-1]
    for term in ("mean", "var", "input", "total", "lr_input"):
        assert f"dc/{first}/{term}" in tags
    for term in ("reg", "pd", "round", "total", "beta", "lr_alpha", "lr_scale"):
        assert f"recon/{last}/{term}" in tags
    steps = [
        event.step
        for tag in sorted(tags)
        for event in events.Scalars(tag)
        if tag.endswith("/total")
    ]
    assert max(steps) == module.schedule.total_steps - 1


def test_quantized_checkpoint_reloads_same_predictions(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path
) -> None:
    module, _ = quantize(fingers_checkpoint, recordings_dir, tmp_path)
    reloaded, payload = load_quantized(tmp_path / "quantized.pt")
    images = module.calibration[:64]

    assert torch.equal(reloaded(images), module.qmodel.eval()(images))
    assert payload["format_version"] == 1
    for record in payload["layers"]:
        assert record["weight_int"].dtype == torch.uint8
        assert int(record["weight_int"].max()) <= 2 ** record["weight_bits"] - 1


def test_same_seed_bit_identical(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path
) -> None:
    first, first_results = quantize(fingers_checkpoint, recordings_dir, tmp_path / "a", seed=3)
    second, second_results = quantize(fingers_checkpoint, recordings_dir, tmp_path / "b", seed=3)

    for a, b in zip(first.qmodel.layers(), second.qmodel.layers(), strict=True):
        assert torch.equal(a.int_weight(), b.int_weight())
        assert torch.equal(a.input_quantizer.scale, b.input_quantizer.scale)
    for key in ("fp_accuracy", "quant_accuracy", "agreement"):
        assert first_results[key] == second_results[key]


def test_rounding_hard_and_scales_positive(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path
) -> None:
    module, _ = quantize(fingers_checkpoint, recordings_dir, tmp_path, w_bits=2)

    for layer in module.qmodel.layers():
        assert isinstance(layer.weight_quantizer, AdaRoundQuantizer)
        assert layer.weight_quantizer.is_hard
        assert bool((layer.weight_quantizer.scale > 0).all())
        assert float(layer.input_quantizer.scale) > 0


def test_pdquant_beats_round_to_nearest(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path
) -> None:
    options = {"w_bits": 2, "a_bits": 2, "calib_size": 256, "bias_correction": False}
    _, rtn = quantize(fingers_checkpoint, recordings_dir, tmp_path / "rtn", method="rtn", **options)
    _, pd = quantize(
        fingers_checkpoint, recordings_dir, tmp_path / "pd", recon_iters=300, dc_iters=20, **options
    )

    assert pd["agreement"] > rtn["agreement"]


def test_distribution_correction_narrows_bn_gap(
    fingers_checkpoint: Path, recordings_dir: Path
) -> None:
    module = PDQuantModule(str(fingers_checkpoint), **QUICK)
    datamodule = CapFingerIdDataModule(task="fingers", data_dir=str(recordings_dir), download=False)
    module.calibrate(datamodule.calibration_set(64, seed=0))
    block = module.reference.blocks[1]
    original = module.reference.blocks[0](module.calibration).detach()
    corrected = original.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([corrected], lr=1e-2)

    def bn_gap() -> float:
        terms = correction_loss(block, corrected, original, lambda_c=0.02)
        return float(terms["mean"] + terms["var"])

    before = bn_gap()
    for _ in range(50):
        terms = correction_loss(block, corrected, original, lambda_c=0.02)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()

    assert batch_norms(block)
    assert bn_gap() < 0.8 * before


def test_statistics_finite_for_one_sample(fingers_checkpoint: Path) -> None:
    module = PDQuantModule(str(fingers_checkpoint), **QUICK)
    block = module.reference.blocks[2]
    single = torch.rand(1, 512)

    terms = correction_loss(block, single, single, lambda_c=0.02)
    assert all(bool(torch.isfinite(value)) for value in terms.values())


def test_non_finite_loss_names_block_phase_iteration(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdquant, "lp_loss", lambda **kwargs: torch.tensor(float("nan")))

    message = r"'reg' is nan in block 'features.conv1', phase recon, iteration 0"
    with pytest.raises(NonFiniteLossError, match=message):
        quantize(fingers_checkpoint, recordings_dir, tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_small_calibration_set_stated(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fingerquant"):
        _, results = quantize(
            fingers_checkpoint, recordings_dir, tmp_path, calib_size=5000, recon_iters=5
        )

    assert results["calib_size"] == 5000
    assert results["calib_size_used"] < 5000
    assert "fewer than calib_size=5000" in caplog.text


def test_calibration_smaller_than_batch(
    fingers_checkpoint: Path, recordings_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = PDQuantModule(str(fingers_checkpoint), **{**QUICK, "calib_size": 8})
    datamodule = CapFingerIdDataModule(task="fingers", data_dir=str(recordings_dir), download=False)
    with caplog.at_level(logging.WARNING, logger="fingerquant"):
        module.calibrate(datamodule.calibration_set(8, seed=0))

    assert module.calibration_size == 8
    assert "smaller than recon_batch_size=32" in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"w_bits": 9}, "w_bits"),
        ({"a_bits": 1}, "a_bits"),
        ({"method": "gptq"}, "Unknown method 'gptq'"),
        ({"recon_iters": -1}, "Invalid recon_iters -1"),
        ({"lambda_r": 0.0}, "Invalid lambda_r 0.0"),
    ],
)
def test_invalid_settings_rejected(fingers_checkpoint: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PDQuantModule(str(fingers_checkpoint), **options)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Checkpoint not found: .*nothing.ckpt"):
        PDQuantModule(str(tmp_path / "nothing.ckpt"))
