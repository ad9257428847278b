"""Forward and backward checks over every registered model and both class counts."""

import pytest
import torch
from torch import nn

from fingerquant.models import IMAGE_SIZE, TouchCNN, create_model, list_models

BATCH_SIZE = 4
CLASS_COUNTS = (2, 10)  # thumbs, fingers

# Parameter counts of the architectures as specified; a change here means the
# layer list no longer matches the published models.
EXPECTED_PARAMETERS = {
    ("capfingerid", 2): 392_130,
    ("capfingerid", 10): 394_186,
    ("model1", 2): 37_986,
    ("model1", 10): 38_506,
    ("model2", 2): 150_722,
    ("model2", 10): 151_754,
}


def test_registry_lists_three_models() -> None:
    assert list_models() == ["capfingerid", "model1", "model2"]


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("num_classes", CLASS_COUNTS)
def test_forward_backward(name: str, num_classes: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes)
    model.train()
    x = torch.rand(BATCH_SIZE, 1, IMAGE_SIZE, IMAGE_SIZE)

    logits = model(x)
    assert logits.shape == (BATCH_SIZE, num_classes)
    assert torch.isfinite(logits).all()

    logits.logsumexp(dim=1).sum().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{parameter_name} received no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{parameter_name} has a non-finite gradient"
        assert parameter.grad.abs().sum() > 0, f"{parameter_name} has an all-zero gradient"


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("num_classes", CLASS_COUNTS)
def test_parameter_count(name: str, num_classes: int) -> None:
    model = create_model(name, num_classes)
    count = sum(parameter.numel() for parameter in model.parameters())
    assert count == EXPECTED_PARAMETERS[(name, num_classes)]


@pytest.mark.parametrize("name", list_models())
def test_eval_mode_single_sample(name: str) -> None:
    model = create_model(name, 10).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 1, IMAGE_SIZE, IMAGE_SIZE))
    assert logits.shape == (1, 10)


@pytest.mark.parametrize("name", list_models())
def test_layer_order(name: str) -> None:
    """BN follows ReLU after every conv and after fc1; convs are 3x3, stride 1, pad 1."""
    model = create_model(name, 2)
    assert isinstance(model, TouchCNN)
    layers = list(model.features) + list(model.classifier)

    for index, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            assert layer.kernel_size == (3, 3)
            assert layer.stride == (1, 1)
            assert layer.padding == (1, 1)
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and index < len(layers) - 1:
            assert isinstance(layers[index + 1], nn.ReLU)
            assert isinstance(layers[index + 2], (nn.BatchNorm2d, nn.BatchNorm1d))

    assert isinstance(layers[-1], nn.Linear)


@pytest.mark.parametrize("name", list_models())
def test_named_first_and_last_layers(name: str) -> None:
    modules = dict(create_model(name, 10).named_modules())
    assert isinstance(modules["features.conv1"], nn.Conv2d)
    assert modules["features.conv1"].in_channels == 1
    assert isinstance(modules["classifier.fc2"], nn.Linear)
    assert modules["classifier.fc2"].out_features == 10


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(
        ValueError, match="Unknown model 'resnet': expected one of capfingerid, model1, model2"
    ):
        create_model("resnet", 2)


def test_too_few_classes_rejected() -> None:
    with pytest.raises(ValueError, match="Invalid num_classes 1: expected at least 2"):
        create_model("model1", 1)
