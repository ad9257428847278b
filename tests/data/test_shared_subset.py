"""Counts of the real CapFingerId subset, when ``FINGERQUANT_DATA`` points at it."""

import os
from pathlib import Path

import pytest

from fingerquant.data import load_touches

DATA = os.environ.get("FINGERQUANT_DATA", "")
pytestmark = pytest.mark.skipif(
    not (Path(DATA) / "data" / "CapMatrix_P1_thumb_right.txt.gz").exists(),
    reason="FINGERQUANT_DATA does not point at the shared CapFingerId subset",
)


def test_shared_subset_counts() -> None:
    touches = load_touches(DATA)
    counts = touches.counts

    assert counts["files"] == 82
    assert counts["lines"] == 331_756
    assert counts["frames"] == 261_052
    assert counts["skipped"] == {"empty cell": 2, "field count": 108, "non-integer cell": 1}
    assert counts["touches"] == 157_006
    assert int((~touches.repeat).sum()) == 128_366
