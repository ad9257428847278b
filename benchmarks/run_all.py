"""Run every benchmark and collect its output in docs/benchmarks.md.

    python benchmarks/run_all.py [--data DIR] [--only preprocess train_throughput ...]

Each benchmark runs as its own process. Its printed figures go into the page
verbatim under the command that produced them. The machine's CPU count and the
load average at the start go with them, since other work on the machine changes
the figures.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = {
    "preprocess": ["benchmarks/preprocess.py", "{data}"],
    "train_throughput": ["benchmarks/train_throughput.py"],
    "ptq_time": ["benchmarks/ptq_time.py"],
    "inference": ["benchmarks/inference.py"],
}
TIMEOUT_SECONDS = 1800


def run(name: str, arguments: list[str]) -> str:
    """Run one benchmark; return a Markdown section with its command and output."""
    command = [sys.executable, *arguments]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
        output = completed.stdout.strip() or completed.stderr.strip()[-2000:]
        status = "" if completed.returncode == 0 else f" (exit code {completed.returncode})"
    except subprocess.TimeoutExpired:
        output, status = "", f" (timed out after {TIMEOUT_SECONDS} s)"
    seconds = time.perf_counter() - start
    command_text = " ".join(["python", *arguments])
    return (
        f"## {name}{status}\n\n`{command_text}`, {seconds:.0f} s, "
        f"load average {load:.2f} at the start\n\n"
        f"```\n{output}\n```\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FINGERQUANT_DATA", "data/capfingerid"))
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument("--output", default="docs/benchmarks.md")
    args = parser.parse_args()

    names = args.only or [name for name in BENCHMARKS if (REPO / BENCHMARKS[name][0]).exists()]
    sections = [
        run(name, [part.format(data=args.data) for part in BENCHMARKS[name]]) for name in names
    ]
    header = (
        "# Benchmarks\n\nWritten by `python benchmarks/run_all.py` on a machine with "
        f"{os.cpu_count()} CPUs. Rerun it to refresh every figure.\n\n"
    )
    path = REPO / args.output
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(header + "\n".join(sections))
    os.replace(partial, path)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
