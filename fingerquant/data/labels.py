"""Finger and hand vocabularies, the two tasks and the recording file names."""

import re
from typing import Literal

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")
HANDS: tuple[str, ...] = ("left", "right")
TASKS: tuple[str, ...] = ("thumbs", "fingers")
Task = Literal["thumbs", "fingers"]

FILE_PATTERN = re.compile(
    r"^CapMatrix_P(?P<participant>\d+)_(?P<finger>[a-z]+)_(?P<hand>[a-z]+)\.txt(?:\.gz)?$"
)
"""Recording file names: ``CapMatrix_P<participant>_<finger>_<hand>.txt``, optionally gzipped."""

FILE_PREFIX = "CapMatrix_"
EXPECTED_NAME = "CapMatrix_P<participant>_<finger>_<hand>.txt[.gz]"


def finger_class(hand: int, finger: int) -> int:
    """Return the 10-class index of a (hand, finger) pair: left hand first, thumb to little."""
    return hand * len(FINGERS) + finger


def class_names(task: Task) -> list[str]:
    """Return the class names of ``task`` in label order."""
    if task == "thumbs":
        return [f"{hand} thumb" for hand in HANDS]
    if task == "fingers":
        return [f"{hand} {finger}" for hand in HANDS for finger in FINGERS]
    raise ValueError(f"Invalid task {task!r}: expected one of {', '.join(TASKS)}.")
