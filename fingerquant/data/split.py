"""Train, validation and test splits: by participant (default) or at random.

A participant split keeps every person on one side only, so test accuracy
measures how the model does on people it never saw. Consecutive frames are
often exact repeats, so a random split leaks near-copies of training touches
into the test set. It exists only to compare with results reported that way.
"""

import logging
from dataclasses import dataclass

import numpy as np

from fingerquant.errors import DataError

logger = logging.getLogger(__name__)

SEARCH_TRIALS = 4096
"""Random participant orders tried when choosing a group; enough for 20 people
to land within a percentage point of the target share."""


@dataclass(frozen=True)
class Split:
    """Indices into the touch arrays for each stage, and the participants behind them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_participants: tuple[int, ...] = ()
    val_participants: tuple[int, ...] = ()
    test_participants: tuple[int, ...] = ()


def participant_split(
    participants: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Split touches by participant, every class on every side.

    The test group takes about ``test_fraction`` of all touches; the validation
    group about ``val_fraction`` of what remains. Among random participant
    orders (seeded), the prefix whose share is closest to the target and whose
    both sides contain every class wins, so the same seed gives the same split.
    """
    people = np.unique(participants)
    person_index = np.searchsorted(people, participants)
    counts = np.zeros((len(people), len(class_names)), np.int64)
    np.add.at(counts, (person_index, labels), 1)
    rng = np.random.default_rng(seed)

    test_people = _choose_group(counts, people, test_fraction, rng, class_names, "test")
    rest = np.setdiff1d(np.arange(len(people)), test_people)
    val_people = rest[
        _choose_group(counts[rest], people[rest], val_fraction, rng, class_names, "validation")
    ]
    train_people = np.setdiff1d(rest, val_people)

    split = Split(
        train=np.flatnonzero(np.isin(person_index, train_people)),
        val=np.flatnonzero(np.isin(person_index, val_people)),
        test=np.flatnonzero(np.isin(person_index, test_people)),
        train_participants=tuple(people[train_people].tolist()),
        val_participants=tuple(people[val_people].tolist()),
        test_participants=tuple(people[test_people].tolist()),
    )
    for stage in ("train", "val", "test"):
        members = ", ".join(f"P{p}" for p in getattr(split, f"{stage}_participants"))
        logger.info("%s: %d touches from %s", stage, len(getattr(split, stage)), members)
    return split


def random_split(
    count: int, test_fraction: float = 0.2, val_fraction: float = 0.2, seed: int = 0
) -> Split:
    """Split ``count`` touches at random (seeded); participants appear on every side."""
    order = np.random.default_rng(seed).permutation(count)
    test_size = round(count * test_fraction)
    val_size = round((count - test_size) * val_fraction)
    return Split(
        train=np.sort(order[test_size + val_size :]),
        val=np.sort(order[test_size : test_size + val_size]),
        test=np.sort(order[:test_size]),
    )


def _choose_group(
    counts: np.ndarray,
    people: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    class_names: list[str],
    side: str,
) -> np.ndarray:
    """Return row indices of ``counts`` (participants x classes) forming the group."""
    people_per_class = np.count_nonzero(counts, axis=0)
    if people_per_class.min() < 2:
        lacking = class_names[int(people_per_class.argmin())]
        raise DataError(
            f"Cannot make a participant split for the {side} set: class '{lacking}' has touches "
            f"from {people_per_class.min()} participant(s), and every class needs participants "
            "on both sides. Add recordings or use split=random."
        )

    orders = np.stack([rng.permutation(len(people)) for _ in range(SEARCH_TRIALS)])
    prefix = np.cumsum(counts[orders], axis=1)  # (trials, people, classes)
    inside = prefix[:, :-1]  # a group never takes everyone
    outside = counts.sum(axis=0) - inside
    covered = (inside > 0).all(axis=2) & (outside > 0).all(axis=2)
    share = inside.sum(axis=2) / counts.sum()
    error = np.where(covered, np.abs(share - fraction), np.inf)

    trial, size = np.unravel_index(np.argmin(error), error.shape)
    if not np.isfinite(error[trial, size]):
        raise DataError(
            f"Cannot make a participant split for the {side} set with every class on both "
            f"sides from participants {', '.join(f'P{p}' for p in people)}. Add recordings "
            "or use split=random."
        )
    return np.sort(orders[trial, : size + 1])
