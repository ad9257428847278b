"""Command line of the export package.

    python -m fingerquant.export CHECKPOINT OUT.onnx
    python -m fingerquant.export verify MODEL.onnx CHECKPOINT [--data_dir DIR] [--tolerance T]
    python -m fingerquant.export size CHECKPOINT

The first form writes the ONNX model of a quantized checkpoint (integer graph) or of
a classifier checkpoint (FP32 graph), then lists the ops onnxruntime runs and, for a
quantized checkpoint, the size report. ``verify`` compares an ONNX model with its
checkpoint on the test split and exits with status 1 unless they agree.
"""

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fingerquant.errors import DataError
from fingerquant.export.runtime import integer_op_counts, optimized_op_types
from fingerquant.export.size import SizeReport, size_report
from fingerquant.export.sources import (
    LoadedCheckpoint,
    export_checkpoint,
    fp_network,
    load_checkpoint,
)
from fingerquant.export.verify import CLOSE, DEFAULT_TOLERANCE, ParityReport, verify_parity
from fingerquant.logs import setup_logging
from fingerquant.paths import write_atomically

SUBCOMMANDS = ("verify", "size")

INPUT_ERRORS = (DataError, FileNotFoundError, NotImplementedError, ValueError)

logger = logging.getLogger("fingerquant.export")


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "export"
    arguments = argv[1:] if command in SUBCOMMANDS else argv
    args = _parser(command).parse_args(arguments)

    setup_logging()
    console = Console()
    try:
        if command == "verify":
            report = verify_parity(args.model, args.checkpoint, args.data_dir, args.tolerance)
            render_parity(report, console)
            return 0 if report.passed else 1
        if command == "size":
            render_size(_size_report(load_checkpoint(args.checkpoint)), console)
            return 0
        export(Path(args.checkpoint), Path(args.output), console)
    except INPUT_ERRORS as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 1
    return 0


def export(checkpoint: Path, output: Path, console: Console) -> None:
    """Write the ONNX model of ``checkpoint`` to ``output`` and print what runs in integers."""
    if output.suffix != ".onnx":
        raise ValueError(f"Invalid output {output}: expected a file name ending in .onnx.")
    loaded = load_checkpoint(checkpoint)
    model = export_checkpoint(loaded)
    write_atomically(output, model.SerializeToString())
    console.print(f"Wrote {output} ({model.ByteSize():,} bytes).")

    op_types = optimized_op_types(model)
    integer_ops = integer_op_counts(op_types)
    console.print(
        "onnxruntime runs: " + ", ".join(f"{op} x{n}" for op, n in sorted(op_types.items())),
        soft_wrap=True,
    )
    if integer_ops:
        console.print(
            "Integer products: " + ", ".join(f"{op} x{n}" for op, n in sorted(integer_ops.items())),
            soft_wrap=True,
        )
    if loaded.kind == "quantized":
        render_size(_size_report(loaded), console)


def render_parity(report: ParityReport, console: Console) -> None:
    """Print the parity report as a table and a verdict."""
    table = Table(title=f"ONNX vs PyTorch on {report.touches:,} test touches", show_header=False)
    table.add_row("argmax agreement", f"{report.agreement:.3f} %")
    table.add_row(
        "max logit difference",
        f"{report.max_logit_difference:.3g} ({report.relative_difference:.2g} of max |logit| "
        f"{report.max_abs_logit:.3g})",
    )
    table.add_row(f"touches differing by > {CLOSE:g}", f"{report.touches_not_close:,}")
    table.add_row("ONNX accuracy", f"{report.onnx_accuracy:.2f} %")
    table.add_row("PyTorch accuracy", f"{report.reference_accuracy:.2f} %")
    if report.max_disagreement_margin is not None:
        table.add_row(
            "max top-2 gap of disagreeing touches", f"{report.max_disagreement_margin:.3g}"
        )
    console.print(table)
    if report.passed:
        console.print(f"[green]passed[/green]: tolerance {report.tolerance:g} of max |logit|")
    else:
        console.print(
            f"[red]failed[/red]: expected 100 % agreement and logit differences up to "
            f"{report.tolerance:g} of max |logit|."
        )


def render_size(report: SizeReport, console: Console) -> None:
    """Print file sizes and weight bytes per bit width."""
    table = Table(title="Weights per bit width")
    for column in ("bits", "layers", "weights", "FP32 bytes", "stored bytes", "packed bytes"):
        table.add_column(column, justify="right" if column != "layers" else "left")
    for size in report.bit_widths:
        table.add_row(
            str(size.bits),
            ", ".join(size.layers),
            f"{size.weights:,}",
            f"{size.fp32_bytes:,}",
            f"{size.stored_bytes:,}",
            f"{size.packed_bytes:,}",
        )
    console.print(table)
    console.print(
        f"FP32 ONNX file: {report.fp32_file_bytes:,} bytes. Integer ONNX file: "
        f"{report.quantized_file_bytes:,} bytes ({report.file_ratio:.3f} of FP32). "
        f"Packed weights: {report.packed_weight_bytes:,} bytes "
        f"({report.packed_weight_bytes / report.fp32_weight_bytes:.3f} of FP32 weights).",
        soft_wrap=True,
    )


def _size_report(loaded: LoadedCheckpoint) -> SizeReport:
    """Return the size report of a quantized checkpoint."""
    if loaded.kind != "quantized":
        raise DataError(
            f"{loaded.path}: a classifier checkpoint has no integer weights to report. Pass a "
            "quantized checkpoint (quantized.pt from quantize.py)."
        )
    return size_report(
        loaded.model, fp_network(loaded), loaded.model_name, loaded.task, loaded.class_names
    )


def _parser(command: str) -> argparse.ArgumentParser:
    """Return the argument parser of ``command``: export, verify or size."""
    program = "python -m fingerquant.export"
    if command == "verify":
        parser = argparse.ArgumentParser(
            prog=f"{program} verify",
            description="Compare an ONNX model with its checkpoint on the test split. Exits "
            "with status 1 unless every prediction agrees and no logit differs by more than "
            "the tolerance.",
        )
        parser.add_argument("model", help="ONNX model written by python -m fingerquant.export.")
        parser.add_argument("checkpoint", help="Checkpoint it was exported from.")
        parser.add_argument(
            "--data_dir",
            default=None,
            help="Folder of recordings (default: $FINGERQUANT_DATA, else data/capfingerid).",
        )
        parser.add_argument(
            "--tolerance",
            type=float,
            default=DEFAULT_TOLERANCE,
            help="Largest allowed logit difference, as a fraction of the checkpoint's largest "
            f"logit magnitude on the split (default: {DEFAULT_TOLERANCE}).",
        )
        return parser
    if command == "size":
        parser = argparse.ArgumentParser(
            prog=f"{program} size",
            description="Print FP32 and integer ONNX file sizes and weight bytes per bit width.",
        )
        parser.add_argument("checkpoint", help="Quantized checkpoint (quantized.pt).")
        return parser
    parser = argparse.ArgumentParser(
        prog=program,
        description="Export a checkpoint to ONNX: a quantized checkpoint becomes an integer "
        "graph, a classifier checkpoint an FP32 graph. Subcommands: verify, size "
        f"(see {program} verify --help).",
    )
    parser.add_argument("checkpoint", help="quantized.pt from quantize.py or .ckpt from train.py.")
    parser.add_argument("output", help="ONNX file to write (.onnx).")
    return parser


if __name__ == "__main__":
    sys.exit(main())
