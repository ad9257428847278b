"""Raw recordings to 8 x 8 touches: fingerquant against a per-frame implementation.

Times fingerquant's pipeline (no cache) on the whole folder. Then it runs the
pipeline side by side with a per-frame implementation of the upstream method (a
loop over lines, a flood fill per pixel), as published and tightened, on a few
files. It checks that all find the same touches and prints the times and ratios.
Finally it times a cached load.

    python benchmarks/preprocess.py [DATA_DIR] [--files 3]
"""

import argparse
import gzip
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fingerquant.data import find_recordings, load_touches, process_folder
from fingerquant.data.datamodule import default_data_dir

ROWS, COLS, THRESHOLD = 27, 15, 30


def per_frame_touches(path: Path, upstream: bool) -> list[np.ndarray]:
    """Return the 8 x 8 touch images of one file, one line and one pixel at a time.

    With ``upstream`` the per-line work follows the upstream notebook. The cells
    become a NumPy array of strings, empty and ``-`` cells are set to ``0``, and
    the array is cast to int. This conversion runs twice per line, once for the
    image and once for the timestamp column. Blobs are found by a flood fill
    restarted from every cell, with visited cells kept in a list. Without it, a
    tightened loop parses once with ``int`` and floods each blob once. The blob
    rule and crop are fingerquant's in both, so the touches can be compared.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    images = []
    with opener(path, "rt", errors="replace") as lines:
        for line in lines:
            fields = line.rstrip("\n").split(";")
            if len(fields) != 6 or fields[3] == "PAUSE":
                continue
            cells = fields[5].split(",")
            if len(cells) != 408:
                continue
            try:
                if upstream:
                    frame = _upstream_matrix(cells)
                    _upstream_matrix(cells)
                else:
                    frame = np.array([int(cell) for cell in cells[2:407]]).reshape(ROWS, COLS)
            except ValueError:
                continue
            boxes = _upstream_boxes(frame) if upstream else _tight_boxes(frame)
            image = _crop(frame, boxes)
            if image is not None:
                images.append(image)
    return images


def _upstream_matrix(cells: list[str]) -> np.ndarray:
    """Convert the cells of one line as the upstream notebook does."""
    matrix = np.array(cells[2:407]).reshape(ROWS, COLS)
    matrix[matrix == ""] = "0"
    matrix[matrix == "-"] = "0"
    return matrix.astype(int)


def _flood(frame: np.ndarray, row: int, col: int, found: list[tuple[int, int]]) -> None:
    """Add the cells above the threshold connected to (row, col) to ``found``."""
    if (
        0 <= row < ROWS
        and 0 <= col < COLS
        and frame[row][col] > THRESHOLD
        and (row, col) not in found
    ):
        found.append((row, col))
        for d_row, d_col in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            _flood(frame, row + d_row, col + d_col, found)


def _upstream_boxes(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Return the counted blob boxes, flooding from every cell."""
    boxes = []
    for row in range(ROWS):
        for col in range(COLS):
            found: list[tuple[int, int]] = []
            _flood(frame, row, col, found)
            if found:
                box = _box(found)
                if box not in boxes and _counts(box):
                    boxes.append(box)
    return boxes


def _tight_boxes(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Return the counted blob boxes, flooding each blob once."""
    cells = frame.tolist()
    seen = [[False] * COLS for _ in range(ROWS)]
    boxes = []
    for row in range(ROWS):
        for col in range(COLS):
            if seen[row][col] or cells[row][col] <= THRESHOLD:
                continue
            seen[row][col] = True
            stack, found = [(row, col)], []
            while stack:
                r, c = stack.pop()
                found.append((r, c))
                for nr, nc in ((r, c + 1), (r, c - 1), (r + 1, c), (r - 1, c)):
                    if (
                        0 <= nr < ROWS
                        and 0 <= nc < COLS
                        and not seen[nr][nc]
                        and cells[nr][nc] > THRESHOLD
                    ):
                        seen[nr][nc] = True
                        stack.append((nr, nc))
            box = _box(found)
            if _counts(box):
                boxes.append(box)
    return boxes


def _box(found: list[tuple[int, int]]) -> tuple[int, int, int, int]:
    rows = [r for r, _ in found]
    cols = [c for _, c in found]
    return min(rows), max(rows), min(cols), max(cols)


def _counts(box: tuple[int, int, int, int]) -> bool:
    height, width = box[1] - box[0] + 1, box[3] - box[2] + 1
    return min(height, width) >= 2 and max(height, width) >= 3


def _crop(frame: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray | None:
    """Return the bordered crop of the only blob, or None."""
    if len(boxes) != 1:
        return None
    top, bottom, left, right = boxes[0]
    top, left = max(top - 1, 0), max(left - 1, 0)
    bottom, right = min(bottom + 1, ROWS - 1), min(right + 1, COLS - 1)
    if bottom - top + 1 > 8 or right - left + 1 > 8:
        return None
    image = np.zeros((8, 8), np.uint16)
    image[: bottom - top + 1, : right - left + 1] = np.clip(
        frame[top : bottom + 1, left : right + 1], 0, None
    )
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=default_data_dir())
    parser.add_argument("--files", type=int, default=3, help="Files for the side-by-side run.")
    args = parser.parse_args()
    logging.getLogger("fingerquant").setLevel(logging.ERROR)

    start = time.perf_counter()
    touches = process_folder(args.data_dir)
    whole = time.perf_counter() - start
    print(
        f"fingerquant, whole folder, no cache: {whole:.2f} s for "
        f"{touches.counts['lines']:,} lines, "
        f"{len(touches.images):,} touches ({os.cpu_count()} CPUs)"
    )

    with tempfile.TemporaryDirectory() as sample:
        for path in find_recordings(args.data_dir)[: args.files]:
            os.symlink(path.resolve(), Path(sample) / path.name)

        start = time.perf_counter()
        ours = process_folder(sample)
        fast = time.perf_counter() - start

        files = sorted(Path(sample).iterdir())
        print(
            f"side by side on {len(files)} files ({ours.counts['lines']:,} lines): "
            f"fingerquant {fast:.3f} s"
        )
        for name, upstream in (("upstream per-frame", True), ("tightened per-frame", False)):
            start = time.perf_counter()
            plain = [image for path in files for image in per_frame_touches(path, upstream)]
            slow = time.perf_counter() - start
            same = len(plain) == len(ours.images) and np.array_equal(np.stack(plain), ours.images)
            print(f"  {name}: {slow:.2f} s, ratio {slow / fast:.0f}x, same touches: {same}")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["FINGERQUANT_CACHE"] = cache
        load_touches(args.data_dir)
        start = time.perf_counter()
        load_touches(args.data_dir)
        print(f"cached load: {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
