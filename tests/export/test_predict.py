"""predict: one CSV row per touch of a raw recording, skipped lines and frames counted."""

import csv
import io
from pathlib import Path

import numpy as np
import onnx
import pytest

from fingerquant.export.sources import export_checkpoint, load_checkpoint
from fingerquant.predict import main
from tests.recordings import blob_frame, class_blob, frame_line, write_recording

SECONDS = 1509978808


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Write a right-index recording: 5 touches, then a dirty line, two blobs, an empty
    frame and a PAUSE frame, so lines 1-5 and 10 are touches."""
    rng = np.random.default_rng(0)
    labels = {"participant": 9, "hand": "right", "finger": "index", "seconds": SECONDS}
    touch_lines = [
        frame_line(class_blob(1, 1, rng), **labels, nanoseconds=index) for index in range(5)
    ]
    dirty = frame_line(blob_frame(), **labels, nanoseconds=5).replace(",120,", ",,", 1)
    two_blobs = blob_frame(top=2, left=2) + blob_frame(top=18, left=9) - blob_frame(value=0)
    lines = [
        *touch_lines,
        dirty,
        frame_line(two_blobs, **labels, nanoseconds=6),
        frame_line(np.zeros((27, 15)), **labels, nanoseconds=7),
        frame_line(blob_frame(), task="PAUSE", **labels, nanoseconds=8),
        frame_line(class_blob(1, 1, rng), **labels, nanoseconds=9),
    ]
    return write_recording(tmp_path, 9, "index", "right", lines, compress=False)


@pytest.fixture
def onnx_model(quantized_checkpoint: Path, tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    onnx.save(export_checkpoint(load_checkpoint(quantized_checkpoint)), path)
    return path


def read_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_predict_writes_rows_and_counts_skips(
    recording: Path, onnx_model: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "touches.csv"

    status = main([str(recording), "--model", str(onnx_model), "--output", str(output)])

    summary = capsys.readouterr().out
    rows = read_rows(output.read_text())
    assert status == 0
    assert [int(row["line"]) for row in rows] == [1, 2, 3, 4, 5, 10]
    assert [int(row["timestamp_ns"]) for row in rows] == [
        SECONDS * 1_000_000_000 + nanoseconds for nanoseconds in (0, 1, 2, 3, 4, 9)
    ]
    assert {row["file"] for row in rows} == {str(recording)}
    assert all(0.0 < float(row["probability"]) <= 1.0 for row in rows)
    assert "Skipped lines: 1 (1 empty cell)" in summary
    assert "Skipped frames: 2 (1 no blob, 1 several blobs)" in summary
    assert "PAUSE frames dropped: 1" in summary
    assert "right index" in summary


def test_predict_same_rows_from_onnx_and_checkpoint(
    recording: Path, onnx_model: Path, quantized_checkpoint: Path, capsys
) -> None:
    """Without --output the CSV goes to standard output and the summary to standard error."""
    assert main([str(recording), "--model", str(onnx_model)]) == 0
    from_onnx = capsys.readouterr()
    assert main([str(recording), "--model", str(quantized_checkpoint)]) == 0
    from_checkpoint = capsys.readouterr()

    onnx_rows, checkpoint_rows = read_rows(from_onnx.out), read_rows(from_checkpoint.out)
    assert len(onnx_rows) == 6
    assert [row["predicted"] for row in onnx_rows] == [row["predicted"] for row in checkpoint_rows]
    for onnx_row, checkpoint_row in zip(onnx_rows, checkpoint_rows, strict=True):
        assert float(onnx_row["probability"]) == pytest.approx(
            float(checkpoint_row["probability"]), abs=1e-5
        )
    assert "touches predicted" in from_onnx.err
