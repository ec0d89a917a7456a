r"""The smooth families on :math:`T^d`, ``d >= 2``: uniform, von Mises, one mode, perturbation.

Densities are w.r.t. ``dx / (2 pi)^d`` (conventions and the one-sided layout:
:mod:`kmdflow.domains.torus`). Uniform and von Mises are products of circle densities
(:class:`ProductDensity`: exact per-axis inverse cdfs); mode and perturbation are finite Fourier
series (:class:`~kmdflow.measures.series_nd.SeriesDensityND`).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kmdflow.domains.torus import TWO_PI, wavevectors
from kmdflow.measures.analytic import PhasePerturbation, Uniform, VonMises
from kmdflow.measures.base import Density, MeasureError, require_integer
from kmdflow.measures.base_nd import (
    DensityND,
    axis_vector,
    clip_positions,
    layout_shape,
)
from kmdflow.measures.series_nd import SeriesDensityND
from kmdflow.measures.trig import TrigSeries, trig_extrema

#: Largest ``modes`` of a perturbation in d = 2 and d = 3: set-up time (finding ``max|g|``) and
#: memory grow like the number of terms, ``~ K^d``; at the limits the set-up takes seconds.
MAX_MODES_ND = {2: 512, 3: 64}


class ProductDensity(DensityND):
    r"""A product :math:`\rho(x) = \prod_i \rho_i(x_i)` of circle densities (:attr:`factors`).

    Subclasses give ``dim`` and :attr:`factors`.

    Notes
    -----
    :math:`\hat\mu(k) = \prod_i \hat\mu_i(k_i)` (negative ``k_i``: the conjugate); samples take
    ``x_i = F_i^{-1}(u_i)`` axis by axis (exact inverse cdfs of the factors); ``min`` and ``max``
    are the products of the factors' (the factors are ``>= 0``); ``r*`` is the smallest of the
    non-uniform factors' (``inf`` if all are uniform).
    """

    @property
    @abstractmethod
    def factors(self) -> tuple[Density, ...]:
        """One circle density per axis."""

    @property
    def bandwidth(self):
        return max(f.bandwidth for f in self.factors)

    def fourier_nd(self, n):
        shape = layout_shape(n, self.dim)
        out = np.ones((1,) * self.dim, dtype=complex)
        for factor, k in zip(self.factors, wavevectors(n, self.dim)):
            c = factor.fourier(n // 2 + 1)
            value = np.where(k >= 0, c[np.abs(k)], np.conj(c[np.abs(k)]))
            out = out * np.where(2 * np.abs(k) < n, value, 0.0)
        return np.broadcast_to(out, shape).copy()

    def _values(self, points):
        out = np.ones(points.shape[0])
        for i, factor in enumerate(self.factors):
            out = out * factor.values(points[:, i])
        return out

    def transform(self, u):
        from kmdflow.measures.placement import inverse_cdf

        return clip_positions(np.column_stack([inverse_cdf(f, u[:, i])
                                               for i, f in enumerate(self.factors)]))

    def min_value(self):
        return float(np.prod([f.min_value() for f in self.factors]))

    def max_value(self):
        return float(np.prod([f.max_value() for f in self.factors]))

    def regularity(self):
        values = [f.regularity() for f in self.factors if not isinstance(f, Uniform)]
        if any(v is None for v in values):
            return None
        return min(values, default=np.inf)


@dataclass(frozen=True)
class UniformND(ProductDensity):
    """The uniform probability measure on :math:`T^d`, ``rho = 1``.

    Parameters
    ----------
    dim : int
        ``d >= 2``.
    """

    dim: int

    def __post_init__(self):
        object.__setattr__(self, "dim", require_integer("dim", self.dim, 2))

    @property
    def factors(self):
        return (Uniform(),) * self.dim


@dataclass(frozen=True)
class VonMisesND(ProductDensity):
    r"""The product von Mises density :math:`\prod_i e^{\kappa\cos(x_i - l_i)} / I_0(\kappa)`.

    Parameters
    ----------
    loc : tuple of float
        Mode location ``(l_1 .. l_d)``, ``d >= 2``.
    kappa : float
        Concentration ``>= 0``, the same on every axis.

    Notes
    -----
    :math:`\hat\mu(k) = \prod_i \frac{I_{k_i}(\kappa)}{I_0(\kappa)} e^{-i k_i l_i}`; ``r* = inf``.
    """

    loc: tuple
    kappa: float

    def __post_init__(self):
        loc = tuple(float(v) for v in np.atleast_1d(np.asarray(self.loc, dtype=float)))
        if len(loc) < 2:
            raise MeasureError("loc", f"loc = {self.loc!r}: give one location per axis (d >= 2)")
        object.__setattr__(self, "loc", loc)
        object.__setattr__(self, "kappa", float(self.kappa))
        _ = self.factors  # builds (and so validates) every factor now

    @property
    def dim(self):
        return len(self.loc)

    @cached_property
    def factors(self):
        return tuple(VonMises(l, self.kappa) for l in self.loc)


@dataclass(frozen=True)
class ModeND(SeriesDensityND):
    r"""One Fourier mode, :math:`\rho(x) = 1 + a\cos(k\cdot x)`.

    Parameters
    ----------
    k : tuple of int
        Wavevector, ``d >= 2`` integers, not all zero.
    amplitude : float
        ``a`` with ``|a| <= 1``.

    Notes
    -----
    :math:`\hat\mu(\pm k) = a/2`; ``min = 1 - |a|``, ``max = 1 + |a|``, ``r* = inf``.
    """

    k: tuple
    amplitude: float

    def __post_init__(self):
        k = tuple(np.atleast_1d(np.asarray(self.k)).tolist())
        if len(k) < 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in k) \
                or not any(k):
            raise MeasureError("k", f"k = {self.k!r}: give d >= 2 integers, not all zero")
        if not np.isfinite(self.amplitude) or abs(self.amplitude) > 1:
            raise MeasureError("amplitude", f"amplitude = {self.amplitude!r}: |amplitude| must "
                               "be <= 1 or the density is negative; choose a value in [-1, 1]")
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "amplitude", float(self.amplitude))

    @property
    def dim(self):
        return len(self.k)

    @cached_property
    def series(self):
        k = np.array(self.k)
        a = self.amplitude / 2
        return TrigSeries(np.stack([np.zeros_like(k), k, -k]), [1.0, a, a])

    def _values(self, points):
        return 1.0 + self.amplitude * np.cos(points @ np.array(self.k, dtype=float))

    def min_value(self):
        return 1.0 - abs(self.amplitude)

    def max_value(self):
        return 1.0 + abs(self.amplitude)

    def regularity(self):
        return np.inf


@dataclass(frozen=True)
class PerturbationND(PhasePerturbation, SeriesDensityND):
    r"""A random-phase perturbation of the uniform density with power-law spectrum, on :math:`T^d`.

    Parameters
    ----------
    amplitude : float
        ``a = max |rho - 1|``, ``|a| <= 1``.
    decay : float
        Spectral decay: ``|f_hat(k)| ~ |k|^-decay``.
    seed : int
        Seed of the phases.
    modes : int
        Radius ``K >= 1`` of the ball of wavevectors (at most :data:`MAX_MODES_ND`).
    dim : int
        ``d >= 2``.

    Notes
    -----
    .. math::

        \rho = 1 + a\,\frac{g}{\max|g|}, \qquad
        g(x) = \sum_{k \in R} |k|^{-\mathrm{decay}} \cos(k\cdot x + \phi_k),

    ``R`` = one representative of each pair ``+-k`` of integer wavevectors with
    ``1 <= |k| <= K`` (Euclidean norm): the one whose first non-zero component is positive.
    The phases are ``default_rng(seed).uniform(0, 2 pi, len(R))``, handed out in the order of
    increasing ``|k|^2``, ties in increasing lexicographic order of ``(k_1, .., k_d)``; so a
    larger ``K`` keeps the phases of the smaller ball (for ``d = 1`` this is the order of
    :class:`~kmdflow.measures.analytic.Perturbation`). ``max|g|`` is found by
    :func:`~kmdflow.measures.trig.trig_extrema` (samples on a fixed grid set by ``K`` alone,
    refined by Newton steps), independent of any solver, so one config gives one ``mu_0``:
    ``max|rho - 1| = |a|`` and ``f_hat(k) = a |k|^-decay e^{i phi_k} / (2 max|g|)``. The
    regularity reported is ``r* = decay - d/2`` (MATH.md section 5).
    """

    amplitude: float
    decay: float
    seed: int
    modes: int
    dim: int

    def __post_init__(self):
        self._check_parameters({"seed": 0, "modes": 1, "dim": 2})
        limit = MAX_MODES_ND.get(self.dim)
        if limit is None or self.modes > limit:
            allowed = ", ".join(f"{v} in d = {d}" for d, v in MAX_MODES_ND.items())
            raise MeasureError("modes", f"modes = {self.modes!r}: at most {allowed}")

    @cached_property
    def representatives(self) -> np.ndarray:
        """The wavevectors of ``R`` in the order the phases are drawn, shape ``(|R|, d)``."""
        kmax = self.modes
        k = np.indices((2 * kmax + 1,) * self.dim, dtype=np.int32).reshape(self.dim, -1) - kmax
        norm2 = np.sum(k.astype(np.int64) ** 2, axis=0)
        first = np.zeros(k.shape[1], dtype=np.int32)
        for i in range(self.dim - 1, -1, -1):  # the first non-zero component
            first = np.where(k[i] != 0, k[i], first)
        keep = (norm2 >= 1) & (norm2 <= kmax * kmax) & (first > 0)
        k, norm2 = k[:, keep], norm2[keep]
        order = np.lexsort((*k[::-1], norm2))
        return np.ascontiguousarray(k[:, order].T)

    @cached_property
    def _g_series(self) -> TrigSeries:
        k = self.representatives
        phases = np.random.default_rng(self.seed).uniform(0.0, TWO_PI, k.shape[0])
        half = 0.5 * np.sqrt(np.sum(k.astype(float) ** 2, axis=1)) ** (-self.decay) \
            * np.exp(1j * phases)
        return TrigSeries(np.concatenate([k, -k]), np.concatenate([half, np.conj(half)]))

    @cached_property
    def _g_extrema(self) -> tuple[float, float]:
        return trig_extrema(self._g_series)

    @cached_property
    def series(self):
        g = self._g_series
        zero = np.zeros((1, self.dim), dtype=np.int32)
        return TrigSeries(np.concatenate([zero, g.waves]),
                          np.concatenate([[1.0], g.coefs * (self.amplitude / self.g_sup)]))

    @cached_property
    def _extrema(self):
        lo, hi = self._g_extrema
        scale = self.amplitude / self.g_sup
        return (1.0 + min(scale * lo, scale * hi), 1.0 + max(scale * lo, scale * hi))

    def regularity(self):
        return self.decay - self.dim / 2


def von_mises_nd(loc, kappa: float, dim: int) -> VonMisesND:
    """:class:`VonMisesND` from a location given as one float (every axis) or ``dim`` floats."""
    return VonMisesND(axis_vector("loc", loc, dim), kappa)
