"""Initial and target measures on the circle and particle placement.

Conventions: :mod:`kmdflow.domains.torus`. Families and the config factory:
:mod:`kmdflow.measures.families`; quantile / random placement: :mod:`kmdflow.measures.placement`.
"""

from kmdflow.measures.families import (
    KIND_KEYS,
    Atoms,
    Density,
    GridDensity,
    Indicator,
    MeasureError,
    Mixture,
    Mode,
    Perturbation,
    Uniform,
    VonMises,
    make_measure,
)
from kmdflow.measures.placement import (
    PLACEMENTS,
    inverse_cdf,
    place_particles,
    quantile_positions,
    random_positions,
)

__all__ = [
    "KIND_KEYS",
    "PLACEMENTS",
    "Atoms",
    "Density",
    "GridDensity",
    "Indicator",
    "MeasureError",
    "Mixture",
    "Mode",
    "Perturbation",
    "Uniform",
    "VonMises",
    "inverse_cdf",
    "make_measure",
    "place_particles",
    "quantile_positions",
    "random_positions",
]
