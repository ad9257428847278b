"""A 3x3 8-bit conv in onnxruntime against the simulation, value by value, ties included."""

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn

from fingerquant.export.graph import OPSET, GraphBuilder, Value
from fingerquant.export.integer import emit_cast_float, emit_integer_product, emit_rescale
from fingerquant.export.quantized import export_quantized
from fingerquant.export.runtime import create_session
from fingerquant.quant import (
    ModelQuantConfig,
    QuantLayer,
    RangeSearchConfig,
    calibrate_activation_ranges,
    make_quant_layer,
    quantize_model,
)
from fingerquant.quant.checkpoint import layer_record

SCALE = 2.0**-5
"""Input step size: a power of two, so ``(k + 0.5) * SCALE`` and its division are exact."""
ZERO_POINT = 3


class TinyConvNet(nn.Module):
    """One 3x3 conv (padding 1) and a linear head, the smallest model the exporter takes."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.relu(self.conv(x))))


def tie_inputs(in_channels: int) -> torch.Tensor:
    """Return inputs (6, C, 8, 8) where every other cell lies exactly halfway between codes."""
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(-ZERO_POINT, 250, (6, in_channels, 8, 8), generator=generator)
    halfway = (codes.double() + 0.5) * SCALE
    random = torch.rand(6, in_channels, 8, 8, generator=generator, dtype=torch.float64) * 7.0
    mask = torch.arange(8 * 8).reshape(8, 8) % 2 == 0
    return torch.where(mask, halfway, random).float()


def onnx_values(model: onnx.ModelProto, names: list[str], x: torch.Tensor) -> dict:
    """Run ``model`` and return the named intermediate values as well as the outputs."""
    for name in names:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = create_session(model)
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return dict(zip([output.name for output in session.get_outputs()], outputs, strict=True))


def conv_layer(in_channels: int) -> QuantLayer:
    """Return an 8-bit quantized 3x3 conv (padding 1) with input scale ``SCALE``."""
    torch.manual_seed(0)
    conv = nn.Conv2d(in_channels, 4, kernel_size=3, padding=1)
    layer = make_quant_layer("conv", conv, 8, 8, RangeSearchConfig())
    layer.input_quantizer.set_qparams(torch.tensor(SCALE), torch.tensor(ZERO_POINT))
    layer.set_quant_state(weight_quant=True, act_quant=True)
    return layer.eval()


def layer_graph(layer: QuantLayer, in_channels: int) -> onnx.ModelProto:
    """Return a graph of the layer alone: float input ``x`` (N, C, 8, 8) to its float output."""
    builder = GraphBuilder()
    record = layer_record("conv", layer)
    x = Value("x", (in_channels, 8, 8), "nchw")
    accumulator = emit_integer_product(builder, "conv", layer.module, record, x)
    output = emit_rescale(builder, "conv", record, emit_cast_float(builder, "conv", accumulator))
    graph = helper.make_graph(
        builder.nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_channels, 8, 8])],
        [helper.make_empty_tensor_value_info(output.name)],
        builder.initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


@pytest.mark.parametrize("in_channels", [1, 3])
def test_conv_codes_and_accumulator_exact(in_channels: int) -> None:
    """One input channel takes the one-hot patch conv, three take the Gather of codes."""
    layer = conv_layer(in_channels)
    x = tie_inputs(in_channels)
    codes_name = "conv/patch_codes" if in_channels == 1 else "conv/input_codes"
    values = onnx_values(layer_graph(layer, in_channels), [codes_name, "conv/acc"], x)

    # Reference codes from the simulation: ties round to even, as ONNX specifies.
    codes = layer.input_quantizer.quantize(x)
    halfway = (x.double() / SCALE) % 1 == 0.5
    assert int(halfway.sum()) == x.numel() // 2
    assert torch.all((codes[halfway] - ZERO_POINT) % 2 == 0)
    expected_codes = codes.numpy().astype(np.uint8)
    if in_channels == 1:
        padded = F.pad(codes.double(), (1, 1, 1, 1), value=ZERO_POINT)
        expected_codes = F.unfold(padded, 3).reshape(6, 9, 8, 8).numpy().astype(np.uint8)
    np.testing.assert_array_equal(values[codes_name], expected_codes)

    # Reference accumulator: the exact integer conv of centered codes.
    weight_codes = layer.int_weight().double()
    weight_zero_point = layer.weight_quantizer.zero_point.double().reshape(-1, 1, 1, 1)
    accumulator = F.conv2d(
        codes.double() - ZERO_POINT, weight_codes - weight_zero_point, padding=1
    )  # (N, C_out, 8, 8)
    onnx_accumulator = values["conv/acc"][:, 0].transpose(0, 3, 1, 2)  # (N, 1, H, W, C) to NCHW
    np.testing.assert_array_equal(onnx_accumulator, accumulator.numpy().astype(np.int32))

    # The float output differs from the simulated conv by float rounding only.
    with torch.no_grad():
        simulated = layer(x).numpy()
    onnx_output = values["conv/output_biased"][:, 0].transpose(0, 3, 1, 2)
    np.testing.assert_allclose(onnx_output, simulated, rtol=1e-5, atol=1e-6)


def test_ties_round_half_to_even() -> None:
    """Codes of values exactly halfway between two grid points go to the even neighbour."""
    network = TinyConvNet(1).eval()
    quantized = quantize_model(network, ModelQuantConfig(first_last_bits=8))
    x = torch.zeros(1, 1, 8, 8)
    halves = torch.tensor([0.5, 1.5, 2.5, 3.5, 100.5, 101.5, 252.5, -2.5])
    x.view(-1)[: len(halves)] = halves * SCALE
    calibrate_activation_ranges(quantized, [x])
    quantized.blocks[0].layer.input_quantizer.set_qparams(
        torch.tensor(SCALE), torch.tensor(ZERO_POINT)
    )
    quantized.eval()

    values = onnx_values(export_quantized(quantized, "tiny", None, None), ["conv/patch_codes"], x)
    # Kernel tap 4 is the centre, so its patch plane is the input image itself.
    centre = values["conv/patch_codes"][0, 4].reshape(-1)[: len(halves)]

    expected = np.array([0, 2, 2, 4, 100, 102, 252, -2]) + ZERO_POINT
    np.testing.assert_array_equal(centre, expected)
