"""Integer ONNX export of a quantized model, block by block.

Each block becomes its FP ``pre`` ops, then the integer layer (QuantizeLinear, then
MatMulInteger on the codes, see ``integer.py``) and the rescale of the int32
accumulator to float. Its FP ``post`` ops follow: ReLU, BatchNorm as a per-channel
Mul and Add, max-pooling and flattening. BatchNorm follows the ReLU in these models,
so it cannot fold into the conv before it. It stays a separate affine step, as in
the simulation. The next block's QuantizeLinear then requantizes, and the last
layer's float output is the logits.

Max-pooling moves ahead of the rescale, ReLU and BatchNorm when that gives the same
floats (see ``_hoistable_pool``), so those ops run on a quarter of the values.
"""

import onnx
from torch import nn

from fingerquant.export.float_ops import (
    PASS_THROUGH_TYPES,
    batch_norm_terms,
    chain_modules,
    emit_graph_module,
    emit_max_pool,
    emit_module,
)
from fingerquant.export.graph import GraphBuilder, Value, image_value
from fingerquant.export.integer import emit_cast_float, emit_integer_product, emit_rescale
from fingerquant.quant.checkpoint import layer_record
from fingerquant.quant.layers import FrozenBatchNorm
from fingerquant.quant.wrap import QuantBlock, QuantizedModel


def export_quantized(
    model: QuantizedModel, model_name: str, task: str | None, class_names: list[str] | None
) -> onnx.ModelProto:
    """Return the integer ONNX graph of a quantized model with every quantizer enabled.

    The weight codes, scales and zero-points are those ``checkpoint.layer_record``
    stores, so the graph computes what the simulation computes, up to float rounding
    of the layer outputs (see ``integer.py``).

    Raises:
        ValueError: if a block has weight or input quantization disabled, or an input
            quantizer is not calibrated, because the graph would then differ from the model.
        NotImplementedError: for a layer or op without an ONNX translation here.
    """
    _check_fully_quantized(model)
    builder = GraphBuilder()
    x = image_value()
    records = []
    for block in model.blocks:
        record = layer_record(block.name, block.layer)
        records.append(record)
        x = emit_graph_module(builder, block.pre, x)
        x = _emit_block_layer_and_post(builder, block, record, x)

    num_classes = x.shape[0]
    layer_bits = {
        record["name"]: {"weight_bits": record["weight_bits"], "input_bits": record["input_bits"]}
        for record in records
    }
    return builder.build(
        x,
        num_classes,
        doc_string=(
            f"{model_name} classifier of 8 x 8 touch images, quantized "
            f"{precision_name(records)}. Convs and matrix products run in integers."
        ),
        metadata={
            "precision": precision_name(records),
            "model": model_name,
            "task": task,
            "class_names": class_names or [str(index) for index in range(num_classes)],
            "layer_bits": layer_bits,
        },
    )


def precision_name(records: list[dict]) -> str:
    """Return ``w<b>a<b>`` from the inner layers' bit widths (the first and last layer's
    when there are no inner layers), joining several widths with ``/``."""
    inner = records[1:-1] or records
    weight_bits = sorted({record["weight_bits"] for record in inner})
    input_bits = sorted({record["input_bits"] for record in inner})
    return "w{}a{}".format("/".join(map(str, weight_bits)), "/".join(map(str, input_bits)))


def _emit_block_layer_and_post(
    builder: GraphBuilder, block: QuantBlock, record: dict, x: Value
) -> Value:
    """Add the integer layer of ``block``, its rescale and its ``post`` ops."""
    name = block.name
    accumulator = emit_integer_product(builder, name, block.layer.module, record, x)
    y = emit_cast_float(builder, name, accumulator)

    post = chain_modules(block.post)
    pool_index = _hoistable_pool(post)
    # An output offset differs between positions, so pooling no longer commutes with it.
    if post is None or pool_index is None or record.get("output_offset") is not None:
        y = emit_rescale(builder, name, record, y)
        return emit_graph_module(builder, block.post, y)

    pool_name, pool = post[pool_index]
    y = emit_max_pool(builder, pool_name, pool, y)
    y = emit_rescale(builder, name, record, y)
    for module_name, module in post[:pool_index] + post[pool_index + 1 :]:
        y = emit_module(builder, module_name, module, y)
    return y


def _hoistable_pool(post: list[tuple[str, nn.Module]] | None) -> int | None:
    """Return the index of the max-pool in ``post`` that may run on the float accumulator.

    Let ``f`` be what runs before the pool, per channel: the rescale ``a * m + b`` with
    ``m = s_a * s_w > 0``, then ReLU and BatchNorm ``y * alpha + beta``. When every
    ``alpha >= 0``, each of these float operations is non-decreasing (round-to-nearest
    preserves order), so ``max(f(a_1), ..., f(a_k)) == f(max(a_1, ..., a_k))``
    exactly, and pooling first gives the same floats. Returns None when ``post`` is
    not a plain chain, has no single max-pool, or something else precedes the pool.
    """
    if post is None:
        return None
    pools = [index for index, (_, module) in enumerate(post) if type(module) is nn.MaxPool2d]
    if len(pools) != 1:
        return None
    for _, module in post[: pools[0]]:
        if isinstance(module, PASS_THROUGH_TYPES) or type(module) is nn.ReLU:
            continue
        if isinstance(module, FrozenBatchNorm):
            alpha, _ = batch_norm_terms(module)
            # A negative BN scale turns max into min, so the pool stays after that BN.
            if bool((alpha >= 0).all()):
                continue
        return None
    return pools[0]


def _check_fully_quantized(model: QuantizedModel) -> None:
    """Raise ValueError unless every block quantizes its weight and its input."""
    for block in model.blocks:
        layer = block.layer
        if not (layer.weight_quant_enabled and layer.act_quant_enabled):
            raise ValueError(
                f"block {block.name!r} has weight_quant={layer.weight_quant_enabled}, "
                f"act_quant={layer.act_quant_enabled}: the integer export needs both enabled. "
                "Call model.set_quant_state(True, True) after calibration."
            )
        if not layer.input_quantizer.is_initialized:
            raise ValueError(
                f"block {block.name!r} has an uncalibrated input quantizer: run "
                "calibrate_activation_ranges() before exporting."
            )
