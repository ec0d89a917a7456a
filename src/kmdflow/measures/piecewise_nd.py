r"""Piecewise families on :math:`T^d`, ``d >= 2``: the box patch and mixtures.

Densities are w.r.t. ``dx / (2 pi)^d`` (conventions and the one-sided layout:
:mod:`kmdflow.domains.torus`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import minimize

from kmdflow.domains.torus import TWO_PI, from_fourier_nd, grid_nd, wavevectors, wrap
from kmdflow.measures.base import (
    MeasureError,
    MixtureMembers,
    mixture_weights,
    require_finite,
)
from kmdflow.measures.base_nd import (
    DensityND,
    axis_vector,
    clip_positions,
    layout_shape,
)
from kmdflow.measures.piecewise import Indicator

#: Largest number of samples (all axes together) that :func:`sampled_extrema` evaluates.
MIXTURE_SAMPLES = 1 << 22


@dataclass(frozen=True)
class Box(DensityND):
    r"""A box patch: density ``c`` on a product of arcs, ``floor`` elsewhere.

    Parameters
    ----------
    start, stop : tuple of float
        One arc per axis, counter-clockwise from ``start[i]`` to ``stop[i]`` (through ``0`` if
        need be); each length ``L_i = (stop[i] - start[i]) mod 2 pi`` in ``(0, 2 pi)``.
    floor : float
        Density outside the box, ``0 <= floor < 1``.

    Notes
    -----
    Mass 1 fixes :math:`c = \mathrm{floor} + (1 - \mathrm{floor})(2\pi)^d / \prod_i L_i`. With
    :math:`a_i` = ``start[i]`` and :math:`h(k; a, L) = \frac{1}{2\pi}\int_a^{a+L} e^{-ikx}dx`
    (:math:`= L/2\pi` at ``k = 0``, else :math:`e^{-ika}(1 - e^{-ikL}) / (2\pi i k)`),

    .. math:: \hat\mu(k) = \mathrm{floor}\,\delta_{k0} + (c - \mathrm{floor})\prod_i h(k_i; a_i, L_i).

    Samples use the exact conditional inverse cdfs: given a prefix inside the box, axis ``j`` has
    the circle density ``floor + (c - floor) P_j 1_{arc_j}`` (normalised), with
    :math:`P_j = \prod_{i > j} L_i / 2\pi`; given a prefix outside, it is uniform. ``min = floor``,
    ``max = c``, ``r* = 1/2``.
    """

    start: tuple
    stop: tuple
    floor: float = 0.0

    def __post_init__(self):
        start = np.atleast_1d(np.asarray(self.start, dtype=float))
        dim = start.size
        if dim < 2:
            raise MeasureError("start", f"start = {self.start!r}: give one arc start per axis (d >= 2)")
        start = axis_vector("start", self.start, dim)
        stop = axis_vector("stop", self.stop, dim)
        require_finite("floor", self.floor)
        if not 0 <= self.floor < 1:
            raise MeasureError("floor", f"floor = {self.floor!r}: must satisfy 0 <= floor < 1 "
                               "(the box must carry the rest of the mass)")
        for i, (a, b) in enumerate(zip(start, stop)):
            if not 0 < np.mod(b - a, TWO_PI) < TWO_PI:
                raise MeasureError(f"stop[{i}]", f"stop[{i}] = {b!r}: the arc from start[{i}] = {a!r} "
                                   "is empty or the whole circle; choose 0 < (stop - start) mod 2 pi")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "stop", stop)
        object.__setattr__(self, "floor", float(self.floor))

    @property
    def dim(self):
        return len(self.start)

    @property
    def corner(self) -> np.ndarray:
        """Arc starts in ``[0, 2 pi)``, shape ``(d,)``."""
        return wrap(np.array(self.start))

    @property
    def lengths(self) -> np.ndarray:
        """Arc lengths ``L_i``, shape ``(d,)``."""
        return np.mod(np.array(self.stop) - np.array(self.start), TWO_PI)

    @property
    def level(self) -> float:
        """Density ``c`` inside the box."""
        return self.floor + (1.0 - self.floor) * TWO_PI ** self.dim / float(np.prod(self.lengths))

    def fourier_nd(self, n):
        shape = layout_shape(n, self.dim)
        out = np.ones((1,) * self.dim, dtype=complex)
        for a, length, k in zip(self.corner, self.lengths, wavevectors(n, self.dim)):
            safe = np.where(k == 0, 1, k)
            h = np.where(k == 0, length / TWO_PI, np.exp(-1j * np.mod(k * a, TWO_PI))
                         * (1.0 - np.exp(-1j * np.mod(k * length, TWO_PI))) / (TWO_PI * 1j * safe))
            out = out * np.where(2 * np.abs(k) < n, h, 0.0)
        out = (self.level - self.floor) * np.broadcast_to(out, shape).copy()
        out.flat[0] += self.floor
        return out

    def _inside(self, points):
        return np.all(np.mod(points - self.corner, TWO_PI) <= self.lengths, axis=-1)

    def _values(self, points):
        return np.where(self._inside(points), self.level, self.floor)

    def transform(self, u):
        n, d = u.shape
        x = np.empty((n, d))
        inside = np.ones(n, dtype=bool)
        for j, (a, length) in enumerate(zip(self.corner, self.lengths)):
            rest = float(np.prod(self.lengths[j + 1:] / TWO_PI))
            excess = (self.level - self.floor) * rest
            arc = Indicator(a, a + length, self.floor / (self.floor + excess * length / TWO_PI))
            x[inside, j] = arc.exact_inverse_cdf(u[inside, j])
            x[~inside, j] = TWO_PI * u[~inside, j]
            inside &= np.mod(x[:, j] - a, TWO_PI) <= length
        return clip_positions(x)

    def min_value(self):
        return self.floor

    def max_value(self):
        return self.level

    def regularity(self):
        return 0.5


@dataclass(frozen=True)
class MixtureND(MixtureMembers, DensityND):
    r"""A convex combination :math:`\rho = \sum_i w_i \rho_i` of densities on :math:`T^d`.

    Parameters
    ----------
    weights : tuple of float
        Positive weights, **normalised** here to sum 1.
    components : tuple of DensityND
        Same length as ``weights``, all of the same dimension.

    Notes
    -----
    Coefficients and values are the weighted sums; ``r*`` is the smallest of the components'
    (``None`` if one is unknown). Sampling spends one extra uniform per position
    (``n_uniforms = d + 1``): ``u_0`` picks component ``i`` when it falls in
    ``[w_1 + .. + w_{i-1}, w_1 + .. + w_i)``, the other ``d`` are mapped by that component. The
    extrema are found by :func:`sampled_extrema`.
    """

    weights: tuple
    components: tuple

    def __post_init__(self):
        weights, comps = mixture_weights(self.weights, self.components)
        for i, comp in enumerate(comps):
            if not isinstance(comp, DensityND):
                raise MeasureError(f"components[{i}]", f"{type(comp).__name__} is not a density on "
                                   "T^d (d >= 2); mixtures take non-atomic kinds only")
            if comp.dim != comps[0].dim:
                raise MeasureError(f"components[{i}]", f"has d = {comp.dim} but components[0] has "
                                   f"d = {comps[0].dim}; use one dimension")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "components", comps)

    @property
    def dim(self):
        return self.components[0].dim

    @property
    def n_uniforms(self):
        return self.dim + 1

    def fourier_nd(self, n):
        return sum(w * c.fourier_nd(n) for w, c in zip(self.weights, self.components))

    def _values(self, points):
        return sum(w * c._values(points) for w, c in zip(self.weights, self.components))

    def transform(self, u):
        edges = np.cumsum(self.weights)[:-1]
        choice = np.searchsorted(edges, u[:, 0], side="right")
        x = np.empty((u.shape[0], self.dim))
        for i, comp in enumerate(self.components):
            rows = choice == i
            if rows.any():
                x[rows] = comp.transform(u[rows, 1:])
        return x

    @cached_property
    def _extrema(self):
        return sampled_extrema(self)


def sampled_extrema(density: DensityND, n_candidates: int = 8) -> tuple[float, float]:
    """``(inf, sup)`` of a density from samples on a grid, refined locally.

    Notes
    -----
    Let ``B`` be the largest finite :attr:`~DensityND.bandwidth` among the mixture's components
    (0 if none). The density is sampled on the ``M^d`` grid, ``M`` even, at least ``64`` and
    ``2 B + 2``, ``4 B`` if that fits in :data:`MIXTURE_SAMPLES` samples. When every component is
    smooth (finite bandwidth) the samples come from an inverse FFT of ``fourier_nd(M)`` (every
    non-negligible mode is held), else from the values. The ``n_candidates`` best samples of each
    sign start a bounded L-BFGS-B search within one grid cell. Exact (to the optimiser's
    tolerance) for smooth densities whose extremum lies in the basin of a candidate; next to a
    box face the result is the best value within one grid cell of the face.
    """
    parts = getattr(density, "components", (density,))
    bands = [c.bandwidth for c in parts]
    band = max([b for b in bands if np.isfinite(b)], default=0.0)
    cap = int(np.floor(MIXTURE_SAMPLES ** (1.0 / density.dim) + 1e-9))
    m = max(64, min(int(4 * band), cap), int(2 * band) + 2)
    m += m % 2
    if all(np.isfinite(bands)):
        values = from_fourier_nd(density.fourier_nd(m), m).reshape(-1)
    else:
        values = density._values(np.stack(grid_nd(m, density.dim), axis=-1).reshape(-1, density.dim))
    h = TWO_PI / m
    out = []
    for sign in (-1.0, 1.0):
        best = float(np.max(sign * values))
        for i in np.argsort(sign * values)[::-1][:n_candidates]:
            x0 = np.array(np.unravel_index(i, (m,) * density.dim)) * h
            res = minimize(lambda y, sign=sign: -sign * float(density._values(y[None, :])[0]), x0,
                           method="L-BFGS-B", bounds=[(v - h, v + h) for v in x0])
            best = max(best, -float(res.fun))
        out.append(sign * best)
    return float(out[0]), float(out[1])
