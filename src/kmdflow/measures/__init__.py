r"""Initial and target measures on the circle :math:`T^1` and particle placement.

Positions, the density normalisation (w.r.t. ``dx / 2 pi``, so the uniform measure has density
``1``) and the Fourier convention are those of :mod:`kmdflow.domains.torus`. Every density is a
probability density: ``fourier(n)[0] == 1``.

Kinds (:func:`make_measure` builds them from a config's kind + params), with the density and the
Sobolev regularity ``r*`` of ``rho - 1`` that :meth:`Density.regularity` reports:

- ``uniform``: ``1``; ``r* = inf``.
- ``mode``: ``1 + a cos(k x)``; ``r* = inf``.
- ``perturbation``: ``1 + a g / max|g|``, ``g = sum_{k=1}^{K} k^-decay cos(k x + phi_k)``;
  ``r* = decay - 1/2``.
- ``von_mises``: ``exp(kappa cos(x - loc)) / I_0(kappa)``; ``r* = inf``.
- ``indicator``: ``c`` on the arc ``[start, stop]``, ``floor`` elsewhere; ``r* = 1/2``.
- ``mixture``: ``sum_i w_i rho_i`` (weights normalised); the smallest ``r*`` of its parts.
- ``file`` with grid values: their trigonometric interpolant (normalised); ``r*`` unknown.
- ``particles``, and ``file`` with positions: :class:`Atoms`.

``cdf(x) = mu([0, x))`` is exact up to round-off: closed forms for uniform, mode and indicator;
for the band-limited families (perturbation, von Mises, grid) the term-by-term integrated series,
evaluated at many points through Taylor tables (:class:`~kmdflow.measures.series.SeriesTable`).

Modules: :mod:`~kmdflow.measures.base` (:class:`Density`, :class:`MeasureError`),
:mod:`~kmdflow.measures.atoms`, :mod:`~kmdflow.measures.series` (band-limited machinery),
:mod:`~kmdflow.measures.analytic` (uniform, mode, perturbation, von Mises),
:mod:`~kmdflow.measures.piecewise` (indicator, mixture), :mod:`~kmdflow.measures.grid`,
:mod:`~kmdflow.measures.files` (file readers), :mod:`~kmdflow.measures.registry`
(:func:`make_measure`, :data:`KIND_KEYS`), :mod:`~kmdflow.measures.placement` (quantile / random
placement).
"""

from kmdflow.measures.analytic import Mode, Perturbation, Uniform, VonMises
from kmdflow.measures.atoms import Atoms
from kmdflow.measures.base import Density, MeasureError
from kmdflow.measures.grid import GridDensity
from kmdflow.measures.piecewise import Indicator, Mixture
from kmdflow.measures.placement import (
    PLACEMENTS,
    inverse_cdf,
    place_particles,
    quantile_positions,
    random_positions,
)
from kmdflow.measures.registry import KIND_KEYS, make_measure

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
