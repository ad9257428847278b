"""ONNX export: CLI export and verify, parity per bit width, integer ops, packed weights, sizes."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from fingerquant.data import CapFingerIdDataModule
from fingerquant.export.__main__ import main
from fingerquant.export.fp32 import export_fp32
from fingerquant.export.graph import read_metadata
from fingerquant.export.quantized import export_quantized
from fingerquant.export.runtime import create_session, optimized_op_types, run_logits
from fingerquant.export.size import size_report
from fingerquant.export.sources import fp_network, load_checkpoint
from fingerquant.export.verify import DEFAULT_TOLERANCE, ParityReport, compare_logits
from fingerquant.quant import ModelQuantConfig, calibrate_activation_ranges, quantize_model


def load_test_split(recordings_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return the synthetic test split: images (N, 1, 8, 8) and labels (N,)."""
    datamodule = CapFingerIdDataModule(task="fingers", data_dir=str(recordings_dir), download=False)
    datamodule.setup("test")
    images, labels = datamodule.test_dataloader().dataset.tensors
    return images.numpy(), labels.numpy()


def test_cli_export_and_verify_quantized(
    quantized_checkpoint: Path, recordings_dir: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "model.onnx"

    assert main([str(quantized_checkpoint), str(output)]) == 0
    exported = capsys.readouterr().out
    assert "Integer products: MatMulInteger x4" in exported
    assert "Weights per bit width" in exported

    assert (
        main(["verify", str(output), str(quantized_checkpoint), "--data_dir", str(recordings_dir)])
        == 0
    )
    verified = capsys.readouterr().out
    assert "100.000 %" in verified
    assert "passed" in verified


def test_verify_fails_on_other_weights(
    quantized_checkpoint: Path, recordings_dir: Path, tmp_path: Path, capsys
) -> None:
    loaded = load_checkpoint(quantized_checkpoint)
    with torch.no_grad():
        for layer in loaded.model.layers():
            layer.module.weight.mul_(-1.0)
    model = export_quantized(loaded.model, loaded.model_name, loaded.task, loaded.class_names)
    output = tmp_path / "other.onnx"
    onnx.save(model, output)

    status = main(
        ["verify", str(output), str(quantized_checkpoint), "--data_dir", str(recordings_dir)]
    )

    assert status == 1
    assert "failed" in capsys.readouterr().out


def export_and_compare(
    quantized: torch.nn.Module, images: np.ndarray, labels: np.ndarray
) -> ParityReport:
    """Export ``quantized`` to integer ONNX and compare its logits with the PyTorch model's."""
    model = export_quantized(quantized, "model1", "fingers", None)
    onnx_logits = run_logits(create_session(model), images)
    with torch.no_grad():
        torch_logits = quantized(torch.from_numpy(images)).numpy()
    return compare_logits(onnx_logits, torch_logits, labels, tolerance=DEFAULT_TOLERANCE)


@pytest.mark.parametrize("bits", [3, 6, 8])
def test_quantized_export_agrees_per_bit_width(
    quantized_checkpoint: Path, recordings_dir: Path, bits: int
) -> None:
    """Cover each weight encoding: packed UINT4 codes (3 bits), centered int8 (6 bits) and
    uint8 codes with zero-points (8 bits)."""
    images, labels = load_test_split(recordings_dir)
    network = fp_network(load_checkpoint(quantized_checkpoint))
    quantized = quantize_model(network, ModelQuantConfig(w_bits=bits, a_bits=bits))
    calibrate_activation_ranges(quantized, [torch.from_numpy(images[:128])])
    quantized.eval()

    report = export_and_compare(quantized, images, labels)

    assert report.agreement == 100.0
    assert report.relative_difference <= DEFAULT_TOLERANCE
    assert report.onnx_accuracy == report.reference_accuracy


def test_negative_batch_norm_scale_agrees(quantized_checkpoint: Path, recordings_dir: Path) -> None:
    """A negative BN scale turns max into min, so the pool must stay after that BN."""
    images, labels = load_test_split(recordings_dir)
    network = fp_network(load_checkpoint(quantized_checkpoint))
    with torch.no_grad():
        network.features.bn2.weight[::2] *= -1.0
    quantized = quantize_model(network, ModelQuantConfig(w_bits=8, a_bits=8))
    calibrate_activation_ranges(quantized, [torch.from_numpy(images[:128])])
    quantized.eval()

    report = export_and_compare(quantized, images, labels)

    assert report.agreement == 100.0
    assert report.relative_difference <= DEFAULT_TOLERANCE


def test_fp32_export_matches_classifier(fingers_checkpoint: Path, recordings_dir: Path) -> None:
    images, _ = load_test_split(recordings_dir)
    loaded = load_checkpoint(fingers_checkpoint)

    model = export_fp32(loaded.model, loaded.model_name, loaded.task, loaded.class_names)
    onnx_logits = run_logits(create_session(model), images)
    with torch.no_grad():
        torch_logits = loaded.model(torch.from_numpy(images)).numpy()

    assert loaded.kind == "classifier"
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-4, atol=1e-5)
    assert read_metadata(model)["class_names"] == loaded.class_names


def test_optimized_graph_multiplies_in_integers(quantized_checkpoint: Path) -> None:
    loaded = load_checkpoint(quantized_checkpoint)
    model = export_quantized(loaded.model, loaded.model_name, loaded.task, loaded.class_names)

    op_types = optimized_op_types(model)
    float_convs = sum(count for op, count in op_types.items() if op.endswith("Conv"))

    assert op_types["MatMulInteger"] == len(loaded.model.blocks)
    for float_product in ("Gemm", "MatMul", "FusedGemm", "ConvInteger"):
        assert op_types[float_product] == 0
    # The only float conv copies the one-channel input image into patches.
    assert float_convs == 1


def test_four_bit_weights_stored_packed(quantized_checkpoint: Path) -> None:
    loaded = load_checkpoint(quantized_checkpoint)
    model = export_quantized(loaded.model, loaded.model_name, loaded.task, loaded.class_names)
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}

    for name, weights in (("conv2", 32 * 16 * 9), ("fc1", 64 * 512)):
        codes = initializers[f"{name}/weight_codes"]
        assert codes.data_type == TensorProto.UINT4
        assert len(codes.raw_data) == weights // 2
    assert initializers["conv1/weight_codes"].data_type == TensorProto.UINT8


def test_size_report_per_bit_width(quantized_checkpoint: Path) -> None:
    loaded = load_checkpoint(quantized_checkpoint)
    report = size_report(
        loaded.model, fp_network(loaded), loaded.model_name, loaded.task, loaded.class_names
    )
    by_bits = {size.bits: size for size in report.bit_widths}

    assert set(by_bits) == {4, 8}
    assert by_bits[4].layers == ("features.conv2", "classifier.fc1")
    assert by_bits[4].weights == 32 * 16 * 9 + 64 * 512
    assert by_bits[4].packed_bytes == by_bits[4].weights // 2
    assert by_bits[8].stored_bytes == 16 * 9 + 10 * 64
    assert report.fp32_weight_bytes == 4 * (by_bits[4].weights + by_bits[8].weights)
    assert report.file_ratio < 0.3


def test_compare_logits_reports_near_tie() -> None:
    reference = np.array([[2.0, 1.0, 0.0], [0.5, 0.499, 0.0], [0.0, 3.0, 1.0]], np.float32)
    onnx_logits = reference.copy()
    onnx_logits[1] = [0.4995, 0.4996, 0.0]

    report = compare_logits(onnx_logits, reference, np.array([0, 1, 1]), tolerance=0.02)

    assert report.agreement == pytest.approx(200 / 3)
    assert report.max_logit_difference == pytest.approx(0.0006, abs=1e-6)
    assert report.max_abs_logit == 3.0
    assert report.relative_difference == pytest.approx(0.0002, abs=1e-6)
    assert report.touches_not_close == 1
    assert report.max_disagreement_margin == pytest.approx(0.001, abs=1e-6)
    assert report.reference_accuracy == pytest.approx(200 / 3)
    assert report.onnx_accuracy == 100.0
    assert not report.passed
