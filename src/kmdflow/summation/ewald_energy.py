r"""The Ewald split of the kernel ``K_s`` itself on ``T^1``, for particle energies.

Conventions (Fourier signs, positions, charges): :mod:`kmdflow.domains.torus`. The split of the
force kernel ``K_s'`` (heat-kernel subordination cut at ``t = sigma^2``) is derived in
:mod:`kmdflow.summation.ewald`; the same cut applied to ``K_s`` gives

    far:   multiplier  |k|^(-2s) Q(s, sigma^2 k^2)                  (:func:`far_potential_multiplier`)
    near:  K_near(x) = g(x) - c,  g(x) = sqrt(pi) / Gamma(s) (|x|/2)^(2s-1) Gamma(1/2 - s, x^2 / 4 sigma^2)
                                                                    (:func:`near_potential`,
                                                                     :func:`near_potential_mean`)

(one image; ``s > 1/2`` so that ``g(0)`` is finite). :class:`NearPotential` evaluates ``g`` on
``[0, r_cut)`` by two fitted pieces and :func:`near_pair_energy` sums it over the close pairs of
sorted atoms. Choosing ``(sigma, r_cut, eta)``, the NUFFT of the far energy and the error estimate
are in :mod:`kmdflow.summation.energy_nufft`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import gamma, gammainc, gammaincc

from kmdflow.domains.torus import TWO_PI
from kmdflow.summation.ewald import _chebyshev_fit, _upper_gamma, _windowed_power

__all__ = [
    "NearPotential",
    "far_potential_multiplier",
    "near_pair_energy",
    "near_potential",
    "near_potential_kernel",
    "near_potential_mean",
    "near_potential_multiplier",
]


def far_potential_multiplier(s: float, sigma: float, k: np.ndarray) -> np.ndarray:
    r"""Multiplier ``|k|^(-2s) Q(s, sigma^2 k^2)`` of the far potential ``K_far`` (``0`` at ``k = 0``).

    Parameters
    ----------
    s, sigma : float
        Sobolev order and split scale.
    k : (K,) int or float
        Wavenumbers.

    Returns
    -------
    (K,) float
        The far energy of a measure ``m`` is ``sum_(k >= 1)`` of these times ``|m_hat(k)|^2``.
    """
    return _windowed_power(s, sigma, k, -2.0 * s, gammaincc)


def near_potential_multiplier(s: float, sigma: float, k: np.ndarray) -> np.ndarray:
    r"""Multiplier ``|k|^(-2s) P(s, sigma^2 k^2)`` of ``K_near`` (``P = 1 - Q``; ``0`` at ``k = 0``)."""
    return _windowed_power(s, sigma, k, -2.0 * s, gammainc)


def near_potential_mean(s: float, sigma: float) -> float:
    r"""``c = sigma^(2s) / Gamma(s + 1)``: the mean of the one-image kernel :func:`near_potential`.

    ``K_near(x) = near_potential(x) - c`` (periodised), so ``K_near`` has mean zero like ``K_s``.
    """
    return sigma ** (2.0 * s) / gamma(s + 1.0)


def near_potential(s: float, sigma: float, x: np.ndarray) -> np.ndarray:
    r"""One-image near potential ``g(x) = K_near(x) + c`` in closed form, for ``s > 1/2``.

    Parameters
    ----------
    s : float
        Sobolev order, ``s > 1/2`` (atoms have finite energy).
    sigma : float
        Split scale (images ``x + 2 pi n`` are left out, as in
        :func:`~kmdflow.summation.ewald.near_derivative`).
    x : float array, any shape
        Separations; ``0`` maps to the finite limit ``g(0)``.

    Returns
    -------
    float array, shape of ``x``; positive and decreasing in ``|x|``.

    Notes
    -----
    From ``K_s = Gamma(s)^-1 int_0^inf t^(s-1) (theta_t - 1) dt`` cut at ``t = sigma^2``
    (heat kernel ``theta_t(x) = sqrt(pi / t) exp(-x^2 / 4t)``, one image):

        g(x) = sqrt(pi) / Gamma(s) (|x|/2)^(2s-1) Gamma(1/2 - s, x^2 / 4 sigma^2),
        g(0) = sqrt(pi) / Gamma(s) sigma^(2s-1) / (s - 1/2),

    and the constant ``-c`` (:func:`near_potential_mean`) is the ``t``-integral of ``-1``. The
    multipliers of ``K_far`` and ``K_near`` add up to ``|k|^(-2s)``.
    """
    x = np.asarray(x, dtype=float)
    ax = np.abs(x)
    c0 = math.sqrt(math.pi) / gamma(s)
    out = np.full(x.shape, c0 * sigma ** (2.0 * s - 1.0) / (s - 0.5))
    nz = ax > 0.0
    a = ax[nz]
    out[nz] = c0 * (0.5 * a) ** (2.0 * s - 1.0) * _upper_gamma(0.5 - s, (a / (2.0 * sigma)) ** 2)
    return out


@dataclass(frozen=True)
class NearPotential:
    r"""``g(d)`` of :func:`near_potential` for ``0 <= d < r_cut``, by two fitted pieces.

    Parameters
    ----------
    s, sigma : float
        Sobolev order (``s > 1/2``) and split scale.
    r_cut : float
        Near-field radius, ``> 0``.
    eta : float
        Accuracy the fits aim for (Chebyshev coefficients below ``eta / 16`` are dropped).

    Attributes
    ----------
    split : float
        ``r_cut / 4``: the boundary between the two pieces.
    inner, outer : float arrays
        Chebyshev coefficients of ``P`` (in ``u = 2 d^2 / split^2 - 1``) and of ``g`` itself on
        ``[split, r_cut]`` (in ``v``, linear in ``d``).
    error : float
        Estimated ``max |fit error|`` on ``[0, r_cut)``.
    at_zero : float
        ``g(0)`` (coincident atoms and the self term).

    Notes
    -----
    On ``[0, split)``: ``g = S(d) + P(d^2)``, ``S`` the singular part of ``K_s`` (MATH.md section 2),

        S(d) = sqrt(pi) / Gamma(s) Gamma(1/2 - s) (d/2)^(2s-1)        (s not in 1/2 + N)
        S(d) = -2 (-1)^m / (2m)! d^(2m) log d                          (s = m + 1/2)

    and ``g - S`` analytic in ``d^2`` (for non-half-integer ``s`` it is
    ``-sqrt(pi)/Gamma(s) sigma^(2s-1) sum_n (-w)^n / (n! (n + 1/2 - s))``, ``w = d^2/4 sigma^2``).
    On ``[split, r_cut)`` ``g`` is analytic and fitted directly. One piece over all of
    ``[0, r_cut)`` would lose precision: there ``g`` decays like ``exp(-d^2 / 4 sigma^2)`` while
    ``S`` grows, so ``P ~ -S`` is far larger than ``g`` and its round-off (relative to ``max |P|``)
    would dominate the small energies of particles near equilibrium.
    """

    s: float
    sigma: float
    r_cut: float
    eta: float
    kind: str = field(init=False)
    power: float = field(init=False)
    coefficient: float = field(init=False)
    split: float = field(init=False)
    inner: np.ndarray = field(init=False, repr=False)
    outer: np.ndarray = field(init=False, repr=False)
    error: float = field(init=False)
    at_zero: float = field(init=False)

    def __post_init__(self) -> None:
        s, sigma = self.s, self.sigma
        m = s - 0.5
        if m == round(m):                      # s = m + 1/2: c d^(2m) log d
            kind, power = "log", 2.0 * m
            coefficient = -2.0 * (-1.0) ** round(m) / math.factorial(2 * round(m))
        else:
            kind, power = "power", 2.0 * s - 1.0
            coefficient = math.sqrt(math.pi) / gamma(s) * gamma(0.5 - s) * 0.5 ** (2.0 * s - 1.0)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "power", power)
        object.__setattr__(self, "coefficient", coefficient)
        object.__setattr__(self, "at_zero", float(near_potential(s, sigma, np.zeros(1))[0]))
        split = 0.25 * self.r_cut
        object.__setattr__(self, "split", split)

        def inner_part(u):
            d = np.sqrt((u + 1.0) * 0.5 * split**2)
            return near_potential(s, sigma, d) - self.singular(d)

        def outer_part(v):
            return near_potential(s, sigma, split + (v + 1.0) * 0.5 * (self.r_cut - split))

        inner, inner_error = _chebyshev_fit(inner_part, np.ones_like, self.eta, 1.0, monomial=False)
        outer, outer_error = _chebyshev_fit(outer_part, np.ones_like, self.eta, 1.0, monomial=False)
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "outer", outer)
        object.__setattr__(self, "error", max(inner_error, outer_error))

    def singular(self, d: np.ndarray) -> np.ndarray:
        """Singular part ``S(d)`` for ``d >= 0`` (``S(0) = 0``)."""
        d = np.asarray(d, dtype=float)
        if self.kind == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                out = self.coefficient * d**self.power * np.log(d)
            return np.where(d > 0.0, out, 0.0)
        return self.coefficient * np.power(d, self.power)

    def __call__(self, d: np.ndarray) -> np.ndarray:
        """``g(d)`` for ``0 <= d`` (values beyond ``r_cut`` are not meaningful)."""
        d = np.asarray(d, dtype=float)
        out = np.empty(d.shape)
        near = d < self.split
        di = d[near]
        out[near] = chebyshev.chebval(2.0 * (di / self.split) ** 2 - 1.0, self.inner) + self.singular(di)
        do = d[~near]
        v = (2.0 * do - (self.split + self.r_cut)) / (self.r_cut - self.split)
        out[~near] = chebyshev.chebval(v, self.outer)
        return out


@lru_cache(maxsize=8)
def near_potential_kernel(s: float, sigma: float, r_cut: float, eta: float) -> NearPotential:
    """The :class:`NearPotential` of these parameters (cached)."""
    return NearPotential(s, sigma, r_cut, eta)


def near_pair_energy(g: NearPotential, ys: np.ndarray, qs: np.ndarray) -> tuple[float, float, int]:
    r"""``sum_(i < j, d_ij < r_cut) q_i q_j g(d_ij)`` over the pairs of sorted atoms (cyclic distance).

    Parameters
    ----------
    g : NearPotential
    ys : (M,) float
        Atoms, sorted, in ``[0, 2 pi)``.
    qs : (M,) float
        Charges in the order of ``ys``.

    Returns
    -------
    total : float
        The pair sum (coincident atoms contribute ``q_i q_j g(0)``).
    weight : float
        ``sum |q_i q_j|`` over the same pairs (for the fit-error and round-off bounds).
    pairs : int
        Pairs evaluated.

    Notes
    -----
    Atom ``i`` is paired with its cyclic successors ``i + r`` until their separation reaches
    ``r_cut``; since ``r_cut <= pi/2``, each close pair is met exactly once.
    """
    m = ys.size
    total, weight, pairs = 0.0, 0.0, 0
    active = np.arange(m)
    for r in range(1, m):
        j = active + r
        j[j >= m] -= m
        sep = ys[j] - ys[active]
        sep[j < active] += TWO_PI
        inside = sep < g.r_cut
        if not inside.all():
            active, j, sep = active[inside], j[inside], sep[inside]
            if active.size == 0:
                break
        qq = qs[active] * qs[j]
        total += float(qq @ g(sep))
        weight += float(np.sum(np.abs(qq)))
        pairs += active.size
    return total, weight, pairs
