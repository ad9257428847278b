"""Reader: well-formed lines, every kind of dirty line, labels and file forms."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from fingerquant.data.reader import read_recording
from fingerquant.errors import DataError
from tests.recordings import blob_frame, frame_line, write_recording


def good_lines(count: int = 3) -> list[str]:
    return [frame_line(blob_frame(value=100 + i), nanoseconds=i) for i in range(count)]


def test_reads_cells_labels_and_timestamps(tmp_path: Path) -> None:
    path = write_recording(
        tmp_path,
        7,
        "ring",
        "left",
        [
            frame_line(
                blob_frame(), participant=7, hand="left", finger="ring", seconds=2, nanoseconds=5
            )
        ],
    )
    recording = read_recording(path)

    assert recording.cells.shape == (1, 27, 15)
    assert np.array_equal(recording.cells[0], blob_frame())
    assert recording.timestamps_ns.tolist() == [2_000_000_005]
    assert recording.line_numbers.tolist() == [1]
    assert recording.participant.tolist() == [7]
    assert recording.hand.tolist() == [0]
    assert recording.finger.tolist() == [3]


def test_plain_and_gzip_files_read_alike(tmp_path: Path) -> None:
    lines = good_lines()
    plain = read_recording(
        write_recording(tmp_path / "plain", 1, "index", "right", lines, compress=False)
    )
    packed = read_recording(write_recording(tmp_path / "gz", 1, "index", "right", lines))

    assert np.array_equal(plain.cells, packed.cells)
    assert np.array_equal(plain.timestamps_ns, packed.timestamps_ns)


def test_pause_frames_dropped_and_counted(tmp_path: Path) -> None:
    lines = [*good_lines(2), frame_line(blob_frame(), task="PAUSE")]
    recording = read_recording(write_recording(tmp_path, 1, "index", "right", lines))

    assert len(recording.cells) == 2
    assert recording.pause_frames == 1


def replace_cell(line: str, index: int, text: str) -> str:
    """Replace cell ``index`` (0-based, after seconds and nanoseconds) of a line."""
    head, frame = line.rsplit(";", 1)
    fields = frame.split(",")
    fields[2 + index] = text
    return head + ";" + ",".join(fields)


@pytest.mark.parametrize(
    ("dirty", "reason"),
    [
        (lambda line: line.rsplit(",", 5)[0] + ",", "field count"),
        (lambda line: line + "1,2,", "field count"),
        (lambda line: line.replace(";TAP;", ";TAP;;"), "field count"),
        (lambda line: line.replace(";-1;", ";"), "field count"),
        (lambda line: replace_cell(line, 10, ""), "empty cell"),
        (lambda line: replace_cell(line, 0, ""), "empty cell"),
        (lambda line: replace_cell(line, 404, "-"), "dash cell"),
        (lambda line: replace_cell(line, 3, "1.5"), "non-integer cell"),
        (lambda line: replace_cell(line, 3, "x7"), "non-integer cell"),
        (lambda line: replace_cell(line, 3, "1-2"), "non-integer cell"),
        (lambda line: replace_cell(line, 3, "12\x00"), "non-integer cell"),
        (lambda line: line.replace(";TAP;", ";HOVER;"), "unknown task"),
    ],
)
def test_dirty_line_skipped_by_reason(tmp_path: Path, dirty, reason: str) -> None:
    lines = good_lines(4)
    lines[1] = dirty(lines[1])
    recording = read_recording(write_recording(tmp_path, 1, "index", "right", lines))

    assert dict(recording.skipped) == {reason: 1}
    assert recording.line_numbers.tolist() == [1, 3, 4]
    assert np.array_equal(recording.cells[1], blob_frame(value=102))


def test_junk_after_last_comma_ignored(tmp_path: Path) -> None:
    lines = good_lines(2)
    lines[0] += "]"
    recording = read_recording(write_recording(tmp_path, 1, "index", "right", lines))

    assert not recording.skipped
    assert np.array_equal(recording.cells[0], blob_frame(value=100))


def test_truncated_last_line_skipped(tmp_path: Path) -> None:
    text = "\n".join(good_lines(3))[:-500]
    path = tmp_path / "CapMatrix_P1_index_right.txt"
    path.write_text(text)
    recording = read_recording(path)

    assert len(recording.cells) == 2
    assert dict(recording.skipped) == {"field count": 1}


def test_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "CapMatrix_P1_index_right.txt"
    path.write_bytes("\r\n".join(good_lines(2)).encode() + b"\r\n")

    assert len(read_recording(path).cells) == 2


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (";index;", ";pinky;", "unknown finger 'pinky'"),
        (";right;", ";middle;", "unknown hand 'middle'"),
        ("1;right", "P1;right", "invalid participant 'P1'"),
    ],
)
def test_unknown_label_names_file_and_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    lines = good_lines(3)
    lines[2] = lines[2].replace(old, new, 1)
    path = write_recording(tmp_path, 1, "index", "right", lines)

    with pytest.raises(DataError, match=f"CapMatrix_P1_index_right.txt.gz:3: {message}"):
        read_recording(path)


def test_damaged_gzip_names_file(tmp_path: Path) -> None:
    path = tmp_path / "CapMatrix_P1_index_right.txt.gz"
    path.write_bytes(gzip.compress("\n".join(good_lines()).encode())[:-30])

    with pytest.raises(DataError, match=r"CapMatrix_P1_index_right.txt.gz: cannot read"):
        read_recording(path)


def test_empty_file_has_no_frames(tmp_path: Path) -> None:
    path = tmp_path / "CapMatrix_P1_index_right.txt"
    path.write_text("")
    recording = read_recording(path)

    assert recording.cells.shape == (0, 27, 15)
    assert recording.line_count == 0
