"""Predict the finger of every touch in raw CapFingerId recordings.

    python -m fingerquant.predict RECORDING... --model MODEL [--output touches.csv]

``MODEL`` is an ONNX model from ``python -m fingerquant.export``, a quantized
checkpoint (``quantized.pt``) or a classifier checkpoint (``.ckpt``). Each recording
goes through the training pipeline: malformed lines are skipped and counted, PAUSE
frames are dropped, and frames with exactly one blob become 8 x 8 touch images
divided by ``CELL_SCALE``. Frames without exactly one touch are skipped and counted.

The CSV has one row per touch: file, line, timestamp_ns, predicted class,
probability (softmax of the logits). It goes to ``--output``, written atomically,
or to standard output, in which case the summary goes to standard error. When a
file name follows ``CapMatrix_P<n>_<finger>_<hand>.txt`` and that finger is one of
the model's classes, the summary also shows the file's accuracy.
"""

import argparse
import csv
import io
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torchmetrics.functional.classification import multiclass_accuracy

from fingerquant.data.blobs import CELL_SCALE, extract_blobs
from fingerquant.data.labels import FILE_PATTERN
from fingerquant.data.preprocess import find_recordings
from fingerquant.data.reader import read_recording
from fingerquant.errors import DataError
from fingerquant.export.sources import Predictor, load_predictor
from fingerquant.logs import setup_logging
from fingerquant.paths import write_atomically

CSV_COLUMNS = ("file", "line", "timestamp_ns", "predicted", "probability")


@dataclass
class FilePrediction:
    """The touches of one recording with their predictions, and what was skipped.

    Arrays share their first axis, one entry per touch.

    Attributes:
        path: the recording.
        lines: lines in the file.
        skipped_lines: malformed lines, by reason (see ``fingerquant.data.reader``).
        pause_frames: frames of the PAUSE task, which carry no touch.
        frames: well-formed non-PAUSE frames.
        skipped_frames: frames without exactly one touch, by reason.
        line_numbers: 1-based line of each touch.
        timestamps_ns: timestamp of each touch in nanoseconds.
        predicted: predicted class index of each touch.
        probability: softmax probability of the predicted class.
        true_class: class index named by the file name, or None if it names none.
        accuracy: share of the touches predicted as ``true_class``, in percent, or None
            without a true class or without touches.
    """

    path: Path
    lines: int
    skipped_lines: Counter[str]
    pause_frames: int
    frames: int
    skipped_frames: dict[str, int]
    line_numbers: np.ndarray
    timestamps_ns: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    true_class: int | None = None
    accuracy: float | None = None

    @property
    def touches(self) -> int:
        return len(self.predicted)


def predict_recording(predictor: Predictor, path: Path) -> FilePrediction:
    """Read one recording, extract its touches and predict each one.

    Raises:
        DataError: if the file cannot be read or is not a CapFingerId recording.
    """
    recording = read_recording(path)
    blobs = extract_blobs(recording.cells)
    images = (blobs.images.astype(np.float32) / CELL_SCALE)[:, None]  # (K, 1, 8, 8)
    logits = torch.from_numpy(predictor.logits(images))
    probabilities = torch.softmax(logits.double(), dim=1)
    probability, predicted = probabilities.max(dim=1)

    prediction = FilePrediction(
        path=path,
        lines=recording.line_count,
        skipped_lines=recording.skipped,
        pause_frames=recording.pause_frames,
        frames=len(recording.cells),
        skipped_frames={
            "no blob": blobs.no_blob,
            "several blobs": blobs.several_blobs,
            "blob too large": blobs.too_large,
        },
        line_numbers=recording.line_numbers[blobs.frame_index],
        timestamps_ns=recording.timestamps_ns[blobs.frame_index],
        predicted=predicted.numpy(),
        probability=probability.numpy(),
        true_class=true_class(path, predictor.class_names),
    )
    if prediction.true_class is not None and prediction.touches:
        target = torch.full_like(predicted, prediction.true_class)
        num_classes = len(predictor.class_names)
        accuracy = multiclass_accuracy(predicted, target, num_classes, average="micro")
        prediction.accuracy = 100.0 * float(accuracy)
    return prediction


def true_class(path: Path, class_names: list[str]) -> int | None:
    """Return the class index that the file name ``CapMatrix_P<n>_<finger>_<hand>.txt`` names.

    Returns None when the name does not follow the pattern or its finger is not a class
    of the model, such as an index finger for a thumbs model.
    """
    match = FILE_PATTERN.match(path.name)
    if match is None:
        return None
    name = f"{match['hand']} {match['finger']}"
    return class_names.index(name) if name in class_names else None


def format_csv(predictions: list[FilePrediction], class_names: list[str]) -> str:
    """Return the CSV text: a header and one row per touch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for prediction in predictions:
        for line, timestamp, predicted, probability in zip(
            prediction.line_numbers.tolist(),
            prediction.timestamps_ns.tolist(),
            prediction.predicted.tolist(),
            prediction.probability.tolist(),
            strict=True,
        ):
            writer.writerow(
                (prediction.path, line, timestamp, class_names[predicted], f"{probability:.6f}")
            )
    return buffer.getvalue()


def render_summary(
    predictions: list[FilePrediction], predictor: Predictor, console: Console
) -> None:
    """Print per-file counts and accuracy, then the totals."""
    table = Table(
        title=f"{predictor.model_name} ({predictor.kind}, {predictor.precision}) on "
        f"{len(predictions)} recording(s)"
    )
    # Fold long file names onto several lines rather than cutting them off.
    table.add_column("file", overflow="fold")
    for column in ("touches", "skipped lines", "skipped frames", "true class", "acc %"):
        table.add_column(column, justify="left" if column == "true class" else "right")
    for prediction in predictions:
        true_name = (
            "" if prediction.true_class is None else predictor.class_names[prediction.true_class]
        )
        table.add_row(
            prediction.path.name,
            f"{prediction.touches:,}",
            f"{sum(prediction.skipped_lines.values()):,}",
            f"{sum(prediction.skipped_frames.values()):,}",
            true_name,
            "" if prediction.accuracy is None else f"{prediction.accuracy:.2f}",
        )
    console.print(table)

    skipped_lines = sum((prediction.skipped_lines for prediction in predictions), Counter())
    skipped_frames = Counter()
    for prediction in predictions:
        skipped_frames.update(prediction.skipped_frames)
    touches = sum(prediction.touches for prediction in predictions)
    lines = sum(prediction.lines for prediction in predictions)
    frames = sum(prediction.frames for prediction in predictions)
    console.print(
        f"{touches:,} touches predicted from {lines:,} lines and {frames:,} frames. "
        f"Skipped lines: {_describe(skipped_lines)}. Skipped frames: {_describe(skipped_frames)}. "
        f"PAUSE frames dropped: {sum(prediction.pause_frames for prediction in predictions):,}."
    )


def _describe(counts: Counter[str]) -> str:
    """Return ``"3 (2 empty cell, 1 field count)"``, or ``"0"`` when nothing was counted."""
    total = sum(counts.values())
    if not total:
        return "0"
    reasons = ", ".join(f"{count:,} {reason}" for reason, count in counts.items() if count)
    return f"{total:,} ({reasons})"


def _recording_paths(arguments: list[str]) -> list[Path]:
    """Return the recordings named on the command line, expanding folders.

    Raises:
        DataError: for a path that does not exist or a folder without recordings.
    """
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = find_recordings(path)
            if not found:
                raise DataError(
                    f"No recordings in {path}: expected files named "
                    "CapMatrix_P<participant>_<finger>_<hand>.txt[.gz]."
                )
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise DataError(f"Recording not found: {path}. Pass recording files or folders.")
    return paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fingerquant.predict",
        description="Predict the finger of every touch in raw CapFingerId recordings and "
        "write one CSV row per touch.",
    )
    parser.add_argument(
        "recordings", nargs="+", help="Recording files (.txt or .txt.gz) or folders of them."
    )
    parser.add_argument(
        "--model",
        required=True,
        help="ONNX model, quantized checkpoint (quantized.pt) or classifier checkpoint (.ckpt).",
    )
    parser.add_argument(
        "--output", default=None, help="CSV file to write (default: standard output)."
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    setup_logging()
    torch.set_num_threads(1)
    summary_console = Console(stderr=args.output is None)
    try:
        predictor = load_predictor(args.model)
        predictions = [
            predict_recording(predictor, path) for path in _recording_paths(args.recordings)
        ]
        text = format_csv(predictions, predictor.class_names)
        if args.output is None:
            sys.stdout.write(text)
        else:
            write_atomically(Path(args.output), text.encode())
    except (DataError, OSError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 1
    render_summary(predictions, predictor, summary_console)
    if args.output is not None:
        summary_console.print(f"Predictions written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
