"""Raw recordings folder to touch images: reading, blob extraction and counting.

Files are processed in parallel, one per task, because reading (decompressing
and parsing about 1,000 integers per line) dominates and is independent per file.
"""

import logging
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fingerquant.data.blobs import BlobRule, extract_blobs
from fingerquant.data.labels import EXPECTED_NAME, FILE_PATTERN, FILE_PREFIX, FINGERS, HANDS
from fingerquant.data.reader import read_recording
from fingerquant.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class TouchSet:
    """All single-blob touches of a recordings folder, one entry per touch (K).

    ``images`` contains clipped, unscaled sensor deltas, so the cache stays exact;
    divide by ``CELL_SCALE`` to get model inputs.
    """

    files: list[str]
    """Recording file names; ``file_id`` indexes into this list."""
    images: np.ndarray
    """(K, 8, 8) uint16."""
    participant: np.ndarray
    """(K,) int16 participant number, as in the file (P7 is 7)."""
    hand: np.ndarray
    """(K,) int8 index into ``HANDS``."""
    finger: np.ndarray
    """(K,) int8 index into ``FINGERS``."""
    file_id: np.ndarray
    """(K,) int16."""
    line_number: np.ndarray
    """(K,) int32, 1-based."""
    timestamp_ns: np.ndarray
    """(K,) int64."""
    repeat: np.ndarray
    """(K,) bool: the frame equals the previous kept frame of the same file, cell for cell."""
    counts: dict = field(default_factory=dict)
    """Folder totals: files, lines, skipped by reason and per file, frames, touches and more."""


def find_recordings(data_dir: str | Path) -> list[Path]:
    """List the recording files of ``data_dir``, or of its ``data/`` subfolder, sorted by name.

    The subfolder is where the CapFingerId repository keeps them, so both the
    repository's root and its ``data/`` folder work. Files that do not start with
    ``CapMatrix_`` are ignored. One that does but is named off the pattern is an
    error, since it is most likely a renamed recording.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(
            f"Data folder not found: {folder}. Point FINGERQUANT_DATA, or the command's data "
            "folder argument, at a folder of CapFingerId recordings."
        )
    recordings = _list_folder(folder)
    if not recordings and (folder / "data").is_dir():
        recordings = _list_folder(folder / "data")
    return recordings


def _list_folder(folder: Path) -> list[Path]:
    """List the recording files directly inside ``folder``."""
    recordings = []
    for path in sorted(folder.iterdir()):
        if not path.name.startswith(FILE_PREFIX):
            continue
        match = FILE_PATTERN.match(path.name)
        if match is None or match["finger"] not in FINGERS or match["hand"] not in HANDS:
            raise DataError(
                f"{path}: invalid recording file name: expected {EXPECTED_NAME} with finger "
                f"in {', '.join(FINGERS)} and hand in {', '.join(HANDS)}."
            )
        recordings.append(path)
    return recordings


def process_folder(
    data_dir: str | Path, rule: BlobRule = BlobRule(), workers: int | None = None
) -> TouchSet:
    """Read every recording of ``data_dir`` and extract its single-blob touches."""
    files = find_recordings(data_dir)
    if not files:
        others = sorted(path.name for path in Path(data_dir).iterdir())[:3]
        ignored = f" (ignored: {', '.join(others)})" if others else ""
        raise DataError(
            f"No recordings in {data_dir}{ignored}: expected files named {EXPECTED_NAME}. "
            "Copy the data/ folder of the CapFingerId repository there."
        )

    workers = min(len(files), workers or os.cpu_count() or 1)
    if workers == 1:
        parts = [_process_file(path, rule) for path in files]
    else:
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            parts = list(pool.map(_process_file, files, [rule] * len(files)))

    _warn_mislabelled(files, parts)
    touches = _combine([path.name for path in files], parts)
    _warn_skipped(touches.counts["skipped"], touches.counts["skipped_per_file"])
    return touches


def _process_file(path: Path, rule: BlobRule) -> dict:
    """Return the touches of one recording and its counts, as plain arrays for pickling."""
    recording = read_recording(path)
    blobs = extract_blobs(recording.cells, rule)
    repeat = np.zeros(len(recording.cells), bool)
    repeat[1:] = np.all(recording.cells[1:] == recording.cells[:-1], axis=(1, 2))

    index = blobs.frame_index
    return {
        "images": blobs.images,
        "participant": recording.participant[index],
        "hand": recording.hand[index],
        "finger": recording.finger[index],
        "line_number": recording.line_numbers[index],
        "timestamp_ns": recording.timestamps_ns[index],
        "repeat": repeat[index],
        "counts": {
            "lines": recording.line_count,
            "skipped": dict(recording.skipped),
            "pause_frames": recording.pause_frames,
            "frames": len(recording.cells),
            "no_blob": blobs.no_blob,
            "several_blobs": blobs.several_blobs,
            "too_large": blobs.too_large,
            "touches": len(index),
        },
    }


def _combine(names: list[str], parts: list[dict]) -> TouchSet:
    """Concatenate per-file results into one ``TouchSet`` with folder totals."""
    totals: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    skipped_per_file = {}
    for name, part in zip(names, parts, strict=True):
        counts = part["counts"]
        totals.update({key: value for key, value in counts.items() if key != "skipped"})
        skipped.update(counts["skipped"])
        if counts["skipped"]:
            skipped_per_file[name] = counts["skipped"]

    def stack(key: str) -> np.ndarray:
        return np.concatenate([part[key] for part in parts])

    sizes = [len(part["images"]) for part in parts]
    return TouchSet(
        files=names,
        images=stack("images").reshape(-1, 8, 8),
        participant=stack("participant"),
        hand=stack("hand"),
        finger=stack("finger"),
        file_id=np.repeat(np.arange(len(parts), dtype=np.int16), sizes),
        line_number=stack("line_number"),
        timestamp_ns=stack("timestamp_ns"),
        repeat=stack("repeat"),
        counts={
            "files": len(names),
            **totals,
            "skipped": dict(sorted(skipped.items())),
            "skipped_per_file": skipped_per_file,
        },
    )


def _warn_mislabelled(files: list[Path], parts: list[dict]) -> None:
    """Log a warning for each file whose lines carry labels other than its name's.

    The labels on the lines are used; the warning points at a renamed or mixed-up file.
    """
    for path, part in zip(files, parts, strict=True):
        match = FILE_PATTERN.match(path.name)
        expected = (
            int(match["participant"]),
            HANDS.index(match["hand"]),
            FINGERS.index(match["finger"]),
        )
        labels = np.stack([part["participant"], part["hand"], part["finger"]], axis=1)  # (K, 3)
        mismatched = labels[(labels != expected).any(axis=1)]
        if len(mismatched):
            participant, hand, finger = mismatched[0].tolist()
            logger.warning(
                "%s: %d touches are labelled P%d %s %s on their lines, not as the file name "
                "says; the line labels are used.",
                path.name,
                len(mismatched),
                participant,
                HANDS[hand],
                FINGERS[finger],
            )


def _warn_skipped(skipped: dict[str, int], skipped_per_file: dict[str, dict[str, int]]) -> None:
    """Log one warning that sums up the skipped lines by reason."""
    if not skipped_per_file:
        return
    reasons = ", ".join(f"{count} {reason}" for reason, count in skipped.items())
    logger.warning(
        "Skipped %d malformed lines in %d files (%s); `python -m fingerquant.data summarize` "
        "lists them per file.",
        sum(skipped.values()),
        len(skipped_per_file),
        reasons,
    )
