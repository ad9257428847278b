"""Blob extraction: touches, specks, several blobs, edges and oversized blobs."""

import numpy as np
import pytest

from fingerquant.data.blobs import BlobRule, extract_blobs
from tests.recordings import blob_frame


def stack(*frames: np.ndarray) -> np.ndarray:
    return np.stack(frames).astype(np.int32)


def test_single_blob_pasted_top_left_with_border() -> None:
    frame = blob_frame(top=5, left=4, height=3, width=4, value=120)
    blobs = extract_blobs(stack(frame))

    assert blobs.frame_index.tolist() == [0]
    expected = np.zeros((8, 8), np.uint16)
    expected[:5, :6] = np.clip(frame[4:9, 3:9], 0, None)
    assert np.array_equal(blobs.images[0], expected)
    assert blobs.images[0, 1:4, 1:5].min() == 120


def test_negative_cells_clipped_to_zero() -> None:
    frame = blob_frame(top=3, left=2)
    frame[2, 1] = -7
    blobs = extract_blobs(stack(frame))

    assert blobs.images.min() == 0
    assert blobs.images.dtype == np.uint16


def test_blob_at_frame_edge_keeps_inside_border() -> None:
    frame = np.zeros((27, 15), np.int32)
    frame[0:3, 12:15] = 90
    blobs = extract_blobs(stack(frame))

    image = blobs.images[0]
    assert image[:3, 1:4].min() == 90
    assert image[:, 0].sum() == 0
    assert image.sum() == 90 * 9
    assert image[4:].sum() == 0
    assert image[:, 4:].sum() == 0


def test_two_blobs_frame_dropped() -> None:
    frame = blob_frame(top=2, left=2)
    frame[15:18, 8:12] = 100
    blobs = extract_blobs(stack(frame))

    assert len(blobs.images) == 0
    assert blobs.several_blobs == 1


def test_speck_beside_blob_ignored() -> None:
    frame = blob_frame(top=10, left=3, height=3, width=4)
    frame[20, 12] = 200
    frame[20:22, 5] = 200
    blobs = extract_blobs(stack(frame))

    assert blobs.frame_index.tolist() == [0]
    assert blobs.images[0].max() == 120


def test_blob_box_counts_in_either_orientation() -> None:
    tall = np.zeros((27, 15), np.int32)
    tall[4:7, 4:6] = 80
    line = np.zeros((27, 15), np.int32)
    line[4, 4:12] = 80
    blobs = extract_blobs(stack(tall, line))

    assert blobs.frame_index.tolist() == [0]
    assert blobs.no_blob == 1


def test_cells_at_threshold_excluded() -> None:
    frame = blob_frame(value=30)
    blobs = extract_blobs(stack(frame))

    assert blobs.no_blob == 1
    assert len(extract_blobs(stack(frame), BlobRule(threshold=29)).images) == 1


def test_diagonal_cells_not_connected() -> None:
    frame = np.zeros((27, 15), np.int32)
    frame[5:7, 5:8] = 100
    frame[7:9, 8:11] = 100
    blobs = extract_blobs(stack(frame))

    assert blobs.several_blobs == 1


def test_blob_too_large_dropped_and_counted() -> None:
    frame = blob_frame(top=5, left=3, height=7, width=5)
    blobs = extract_blobs(stack(frame, blob_frame()))

    assert blobs.frame_index.tolist() == [1]
    assert blobs.too_large == 1


@pytest.mark.parametrize("height", [6, 7])
def test_largest_fitting_blob(height: int) -> None:
    blobs = extract_blobs(stack(blob_frame(top=5, left=3, height=height, width=6)))

    assert blobs.too_large == (height == 7)


def test_blobs_do_not_join_across_frames() -> None:
    upper = np.zeros((27, 15), np.int32)
    upper[5:7, 4:7] = 100
    lower = np.zeros((27, 15), np.int32)
    lower[5:7, 7:10] = 100
    blobs = extract_blobs(stack(upper, lower))

    assert blobs.frame_index.tolist() == [0, 1]


def test_no_frames() -> None:
    blobs = extract_blobs(np.zeros((0, 27, 15), np.int32))

    assert blobs.images.shape == (0, 8, 8)
