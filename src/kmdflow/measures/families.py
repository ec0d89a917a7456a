"""The measure families under their former module name (kept so that old imports keep working).

The families now live in :mod:`kmdflow.measures.analytic`, :mod:`~kmdflow.measures.piecewise`,
:mod:`~kmdflow.measures.grid`, :mod:`~kmdflow.measures.atoms` and :mod:`~kmdflow.measures.series`;
the factory in :mod:`~kmdflow.measures.registry`. Import from :mod:`kmdflow.measures` instead.
"""

from kmdflow.measures.analytic import Mode, Perturbation, Uniform, VonMises
from kmdflow.measures.atoms import Atoms
from kmdflow.measures.base import Density, MeasureError
from kmdflow.measures.grid import GridDensity
from kmdflow.measures.piecewise import Indicator, Mixture, piecewise_extrema, smooth_bandwidth
from kmdflow.measures.registry import KIND_KEYS, make_measure
from kmdflow.measures.series import NEGLIGIBLE, SeriesDensity, SeriesTable, series_extrema

__all__ = [
    "KIND_KEYS", "NEGLIGIBLE", "Atoms", "Density", "GridDensity", "Indicator", "MeasureError",
    "Mixture", "Mode", "Perturbation", "SeriesDensity", "SeriesTable", "Uniform", "VonMises",
    "make_measure", "piecewise_extrema", "series_extrema", "smooth_bandwidth",
]
