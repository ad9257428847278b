"""Mirroring of touch images and of their labels."""

import pytest
import torch

from fingerquant.augment import mirror_class_map, mirror_images
from fingerquant.classifier import Classifier
from fingerquant.data import class_names


def _blob_image() -> torch.Tensor:
    """One (1, 1, 8, 8) image with an asymmetric 3 x 4 blob in the upper-left corner."""
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, :3, :4] = torch.tensor(
        [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]
    )
    return image


def test_mirror_reverses_columns_at_left_edge() -> None:
    mirrored = mirror_images(_blob_image())
    assert torch.equal(mirrored[0, 0, :3, :4], _blob_image()[0, 0, :3, :4].flip(-1))
    assert mirrored[0, 0, :, 4:].abs().sum() == 0


def test_mirror_twice_is_identity() -> None:
    image = _blob_image()
    assert torch.equal(mirror_images(mirror_images(image)), image)


def test_mirror_shifts_each_image_separately() -> None:
    narrow = torch.zeros(1, 1, 8, 8)
    narrow[0, 0, 1, :2] = torch.tensor([1.0, 2.0])
    batch = torch.cat([_blob_image(), narrow])
    mirrored = mirror_images(batch)
    assert torch.equal(mirrored[0], mirror_images(_blob_image())[0])
    assert torch.equal(mirrored[1, 0, 1, :2], torch.tensor([2.0, 1.0]))


def test_mirror_all_zero_image() -> None:
    empty = torch.zeros(2, 1, 8, 8)
    assert torch.equal(mirror_images(empty), empty)


def test_class_map_thumbs() -> None:
    assert mirror_class_map(class_names("thumbs")) == [1, 0]


def test_class_map_fingers() -> None:
    names = class_names("fingers")
    mapping = mirror_class_map(names)
    for index, name in enumerate(names):
        hand, finger = name.split(" ")
        assert names[mapping[index]] == f"{'right' if hand == 'left' else 'left'} {finger}"


def test_class_map_rejects_other_names() -> None:
    with pytest.raises(ValueError, match="Invalid class name 'cat' for mirroring"):
        mirror_class_map(["cat", "dog"])


def test_class_map_rejects_missing_mirror() -> None:
    with pytest.raises(ValueError, match="has no mirror class 'right index'"):
        mirror_class_map(["left index", "left thumb"])


def test_classifier_mirrors_every_sample() -> None:
    classifier = Classifier(
        model="model1", num_classes=2, mirror_prob=1.0, class_names=class_names("thumbs")
    )
    images = torch.cat([_blob_image(), _blob_image()])
    labels = torch.tensor([0, 1])

    mirrored, swapped = classifier._mirror_some(images, labels)
    assert torch.equal(swapped, torch.tensor([1, 0]))
    assert torch.equal(mirrored, mirror_images(images))


def test_classifier_mirror_needs_class_names() -> None:
    with pytest.raises(ValueError, match="mirror_prob > 0 needs class_names"):
        Classifier(model="model1", num_classes=2, mirror_prob=0.5)


def test_classifier_mirror_prob_range() -> None:
    with pytest.raises(ValueError, match=r"Invalid mirror_prob 1\.5"):
        Classifier(model="model1", num_classes=2, mirror_prob=1.5)
