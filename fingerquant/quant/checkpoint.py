"""Quantized checkpoints: integer weights, scales, zero-points and the config that made them.

The file is a ``torch.save`` dict. ``layers`` lists, per quantized layer, what
an integer runtime needs (uint8 weight codes ``q`` with per-channel ``scale`` and
``zero_point``, the FP bias, the float ``output_offset`` that constant input channels add,
the input's ``scale`` and ``zero_point``, bit widths). ``fp_state`` and
``quant_state`` rebuild the simulated model exactly, so that ``load_quantized``
returns the same predictions as the run that saved it.
"""

import io
from pathlib import Path
from typing import Any

import torch

from fingerquant.errors import DataError
from fingerquant.models import create_model
from fingerquant.paths import write_atomically
from fingerquant.quant.adaround import AdaRoundQuantizer
from fingerquant.quant.range_search import RangeSearchConfig
from fingerquant.quant.wrap import ModelQuantConfig, QuantizedModel, quantize_model

FORMAT = "fingerquant-quantized"
FORMAT_VERSION = 1


def layer_record(name: str, layer) -> dict[str, Any]:
    """Return the integer description of one quantized layer."""
    weight_quantizer, input_quantizer = layer.weight_quantizer, layer.input_quantizer
    return {
        "name": name,
        "kind": type(layer.module).__name__,
        "weight_int": layer.int_weight().to(torch.uint8),
        "weight_scale": weight_quantizer.scale.detach().clone(),
        "weight_zero_point": weight_quantizer.zero_point.detach().clone(),
        "weight_bits": weight_quantizer.config.bits,
        "bias": None if layer.bias is None else layer.bias.detach().clone(),
        "output_offset": None if layer.output_offset is None else layer.output_offset.clone(),
        "input_scale": input_quantizer.scale.detach().clone(),
        "input_zero_point": input_quantizer.zero_point.detach().clone(),
        "input_bits": input_quantizer.config.bits,
    }


def save_quantized(path: Path, module, results: dict[str, Any]) -> None:
    """Write the quantized model of a finished ``PDQuantModule`` to ``path`` atomically."""
    module.check_ready()
    config = module.quant_config
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": module.task,
        "model": module.model_name,
        "num_classes": module.num_classes,
        "class_names": module.class_names,
        "hyper_parameters": dict(module.hparams),
        "quant_config": {
            "w_bits": config.w_bits,
            "a_bits": config.a_bits,
            "first_last_bits": config.first_last_bits,
            "range_p": config.range_search.p,
        },
        "adaround_layers": [
            block.name
            for block in module.qmodel.blocks
            if isinstance(block.layer.weight_quantizer, AdaRoundQuantizer)
        ],
        "layers": [layer_record(block.name, block.layer) for block in module.qmodel.blocks],
        "fp_state": module.fp_state,
        "quant_state": module.qmodel.state_dict(),
        "results": results,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())


def load_quantized(path: str | Path) -> tuple[QuantizedModel, dict[str, Any]]:
    """Rebuild the quantized model saved at ``path``; return it in eval mode with the payload."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError as error:
        raise DataError(f"Quantized checkpoint not found: {path}.") from error
    except Exception as error:
        raise DataError(f"{path}: not a readable quantized checkpoint ({error}).") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(
            f"{path}: not a fingerquant quantized checkpoint. Pass a file written by quantize.py "
            "(a classifier checkpoint from train.py is an FP model)."
        )
    if payload["format_version"] > FORMAT_VERSION:
        raise DataError(
            f"{path}: format version {payload['format_version']} is newer than this fingerquant "
            f"reads ({FORMAT_VERSION}); upgrade fingerquant."
        )

    fp_model = create_model(payload["model"], payload["num_classes"])
    fp_model.load_state_dict(payload["fp_state"])
    settings = payload["quant_config"]
    config = ModelQuantConfig(
        w_bits=settings["w_bits"],
        a_bits=settings["a_bits"],
        first_last_bits=settings["first_last_bits"],
        range_search=RangeSearchConfig(p=settings["range_p"]),
    )
    model = quantize_model(fp_model, config)
    for block in model.blocks:
        if block.name in payload["adaround_layers"]:
            block.layer.use_adaround().harden()
    for index, block in enumerate(model.blocks):
        offset = payload["quant_state"].get(f"blocks.{index}.layer.output_offset")
        if offset is not None:
            block.layer.output_offset = torch.zeros_like(offset)
    model.load_state_dict(payload["quant_state"])
    model.set_quant_state(weight_quant=True, act_quant=True)
    return model.eval(), payload
