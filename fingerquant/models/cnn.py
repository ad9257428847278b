"""The network layout shared by all classifiers: conv stages, then a two-layer head.

Every conv is 3 x 3, stride 1, padding 1, followed by ReLU and then BatchNorm
(BN after the activation, as in the CapFingerId study, so the usual conv+BN
fold does not apply). Each stage ends with 2 x 2 max-pooling and dropout.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

IMAGE_SIZE = 8
"""Height and width of the input touch images in cells."""


class TouchCNN(nn.Module):
    """CNN for one-channel ``IMAGE_SIZE x IMAGE_SIZE`` touch images.

    The model has exactly two children, run in order, so that a quantizer can
    address layers by name and walk them first to last:

    - ``features`` (``nn.Sequential``): for the i-th conv overall
      ``conv{i}``, ``relu{i}``, ``bn{i}``; after the j-th stage ``pool{j}``
      and ``dropout{j}``.
    - ``classifier`` (``nn.Sequential``): ``flatten``, ``fc1``, ``relu``,
      ``bn`` (BatchNorm1d), ``dropout``, ``fc2`` (the logits).

    Args:
        stages: output channels of the convs in each stage, e.g. ``[[16, 32]]``
            for one stage of two convs. Each stage halves the spatial size.
        hidden_features: width of ``fc1``.
        num_classes: number of output logits of ``fc2``.
        dropout: drop probability of every dropout layer.
    """

    def __init__(
        self,
        stages: Sequence[Sequence[int]],
        hidden_features: int,
        num_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if IMAGE_SIZE % 2 ** len(stages) != 0:
            raise ValueError(
                f"{len(stages)} pooling stages do not divide the image size {IMAGE_SIZE}; "
                f"use at most {IMAGE_SIZE.bit_length() - 1} stages"
            )

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels = 1
        conv_index = 0
        for stage_index, stage in enumerate(stages, start=1):
            for out_channels in stage:
                conv_index += 1
                layers[f"conv{conv_index}"] = nn.Conv2d(
                    in_channels, out_channels, kernel_size=3, stride=1, padding=1
                )
                layers[f"relu{conv_index}"] = nn.ReLU()
                layers[f"bn{conv_index}"] = nn.BatchNorm2d(out_channels)
                in_channels = out_channels
            layers[f"pool{stage_index}"] = nn.MaxPool2d(kernel_size=2)
            layers[f"dropout{stage_index}"] = nn.Dropout(dropout)
        self.features = nn.Sequential(layers)

        side = IMAGE_SIZE // 2 ** len(stages)
        flat_features = in_channels * side * side
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(flat_features, hidden_features),
                relu=nn.ReLU(),
                bn=nn.BatchNorm1d(hidden_features),
                dropout=nn.Dropout(dropout),
                fc2=nn.Linear(hidden_features, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(B, 1, 8, 8)`` to logits ``(B, num_classes)``."""
        return self.classifier(self.features(x))
