"""ONNX export of fingerquant models, with a parity check and a size report.

A quantized checkpoint becomes a graph whose convs and matrix products run in
integers in onnxruntime (``quantized.py``), a classifier checkpoint an FP32 graph
(``fp32.py``). ``verify.py`` compares a graph with its checkpoint on the test
split, and ``size.py`` measures both files and the weights per bit width.
"""

from fingerquant.export.fp32 import export_fp32
from fingerquant.export.quantized import export_quantized
from fingerquant.export.runtime import create_session, optimized_op_types, run_logits
from fingerquant.export.size import SizeReport, size_report
from fingerquant.export.sources import (
    LoadedCheckpoint,
    Predictor,
    export_checkpoint,
    fp_network,
    load_checkpoint,
    load_predictor,
)
from fingerquant.export.verify import ParityReport, compare_logits, verify_parity

__all__ = [
    "LoadedCheckpoint",
    "ParityReport",
    "Predictor",
    "SizeReport",
    "compare_logits",
    "create_session",
    "export_checkpoint",
    "export_fp32",
    "export_quantized",
    "fp_network",
    "load_checkpoint",
    "load_predictor",
    "optimized_op_types",
    "run_logits",
    "size_report",
    "verify_parity",
]
