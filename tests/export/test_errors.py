"""Clear one-line errors, without a traceback, for missing or wrong model files."""

from pathlib import Path

import pytest

from fingerquant.export.__main__ import main as export_main
from fingerquant.predict import main as predict_main
from tests.recordings import blob_frame, frame_line, write_recording


def error_line(capsys) -> str:
    """Return standard error, checking that it is one line without a traceback."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.pt"
    path.write_text("not a model\n")
    return path


def test_export_missing_checkpoint(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.ckpt"

    assert export_main([str(missing), str(tmp_path / "out.onnx")]) == 1

    message = error_line(capsys)
    assert f"Model file not found: {missing}" in message
    assert "quantized.pt" in message
    assert not (tmp_path / "out.onnx").exists()


def test_export_wrong_file(text_file: Path, tmp_path: Path, capsys) -> None:
    assert export_main([str(text_file), str(tmp_path / "out.onnx")]) == 1

    message = error_line(capsys)
    assert f"{text_file}: not a PyTorch checkpoint file" in message
    assert "ONNX" not in message
    assert "Expected a quantized checkpoint" in message


def test_export_output_must_be_onnx(quantized_checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert export_main([str(quantized_checkpoint), str(tmp_path / "model.pt")]) == 1

    assert "expected a file name ending in .onnx" in error_line(capsys)


def test_size_rejects_classifier_checkpoint(fingers_checkpoint: Path, capsys) -> None:
    assert export_main(["size", str(fingers_checkpoint)]) == 1

    assert "a classifier checkpoint has no integer weights" in error_line(capsys)


def test_verify_rejects_checkpoint_as_model(
    quantized_checkpoint: Path, fingers_checkpoint: Path, capsys
) -> None:
    assert export_main(["verify", str(fingers_checkpoint), str(quantized_checkpoint)]) == 1

    assert "expected an ONNX model (.onnx) as the first file" in error_line(capsys)


def test_predict_wrong_onnx_file(tmp_path: Path, capsys) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\x00\x01 not a protobuf")
    recording = write_recording(tmp_path, 1, "thumb", "left", [frame_line(blob_frame())])

    assert predict_main([str(recording), "--model", str(fake)]) == 1

    assert f"{fake}: not a readable ONNX model" in error_line(capsys)


def test_predict_missing_model(tmp_path: Path, capsys) -> None:
    recording = write_recording(tmp_path, 1, "thumb", "left", [frame_line(blob_frame())])

    assert predict_main([str(recording), "--model", str(tmp_path / "nothing.onnx")]) == 1

    assert "Model file not found" in error_line(capsys)


def test_predict_missing_recording(quantized_checkpoint: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "CapMatrix_P1_thumb_left.txt"

    assert predict_main([str(missing), "--model", str(quantized_checkpoint)]) == 1

    assert f"Recording not found: {missing}" in error_line(capsys)
