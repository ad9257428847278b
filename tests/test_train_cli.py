"""train.py end to end on a small synthetic recordings folder."""

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import train
from fingerquant.classifier import Classifier
from fingerquant.data import CapFingerIdDataModule
from tests.recordings import blob_frame, frame_line, write_recording

REPO = Path(__file__).resolve().parents[1]
THUMBS_CONFIG = str(REPO / "configs" / "thumbs" / "model1.yaml")
FINGERS_CONFIG = str(REPO / "configs" / "fingers" / "model1.yaml")


def _options(config: str, data_dir: Path, runs: Path, *extra: str) -> list[str]:
    """Return the options of a quick run of ``config`` on ``data_dir``, logging under ``runs``."""
    return [
        "--config",
        config,
        "--data.data_dir",
        str(data_dir),
        "--trainer.max_epochs",
        "1",
        "--trainer.logger.init_args.save_dir",
        str(runs),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        *extra,
    ]


def _best_checkpoint(runs: Path, task: str) -> Path:
    checkpoints = sorted(runs.glob(f"{task}/model1/version_*/checkpoints/best-*.ckpt"))
    assert len(checkpoints) == 1, f"expected one best checkpoint under {runs}, found {checkpoints}"
    return checkpoints[0]


@pytest.fixture(autouse=True)
def program_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide pytest's own arguments from LightningCLI, which warns when it receives both."""
    monkeypatch.setattr(sys, "argv", ["train.py"])


@pytest.fixture(scope="module")
def thumbs_run(recordings_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fit Model 1 on the thumbs task for one epoch; return the runs folder."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINGERQUANT_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.setattr(sys, "argv", ["train.py"])
        assert train.main(["fit", *_options(THUMBS_CONFIG, recordings_dir, runs)]) == 0
    return runs


def test_fit_writes_checkpoint_and_config(thumbs_run: Path) -> None:
    checkpoint = _best_checkpoint(thumbs_run, "thumbs")
    assert (checkpoint.parents[1] / "config.yaml").is_file()
    assert list(checkpoint.parents[1].glob("events.out.tfevents.*"))

    classifier = Classifier.load_from_checkpoint(checkpoint)
    assert classifier.hparams.task == "thumbs"
    assert classifier.hparams.num_classes == 2
    assert classifier.hparams.class_names == ["left thumb", "right thumb"]


def test_test_on_checkpoint(thumbs_run: Path, recordings_dir: Path, tmp_path: Path) -> None:
    checkpoint = str(_best_checkpoint(thumbs_run, "thumbs"))
    options = _options(THUMBS_CONFIG, recordings_dir, tmp_path, "--ckpt_path", checkpoint)
    assert train.main(["test", *options]) == 0


def test_test_dir_is_all_test_data(thumbs_run: Path, recordings_dir: Path, tmp_path: Path) -> None:
    """predict with --data.test_dir covers every thumb touch of the folder."""
    checkpoint = str(_best_checkpoint(thumbs_run, "thumbs"))
    options = _options(THUMBS_CONFIG, recordings_dir, tmp_path, "--ckpt_path", checkpoint)
    options += ["--data.test_dir", str(recordings_dir)]
    assert train.main(["predict", *options]) == 0

    datamodule = CapFingerIdDataModule(task="thumbs", data_dir=str(recordings_dir))
    datamodule.setup("fit")
    split = datamodule.split
    assert split is not None
    touches = len(split.train) + len(split.val) + len(split.test)

    (predictions,) = tmp_path.glob("thumbs/model1/version_*/predictions.csv")
    with predictions.open() as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["predicted", "p(left thumb)", "p(right thumb)"]
    assert len(rows) - 1 == touches


def test_wrong_checkpoint_task(
    thumbs_run: Path, recordings_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = str(_best_checkpoint(thumbs_run, "thumbs"))
    options = _options(FINGERS_CONFIG, recordings_dir, tmp_path, "--ckpt_path", checkpoint)
    assert train.main(["test", *options]) == 1
    error = capsys.readouterr().err
    assert "task 'thumbs' in the checkpoint, 'fingers' in the model" in error
    assert "num_classes 2 in the checkpoint, 10 in the model" in error


def test_missing_checkpoint_file(
    recordings_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.ckpt")
    options = _options(THUMBS_CONFIG, recordings_dir, tmp_path, "--ckpt_path", missing)
    assert train.main(["test", *options]) == 1
    assert "missing.ckpt" in capsys.readouterr().err


def test_unknown_model(
    recordings_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = _options(THUMBS_CONFIG, recordings_dir, tmp_path, "--model.model", "resnet")
    assert train.main(["fit", *options]) == 1
    assert "Unknown model 'resnet': expected one of capfingerid" in capsys.readouterr().err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", "--config", str(tmp_path / "missing.yaml")])
    assert exit_info.value.code == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_folder_without_touches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Recordings whose frames contain no blob above the touch threshold."""
    folder = tmp_path / "recordings"
    faint = blob_frame(value=10)
    for participant in (1, 2, 3):
        for hand in ("left", "right"):
            lines = [frame_line(faint, participant, hand, "thumb", nanoseconds=i) for i in range(5)]
            write_recording(folder, participant, "thumb", hand, lines)

    assert train.main(["fit", *_options(THUMBS_CONFIG, folder, tmp_path / "runs")]) == 1
    assert "No thumbs touches" in capsys.readouterr().err


def test_error_has_no_traceback(recordings_dir: Path, tmp_path: Path) -> None:
    options = _options(THUMBS_CONFIG, recordings_dir, tmp_path, "--model.model", "resnet")
    result = subprocess.run(
        [sys.executable, "train.py", "fit", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: error: Unknown model")


def test_ddp_two_processes(recordings_dir: Path, tmp_path: Path) -> None:
    """One epoch under DDP with two CPU processes (gloo), then load the checkpoint."""
    options = _options(THUMBS_CONFIG, recordings_dir, tmp_path)
    options += ["--trainer.strategy", "ddp", "--trainer.accelerator", "cpu"]
    options += ["--trainer.devices", "2"]
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "train.py", "fit", *options],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MEMBER: 2/2" in result.stderr, "Lightning did not start a second process"

    classifier = Classifier.load_from_checkpoint(_best_checkpoint(tmp_path, "thumbs"))
    assert classifier.hparams.num_classes == 2
    for name, parameter in classifier.named_parameters():
        assert np.isfinite(parameter.detach().numpy()).all(), f"{name} is not finite"


def test_exported_checkpoint(thumbs_run: Path, recordings_dir: Path, tmp_path: Path) -> None:
    """scripts/export_checkpoints.py drops the optimizer state and keeps the model usable."""
    spec = importlib.util.spec_from_file_location(
        "export_checkpoints", REPO / "scripts" / "export_checkpoints.py"
    )
    assert spec is not None and spec.loader is not None
    export_checkpoints = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_checkpoints)

    exported = export_checkpoints.export(_best_checkpoint(thumbs_run, "thumbs"), tmp_path / "out")
    assert exported == tmp_path / "out" / "thumbs" / "model1.ckpt"
    assert not list(exported.parent.glob("*.tmp")), "temporary file left behind"

    checkpoint = torch.load(exported, weights_only=True)
    assert "optimizer_states" not in checkpoint
    assert "lr_schedulers" not in checkpoint
    assert checkpoint["fingerquant"]["format_version"] == 1
    assert "model: model1" in checkpoint["fingerquant"]["config"]

    options = _options(THUMBS_CONFIG, recordings_dir, tmp_path, "--ckpt_path", str(exported))
    assert train.main(["test", *options]) == 0
