"""Wall time of post-training quantization per model: PD-Quant with the default settings.

    python benchmarks/ptq_time.py [--task thumbs] [--method pdquant] [--bits 4 4]

Runs ``quantize.py`` on each shipped checkpoint ``checkpoints/<task>/<model>.ckpt``
in a temporary run folder and prints the ``seconds`` of its results (both
quantization stages, without loading and evaluation), with the iterations run.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("model1", "model2", "capfingerid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="thumbs", choices=["thumbs", "fingers"])
    parser.add_argument("--method", default="pdquant")
    parser.add_argument("--bits", nargs=2, type=int, default=[4, 4], metavar=("W", "A"))
    args = parser.parse_args()

    print(f"{'model':<12} {'method':<8} {'bits':<6} {'seconds':>8}")
    for model in MODELS:
        config = REPO / "configs" / "quantize" / f"{args.task}_{model}.yaml"
        if not (REPO / "checkpoints" / args.task / f"{model}.ckpt").exists():
            print(f"{model:<12} no checkpoint in checkpoints/{args.task}")
            continue
        with tempfile.TemporaryDirectory() as run_dir:
            command = [
                sys.executable,
                "quantize.py",
                "--config",
                str(config),
                "--model.method",
                args.method,
                "--model.w_bits",
                str(args.bits[0]),
                "--model.a_bits",
                str(args.bits[1]),
                "--run_dir",
                run_dir,
            ]
            completed = subprocess.run(
                command, cwd=REPO, capture_output=True, text=True, check=False
            )
            results_path = Path(run_dir) / "results.json"
            if not results_path.exists():
                print(f"{model:<12} failed: {completed.stderr.strip().splitlines()[-1:]}")
                continue
            results = json.loads(results_path.read_text())
        bits = f"W{args.bits[0]}A{args.bits[1]}"
        print(f"{model:<12} {args.method:<8} {bits:<6} {results['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
