"""Reader for raw CapFingerId recordings, one capacitive frame per line.

A line reads ``participant;hand;finger;task;unused;frame``, where ``frame`` is
``seconds,nanoseconds,`` followed by the 27 x 15 cells in row-major order, each
followed by a comma (408 fields when split on ``,``, the last one empty and ignored).

Malformed lines are skipped and counted by reason, never repaired, so that no
cell can shift. A hand or finger outside the known vocabulary is an error,
because it means the file is not a CapFingerId recording.
"""

import gzip
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fingerquant.data.labels import FINGERS, HANDS
from fingerquant.errors import DataError

ROWS = 27
COLS = 15
FRAME_COMMAS = 2 + ROWS * COLS
"""Commas in a well-formed frame: one after the seconds, the nanoseconds and each cell."""

GESTURES: tuple[str, ...] = ("TAP", "DRAG", "SCROLL", "PAUSE")
PAUSE = GESTURES.index("PAUSE")

SKIP_REASONS: tuple[str, ...] = (
    "field count",
    "empty cell",
    "dash cell",
    "non-integer cell",
    "unknown task",
)
"""Reasons a line is skipped, in the order they are checked."""

_INTEGER = re.compile(rb"-?[0-9]+")
_CELL_BYTES = b"0123456789,-"


@dataclass
class Recording:
    """The well-formed, non-PAUSE frames of one recording file, with their labels.

    Arrays share their first axis N (one entry per kept frame).
    """

    path: str
    line_count: int
    skipped: Counter[str] = field(default_factory=Counter)
    pause_frames: int = 0
    cells: np.ndarray = field(default_factory=lambda: np.zeros((0, ROWS, COLS), np.int32))
    """(N, 27, 15) int32 sensor deltas."""
    timestamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    line_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    """1-based line of each frame in the file."""
    participant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    hand: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    """Index into ``HANDS``."""
    finger: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    """Index into ``FINGERS``."""


def read_bytes(path: Path) -> bytes:
    """Read a plain or gzip-compressed recording, raising ``DataError`` if it is unreadable."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            return gzip.decompress(raw)
        return raw
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read the recording ({error}).") from error


def read_recording(path: str | Path) -> Recording:
    """Parse one recording file into frames, skipping and counting malformed lines."""
    path = Path(path)
    lines = read_bytes(path).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    recording = Recording(path=str(path), line_count=len(lines))

    headers: dict[bytes, tuple[int, int, int, int]] = {}
    frames: list[bytes] = []
    kept: list[tuple[int, int, int, int]] = []
    for number, line in enumerate(lines, start=1):
        head, _, frame = line.rpartition(b";")
        if frame.endswith(b"\r"):
            frame = frame[:-1]
        if head.count(b";") != 4 or frame.count(b",") != FRAME_COMMAS:
            recording.skipped["field count"] += 1
            continue

        labels = headers.get(head)
        if labels is None:
            labels = headers[head] = _parse_header(head, path, number)
        participant, hand, finger, gesture = labels
        if gesture < 0:
            recording.skipped["unknown task"] += 1
            continue
        if gesture == PAUSE:
            recording.pause_frames += 1
            continue

        frames.append(frame)
        kept.append((number, participant, hand, finger))

    frames, kept = _drop_dirty_frames(frames, kept, recording.skipped, _find_suspects(frames))
    try:
        values = _parse_frames(frames)
    except ValueError:
        # A pattern the byte searches do not cover, such as "1-2", so check every cell.
        frames, kept = _drop_dirty_frames(frames, kept, recording.skipped, set(range(len(frames))))
        values = _parse_frames(frames)
    values = values.reshape(len(frames), FRAME_COMMAS)  # (N, 407)
    columns = np.array(kept, dtype=np.int64).reshape(len(kept), 4)

    recording.timestamps_ns = values[:, 0] * 1_000_000_000 + values[:, 1]
    recording.cells = values[:, 2:].astype(np.int32).reshape(-1, ROWS, COLS)
    recording.line_numbers = columns[:, 0].astype(np.int32)
    recording.participant = columns[:, 1].astype(np.int16)
    recording.hand = columns[:, 2].astype(np.int8)
    recording.finger = columns[:, 3].astype(np.int8)
    return recording


def _parse_header(head: bytes, path: Path, number: int) -> tuple[int, int, int, int]:
    """Return (participant, hand, finger, gesture) indices; gesture is -1 when unknown."""
    participant, hand, finger, gesture, _unused = (
        part.decode("ascii", errors="replace").strip() for part in head.split(b";")
    )
    if not participant.isdigit():
        raise DataError(
            f"{path}:{number}: invalid participant {participant!r}: expected a whole number."
        )
    if hand not in HANDS:
        raise DataError(
            f"{path}:{number}: unknown hand {hand!r}: expected one of {', '.join(HANDS)}."
        )
    if finger not in FINGERS:
        raise DataError(
            f"{path}:{number}: unknown finger {finger!r}: expected one of {', '.join(FINGERS)}."
        )
    gesture_index = GESTURES.index(gesture) if gesture in GESTURES else -1
    return int(participant), HANDS.index(hand), FINGERS.index(finger), gesture_index


def _drop_dirty_frames(
    frames: list[bytes],
    kept: list[tuple[int, int, int, int]],
    skipped: Counter[str],
    suspects: set[int],
) -> tuple[list[bytes], list[tuple[int, int, int, int]]]:
    """Remove the suspect frames whose cells are not all integers, counting each by reason."""
    if not suspects:
        return frames, kept

    clean_frames, clean_kept = [], []
    for index, (frame, labels) in enumerate(zip(frames, kept, strict=True)):
        reason = _classify_cells(frame) if index in suspects else None
        if reason is None:
            clean_frames.append(frame[: frame.rfind(b",") + 1])
            clean_kept.append(labels)
        else:
            skipped[reason] += 1
    return clean_frames, clean_kept


def _find_suspects(frames: list[bytes]) -> set[int]:
    """Return the indices of frames that may hold an empty, dash or non-integer cell.

    Byte searches over the joined text find the few suspects at C speed, so that
    only those are split into cells.
    """
    joined = b"".join(frames)
    starts = np.cumsum([0, *map(len, frames)])
    positions: list[int] = []

    for pattern in (b",,", b"-,", b"--"):
        at = joined.find(pattern)
        while at >= 0:
            positions.append(at)
            at = joined.find(pattern, at + 1)
    if joined.translate(None, _CELL_BYTES):
        stray = np.isin(np.frombuffer(joined, np.uint8), list(_CELL_BYTES), invert=True)
        positions.extend(np.flatnonzero(stray).tolist())

    suspects = set((np.searchsorted(starts, positions, side="right") - 1).tolist())
    suspects.update(
        i for i, frame in enumerate(frames) if frame.startswith(b",") or not frame.endswith(b",")
    )
    return suspects


def _classify_cells(frame: bytes) -> str | None:
    """Return the skip reason of the first bad cell in ``frame``, or None if all are integers.

    Bytes after the final comma are not a cell and are ignored: torn reads leave
    junk such as ``]`` there while every cell is intact.
    """
    body = frame[: frame.rfind(b",")]
    for cell in body.split(b","):
        if cell == b"":
            return "empty cell"
        if cell == b"-":
            return "dash cell"
        if not _INTEGER.fullmatch(cell):
            return "non-integer cell"
    return None


def _parse_frames(frames: list[bytes]) -> np.ndarray:
    """Parse the comma-separated integers of clean frames in one C call, (N * 407,) int64."""
    if not frames:
        return np.zeros(0, np.int64)
    text = b"".join(frames)[:-1]
    return np.fromstring(text, dtype=np.int64, sep=",")
