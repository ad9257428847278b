"""Touch cache: reuse, stale and corrupt caches."""

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from fingerquant.data import cache
from fingerquant.data.cache import load_touches
from tests.recordings import write_dataset


@pytest.fixture
def small_dir(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "recordings", participants=2, touches=3)


def test_second_load_uses_cache(small_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_touches(small_dir)

    def fail(*args, **kwargs):
        raise AssertionError("processed again despite a current cache")

    monkeypatch.setattr(cache, "process_folder", fail)
    second = load_touches(small_dir)
    assert np.array_equal(first.images, second.images)
    assert first.counts == second.counts
    assert first.files == second.files


def test_stale_cache_rebuilt(small_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_touches(small_dir)
    recording = sorted(small_dir.iterdir())[0]
    stat = recording.stat()
    os.utime(recording, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    with caplog.at_level(logging.INFO, logger="fingerquant"):
        load_touches(small_dir)
    assert "stale" in caplog.text


def test_corrupt_cache_rebuilt(
    small_dir: Path, isolated_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = load_touches(small_dir)
    (cache_file,) = isolated_cache.glob("touches-*.npz")
    cache_file.write_bytes(b"not a cache")

    with caplog.at_level(logging.WARNING, logger="fingerquant"):
        rebuilt = load_touches(small_dir)
    assert "unreadable" in caplog.text
    assert np.array_equal(rebuilt.images, expected.images)
