"""Touch blob extraction: 27 x 15 capacitive frames to 8 x 8 blob images.

The rules follow the CapFingerId study. Cells above ``threshold`` form blobs by
4-connectivity. A blob whose bounding box is smaller than 2 x 3 cells (in either
orientation) is a speck and does not count. A frame is a touch when exactly one
blob counts. The blob's bounding box, grown by a one-cell border (clipped at the
frame's edge), is cropped from the frame and pasted at the top-left of an empty
8 x 8 image, which makes the model independent of where the finger landed.

Every step runs on all frames at once: connected components are labelled over
the (N, 27, 15) stack with a structuring element that links cells within a
frame only, and bounding boxes come from per-label reductions.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

IMAGE_SIZE = 8

CELL_SCALE = 710.0
"""Divisor from clipped sensor deltas to model inputs: the largest cell in the
CapFingerId recordings, as the upstream study divided by the dataset maximum.
It is fixed, not measured per dataset, so every model gets inputs in the same units."""


@dataclass(frozen=True)
class BlobRule:
    """Parameters of blob extraction; part of the cache key."""

    threshold: int = 30
    """Cells strictly above this value belong to a blob."""
    min_short_side: int = 2
    """Cells the shorter side of a bounding box must span for its blob to count."""
    min_long_side: int = 3
    """Cells the longer side must span: together, a 2 x 3 box in either orientation."""
    border: int = 1
    """Cells added around the bounding box before cropping."""


@dataclass
class Blobs:
    """Result of blob extraction over N frames, of which K are touches."""

    images: np.ndarray
    """(K, 8, 8) uint16 blob images, negative cells clipped to 0, unscaled."""
    frame_index: np.ndarray
    """(K,) int64 index of each touch in the input frames."""
    no_blob: int
    """Frames without a counted blob."""
    several_blobs: int
    """Frames with two or more counted blobs."""
    too_large: int
    """Single-blob frames whose bordered box exceeds 8 x 8."""


_WITHIN_FRAME = np.zeros((3, 3, 3), dtype=bool)
_WITHIN_FRAME[1] = ndimage.generate_binary_structure(2, 1)  # 4-neighbourhood, no link across frames


def extract_blobs(cells: np.ndarray, rule: BlobRule = BlobRule()) -> Blobs:
    """Extract single-touch blob images from (N, rows, cols) frames."""
    count, rows, cols = cells.shape
    labels, label_count = ndimage.label(cells > rule.threshold, structure=_WITHIN_FRAME)

    # Bounding box and frame of every label, from reductions over its cells.
    flat = labels.ravel()
    cell_index = np.flatnonzero(flat)
    cell_label = flat[cell_index] - 1
    frame, row, col = np.unravel_index(cell_index, labels.shape)
    top = _reduce(np.minimum, cell_label, row, label_count, rows)
    bottom = _reduce(np.maximum, cell_label, row, label_count, -1)
    left = _reduce(np.minimum, cell_label, col, label_count, cols)
    right = _reduce(np.maximum, cell_label, col, label_count, -1)
    label_frame = np.zeros(label_count, np.int64)
    label_frame[cell_label] = frame

    box_height, box_width = bottom - top + 1, right - left + 1
    counted = (np.minimum(box_height, box_width) >= rule.min_short_side) & (
        np.maximum(box_height, box_width) >= rule.min_long_side
    )
    blobs_per_frame = np.bincount(label_frame[counted], minlength=count)
    single = np.flatnonzero(counted & (blobs_per_frame[label_frame] == 1))  # labels

    top = np.maximum(top[single] - rule.border, 0)
    left = np.maximum(left[single] - rule.border, 0)
    height = np.minimum(bottom[single] + rule.border, rows - 1) - top + 1
    width = np.minimum(right[single] + rule.border, cols - 1) - left + 1
    fits = (height <= IMAGE_SIZE) & (width <= IMAGE_SIZE)

    frame_index = label_frame[single][fits]
    images = _paste(cells, frame_index, top[fits], left[fits], height[fits], width[fits])
    return Blobs(
        images=images,
        frame_index=frame_index,
        no_blob=int(np.count_nonzero(blobs_per_frame == 0)),
        several_blobs=int(np.count_nonzero(blobs_per_frame > 1)),
        too_large=int(np.count_nonzero(~fits)),
    )


def _reduce(
    ufunc: np.ufunc, index: np.ndarray, values: np.ndarray, size: int, initial: int
) -> np.ndarray:
    """Return ``ufunc`` of ``values`` grouped by ``index`` into ``size`` slots."""
    out = np.full(size, initial, dtype=np.int64)
    ufunc.at(out, index, values)
    return out


def _paste(
    cells: np.ndarray,
    frame_index: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    height: np.ndarray,
    width: np.ndarray,
) -> np.ndarray:
    """Crop each box from its frame and paste it at the top-left of an 8 x 8 zero image."""
    _, rows, cols = cells.shape
    offset = np.arange(IMAGE_SIZE)
    row = top[:, None] + offset  # (K, 8)
    col = left[:, None] + offset  # (K, 8)
    inside = (offset < height[:, None])[:, :, None] & (offset < width[:, None])[:, None, :]

    crops = cells[
        frame_index[:, None, None],
        np.minimum(row, rows - 1)[:, :, None],
        np.minimum(col, cols - 1)[:, None, :],
    ]  # (K, 8, 8)
    return np.where(inside, np.clip(crops, 0, None), 0).astype(np.uint16)
