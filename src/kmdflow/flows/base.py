"""What every flow offers the driver (:mod:`kmdflow.solve`): an ODE and pure diagnostics.

A flow is the equation only. It knows nothing about time stepping; the driver owns the loop.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Flow(Protocol):
    """Semi-discretised gradient flow ``dy/dt = rhs(t, y)``.

    Attributes
    ----------
    representation : str
        ``"grid"`` or ``"particles"``; decides which variables the output holds.
    """

    representation: str

    def initial_state(self) -> np.ndarray:
        """The state at ``t = 0``."""

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Time derivative of the state."""

    def energy(self, y: np.ndarray) -> float:
        """The discrepancy energy ``E`` of the state."""

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        """Scalar series saved at every save time: at least energy, dissipation, mass."""

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays kept at snapshot times (density values, or positions and weights)."""
