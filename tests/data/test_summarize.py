"""Summary command line."""

import json
from pathlib import Path

import pytest

from fingerquant.data.__main__ import main


def test_summary_written_as_json(
    recordings_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "out" / "summary.json"

    assert main(["summarize", str(recordings_dir), "--json", str(output)]) == 0
    summary = json.loads(output.read_text())
    assert summary["files"] == 60
    assert summary["lines"] == 60 * 14
    assert summary["pause_frames"] == 60
    assert summary["frames"] == 60 * 13
    assert summary["touches"] == 60 * 12
    assert summary["per_class"]["right little"] == 6 * 12
    assert summary["per_participant"]["P3"] == 10 * 12
    assert "touches" in capsys.readouterr().out


def test_missing_folder_exits_with_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["summarize", str(tmp_path / "nowhere")]) == 1
    assert "Data folder not found" in capsys.readouterr().out
