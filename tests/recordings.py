"""Synthetic recordings in the real CapFingerId line format, for tests."""

import gzip
from pathlib import Path

import numpy as np

from fingerquant.data.labels import FINGERS, HANDS
from fingerquant.data.reader import COLS, ROWS


def blob_frame(
    top: int = 5, left: int = 4, height: int = 3, width: int = 4, value: int = 120
) -> np.ndarray:
    """Return a 27 x 15 frame of small noise with one rectangular blob."""
    frame = np.zeros((ROWS, COLS), np.int64)
    frame[::3, ::2] = -2
    frame[top : top + height, left : left + width] = value
    return frame


def frame_line(
    cells: np.ndarray,
    participant: int = 1,
    hand: str = "right",
    finger: str = "index",
    task: str = "TAP",
    seconds: int = 1509978808,
    nanoseconds: int = 400537627,
) -> str:
    """Return one recording line for ``cells`` (27 x 15), trailing comma included."""
    values = ",".join(str(int(v)) for v in np.asarray(cells).ravel())
    return f"{participant};{hand};{finger};{task};-1;{seconds},{nanoseconds},{values},"


def write_recording(
    folder: Path, participant: int, finger: str, hand: str, lines: list[str], compress: bool = True
) -> Path:
    """Write ``lines`` as ``CapMatrix_P<participant>_<finger>_<hand>.txt[.gz]`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"CapMatrix_P{participant}_{finger}_{hand}.txt"
    text = ("\n".join(lines) + "\n").encode()
    path = folder / (name + ".gz" if compress else name)
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)
    return path


def class_blob(hand: int, finger: int, rng: np.random.Generator) -> np.ndarray:
    """Return a frame whose blob size and strength depend on the class, so models can learn it."""
    height = 2 + finger % 3
    width = 3 + hand + finger // 3
    top = int(rng.integers(1, ROWS - height - 1))
    left = int(rng.integers(1, COLS - width - 1))
    value = 60 + 25 * finger + 40 * hand + int(rng.integers(0, 10))
    return blob_frame(top, left, height, width, value)


def write_dataset(folder: Path, participants: int = 6, touches: int = 12, seed: int = 0) -> Path:
    """Write recordings of every finger of both hands for ``participants`` people.

    Each file contains ``touches`` single-blob frames, one PAUSE frame and one empty frame.
    """
    rng = np.random.default_rng(seed)
    for participant in range(1, participants + 1):
        for hand_index, hand in enumerate(HANDS):
            for finger_index, finger in enumerate(FINGERS):
                labels = {"participant": participant, "hand": hand, "finger": finger}
                lines = [
                    frame_line(class_blob(hand_index, finger_index, rng), **labels, nanoseconds=i)
                    for i in range(touches)
                ]
                lines.append(frame_line(blob_frame(), task="PAUSE", **labels))
                lines.append(frame_line(np.zeros((ROWS, COLS)), **labels))
                write_recording(folder, participant, finger, hand, lines)
    return folder
