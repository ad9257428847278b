"""Inference speed and file size: FP32 ONNX, integer ONNX and PyTorch eager, per architecture.

    python benchmarks/inference.py [--task thumbs] [--runs 2000] [--threads 1]

For each architecture the FP network is the shipped checkpoint
``checkpoints/<task>/<model>.ckpt`` when present, else random weights (speed does
not depend on the values). Its W8A8 and W4A4 versions are quantized with
round-to-nearest weights and activation ranges calibrated on random images, which
gives the same graph as PD-Quant with other numbers. Every model runs on one
thread. Latency is the median time of one ``run`` call on one touch, throughput
is 256 touches per median ``run`` call, both after warm-up calls. The integer
products that onnxruntime keeps in the optimized graph are listed per model.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fingerquant.data.labels import class_names
from fingerquant.export.fp32 import export_fp32
from fingerquant.export.quantized import export_quantized
from fingerquant.export.runtime import create_session, integer_op_counts, optimized_op_types
from fingerquant.models import IMAGE_SIZE, create_model
from fingerquant.quant import ModelQuantConfig, calibrate_activation_ranges, quantize_model
from fingerquant.quant.pdquant import load_classifier

REPO = Path(__file__).resolve().parents[1]
MODELS = ("capfingerid", "model1", "model2")
BIT_WIDTHS = (8, 4)
THROUGHPUT_BATCH = 256
CALIBRATION_TOUCHES = 512
WARMUP_RUNS = 50


def fp_network(model_name: str, task: str, seed: int) -> tuple[torch.nn.Module, str]:
    """Return the shipped FP network of ``model_name``, or random weights, with its source."""
    checkpoint = REPO / "checkpoints" / task / f"{model_name}.ckpt"
    if checkpoint.exists():
        network, _ = load_classifier(str(checkpoint))
        return network.eval(), str(checkpoint.relative_to(REPO))
    torch.manual_seed(seed)
    return create_model(model_name, len(class_names(task))).eval(), "random weights"


def median_seconds(call: Callable[[], object], runs: int) -> float:
    """Return the median wall time of ``call`` over ``runs`` calls after a warm-up."""
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_model(run: Callable[[np.ndarray], object], images: np.ndarray, runs: int) -> tuple:
    """Return (latency in microseconds at batch 1, touches per second at batch 256)."""
    single, batch = images[:1], images[:THROUGHPUT_BATCH]
    latency = median_seconds(lambda: run(single), runs)
    batch_seconds = median_seconds(lambda: run(batch), max(runs // 20, 20))
    return 1e6 * latency, THROUGHPUT_BATCH / batch_seconds


def onnx_runner(session) -> Callable[[np.ndarray], object]:
    """Return a function that runs ``session`` on a batch of images."""
    return lambda batch: session.run(None, {"image": batch})


def benchmark_model(
    model_name: str, args: argparse.Namespace, images: torch.Tensor
) -> tuple[str, list[tuple]]:
    """Time and measure one architecture and return its source and one row per runtime."""
    network, source = fp_network(model_name, args.task, args.seed)
    names = class_names(args.task)
    inputs = images.numpy()
    fp32 = export_fp32(network, model_name, args.task, names)
    rows = []

    def eager(batch: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return network(torch.from_numpy(batch))

    rows.append(("pytorch eager", *time_model(eager, inputs, args.runs), None, ""))
    session = create_session(fp32, threads=args.threads)
    rows.append(
        ("onnx fp32", *time_model(onnx_runner(session), inputs, args.runs), fp32.ByteSize(), "")
    )

    for bits in BIT_WIDTHS:
        quantized = quantize_model(network, ModelQuantConfig(w_bits=bits, a_bits=bits))
        calibrate_activation_ranges(quantized, images.split(THROUGHPUT_BATCH))
        model = export_quantized(quantized.eval(), model_name, args.task, names)
        session = create_session(model, threads=args.threads)
        timing = time_model(onnx_runner(session), inputs, args.runs)
        integer_ops = integer_op_counts(optimized_op_types(model))
        described = ", ".join(f"{op} x{count}" for op, count in sorted(integer_ops.items()))
        rows.append((f"onnx int w{bits}a{bits}", *timing, model.ByteSize(), described))
    return source, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="thumbs", choices=["thumbs", "fingers"])
    parser.add_argument("--runs", type=int, default=2000, help="Timed calls at batch 1.")
    parser.add_argument("--threads", type=int, default=1, help="Threads of every runtime.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(args.seed)
    images = torch.rand(CALIBRATION_TOUCHES, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)

    print(
        f"{'model':<12} {'runtime':<16} {'latency us':>11} {'touches/s':>10} "
        f"{'file bytes':>11} {'of FP32':>8}  integer ops"
    )
    for model_name in MODELS:
        source, rows = benchmark_model(model_name, args, images)
        fp32_bytes = next(size for runtime, *_, size, _ in rows if runtime == "onnx fp32")
        print(f"{model_name} ({source})")
        for runtime, latency, throughput, size, described in rows:
            size_text = "" if size is None else f"{size:,}"
            ratio = "" if size is None else f"{size / fp32_bytes:.3f}"
            print(
                f"{'':<12} {runtime:<16} {latency:>11.1f} {throughput:>10,.0f} "
                f"{size_text:>11} {ratio:>8}  {described}"
            )


if __name__ == "__main__":
    main()
