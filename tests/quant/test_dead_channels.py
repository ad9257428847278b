"""Dead BN channels: removed and taken over by the next layer without changing the FP output."""

import copy

import torch

from fingerquant.models import create_model
from fingerquant.quant.dead_channels import freeze_dead_channels
from fingerquant.quant.wrap import quantize_model


def test_dead_channels_folded_exactly() -> None:
    torch.manual_seed(0)
    network = create_model("model1", 10).eval()
    images = torch.rand(64, 1, 8, 8)
    with torch.no_grad():
        network.features.conv1.bias[:3] = -100.0
        network(images)
    model = quantize_model(network)
    copy_of_model = copy.deepcopy(model)
    expected = model(images)

    counts = freeze_dead_channels([model, copy_of_model], images)

    assert counts["features.conv1"] >= 3
    assert model.blocks[1].layer.output_offset is not None
    torch.testing.assert_close(model(images), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(copy_of_model(images), expected, rtol=1e-5, atol=1e-5)
    bn1 = model.blocks[0].post.get_submodule("features.bn1")
    assert bn1.weight[:3].abs().sum() == 0
    assert bn1.bias[:3].abs().sum() == 0
