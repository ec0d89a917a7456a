r"""Force sums for any ``s`` in ``O((N + M) log(N + M))``: Ewald split, NUFFT far field, sorted near field.

Conventions (Fourier signs, positions, charges): :mod:`kmdflow.domains.torus`. The sum is
``F_i = sum_j q_j K_s'(x_i - y_j)`` with ``K_s'(0) := 0``, as for the other methods of
:mod:`kmdflow.summation`; the result agrees with
:func:`~kmdflow.summation.direct.direct_force` to ``tol * max_i |F_i|`` (see :func:`nufft_force`).

The split
    Subordinating the multiplier to the heat kernel,
    ``|k|^(-2s) = Gamma(s)^-1 int_0^inf t^(s-1) exp(-t k^2) dt``, and cutting the integral at
    ``t = sigma^2`` writes ``K_s' = K_far' + K_near'`` with

        far:   multiplier  i k |k|^(-2s) Q(s, sigma^2 k^2)          (Q: regularised upper incomplete
                                                                     gamma; Gaussian decay in k)
        near:  K_near'(x) = -sqrt(pi) / Gamma(s) * 2^(2-2s) sign(x) |x|^(2s-2) Gamma(3/2 - s, x^2 / 4 sigma^2)

    (plus periodic images, below round-off because ``r_cut <= pi/2``). The near kernel decays like
    ``exp(-x^2 / 4 sigma^2)``; the far kernel is smooth. This is the "erfc-type" window: for
    ``s = 1/2`` the far multiplier's window is ``erfc(sigma |k|)``, for ``s = 1`` it is
    ``exp(-sigma^2 k^2)``. A plain Gaussian window ``exp(-sigma^2 k^2)`` would leave a near field
    with an algebraic tail for ``s != 1`` (``1 - exp(-sigma^2 k^2)`` is not flat enough at ``k = 0``).

The far field
    Type-1 NUFFT of the charges (``mu_hat(k)``, ``|k| <= K``), multiplication by the far
    multiplier, type-2 NUFFT at the targets (``finufft``).

The near field
    Sources within ``r_cut`` of a target, found by sorting (cyclic neighbours of the sorted
    arrays). ``K_near'(d) = S(d) + d P(d^2)`` for ``d > 0``: ``S`` is the singular part of ``K_s'``
    (``c |d|^(2s-2)``, or ``c d^(2m+1) log d`` for ``s = m + 3/2``), ``P`` a polynomial fitted at
    Chebyshev nodes to the closed form above, once per ``(s, sigma, r_cut)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import exp1, expn, gamma, gammaincc, zeta

from kmdflow.domains.torus import TWO_PI, wrap
from kmdflow.summation.direct import as_particles

__all__ = [
    "EwaldDesign",
    "NufftReport",
    "ewald_design",
    "far_multiplier",
    "near_derivative",
    "nufft_force",
    "nufft_force_report",
]

#: Smallest tolerance handed to finufft (its double-precision floor is near 1e-14).
EPS_FLOOR = 1e-14
#: Largest far-field cutoff ``K`` (the mode arrays hold ``2K + 1`` complex numbers).
MAX_MODES = 2**24
#: Cost model used to choose ``sigma`` (seconds per unit; measured on a 2-core x86 machine, only
#: their ratios matter): one near-field pair, one Fourier mode (FFT and multiplier), one point of
#: the spreading/interpolation.
PAIR_COST = 6.0e-8
MODE_COST = 4.0e-8
#: Share of the error budget ``tol * scale`` given to each of the four approximations (near cutoff,
#: far cutoff, near-field table, NUFFT); they add up to 1/2, leaving a factor 2 of headroom.
BUDGET_SHARE = 0.125
#: Constant ``c`` of the NUFFT error model ``c * eps * (|q|_2 |m|_2 + |a|_2)`` (see Notes of
#: :func:`nufft_force`); measured errors were below ``0.3 eps`` times that sum (x86, finufft 2.5).
NUFFT_ERROR_CONSTANT = 1.0
#: Chebyshev nodes used to fit the near-field polynomial.
TABLE_NODES = 96


# ---------------------------------------------------------------------------------------------
# The split, in closed form
# ---------------------------------------------------------------------------------------------

def _upper_gamma(a: float, w: np.ndarray) -> np.ndarray:
    """``Gamma(a, w) = int_w^inf t^(a-1) e^-t dt`` for any real ``a`` and ``w > 0``."""
    w = np.asarray(w, dtype=float)
    if a > 0:
        return gammaincc(a, w) * gamma(a)
    if a == round(a):                          # Gamma(-m, w) = w^-m E_(m+1)(w)
        m = -int(round(a))
        return exp1(w) if m == 0 else w ** (-m) * expn(m + 1, w)
    # Gamma(b, w) = (Gamma(b + 1, w) - w^b e^-w) / b, downwards from b + n > 0
    n = math.ceil(-a)
    b = a + n
    value = gammaincc(b, w) * gamma(b)
    for _ in range(n):
        b -= 1.0
        value = (value - w**b * np.exp(-w)) / b
    return value


def far_multiplier(s: float, sigma: float, k: np.ndarray) -> np.ndarray:
    r"""Real weights ``b_k = |k|^(1-2s) Q(s, sigma^2 k^2)`` of the far field (``b_0 = 0``).

    Parameters
    ----------
    s : float
        Sobolev order, ``s > 0``.
    sigma : float
        Split scale, ``sigma > 0``.
    k : (K,) int or float
        Wavenumbers.

    Returns
    -------
    (K,) float
        ``b_|k|``; the far force multiplier is ``i sign(k) b_|k|`` and
        ``K_far'(x) = -2 sum_(k >= 1) b_k sin(k x)``.

    Notes
    -----
    ``Q(s, w) = Gamma(s, w) / Gamma(s)`` decays like ``w^(s-1) e^-w``.
    """
    a = np.abs(np.asarray(k, dtype=float))
    out = np.zeros(a.shape)
    nz = a != 0.0
    out[nz] = a[nz] ** (1.0 - 2.0 * s) * gammaincc(s, (sigma * a[nz]) ** 2)
    return out


def near_derivative(s: float, sigma: float, x: np.ndarray) -> np.ndarray:
    r"""Near-field kernel ``K_near'(x) = K_s'(x) - K_far'(x)`` in closed form (no periodic images).

    Parameters
    ----------
    s : float
        Sobolev order, ``s > 0``.
    sigma : float
        Split scale, ``0 < sigma``; images are below round-off when ``|x| + 4 sigma^2 ... `` is
        far from ``2 pi`` (the sums use ``|x| <= pi/2`` and ``sigma <= pi / 8``).
    x : float array, any shape
        Separations; ``0`` maps to ``0``.

    Returns
    -------
    float array, shape of ``x``.

    Notes
    -----
    ``K_near'(x) = -sqrt(pi) / Gamma(s) * 2^(2-2s) sign(x) |x|^(2s-2) Gamma(3/2 - s, x^2 / (4 sigma^2))``,
    from ``K_near' = Gamma(s)^-1 int_0^(sigma^2) t^(s-1) d/dx theta_t dt`` with the heat kernel
    ``theta_t(x) = sqrt(pi / t) exp(-x^2 / 4t)`` (one image).
    """
    x = np.asarray(x, dtype=float)
    ax = np.abs(x)
    out = np.zeros(x.shape)
    nz = ax > 0.0
    a = ax[nz]
    out[nz] = (-math.sqrt(math.pi) / gamma(s) * 2.0 ** (2.0 - 2.0 * s) * a ** (2.0 * s - 2.0)
               * _upper_gamma(1.5 - s, (a / (2.0 * sigma)) ** 2))
    return out * np.sign(x)


def _near_envelope(s: float, z: np.ndarray) -> np.ndarray:
    """``h(z) = z^(2s-2) Gamma(3/2 - s, z^2)``, so ``|K_near'(x)| = sqrt(pi)/Gamma(s) sigma^(2s-2) h(|x|/2sigma)``."""
    z = np.asarray(z, dtype=float)
    return z ** (2.0 * s - 2.0) * np.abs(_upper_gamma(1.5 - s, z * z))


def _near_radius(s: float, target: float) -> float:
    """Smallest ``z`` beyond which ``h(z) <= target`` (0 when ``h`` never exceeds it)."""
    zs = np.linspace(1e-3, 12.0, 2400)
    h = _near_envelope(s, zs)
    above = np.nonzero(h > target)[0]
    if above.size == 0:
        return 0.0
    lo = zs[above[-1]]
    hi = lo + 0.5
    while _near_envelope(s, hi) > target:
        lo, hi = hi, hi + 1.0
    for _ in range(60):                        # bisection on the decreasing tail
        mid = 0.5 * (lo + hi)
        if _near_envelope(s, mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _far_tail_kappa(s: float, target: float) -> float:
    """``kappa`` with ``E1(kappa^2) (1 + |s - 1| / kappa^2) <= target``: ``2 int_kappa^inf u^(1-2s) Q(s, u^2) du``."""
    lo, hi = 1e-3, 40.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        w = mid * mid
        if exp1(w) * (1.0 + abs(s - 1.0) / w + 1.0 / w) > target:
            lo = mid
        else:
            hi = mid
    return hi


# ---------------------------------------------------------------------------------------------
# Design: sigma, K, r_cut, eps from tol and the sizes
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EwaldDesign:
    """Parameters of one evaluation.

    Attributes
    ----------
    s : float
        Sobolev order.
    sigma : float
        Split scale (``sqrt`` of the heat-kernel time where the split is made).
    n_modes : int
        ``K``: the far field keeps the modes ``0 < |k| <= K``.
    r_cut : float
        Near-field radius (``0``: no near field needed at this tolerance).
    eps : float
        Tolerance handed to both NUFFTs.
    eta : float
        Bound, per unit of charge, on each kernel-level approximation (near cutoff, far cutoff,
        near-field table).
    """

    s: float
    sigma: float
    n_modes: int
    r_cut: float
    eps: float
    eta: float


def _sigma_grid(s: float, eta: float, n_targets: int, n_sources: int, symmetric: bool):
    """Candidate ``sigma`` values (quarter octaves) with their ``(z_cut, kappa, cost)``."""
    c0 = math.sqrt(math.pi) / gamma(s)
    pairs_factor = (0.5 if symmetric else 1.0) * n_targets * n_sources / math.pi
    spacing = TWO_PI / max(n_sources, 1)
    best = None
    for j in range(-40, 41):
        sigma = spacing * 2.0 ** (j / 4.0)
        if sigma > np.pi / 8:
            break
        z_cut = _near_radius(s, eta / (c0 * sigma ** (2.0 * s - 2.0)))
        r_cut = 2.0 * sigma * z_cut
        if r_cut > np.pi / 2:
            continue
        kappa = _far_tail_kappa(s, eta / sigma ** (2.0 * s - 2.0))
        n_modes = max(1, math.ceil(kappa / sigma))
        if n_modes > MAX_MODES:
            continue
        cost = PAIR_COST * pairs_factor * r_cut + MODE_COST * (2 * n_modes + 1) * max(1.0, math.log2(n_modes))
        if best is None or cost < best[-1]:
            best = (sigma, z_cut, n_modes, cost)
    if best is None:
        raise ValueError(f"no Ewald split fits tol and sizes (n_sources={n_sources}); "
                         f"use summation='direct'")
    return best


@lru_cache(maxsize=8)
def _far_weights(s: float, sigma: float, k_max: int) -> np.ndarray:
    """``b_k`` for ``k = 0 .. k_max`` (cached: the flows call with the same design every step)."""
    return far_multiplier(s, sigma, np.arange(k_max + 1))


def _modes_for(s: float, sigma: float, eta: float, guess: int) -> int:
    """Smallest ``K`` with ``2 sum_(k > K) b_k <= eta``, from the exact weights."""
    k_hi = max(8, int(1.5 * guess) + 8)
    b = _far_weights(s, sigma, k_hi)
    tail = 2.0 * np.cumsum(b[::-1])[::-1]      # tail[k] = 2 sum_(j >= k) b_j
    ok = np.nonzero(tail <= eta)[0]
    return int(ok[0]) - 1 if ok.size else k_hi


def ewald_design(s: float, n_targets: int, n_sources: int, tol: float, scale: float,
                 *, symmetric: bool = False) -> EwaldDesign:
    r"""Choose ``sigma``, ``K``, ``r_cut`` and the NUFFT tolerance for one evaluation.

    Parameters
    ----------
    s : float
        Sobolev order.
    n_targets, n_sources : int
        Problem sizes ``N``, ``M``.
    tol : float
        Requested accuracy relative to the force scale.
    scale : float
        Force scale per unit of charge, ``S / sum_j |q_j|``: the errors are kept below
        ``tol * S``.
    symmetric : bool
        Whether targets and sources are the same points (each near pair is then evaluated once).

    Returns
    -------
    EwaldDesign

    Notes
    -----
    Each kernel-level approximation is bounded by ``eta = BUDGET_SHARE * tol * scale`` per unit
    charge: ``|K_near'(x)| <= eta`` for ``|x| >= r_cut``, ``2 sum_(k > K) b_k <= eta``, and the
    near-field polynomial to ``eta``. ``sigma`` minimises the model cost
    ``PAIR_COST * pairs + MODE_COST * (2K + 1) log2 K`` with ``pairs = N M r_cut / pi`` (uniform
    density; halved when symmetric), over quarter octaves; for ``s > 1`` both tails carry a
    factor ``sigma^(2s-2)``, so small ``sigma`` needs fewer modes than ``sqrt(log(1/eta))/sigma``.
    """
    eta = BUDGET_SHARE * tol * scale
    sigma, z_cut, guess, _ = _sigma_grid(s, eta, n_targets, n_sources, symmetric)
    n_modes = _modes_for(s, sigma, eta, guess)
    eps = max(EPS_FLOOR, BUDGET_SHARE * tol)
    return EwaldDesign(s=s, sigma=sigma, n_modes=max(n_modes, 1), r_cut=2.0 * sigma * z_cut,
                       eps=eps, eta=eta)
