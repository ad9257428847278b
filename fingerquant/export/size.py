"""Size report: bytes of the FP32 and the integer ONNX file, and of the weights per bit width."""

from collections import defaultdict
from dataclasses import dataclass

from torch import nn

from fingerquant.export.fp32 import export_fp32
from fingerquant.export.quantized import export_quantized
from fingerquant.export.weights import packed_weight_bytes, stored_weight_bytes
from fingerquant.quant.checkpoint import layer_record
from fingerquant.quant.wrap import QuantizedModel

FP32_BYTES = 4


@dataclass(frozen=True)
class BitWidthSize:
    """Weights of one bit width in a quantized model.

    Attributes:
        bits: weight bit width.
        layers: names of the layers with this width.
        weights: number of weights.
        fp32_bytes: bytes of these weights in float32.
        stored_bytes: bytes of their codes in the ONNX file (two per byte up to 4 bits).
        packed_bytes: bytes of their codes packed without gaps, ``weights * bits / 8``.
    """

    bits: int
    layers: tuple[str, ...]
    weights: int
    fp32_bytes: int
    stored_bytes: int
    packed_bytes: int


@dataclass(frozen=True)
class SizeReport:
    """File sizes of one model exported in FP32 and in integers.

    Attributes:
        fp32_file_bytes: size of the FP32 ONNX file.
        quantized_file_bytes: size of the integer ONNX file.
        bit_widths: the weights per bit width, narrowest first.
    """

    fp32_file_bytes: int
    quantized_file_bytes: int
    bit_widths: tuple[BitWidthSize, ...]

    @property
    def file_ratio(self) -> float:
        """Integer file size over FP32 file size."""
        return self.quantized_file_bytes / self.fp32_file_bytes

    @property
    def stored_weight_bytes(self) -> int:
        return sum(size.stored_bytes for size in self.bit_widths)

    @property
    def packed_weight_bytes(self) -> int:
        return sum(size.packed_bytes for size in self.bit_widths)

    @property
    def fp32_weight_bytes(self) -> int:
        return sum(size.fp32_bytes for size in self.bit_widths)


def size_report(
    quantized: QuantizedModel,
    fp_model: nn.Module,
    model_name: str,
    task: str | None,
    class_names: list[str] | None,
) -> SizeReport:
    """Export ``fp_model`` and ``quantized`` in memory and measure both files and the weights.

    Biases, scales, zero-points and BatchNorm terms stay float32 or uint8 in both files,
    so they count in the file sizes but not in the weight bytes.
    """
    fp32_bytes = export_fp32(fp_model, model_name, task, class_names).ByteSize()
    quantized_bytes = export_quantized(quantized, model_name, task, class_names).ByteSize()

    weight_counts: dict[int, dict[str, int]] = defaultdict(dict)
    for block in quantized.blocks:
        record = layer_record(block.name, block.layer)
        weight_counts[record["weight_bits"]][block.name] = record["weight_int"].numel()
    bit_widths = tuple(
        BitWidthSize(
            bits=bits,
            layers=tuple(counts),
            weights=sum(counts.values()),
            fp32_bytes=FP32_BYTES * sum(counts.values()),
            stored_bytes=sum(stored_weight_bytes(count, bits) for count in counts.values()),
            packed_bytes=sum(packed_weight_bytes(count, bits) for count in counts.values()),
        )
        for bits, counts in sorted(weight_counts.items())
    )
    return SizeReport(fp32_bytes, quantized_bytes, bit_widths)
