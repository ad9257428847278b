"""Post-training quantization methods as switches over one reconstruction pipeline.

Each method is PD-Quant with components turned off, so the comparison between
them measures the components and nothing else:

| method     | reconstruction      | s_a learned | QDrop | L_PD | DC  | default p |
| ---------- | ------------------- | ----------- | ----- | ---- | --- | --------- |
| `rtn`      | none                | no          | no    | no   | no  | -         |
| `adaround` | layer output        | no          | no    | no   | no  | 2.0       |
| `brecq`    | block output        | yes         | no    | no   | no  | 2.0       |
| `qdrop`    | block output        | yes         | yes   | no   | no  | 2.0       |
| `pdquant`  | block output        | yes         | yes   | yes  | yes | 2.4       |

``rtn`` keeps round-to-nearest weights and the Lp-searched ranges of stage 1.
``adaround`` optimizes rounding alone against the layer's output before ReLU,
as in AdaRound. ``brecq`` is BRECQ-style block reconstruction with a plain Lp
loss (BRECQ weights it by the Fisher information, which is left out here).
"""

from dataclasses import dataclass
from typing import Literal

Method = Literal["rtn", "adaround", "brecq", "qdrop", "pdquant"]
METHODS: tuple[str, ...] = ("rtn", "adaround", "brecq", "qdrop", "pdquant")


@dataclass(frozen=True)
class Components:
    """Parts of PD-Quant that a run uses."""

    reconstruct: bool
    """Learn AdaRound rounding variables block by block."""
    layer_output: bool
    """Reconstruct the layer's output rather than the block's (ReLU, BN, pooling included)."""
    learn_act_scale: bool
    """Learn the activation step sizes s_a together with the rounding."""
    qdrop: bool
    """Feed the block a random mix of quantized and FP inputs (QDrop)."""
    prediction_difference: bool
    """Add ``L_PD / lambda_r`` to the loss."""
    distribution_correction: bool
    """Correct each block's FP input towards the BN statistics before reconstruction."""
    default_p: float
    """Exponent of ``L_reg`` when the run does not set ``p``."""


COMPONENTS: dict[str, Components] = {
    "rtn": Components(False, False, False, False, False, False, 2.0),
    "adaround": Components(True, True, False, False, False, False, 2.0),
    "brecq": Components(True, False, True, False, False, False, 2.0),
    "qdrop": Components(True, False, True, True, False, False, 2.0),
    "pdquant": Components(True, False, True, True, True, True, 2.4),
}


def components(method: str) -> Components:
    """Return the components of ``method``, raising ``ValueError`` for an unknown name."""
    if method not in COMPONENTS:
        raise ValueError(f"Unknown method {method!r}: expected one of {', '.join(METHODS)}.")
    return COMPONENTS[method]
