"""Run folders: a lock keeps a second run out, and results are never replaced."""

from pathlib import Path

import pytest

from fingerquant.paths import FILE_MODE, LOCK_FILE, claim_folder, write_atomically, write_new


def test_second_claim_rejected(tmp_path: Path) -> None:
    lock = claim_folder(tmp_path / "run")

    with pytest.raises(FileExistsError, match="in use by another run"):
        claim_folder(tmp_path / "run")
    lock.unlink()
    assert claim_folder(tmp_path / "run").name == LOCK_FILE


def test_results_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_new(path, b"first")

    with pytest.raises(FileExistsError, match="never overwritten"):
        write_new(path, b"second")
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_written_files_follow_umask(tmp_path: Path) -> None:
    write_atomically(tmp_path / "table.md", b"| a |")
    write_new(tmp_path / "results.json", b"{}")

    assert (tmp_path / "table.md").stat().st_mode & 0o777 == FILE_MODE
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == FILE_MODE


def test_rejected_run_leaves_no_folder(fingers_checkpoint: Path, tmp_path: Path) -> None:
    import quantize

    run_dir = tmp_path / "run"
    status = quantize.main(
        [
            "--config",
            "configs/quantize/fingers_model1.yaml",
            "--model.checkpoint",
            str(fingers_checkpoint),
            "--model.w_bits",
            "9",
            "--run_dir",
            str(run_dir),
        ]
    )

    assert status == 1
    assert not run_dir.exists()
