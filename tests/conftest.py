"""Shared fixtures: an isolated cache folder and a small synthetic recordings folder."""

from pathlib import Path

import pytest
import torch

from tests.recordings import write_dataset


@pytest.fixture(scope="session", autouse=True)
def single_thread() -> None:
    """Run PyTorch on one thread: the test tensors are tiny, and OpenMP threads on a busy
    2-core machine make them many times slower."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point the touch cache at a fresh folder so tests never share or touch a user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FINGERQUANT_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def recordings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder of synthetic recordings: 6 participants, 10 fingers, 12 touches each."""
    return write_dataset(tmp_path_factory.mktemp("recordings"))
