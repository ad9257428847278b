"""Model wrapping: blocks in forward order, bit widths, FP equivalence, modes and errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fingerquant.models import IMAGE_SIZE, create_model, list_models
from fingerquant.quant.activation import ActivationQuantizer
from fingerquant.quant.adaround import AdaRoundQuantizer
from fingerquant.quant.calibrate import calibrate_activation_ranges
from fingerquant.quant.layers import FrozenBatchNorm, QuantConv2d, QuantLinear
from fingerquant.quant.range_search import RangeSearchConfig
from fingerquant.quant.wrap import ModelQuantConfig, QuantizedModel, quantize_model

# A coarse grid keeps the weight range search of the larger models fast in tests.
FAST_SEARCH = RangeSearchConfig(num_candidates=16)

EXPECTED_BLOCKS = {
    "capfingerid": [
        "features.conv1",
        "features.conv2",
        "features.conv3",
        "features.conv4",
        "classifier.fc1",
        "classifier.fc2",
    ],
    "model1": ["features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2"],
    "model2": ["features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2"],
}


def _randomize_batch_norms(model: nn.Module, seed: int) -> nn.Module:
    """Give every BN non-trivial statistics and affine parameters, so BN changes the output."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.rand(size, generator=generator))
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            with torch.no_grad():
                module.weight.copy_(torch.randn(size, generator=generator))
                module.bias.copy_(torch.randn(size, generator=generator))
    return model.eval()


def _images(count: int, seed: int) -> torch.Tensor:
    return torch.rand(
        count, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed)
    )


@pytest.fixture(scope="module", params=list_models())
def wrapped(request: pytest.FixtureRequest) -> tuple[str, nn.Module, QuantizedModel]:
    torch.manual_seed(0)
    fp_model = _randomize_batch_norms(create_model(request.param, 10), seed=1)
    config = ModelQuantConfig(w_bits=4, a_bits=4, range_search=FAST_SEARCH)
    return request.param, fp_model, quantize_model(fp_model, config)


class BackwardsRegistered(nn.Module):
    """Registers its layers in the reverse of the order that forward calls them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8 * 4 * 4, 3)
        self.conv_b = nn.Conv2d(4, 8, 3, padding=1)
        self.conv_a = nn.Conv2d(1, 4, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_a(F.relu(self.conv_a(x)))
        x = F.max_pool2d(F.relu(self.conv_b(x)), 2)
        return self.fc(torch.flatten(x, 1))


class FlatInput(nn.Module):
    """Reshapes a flat input before its first layer, so the first block has ``pre`` ops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.size(0), 1, 8, 8) * 2.0
        x = F.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


def test_blocks_named_in_forward_order(wrapped: tuple[str, nn.Module, QuantizedModel]) -> None:
    name, _, model = wrapped

    assert model.block_names == EXPECTED_BLOCKS[name]
    assert [layer.name for layer in model.layers()] == EXPECTED_BLOCKS[name]
    assert model.block("classifier.fc1").layer.name == "classifier.fc1"


def test_block_lookup_of_unknown_name_raises(
    wrapped: tuple[str, nn.Module, QuantizedModel],
) -> None:
    _, _, model = wrapped

    with pytest.raises(KeyError, match="no block named 'fc9'"):
        model.block("fc9")


def test_first_and_last_layers_at_8_bits(wrapped: tuple[str, nn.Module, QuantizedModel]) -> None:
    _, _, model = wrapped
    layers = list(model.layers())

    for index, layer in enumerate(layers):
        expected = 8 if index in (0, len(layers) - 1) else 4
        assert layer.weight_quantizer.config.bits == expected, layer.name
        assert layer.input_quantizer.config.bits == expected, layer.name


def test_layer_types_and_frozen_batch_norms(wrapped: tuple[str, nn.Module, QuantizedModel]) -> None:
    _, fp_model, model = wrapped
    fp_norms = [m for m in fp_model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]

    assert all(isinstance(layer, QuantConv2d | QuantLinear) for layer in model.layers())
    assert sum(isinstance(m, FrozenBatchNorm) for m in model.modules()) == len(fp_norms)
    assert not any(
        isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.Dropout) for m in model.modules()
    )


def test_logits_not_quantized(wrapped: tuple[str, nn.Module, QuantizedModel]) -> None:
    _, _, model = wrapped
    quantizers = [m for m in model.modules() if isinstance(m, ActivationQuantizer)]

    # One quantizer per layer input and none after the last layer.
    assert len(quantizers) == len(model.blocks)
    assert isinstance(model.blocks[-1].post, nn.Identity)


@pytest.mark.parametrize("train_mode", [False, True])
def test_fp_mode_equals_original_model(
    wrapped: tuple[str, nn.Module, QuantizedModel], train_mode: bool
) -> None:
    _, fp_model, model = wrapped
    images = _images(16, seed=2)

    model.set_quant_state(weight_quant=False, act_quant=False)
    model.train(train_mode)
    with torch.no_grad():
        assert torch.equal(model(images), fp_model(images))
    model.eval()


def test_original_model_unchanged(wrapped: tuple[str, nn.Module, QuantizedModel]) -> None:
    name, fp_model, _ = wrapped

    assert any(isinstance(m, nn.BatchNorm2d) for m in fp_model.modules())
    assert all(p.requires_grad for p in fp_model.parameters()), name


def test_calibration_enables_fake_quantization() -> None:
    torch.manual_seed(0)
    fp_model = _randomize_batch_norms(create_model("model1", 10), seed=3)
    model = quantize_model(fp_model, ModelQuantConfig(w_bits=8, a_bits=8, range_search=FAST_SEARCH))
    images = _images(64, seed=4)

    calibrate_activation_ranges(model, images.split(16))

    for layer in model.layers():
        assert layer.weight_quant_enabled
        assert layer.act_quant_enabled
        assert layer.input_quantizer.is_initialized
        assert layer.input_quantizer.scale.item() > 0
        assert bool((layer.weight_quantizer.scale > 0).all())
    # Images are non-negative, so the model input gets the one-sided grid [0, hi].
    assert int(model.blocks[0].layer.input_quantizer.zero_point) == 0
    with torch.no_grad():
        fp_logits = fp_model(images)
        quant_logits = model(images)
    assert not torch.equal(quant_logits, fp_logits)
    assert float((quant_logits - fp_logits).norm() / fp_logits.norm()) < 0.05


def test_calibration_is_deterministic() -> None:
    torch.manual_seed(0)
    fp_model = _randomize_batch_norms(create_model("model1", 2), seed=5)
    config = ModelQuantConfig(range_search=FAST_SEARCH)
    images = _images(32, seed=6)

    states = []
    for _ in range(2):
        model = quantize_model(fp_model, config)
        calibrate_activation_ranges(model, images.split(8))
        states.append(model.state_dict())

    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_calibration_without_batches_raises() -> None:
    model = quantize_model(BackwardsRegistered(), ModelQuantConfig(range_search=FAST_SEARCH))

    with pytest.raises(ValueError, match="no calibration batches"):
        calibrate_activation_ranges(model, [])


def test_per_block_enable() -> None:
    torch.manual_seed(0)
    fp_model = _randomize_batch_norms(create_model("model1", 10), seed=7)
    model = quantize_model(fp_model, ModelQuantConfig(w_bits=2, a_bits=2, range_search=FAST_SEARCH))
    images = _images(16, seed=8)
    calibrate_activation_ranges(model, [images])

    model.set_quant_state(weight_quant=False, act_quant=False)
    model.block("features.conv2").set_quant_state(weight_quant=True, act_quant=True)

    enabled = [
        layer.name
        for layer in model.layers()
        if layer.weight_quant_enabled or layer.act_quant_enabled
    ]
    assert enabled == ["features.conv2"]
    with torch.no_grad():
        assert not torch.equal(model(images), fp_model(images))
        # The blocks before conv2 still compute the FP result.
        fp_prefix = fp_model.features.bn1(fp_model.features.relu1(fp_model.features.conv1(images)))
        assert torch.equal(model.forward_blocks(images, 0, 1), fp_prefix)


def test_registration_order_does_not_decide_first_and_last() -> None:
    model = quantize_model(
        BackwardsRegistered(), ModelQuantConfig(w_bits=3, a_bits=5, range_search=FAST_SEARCH)
    )

    assert model.block_names == ["conv_a", "conv_b", "fc"]
    bits = [
        (layer.weight_quantizer.config.bits, layer.input_quantizer.config.bits)
        for layer in model.layers()
    ]
    assert bits == [(8, 8), (3, 5), (8, 8)]


def test_functional_ops_and_pre_ops_keep_fp_equivalence() -> None:
    torch.manual_seed(0)
    for fp_model, images in [
        (BackwardsRegistered().eval(), _images(4, seed=9)),
        (FlatInput().eval(), torch.rand(4, 64)),
    ]:
        model = quantize_model(fp_model, ModelQuantConfig(range_search=FAST_SEARCH))
        with torch.no_grad():
            assert torch.equal(model(images), fp_model(images))


def test_qdrop_in_block_takes_fp_input() -> None:
    torch.manual_seed(0)
    model = quantize_model(FlatInput(), ModelQuantConfig(range_search=FAST_SEARCH))
    images = torch.rand(4, 64)
    calibrate_activation_ranges(model, [images])
    block = model.blocks[0]
    fp_input = images + 0.5

    block.layer.input_quantizer.drop_prob = 1.0
    block.train()
    with torch.no_grad():
        mixed = block(images, fp_input=fp_input)
        block.eval()
        block.set_quant_state(weight_quant=True, act_quant=False)
        expected = block(fp_input)

    assert torch.equal(mixed, expected)


def test_adaround_at_init_keeps_round_to_nearest_output() -> None:
    torch.manual_seed(0)
    fp_model = _randomize_batch_norms(create_model("model1", 10), seed=10)
    model = quantize_model(fp_model, ModelQuantConfig(range_search=FAST_SEARCH))
    images = _images(16, seed=11)
    calibrate_activation_ranges(model, [images])
    with torch.no_grad():
        round_to_nearest = model(images)
        int_weights = [layer.int_weight() for layer in model.layers()]

    for layer in model.layers():
        assert isinstance(layer.use_adaround(), AdaRoundQuantizer)
    model.eval()

    with torch.no_grad():
        assert torch.equal(model(images), round_to_nearest)
    for layer, expected in zip(model.layers(), int_weights, strict=True):
        assert torch.equal(layer.int_weight(), expected)
        assert layer.int_weight().dtype == torch.int32
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable
    assert all(name.endswith(("alpha", "log_scale")) for name in trainable)


class WithConv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class WithLayerNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(x))


class FunctionalLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class SkipConnection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(x)
        return hidden + self.fc2(hidden)


class SharedLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.fc(x)))


class ReflectPadding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BatchStatisticsNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(x))


class DataDependentBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return x


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (WithConv1d(), "layer 'conv' of type Conv1d cannot be quantized"),
        (DataDependentBranch(), "torch.fx cannot trace DataDependentBranch"),
        (WithLayerNorm(), "layer 'norm' of type LayerNorm cannot be quantized"),
        (FunctionalLinear(), "reads parameter 'weight' directly"),
        (SkipConnection(), "only chain models"),
        (SharedLayer(), "layer 'fc' is called 2 times"),
        (ReflectPadding(), "padding_mode='reflect'"),
        (BatchStatisticsNorm(), "without running statistics"),
    ],
)
def test_unsupported_models_raise(model: nn.Module, message: str) -> None:
    with pytest.raises(NotImplementedError, match=message):
        quantize_model(model, ModelQuantConfig(range_search=FAST_SEARCH))


def test_model_without_layers_raises() -> None:
    with pytest.raises(ValueError, match="has no Conv2d or Linear layer"):
        quantize_model(nn.Sequential(nn.ReLU()))


@pytest.mark.parametrize("field", ["w_bits", "a_bits", "first_last_bits"])
def test_config_rejects_bits_out_of_range(field: str) -> None:
    with pytest.raises(ValueError, match=rf"{field}=9 is out of range"):
        ModelQuantConfig(**{field: 9})
