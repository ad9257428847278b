"""Participant and random splits: disjoint people, every class on every side, determinism."""

import numpy as np
import pytest

from fingerquant.data.split import participant_split, random_split
from fingerquant.errors import DataError

CLASSES = [f"class {i}" for i in range(4)]


def make_touches(people: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (participants, labels) with uneven counts per person and class."""
    rng = np.random.default_rng(seed)
    participants, labels = [], []
    for person in range(1, people + 1):
        for label in range(len(CLASSES)):
            count = int(rng.integers(20, 200))
            participants += [person] * count
            labels += [label] * count
    return np.array(participants), np.array(labels)


def test_participant_split_invariants() -> None:
    participants, labels = make_touches()
    split = participant_split(participants, labels, CLASSES)

    groups = [
        set(split.train_participants),
        set(split.val_participants),
        set(split.test_participants),
    ]
    assert not groups[0] & groups[1]
    assert not groups[0] & groups[2]
    assert not groups[1] & groups[2]
    assert set().union(*groups) == set(np.unique(participants).tolist())
    for stage in ("train", "val", "test"):
        index = getattr(split, stage)
        assert set(labels[index].tolist()) == set(range(len(CLASSES)))
        assert set(participants[index].tolist()) == set(getattr(split, f"{stage}_participants"))
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(
        range(len(labels))
    )
    assert abs(len(split.test) / len(labels) - 0.2) < 0.03


def test_participant_split_deterministic() -> None:
    participants, labels = make_touches()
    first = participant_split(participants, labels, CLASSES, seed=3)
    second = participant_split(participants, labels, CLASSES, seed=3)

    assert first.test_participants == second.test_participants
    assert np.array_equal(first.train, second.train)


def test_class_from_one_participant_rejected() -> None:
    participants, labels = make_touches(people=5)
    only_first = (labels != 3) | (participants == 1)

    with pytest.raises(DataError, match="class 'class 3' has touches from 1 participant"):
        participant_split(participants[only_first], labels[only_first], CLASSES)


def test_random_split_sizes_and_determinism() -> None:
    split = random_split(1000, seed=1)

    assert (len(split.train), len(split.val), len(split.test)) == (640, 160, 200)
    assert np.array_equal(split.test, random_split(1000, seed=1).test)
    assert not np.array_equal(split.test, random_split(1000, seed=2).test)
