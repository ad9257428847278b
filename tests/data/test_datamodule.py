"""Datamodule: tasks, folders, batches, calibration sets and bad folders."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from fingerquant.data import CapFingerIdDataModule, process_folder
from fingerquant.errors import DataError
from tests.recordings import blob_frame, frame_line, write_recording


def make(task: str, data_dir: Path, **options) -> CapFingerIdDataModule:
    datamodule = CapFingerIdDataModule(task=task, data_dir=str(data_dir), download=False, **options)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


@pytest.mark.parametrize(("task", "classes"), [("thumbs", 2), ("fingers", 10)])
def test_batches_and_classes(recordings_dir: Path, task: str, classes: int) -> None:
    datamodule = make(task, recordings_dir, batch_size=8)
    x, y = next(iter(datamodule.train_dataloader()))

    assert datamodule.num_classes == classes
    assert len(datamodule.class_names) == classes
    assert x.shape == (8, 1, 8, 8)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert x.min() >= 0.0
    assert x.max() <= 1.0
    assert int(y.max()) < classes


def test_num_classes_known_before_setup() -> None:
    datamodule = CapFingerIdDataModule(task="fingers", data_dir="/nonexistent")

    assert datamodule.num_classes == 10
    assert datamodule.class_names[0] == "left thumb"


def test_thumbs_task_keeps_only_thumbs(recordings_dir: Path) -> None:
    datamodule = make("thumbs", recordings_dir)
    sizes = sum(len(datamodule._datasets[stage]) for stage in ("train", "val", "test"))

    assert sizes == 6 * 2 * 12


def test_data_dir_from_environment(recordings_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINGERQUANT_DATA", str(recordings_dir))

    assert CapFingerIdDataModule().data_dir == str(recordings_dir)


def test_same_seed_same_batches(recordings_dir: Path) -> None:
    first = next(iter(make("fingers", recordings_dir, split_seed=4).train_dataloader()))
    second = next(iter(make("fingers", recordings_dir, split_seed=4).train_dataloader()))

    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])


def test_drop_repeats(tmp_path: Path) -> None:
    frame = blob_frame()
    for participant in (1, 2, 3):
        for hand in ("left", "right"):
            lines = [frame_line(frame, participant, hand, "thumb")] * 3
            lines.append(frame_line(blob_frame(top=9), participant, hand, "thumb"))
            write_recording(tmp_path, participant, "thumb", hand, lines)
    touches = process_folder(tmp_path, workers=1)
    kept = make("thumbs", tmp_path, drop_repeats=True)

    assert touches.repeat.sum() == 12
    assert sum(len(kept._datasets[s]) for s in ("train", "val", "test")) == 12


def test_calibration_set_seeded(recordings_dir: Path) -> None:
    datamodule = make("fingers", recordings_dir)
    first = datamodule.calibration_set(64, seed=1)

    assert first.shape == (64, 1, 8, 8)
    assert torch.equal(first, datamodule.calibration_set(64, seed=1))
    assert not torch.equal(first, datamodule.calibration_set(64, seed=2))


def test_calibration_set_larger_than_split(
    recordings_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    datamodule = make("thumbs", recordings_dir)
    with caplog.at_level(logging.WARNING, logger="fingerquant"):
        images = datamodule.calibration_set(10_000)

    assert len(images) == len(datamodule._datasets["train"])
    assert "10000 requested" in caplog.text


def test_test_dir_used_whole(recordings_dir: Path, tmp_path: Path) -> None:
    for hand in ("left", "right"):
        write_recording(
            tmp_path, 9, "thumb", hand, [frame_line(blob_frame(), 9, hand, "thumb")] * 2
        )
    datamodule = CapFingerIdDataModule(
        task="thumbs", data_dir=str(recordings_dir), test_dir=str(tmp_path)
    )
    datamodule.setup("test")

    assert len(datamodule.test_dataloader().dataset) == 4


def test_participant_split_logged(recordings_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fingerquant"):
        make("fingers", recordings_dir)

    assert "test: 120 touches from P" in caplog.text


def test_empty_folder_without_download(tmp_path: Path) -> None:
    datamodule = CapFingerIdDataModule(data_dir=str(tmp_path), download=False)

    with pytest.raises(DataError, match=f"No recordings in {tmp_path}. Copy the data/ folder"):
        datamodule.prepare_data()


def test_folder_without_recordings(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a recording")

    with pytest.raises(DataError, match=r"No recordings in .*CapMatrix_P<participant>"):
        process_folder(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Data folder not found: .*missing"):
        process_folder(tmp_path / "missing")


def test_file_name_off_pattern(tmp_path: Path) -> None:
    (tmp_path / "CapMatrix_P1_pinky_left.txt").write_text("")

    with pytest.raises(DataError, match=r"pinky_left.txt: invalid recording file name"):
        process_folder(tmp_path)


def test_folder_without_task_touches(tmp_path: Path) -> None:
    write_recording(tmp_path, 1, "index", "left", [frame_line(blob_frame(), 1, "left", "index")])

    with pytest.raises(DataError, match="No thumbs touches in"):
        make("thumbs", tmp_path)


def test_invalid_task() -> None:
    with pytest.raises(ValueError, match="Invalid task 'toes'"):
        CapFingerIdDataModule(task="toes")


def test_recordings_in_data_subfolder(recordings_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to(recordings_dir)

    assert np.array_equal(
        process_folder(tmp_path, workers=1).images, process_folder(recordings_dir).images
    )


def test_file_name_disagreeing_with_lines_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_recording(tmp_path, 1, "thumb", "right", [frame_line(blob_frame(), 1, "left", "index")])

    with caplog.at_level(logging.WARNING, logger="fingerquant"):
        touches = process_folder(tmp_path, workers=1)
    assert "1 touches are labelled P1 left index" in caplog.text
    assert touches.finger.tolist() == [1]


def test_no_recordings_lists_ignored_files(tmp_path: Path) -> None:
    (tmp_path / "Capmatrix_P10_index.txt.gz").write_text("")

    with pytest.raises(DataError, match=r"ignored: Capmatrix_P10_index.txt.gz"):
        process_folder(tmp_path)
