"""Time integrators: schemes as data (:mod:`.tableaux`), one step (:mod:`.explicit`), step control
(:mod:`.adaptive`) with its error norms and controller (:mod:`.error_control`), exponential schemes
(:mod:`.exponential`) and their phi-functions (:mod:`.phi_functions`). Integrators know nothing
about kernels; the driver owns the loop."""

from __future__ import annotations

from kmdflow.integrators.adaptive import (
    IntegratorError,
    NonFiniteState,
    OdeProblem,
    Stepper,
    StepSizeUnderflow,
    TooManyRejections,
    advance,
    make_stepper,
)
from kmdflow.integrators.error_control import PIController, error_norm
from kmdflow.integrators.explicit import StepResult, rk_step
from kmdflow.integrators.exponential import ExponentialScheme, etd_step  # registers ETD
from kmdflow.integrators.phi_functions import phi
from kmdflow.integrators.tableaux import (
    SCHEMES,
    ButcherTableau,
    get_scheme,
    register_scheme,
)

__all__ = [
    "SCHEMES",
    "ButcherTableau",
    "ExponentialScheme",
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
    "etd_step",
    "get_scheme",
    "make_stepper",
    "phi",
    "register_scheme",
    "rk_step",
]
