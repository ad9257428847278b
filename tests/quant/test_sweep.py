"""Sweep runner: tables, resuming, failed and interrupted cells."""

import json
from pathlib import Path

import pytest
import yaml

from fingerquant.errors import DataError
from fingerquant.sweep import runner
from fingerquant.sweep.__main__ import main
from fingerquant.sweep.config import load_sweep

FAKE_RESULTS = {
    "fp_accuracy": 90.0,
    "quant_accuracy": 89.0,
    "accuracy_drop": 1.0,
    "agreement": 95.0,
    "seconds": 1.0,
}


def write_sweep(folder: Path, checkpoint: Path, data_dir: Path, bits: list) -> Path:
    config = {
        "output": str(folder / "cells"),
        "base": {
            "model.checkpoint": str(checkpoint),
            "data.task": "fingers",
            "data.data_dir": str(data_dir),
            "model.method": "rtn",
            "model.calib_size": 64,
        },
        "grid": {"model.w_bits": bits, "seed_everything": [0]},
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_sweep_resumes_and_records_failures(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path
) -> None:
    sweep = write_sweep(tmp_path, fingers_checkpoint, recordings_dir, [8, 4, 9])
    cells = tmp_path / "cells"

    assert main(["--config", str(sweep)]) == 1
    assert (cells / "8_0" / "results.json").exists()
    assert (cells / "4_0" / "results.json").exists()
    assert "w_bits" in (cells / "9_0" / "error.txt").read_text()
    table = (cells / "results.md").read_text()
    assert "| 8 | 0 |" in table
    assert "failed:" in table
    assert "9,0," in (cells / "results.csv").read_text()

    finished = (cells / "8_0" / "results.json").stat().st_mtime_ns
    (cells / "4_0" / "results.json").unlink()
    sweep = write_sweep(tmp_path, fingers_checkpoint, recordings_dir, [8, 4])
    assert main(["--config", str(sweep), "--jobs", "2"]) == 0
    assert (cells / "8_0" / "results.json").stat().st_mtime_ns == finished
    assert (cells / "4_0" / "results.json").exists()


def test_sweep_options_override_config(
    fingers_checkpoint: Path, recordings_dir: Path, tmp_path: Path
) -> None:
    quantize_config = tmp_path / "quantize.yaml"
    quantize_config.write_text(
        yaml.safe_dump(
            {
                "model": {"checkpoint": str(fingers_checkpoint), "method": "pdquant"},
                "data": {"task": "fingers", "data_dir": str(recordings_dir)},
            }
        )
    )
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "output": str(tmp_path / "cells"),
                "base": {"model.method": "rtn", "model.calib_size": 64},
                "grid": {"config": [str(quantize_config)]},
            }
        )
    )

    assert main(["--config", str(sweep)]) == 0
    results = json.loads((tmp_path / "cells" / "quantize" / "results.json").read_text())
    assert results["method"] == "rtn"
    assert results["calib_size"] == 64


def test_cell_names_and_arguments(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "grid": {
                    "config": ["configs/quantize/thumbs_model1.yaml"],
                    "bits": [{"model.w_bits": 2, "model.a_bits": 4}],
                    "model.method": ["pdquant"],
                }
            },
            sort_keys=False,
        )
    )
    (cell,) = load_sweep(path).cells

    assert cell.name == "thumbs_model1_w_bits=2-a_bits=4_pdquant"
    assert cell.arguments() == [
        "--config",
        "configs/quantize/thumbs_model1.yaml",
        "--model.w_bits",
        "2",
        "--model.a_bits",
        "4",
        "--model.method",
        "pdquant",
    ]


def test_missing_quantize_config_rejected(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"grid": {"config": [str(tmp_path / "absent.yaml")]}}))

    assert main(["--config", str(path)]) == 1


def test_jobs_below_one_rejected(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"grid": {"config": ["configs/quantize/thumbs_model1.yaml"]}}))

    assert main(["--config", str(path), "--jobs", "0"]) == 1
    assert "--jobs must be at least 1" in capsys.readouterr().out


def test_interrupt_cancels_pending_cells(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "sweep.yaml"
    config = {"output": str(tmp_path / "cells"), "grid": {"seed_everything": list(range(6))}}
    path.write_text(yaml.safe_dump(config))
    started = []

    def interrupted_cell(cell, folder: Path) -> None:
        started.append(cell.name)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_cell", interrupted_cell)
    with pytest.raises(KeyboardInterrupt):
        runner.run_sweep(load_sweep(path), jobs=2)
    assert len(started) == 2


def test_interrupted_sweep_writes_tables(tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "sweep.yaml"
    config = {"output": str(tmp_path / "cells"), "grid": {"seed_everything": [0, 1, 2]}}
    path.write_text(yaml.safe_dump(config))

    def cell_then_interrupt(cell, folder: Path) -> None:
        folder.mkdir(parents=True)
        if cell.name == "0":
            (folder / "results.json").write_text(json.dumps(FAKE_RESULTS))
            return
        (folder / "error.txt").write_text("exit code -2\nKeyboardInterrupt")
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_cell", cell_then_interrupt)
    status = main(["--config", str(path)])
    output = capsys.readouterr().out

    assert status == 130
    assert "1 of 3 cells finished, 0 failed, 2 not run" in output
    assert "Run the same command again to resume" in output
    assert not (tmp_path / "cells" / "1" / "error.txt").exists()
    assert "| 1 | not run |" in (tmp_path / "cells" / "results.md").read_text()


def test_dry_run_counts_cells_not_run(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sweep.yaml"
    config = {"output": str(tmp_path / "cells"), "grid": {"seed_everything": [0, 1]}}
    path.write_text(yaml.safe_dump(config))

    assert main(["--config", str(path), "--dry_run"]) == 1
    assert "0 of 2 cells finished, 0 failed, 2 not run" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grid: [unclosed", r"sweep.yaml, line 2, column 1: invalid YAML"),
        ("gird: {seed_everything: [0]}", "unknown keys gird"),
        ("output: runs/x", "expected a non-empty 'grid' mapping"),
        ("- 1", "expected a mapping"),
    ],
)
def test_invalid_sweep_files_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text + "\n")

    with pytest.raises(DataError, match=message):
        load_sweep(path)


def test_sweep_config_folder_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a file"):
        load_sweep(tmp_path)


def test_output_file_rejected(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"grid": {"seed_everything": [0]}}))
    (tmp_path / "taken").write_text("a user's file")

    assert main(["--config", str(path), "--output", str(tmp_path / "taken")]) == 1
    assert "is a file; expected a folder" in capsys.readouterr().out
    assert (tmp_path / "taken").read_text() == "a user's file"


def test_error_summary_keeps_continuation(tmp_path: Path) -> None:
    cell = load_sweep(write_minimal_sweep(tmp_path)).cells[0]
    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / "error.txt").write_text(
        "exit code 2 after 4 s\nusage: quantize.py [-h]\n"
        'error: Parser key "model.method":\n'
        "  Expected a typing.Literal['rtn', 'pdquant']. Got value: foo\n"
    )
    outcome = runner.read_outcome(cell, folder)

    assert outcome.error == (
        'error: Parser key "model.method": '
        "Expected a typing.Literal['rtn', 'pdquant']. Got value: foo"
    )


def write_minimal_sweep(folder: Path) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"grid": {"seed_everything": [0]}}))
    return path
