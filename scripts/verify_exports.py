"""Export, verify and measure the quantized models of a sweep; write a Markdown table.

    python scripts/verify_exports.py [--sweep runs/sweeps/main] [--output docs/export_results.md]

For every finished PD-Quant cell at W8A8 or W4A4, writes ``model.onnx`` beside its
``quantized.pt``, runs the parity check on the test split, and reports the file
sizes. The table is the README's deployment evidence; every figure in it comes
from this script.
"""

import argparse
import json
import logging
from pathlib import Path

from fingerquant.export.size import size_report
from fingerquant.export.sources import export_checkpoint, fp_network, load_checkpoint
from fingerquant.export.verify import verify_parity
from fingerquant.paths import write_atomically

BITS = ((8, 8), (4, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="runs/sweeps/main")
    parser.add_argument("--output", default="docs/export_results.md")
    args = parser.parse_args()
    logging.getLogger("fingerquant").setLevel(logging.WARNING)

    rows = [
        "| task | model | bits | agreement % | max logit diff | ONNX acc % | PyTorch acc % "
        "| FP32 file B | int file B | file ratio | packed weights B | FP32 weights B | verify |",
        "|" + "---|" * 13,
    ]
    for results_path in sorted(Path(args.sweep).glob("*/results.json")):
        results = json.loads(results_path.read_text())
        if results["method"] != "pdquant" or (results["w_bits"], results["a_bits"]) not in BITS:
            continue
        checkpoint = results_path.parent / "quantized.pt"
        onnx_path = results_path.parent / "model.onnx"
        loaded = load_checkpoint(checkpoint)
        write_atomically(onnx_path, export_checkpoint(loaded).SerializeToString())
        parity = verify_parity(onnx_path, checkpoint)
        size = size_report(
            loaded.model, fp_network(loaded), loaded.model_name, loaded.task, loaded.class_names
        )
        rows.append(
            f"| {results['task']} | {results['model']} | W{results['w_bits']}A{results['a_bits']} "
            f"| {parity.agreement:.2f} | {parity.max_logit_difference:.2g} "
            f"| {parity.onnx_accuracy:.2f} | {parity.reference_accuracy:.2f} "
            f"| {size.fp32_file_bytes:,} | {size.quantized_file_bytes:,} | {size.file_ratio:.3f} "
            f"| {size.packed_weight_bytes:,} | {size.fp32_weight_bytes:,} "
            f"| {'pass' if parity.passed else 'FAIL'} |"
        )
        print(rows[-1], flush=True)
    write_atomically(Path(args.output), ("\n".join(rows) + "\n").encode())
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
