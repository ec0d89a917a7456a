r"""Piecewise-smooth families: the indicator patch and mixtures, with their extrema.

Densities are w.r.t. ``dx / 2 pi`` (conventions: :mod:`kmdflow.domains.torus`). Both families are
smooth between their :attr:`~kmdflow.measures.base.Density.breakpoints`; :func:`piecewise_extrema`
finds the inf and sup arc by arc, and :func:`smooth_bandwidth` sets sampling resolutions from the
band-limited parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import minimize_scalar

from kmdflow.domains.torus import TWO_PI, wrap
from kmdflow.measures.base import (
    Density,
    MeasureError,
    MixtureMembers,
    check_modes,
    mixture_weights,
    next_pow2,
    require_finite,
)


@dataclass(frozen=True)
class Indicator(Density):
    r"""A patch: density ``c`` on the closed arc ``[start, stop]``, ``floor`` elsewhere.

    Parameters
    ----------
    start, stop : float
        The arc runs counter-clockwise from ``start`` to ``stop`` (wrapping through ``0`` is
        allowed); its length ``L = (stop - start) mod 2 pi`` must be in ``(0, 2 pi)``.
    floor : float
        Density outside the arc, ``0 <= floor < 1`` (``0``: vacuum).

    Notes
    -----
    Mass 1 fixes :math:`c = \mathrm{floor} + (1 - \mathrm{floor})\,2\pi/L`. With ``a = start``,

    .. math:: \hat\mu(k) = \frac{c - \mathrm{floor}}{2\pi i k} e^{-ika}(1 - e^{-ikL}), \quad k \ne 0,

    and ``F`` is piecewise linear (inverted in closed form). ``rho - 1`` is in ``H^r`` for
    ``r < 1/2``.
    """

    start: float
    stop: float
    floor: float = 0.0

    def __post_init__(self):
        for key in ("start", "stop", "floor"):
            require_finite(key, getattr(self, key))
        if not 0 <= self.floor < 1:
            raise MeasureError("floor", f"floor = {self.floor!r}: must satisfy 0 <= floor < 1 "
                               "(the patch must carry the rest of the mass)")
        if not 0 < self.length < TWO_PI:
            raise MeasureError("stop", f"stop = {self.stop!r}: the arc from start = {self.start!r} "
                               "is empty or the whole circle; choose 0 < (stop - start) mod 2 pi")

    @property
    def a(self) -> float:
        """Start of the arc in ``[0, 2 pi)``."""
        return float(wrap(np.float64(self.start)))

    @property
    def length(self) -> float:
        """Arc length ``L``."""
        return float(np.mod(self.stop - self.start, TWO_PI))

    @property
    def level(self) -> float:
        """Density ``c`` inside the arc."""
        return self.floor + (1.0 - self.floor) * TWO_PI / self.length

    def _inside(self, x):
        return np.mod(np.asarray(x, dtype=float) - self.a, TWO_PI) <= self.length

    def fourier(self, n_modes):
        k = np.arange(check_modes(n_modes))
        out = np.ones(n_modes, dtype=complex)
        kk = k[1:]
        phase = np.exp(-1j * np.mod(kk * self.a, TWO_PI))
        out[1:] = ((self.level - self.floor) / (TWO_PI * 1j * kk) * phase
                   * (1.0 - np.exp(-1j * np.mod(kk * self.length, TWO_PI))))
        return out

    def values(self, x):
        return np.where(self._inside(x), self.level, self.floor)

    def _values_on_piece(self, x, ref):
        return np.full(np.shape(x), self.level if self._inside(ref) else self.floor)

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        turns = np.floor(x / TWO_PI)
        r = x - TWO_PI * turns
        a, length = self.a, self.length
        covered = np.clip(r - a, 0.0, length) + np.maximum(0.0, np.minimum(r, a + length - TWO_PI))
        return turns + (self.floor * r + (self.level - self.floor) * covered) / TWO_PI

    def exact_inverse_cdf(self, u):
        u = np.asarray(u, dtype=float)
        nodes = np.unique(np.concatenate([[0.0, TWO_PI], self.breakpoints]))
        f = self.cdf(nodes[:-1])
        f = np.append(f, 1.0)
        i = np.clip(np.searchsorted(f, u, side="left"), 1, nodes.size - 1)
        slope = (f[i] - f[i - 1]) / (nodes[i] - nodes[i - 1])
        x = nodes[i - 1] + (u - f[i - 1]) / np.where(slope > 0, slope, 1.0)
        return np.where(u <= 0, 0.0, np.minimum(x, nodes[i]))

    def min_value(self):
        return float(self.floor)

    def max_value(self):
        return float(self.level)

    def regularity(self):
        return 0.5

    @property
    def breakpoints(self):
        return np.sort(np.array([self.a, float(wrap(np.float64(self.a + self.length)))]))



@dataclass(frozen=True)
class Mixture(MixtureMembers, Density):
    r"""A convex combination :math:`\rho = \sum_i w_i \rho_i` of densities.

    Parameters
    ----------
    weights : tuple of float
        Positive weights, **normalised** here to sum 1.
    components : tuple of Density
        Same length as ``weights``.

    Notes
    -----
    Fourier coefficients, values and cdf are the weighted sums. The inf/sup are found per arc
    between the components' breakpoints: dense samples (``64`` per shortest wavelength, at least
    ``2^14``) plus bounded Brent refinement of the best local extrema, arc ends included.
    ``r*`` is the smallest of the components' (``None`` if any is unknown).
    """

    weights: tuple
    components: tuple

    def __post_init__(self):
        weights, comps = mixture_weights(self.weights, self.components)
        for i, comp in enumerate(comps):
            if not isinstance(comp, Density):
                raise MeasureError(f"components[{i}]", f"{type(comp).__name__} is not a density; "
                                   "mixtures take non-atomic kinds only")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "components", comps)

    def _sum(self, method, *args):
        return sum(w * getattr(c, method)(*args) for w, c in zip(self.weights, self.components))

    def fourier(self, n_modes):
        return self._sum("fourier", check_modes(n_modes))

    def values(self, x):
        return self._sum("values", x)

    def _values_on_piece(self, x, ref):
        return self._sum("_values_on_piece", x, ref)

    def cdf(self, x):
        return self._sum("cdf", x)

    def cdf_and_values(self, x):
        f = np.zeros(np.shape(x))
        v = np.zeros(np.shape(x))
        for w, c in zip(self.weights, self.components):
            cf, cv = c.cdf_and_values(x)
            f = f + w * cf
            v = v + w * cv
        return f, v

    @property
    def breakpoints(self):
        parts = [c.breakpoints for c in self.components]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0)

    @cached_property
    def _extrema(self):
        return piecewise_extrema(self)



def piecewise_extrema(density: Density, n_candidates: int = 8) -> tuple[float, float]:
    """``(inf, sup)`` of a density that is smooth between its :attr:`~Density.breakpoints`.

    Each closed arc between consecutive breakpoints (the whole circle if none) is sampled with
    ``max(2^14, 64 * bandwidth)`` points per turn (finite bandwidths of the smooth parts only),
    and the best ``n_candidates`` interior local extrema are refined by bounded Brent search.
    """
    per_turn = min(next_pow2(max(1 << 14, 64 * smooth_bandwidth(density))), 1 << 22)
    cuts = np.unique(wrap(np.asarray(density.breakpoints, dtype=float)))
    pad = 4 * TWO_PI / per_turn  # periodic case: overlap so an extremum near 0 is interior
    arcs = ([(-pad, TWO_PI + pad)] if cuts.size == 0 else
            list(zip(cuts, np.append(cuts[1:], cuts[0] + TWO_PI))))
    best = [np.inf, -np.inf]
    for a, b in arcs:
        ref = 0.5 * (a + b)
        x = np.linspace(a, b, max(65, int(per_turn * (b - a) / TWO_PI) + 1))
        v = density._values_on_piece(x, ref)
        for slot, sign in ((0, -1.0), (1, 1.0)):
            w = sign * v
            top = float(w.max())
            inner = np.nonzero((w[1:-1] >= w[:-2]) & (w[1:-1] >= w[2:]))[0] + 1
            for i in inner[np.argsort(w[inner])[::-1][:n_candidates]]:
                res = minimize_scalar(
                    lambda y: -sign * float(density._values_on_piece(np.array([y]), ref)[0]),
                    bounds=(x[i - 1], x[i + 1]), method="bounded", options={"xatol": 1e-12})
                top = max(top, -float(res.fun))
            best[slot] = min(best[slot], -top) if slot == 0 else max(best[slot], top)
    return float(best[0]), float(best[1])


def smooth_bandwidth(density: Density) -> float:
    """Largest finite :attr:`~Density.bandwidth` among the (mixture) parts; 0 if none.

    Sets sampling resolutions: a mixture with a patch has infinite bandwidth, but its smooth
    parts still decide how finely it must be sampled between the breakpoints.
    """
    if isinstance(density, Mixture):
        return max(smooth_bandwidth(c) for c in density.components)
    band = density.bandwidth
    return float(band) if np.isfinite(band) else 0.0

