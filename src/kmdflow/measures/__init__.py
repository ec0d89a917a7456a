r"""Initial and target measures on the torus :math:`T^d` (``d = 1, 2, 3``) and particle placement.

Positions, the density normalisation (w.r.t. ``dx / (2 pi)^d``, so the uniform measure has
density ``1``), the Fourier convention and the one-sided layout of ``fourier_nd`` are those of
:mod:`kmdflow.domains.torus`. Every density is a probability density (coefficient 1 at ``k = 0``).

Every density (:class:`TorusDensity`) has ``dim``, ``fourier_nd(n)``, ``values(points)``,
``sample(n, seed, method)``, ``min_value()``, ``max_value()`` and ``regularity()``. On the circle
(:class:`Density`) it also has ``fourier(n_modes)`` and the cdf; in ``d >= 2``
(:class:`DensityND`) ``values`` takes points of shape ``(..., d)`` and ``sample`` returns
``(n, d)``.

Kinds (:func:`make_measure` builds them from a config's kind + params and ``dim``), with the
density and the Sobolev regularity ``r*`` of ``rho - 1`` that ``regularity()`` reports:

- ``uniform``: ``1``; ``r* = inf``.
- ``mode``: ``1 + a cos(k . x)``; ``r* = inf``.
- ``perturbation``: ``1 + a g / max|g|``, ``g = sum_{1 <= |k| <= K} |k|^-decay cos(k . x + phi_k)``
  (one ``k`` of each pair ``+-k``); ``r* = decay - d/2``.
- ``von_mises``: ``prod_i exp(kappa cos(x_i - loc_i)) / I_0(kappa)``; ``r* = inf``.
- ``indicator``: ``c`` on the arc (``d = 1``) or box of arcs ``[start, stop]``, ``floor``
  elsewhere; ``r* = 1/2``.
- ``mixture``: ``sum_i w_i rho_i`` (weights normalised); the smallest ``r*`` of its parts.
- ``file`` with grid values: their trigonometric interpolant (normalised); ``r*`` unknown.
- ``particles``, and ``file`` with positions: :class:`Atoms` (positions ``(N,)`` in ``d = 1``,
  ``(N, d)`` otherwise).

On the circle, ``cdf(x) = mu([0, x))`` is exact up to round-off: closed forms for uniform, mode
and indicator; for the band-limited families (perturbation, von Mises, grid) the term-by-term
integrated series, evaluated at many points through Taylor tables
(:class:`~kmdflow.measures.series.SeriesTable`). In ``d >= 2`` sampling maps uniforms (i.i.d. or
Sobol', :mod:`~kmdflow.measures.uniforms`) through exact per-axis or conditional inverse cdfs.

Modules: :mod:`~kmdflow.measures.base` (:class:`TorusDensity`, :class:`Density`,
:class:`MeasureError`), :mod:`~kmdflow.measures.atoms`, :mod:`~kmdflow.measures.series`
(band-limited machinery on the circle), :mod:`~kmdflow.measures.analytic` (uniform, mode,
perturbation, von Mises), :mod:`~kmdflow.measures.piecewise` (indicator, mixture),
:mod:`~kmdflow.measures.grid` (grid values, any ``d``), :mod:`~kmdflow.measures.files` (file
readers), :mod:`~kmdflow.measures.registry` (:func:`make_measure`, :data:`KIND_KEYS`),
:mod:`~kmdflow.measures.placement` (quantile / random / Sobol' placement),
:mod:`~kmdflow.measures.uniforms` (the uniforms behind sampling); for ``d >= 2``:
:mod:`~kmdflow.measures.base_nd` (:class:`DensityND`), :mod:`~kmdflow.measures.trig`
(sparse real Fourier series), :mod:`~kmdflow.measures.series_nd` (band-limited densities and
their Rosenblatt sampler), :mod:`~kmdflow.measures.analytic_nd` (uniform, von Mises, mode,
perturbation), :mod:`~kmdflow.measures.piecewise_nd` (box, mixture).
"""

from kmdflow.measures.analytic import Mode, Perturbation, Uniform, VonMises
from kmdflow.measures.analytic_nd import (
                                          ModeND,
                                          PerturbationND,
                                          ProductDensity,
                                          UniformND,
                                          VonMisesND,
)
from kmdflow.measures.atoms import Atoms
from kmdflow.measures.base import SAMPLE_METHODS, Density, MeasureError, TorusDensity
from kmdflow.measures.base_nd import DensityND
from kmdflow.measures.grid import GridDensity, GridDensityND
from kmdflow.measures.piecewise import Indicator, Mixture
from kmdflow.measures.piecewise_nd import Box, MixtureND
from kmdflow.measures.placement import (
                                          PLACEMENTS,
                                          inverse_cdf,
                                          place_particles,
                                          quantile_positions,
                                          random_positions,
)
from kmdflow.measures.registry import DIMS, KIND_KEYS, make_measure
from kmdflow.measures.uniforms import uniform_points

__all__ = [
    "DIMS",
    "KIND_KEYS",
    "PLACEMENTS",
    "SAMPLE_METHODS",
    "Atoms",
    "Box",
    "Density",
    "DensityND",
    "GridDensity",
    "GridDensityND",
    "Indicator",
    "MeasureError",
    "Mixture",
    "MixtureND",
    "Mode",
    "ModeND",
    "Perturbation",
    "PerturbationND",
    "ProductDensity",
    "TorusDensity",
    "Uniform",
    "UniformND",
    "VonMises",
    "VonMisesND",
    "inverse_cdf",
    "make_measure",
    "place_particles",
    "quantile_positions",
    "random_positions",
    "uniform_points",
]
