"""The iteration schedule of stage 2: for each block, DC then reconstruction.

One training step is one iteration of one phase, so a single ``fit`` runs the
whole schedule and the step count keeps increasing across blocks and phases.
"""

import bisect
from dataclasses import dataclass
from typing import Literal

PhaseKind = Literal["dc", "recon"]


@dataclass(frozen=True)
class Phase:
    """``iters`` consecutive steps of one kind on one block, starting at step ``start``."""

    kind: PhaseKind
    block: int
    start: int
    iters: int

    @property
    def stop(self) -> int:
        return self.start + self.iters


class Schedule:
    """Phases in run order, with the lookup from a global step to its phase."""

    def __init__(self, iterations: list[tuple[int, int]]) -> None:
        """Build the schedule from (dc_iters, recon_iters) per block, leaving out empty phases."""
        self.phases: list[Phase] = []
        start = 0
        for block, (dc_iters, recon_iters) in enumerate(iterations):
            for kind, iters in (("dc", dc_iters), ("recon", recon_iters)):
                if iters > 0:
                    self.phases.append(Phase(kind, block, start, iters))
                    start += iters
        self.total_steps = start
        self._starts = [phase.start for phase in self.phases]

    def phase_at(self, step: int) -> Phase:
        """Return the phase that contains global ``step``."""
        if not 0 <= step < self.total_steps:
            raise IndexError(f"step {step} is outside the schedule of {self.total_steps} steps")
        return self.phases[bisect.bisect_right(self._starts, step) - 1]

    def last_phase_of(self, block: int) -> Phase | None:
        """Return the last phase of ``block``, or None if the block has no steps."""
        phases = [phase for phase in self.phases if phase.block == block]
        return phases[-1] if phases else None
