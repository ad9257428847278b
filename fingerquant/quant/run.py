"""One quantization run: stage 1, stage 2, test evaluation, and the files it leaves."""

import json
import time
from pathlib import Path

import lightning as L

from fingerquant.classifier import CheckpointMismatchError
from fingerquant.data import CapFingerIdDataModule
from fingerquant.paths import RESULTS_FILE, write_new
from fingerquant.quant.checkpoint import save_quantized
from fingerquant.quant.pdquant import PDQuantModule

CHECKPOINT_FILE = "quantized.pt"


def run_quantization(
    module: PDQuantModule, datamodule: CapFingerIdDataModule, trainer: L.Trainer, run_dir: Path
) -> dict:
    """Quantize, evaluate on the test split, and write ``quantized.pt`` and ``results.json``.

    ``seconds`` in the results covers both quantization stages, not the evaluation.
    """
    if module.task is not None and module.task != datamodule.task:
        raise CheckpointMismatchError(
            f"Checkpoint {module.hparams.checkpoint} is a {module.task!r} model but --data.task "
            f"is {datamodule.task!r}. Set --data.task {module.task}."
        )
    datamodule.prepare_data()
    datamodule.setup("fit")

    start = time.perf_counter()
    module.calibrate(
        datamodule.calibration_set(module.hparams.calib_size, seed=module.hparams.seed)
    )
    if module.schedule.total_steps:
        trainer.fit(module)
    seconds = time.perf_counter() - start

    (metrics,) = trainer.test(module, datamodule=datamodule, verbose=False)
    hparams = module.hparams
    results = {
        "task": datamodule.task,
        "model": module.model_name,
        "method": hparams.method,
        "w_bits": hparams.w_bits,
        "a_bits": hparams.a_bits,
        "recon_iters": hparams.recon_iters,
        "dc_iters": hparams.dc_iters,
        "lambda_r": hparams.lambda_r,
        "p": module.p,
        "calib_size": hparams.calib_size,
        "calib_size_used": module.calibration_size,
        "seed": hparams.seed,
        "fp_accuracy": round(100 * metrics["test/fp_acc"], 3),
        "quant_accuracy": round(100 * metrics["test/quant_acc"], 3),
        "accuracy_drop": round(100 * (metrics["test/fp_acc"] - metrics["test/quant_acc"]), 3),
        "agreement": round(100 * metrics["test/agreement"], 3),
        "test_touches": len(datamodule.test_dataloader().dataset),
        "seconds": round(seconds, 1),
        "checkpoint": hparams.checkpoint,
    }
    save_quantized(run_dir / CHECKPOINT_FILE, module, results)
    write_new(run_dir / RESULTS_FILE, json.dumps(results, indent=2).encode())
    return results
