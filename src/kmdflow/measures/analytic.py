r"""The smooth (analytic) families: uniform, one Fourier mode, random-phase perturbation, von Mises.

Densities are w.r.t. ``dx / 2 pi`` (conventions: :mod:`kmdflow.domains.torus`). Uniform and mode
have closed-form cdfs; perturbation and von Mises are band-limited
(:class:`~kmdflow.measures.series.SeriesDensity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import ive

from kmdflow.domains.torus import TWO_PI
from kmdflow.measures.base import (
    Density,
    MeasureError,
    check_modes,
    next_pow2,
    padded,
    require_finite,
    require_integer,
)
from kmdflow.measures.series import NEGLIGIBLE, SeriesDensity, series_extrema


@dataclass(frozen=True)
class Uniform(Density):
    """The uniform probability measure, ``rho = 1``."""

    def fourier(self, n_modes):
        return padded(np.ones(1, dtype=complex), n_modes)

    def values(self, x):
        return np.ones(np.shape(x))

    def cdf(self, x):
        return np.asarray(x, dtype=float) / TWO_PI

    def min_value(self):
        return 1.0

    def max_value(self):
        return 1.0

    def regularity(self):
        return np.inf

    @property
    def bandwidth(self):
        return 0.0

    def exact_inverse_cdf(self, u):
        return TWO_PI * np.asarray(u, dtype=float)



@dataclass(frozen=True)
class Mode(Density):
    r"""A single Fourier mode, :math:`\rho(x) = 1 + a\cos(kx)`.

    Parameters
    ----------
    k : int
        Wavenumber ``>= 1``.
    amplitude : float
        ``a`` with ``|a| <= 1`` (so that ``rho >= 0``).

    Notes
    -----
    :math:`\hat\mu(\pm k) = a/2`; :math:`F(x) = \frac{1}{2\pi}\left(x + \frac{a}{k}\sin kx\right)`.
    """

    k: int
    amplitude: float

    def __post_init__(self):
        k = require_integer("k", self.k, 1)
        if not np.isfinite(self.amplitude) or abs(self.amplitude) > 1:
            raise MeasureError("amplitude", f"amplitude = {self.amplitude!r}: |amplitude| must be "
                               "<= 1 or the density is negative; choose a value in [-1, 1]")
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "amplitude", float(self.amplitude))

    def fourier(self, n_modes):
        out = padded(np.ones(1, dtype=complex), n_modes)
        if self.k < out.size:
            out[self.k] = self.amplitude / 2
        return out

    def values(self, x):
        return 1.0 + self.amplitude * np.cos(self.k * np.asarray(x, dtype=float))

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        return (x + self.amplitude * np.sin(self.k * x) / self.k) / TWO_PI

    def min_value(self):
        return 1.0 - abs(self.amplitude)

    def max_value(self):
        return 1.0 + abs(self.amplitude)

    def regularity(self):
        return np.inf

    @property
    def bandwidth(self):
        return float(self.k)



class PhasePerturbation:
    """What the random-phase perturbations (:class:`Perturbation`,
    :class:`~kmdflow.measures.analytic_nd.PerturbationND`) share, whatever ``d``.

    Put it before the density base class. The subclass has the fields ``amplitude``, ``decay``,
    ``seed``, ``modes`` (and any other integer fields it names to :meth:`_check_parameters`) and
    the cached pair ``_g_extrema``, the ``(min, max)`` of ``g`` over the torus.
    """

    def _check_parameters(self, least: dict[str, int]) -> None:
        """Check ``amplitude`` (in ``[-1, 1]``), ``decay`` (finite) and the integer fields, each
        ``>= least[key]``, and store them as ``float`` and ``int``."""
        if not np.isfinite(self.amplitude) or abs(self.amplitude) > 1:
            raise MeasureError("amplitude", f"amplitude = {self.amplitude!r}: must lie in [-1, 1] "
                               "or the density is negative")
        require_finite("decay", self.decay)
        for key, smallest in least.items():
            object.__setattr__(self, key, require_integer(key, getattr(self, key), smallest))
        object.__setattr__(self, "amplitude", float(self.amplitude))
        object.__setattr__(self, "decay", float(self.decay))

    @property
    def g_sup(self) -> float:
        """``max |g|`` over the torus (the normalisation)."""
        lo, hi = self._g_extrema
        return max(hi, -lo)


@dataclass(frozen=True)
class Perturbation(PhasePerturbation, SeriesDensity):
    r"""A random-phase perturbation with power-law spectrum, normalised in sup norm.

    Parameters
    ----------
    amplitude : float
        ``a = max |rho - 1|``, ``|a| <= 1``.
    decay : float
        Spectral decay exponent: ``|f_hat(k)| ~ k^-decay``.
    seed : int
        Seed of the phases.
    modes : int
        Number of modes ``K >= 1``.

    Notes
    -----
    .. math::

        \rho = 1 + a\,\frac{g}{\max|g|}, \qquad
        g(x) = \sum_{k=1}^{K} k^{-\mathrm{decay}} \cos(kx + \phi_k),

    ``phi = default_rng(seed).uniform(0, 2 pi, K)``, ``phi_k = phi[k - 1]``. ``max|g|`` is taken
    over the circle on ``max(4096, 32 K)`` (rounded up to a power of 2) samples refined by Newton
    steps, a resolution independent of any solver, so one config gives one ``mu_0``. Hence
    ``max|rho - 1| = |a|`` exactly and ``f_hat(k) = a k^-decay e^{i phi_k} / (2 max|g|)``; the
    regularity reported is ``r* = decay - 1/2`` (that of the infinite series; MATH.md section 5).
    """

    amplitude: float
    decay: float
    seed: int
    modes: int

    def __post_init__(self):
        self._check_parameters({"seed": 0, "modes": 1})

    @cached_property
    def _g_series(self) -> np.ndarray:
        k = np.arange(1, self.modes + 1)
        phases = np.random.default_rng(self.seed).uniform(0.0, TWO_PI, self.modes)
        c = np.zeros(self.modes + 1, dtype=complex)
        c[1:] = 0.5 * k ** (-self.decay) * np.exp(1j * phases)
        return c

    @cached_property
    def _g_extrema(self) -> tuple[float, float]:
        return series_extrema(self._g_series, next_pow2(max(4096, 32 * self.modes)))

    @cached_property
    def _series(self):
        c = self._g_series * (self.amplitude / self.g_sup)
        c[0] = 1.0
        return c

    def fourier(self, n_modes):
        return padded(self._series, n_modes)

    def min_value(self):
        lo, hi = self._g_extrema
        return 1.0 + self.amplitude * (lo if self.amplitude >= 0 else hi) / self.g_sup

    def max_value(self):
        lo, hi = self._g_extrema
        return 1.0 + self.amplitude * (hi if self.amplitude >= 0 else lo) / self.g_sup

    def regularity(self):
        return self.decay - 0.5



@dataclass(frozen=True)
class VonMises(SeriesDensity):
    r"""The von Mises density :math:`\rho(x) = e^{\kappa\cos(x - \mathrm{loc})} / I_0(\kappa)`.

    Parameters
    ----------
    loc : float
        Mode location.
    kappa : float
        Concentration ``>= 0`` (``0``: uniform). Large values are fine (scaled Bessel functions).

    Notes
    -----
    :math:`\hat\mu(k) = \frac{I_k(\kappa)}{I_0(\kappa)} e^{-ik\,\mathrm{loc}}`, computed as
    ``ive(k, kappa) / ive(0, kappa)``; the series is cut where these fall below ``1e-20``.
    ``min = e^{-2 kappa} / ive(0, kappa)``, ``max = 1 / ive(0, kappa)``.
    """

    loc: float
    kappa: float

    def __post_init__(self):
        require_finite("loc", self.loc)
        if not np.isfinite(self.kappa) or self.kappa < 0:
            raise MeasureError("kappa", f"kappa = {self.kappa!r}: must be finite and >= 0")
        object.__setattr__(self, "loc", float(self.loc))
        object.__setattr__(self, "kappa", float(self.kappa))

    def fourier(self, n_modes):
        k = np.arange(check_modes(n_modes))
        ratio = ive(k, self.kappa) / ive(0, self.kappa)
        return ratio * np.exp(-1j * np.mod(k * self.loc, TWO_PI))

    @cached_property
    def _series(self):
        n = int(12 * np.sqrt(self.kappa)) + 48
        while True:
            c = self.fourier(n)
            small = np.abs(c) < NEGLIGIBLE
            if small[-1]:
                return c[: int(np.nonzero(~small)[0][-1]) + 1]
            n *= 2

    def values(self, x):
        half = 0.5 * (np.asarray(x, dtype=float) - self.loc)
        # cos(d) - 1 = -2 sin^2(d/2) keeps full relative accuracy near the mode
        return np.exp(-2.0 * self.kappa * np.sin(half) ** 2) / ive(0, self.kappa)

    def min_value(self):
        return float(np.exp(-2 * self.kappa) / ive(0, self.kappa))

    def max_value(self):
        return float(1.0 / ive(0, self.kappa))

    def regularity(self):
        return np.inf

