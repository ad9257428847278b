"""Sweep runner: tables, resuming, failed and interrupted cells."""

import json
from pathlib import Path

import pytest
import yaml

from fingerquant.sweep import runner
from fingerquant.sweep.__main__ import main
from fingerquant.sweep.config import load_sweep


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
