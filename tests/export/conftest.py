"""Fixtures for export tests: a quantized checkpoint of the small synthetic classifier."""

from pathlib import Path

import lightning as L
import pytest

from fingerquant.data import CapFingerIdDataModule
from fingerquant.quant.pdquant import PDQuantModule
from fingerquant.quant.run import run_quantization
from tests.quant.conftest import fingers_checkpoint  # noqa: F401  (trained once per session)


@pytest.fixture(scope="session")
def quantized_checkpoint(
    fingers_checkpoint: Path,  # noqa: F811
    recordings_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Quantize the synthetic Model 1 to W4A4 with round-to-nearest and return quantized.pt.

    Round-to-nearest skips reconstruction, which keeps the fixture fast, and gives
    the same graph as PD-Quant: 8-bit first and last layers, 4-bit packed inner ones.
    """
    run_dir = tmp_path_factory.mktemp("quantized")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINGERQUANT_CACHE", str(tmp_path_factory.mktemp("cache")))
        L.seed_everything(0)
        module = PDQuantModule(
            str(fingers_checkpoint), method="rtn", recon_iters=0, dc_iters=0, calib_size=128
        )
        datamodule = CapFingerIdDataModule(
            task="fingers", data_dir=str(recordings_dir), download=False
        )
        trainer = L.Trainer(
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        run_quantization(module, datamodule, trainer, run_dir)
    return run_dir / "quantized.pt"
