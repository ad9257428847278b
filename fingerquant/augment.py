"""Left-right mirroring of touch images, with the hand swapped in the label.

A left-hand touch mirrored left to right resembles a touch of the same finger
of the right hand, because the two hands are roughly mirror images. Training
on such mirrored touches raised the accuracy on validation participants for
both tasks (docs/fp_results.md has the runs). Touch images contain one blob
pasted into the upper-left corner, so a mirrored image is moved back to the
left edge to keep that layout.
"""

from collections.abc import Sequence

import torch

from fingerquant.data.labels import HANDS


def mirror_images(images: torch.Tensor) -> torch.Tensor:
    """Mirror images ``(B, C, H, W)`` left to right, then move each blob back to the left edge.

    The shift per image is its number of all-zero columns on the left after
    flipping. An all-zero image is returned flipped and unshifted.
    """
    flipped = images.flip(-1)
    occupied = (flipped != 0).any(dim=-2).any(dim=-2)  # (B, W)
    # argmax returns the first maximum, i.e. the first occupied column.
    shift = occupied.int().argmax(dim=-1)  # (B,)

    width = images.shape[-1]
    columns = (torch.arange(width, device=images.device) + shift[:, None]) % width  # (B, W)
    return flipped.gather(-1, columns[:, None, None, :].expand_as(flipped))


def mirror_class_map(class_names: Sequence[str]) -> list[int]:
    """Return, for each class, the index of its mirror class ("left X" <-> "right X").

    Raises:
        ValueError: if a class name does not start with a hand or its mirror
            class is missing.
    """
    mirrored = []
    for name in class_names:
        hand, _, finger = name.partition(" ")
        if hand not in HANDS or not finger:
            raise ValueError(
                f"Invalid class name {name!r} for mirroring: expected '<hand> <finger>' "
                f"with hand in {', '.join(HANDS)}. Set mirror_prob to 0 for other tasks."
            )
        other = f"{HANDS[1 - HANDS.index(hand)]} {finger}"
        if other not in class_names:
            raise ValueError(
                f"Class {name!r} has no mirror class {other!r} in {list(class_names)}. "
                "Set mirror_prob to 0 for tasks without both hands."
            )
        mirrored.append(list(class_names).index(other))
    return mirrored
