"""Time integrators: schemes as data (:mod:`.tableaux`), one step (:mod:`.explicit`), step control
(:mod:`.adaptive`). Integrators know nothing about kernels; the driver owns the loop."""

from __future__ import annotations

from kmdflow.integrators.adaptive import (
    IntegratorError,
    NonFiniteState,
    OdeProblem,
    PIController,
    StepSizeUnderflow,
    Stepper,
    TooManyRejections,
    advance,
    error_norm,
    make_stepper,
)
from kmdflow.integrators.explicit import StepResult, rk_step
from kmdflow.integrators.exponential import ExponentialScheme, etd_step, phi  # registers ETD
from kmdflow.integrators.tableaux import SCHEMES, ButcherTableau, get_scheme, register_scheme

__all__ = [
    "SCHEMES",
    "ExponentialScheme",
    "etd_step",
    "phi",
    "ButcherTableau",
    "IntegratorError",
    "NonFiniteState",
    "OdeProblem",
    "PIController",
    "StepResult",
    "StepSizeUnderflow",
    "Stepper",
    "TooManyRejections",
    "advance",
    "error_norm",
    "get_scheme",
    "make_stepper",
    "register_scheme",
    "rk_step",
]
