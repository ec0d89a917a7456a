r"""Sobolev regularity of a deviation ``f = rho - nu`` from its Fourier coefficients (d = 1).

Fourier conventions: :mod:`kmdflow.domains.torus`. If ``|f_hat(k)| ~ C k^(-a)`` then ``f`` is in
``H^r`` exactly for ``r < r* = a - 1/2`` (``sum k^(2r) k^(-2a)`` converges iff ``2a - 2r > 1``);
``r*`` is what the rate predictions of MATH.md section 5 need. Coefficients that decay faster
than any power (geometric or faster: analytic data, trigonometric polynomials) give
``r* = inf`` ("smooth").

Method
------
1. Noise floor: magnitudes at or below ``noise * max_(k >= 1) |f_hat(k)|`` are unresolved
   (round-off of a grid transform is ``~1e-16`` of the largest mode). The fit runs over
   ``k_min .. k_end``, ``k_end`` the last resolved ``k <= k_max``.
2. Tail sums ``T(K) = sum_(k = K)^(k_end) |f_hat(k)|^2`` at about 32 log-spaced ``K`` in
   ``[k_min, k_end / 2]``. Summing shells averages out fluctuations of individual magnitudes
   (random phases, noise, sign changes); ``T`` is monotone.
3. Power model: ``T(K) = C S_a(K)``, ``S_a(K) = sum_(k=K)^(k_end) k^(-2a)`` -- the finite upper end
   is modelled exactly, not ignored (``T ~ K^(1-2a)`` only for ``K << k_end``). ``a`` minimises
   the weighted rms of the relative residuals ``T / (C S_a) - 1`` with ``C`` optimal (a coarse
   scan of ``a in [-1, 40]``, then a bounded scalar search). Relative residuals are unbiased
   (``E[T] = C S_a``), unlike those of ``log T`` where a tail sum has few terms; the weights are
   the inverse of their estimated variance, ``T(K)^2 / sum_(k >= K) |f_hat(k)|^4`` (more terms,
   more weight).
4. Smooth or not is a question about the asymptotics: on the upper half of the ``K`` grid, the
   geometric model ``log T(K) = alpha - beta K`` and the power model are both fitted to
   ``log T`` by unweighted least squares; the data are flagged smooth when the geometric
   residual is the smaller one (geometric decay, and faster: ``exp(-c k^2)``,
   ``exp(-c sqrt(k))``), when fewer than 3 resolved coefficients lie in range, or when none does
   (trigonometric polynomials). A power law with a smooth large-scale part (a mixture of a
   patch and a von Mises bump) stays a power law: only the upper half decides.
5. Uncertainty on ``a``: the larger of the regression standard error (linearised in ``a``) and
   half the difference of the fits on the lower and upper halves of the ``K`` grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["RegularityEstimate", "estimate_regularity", "NOISE_FLOOR"]

#: Default relative noise floor of the magnitudes.
NOISE_FLOOR = 1e-13
#: Search range of the decay exponent.
_A_RANGE = (-1.0, 40.0)


@dataclass(frozen=True)
class RegularityEstimate:
    """Decay exponent ``a`` of ``|f_hat(k)|`` and Sobolev regularity ``r = a - 1/2`` (d = 1).

    Attributes
    ----------
    decay : float
        ``a``; ``inf`` when smooth.
    regularity : float
        ``r* = a - 1/2``; ``inf`` when smooth (pass it to
        :func:`~kmdflow.diagnostics.rates.predict_rate`).
    uncertainty : float
        Estimated error of ``a`` (and of ``r``); ``0`` when smooth.
    smooth : bool
        Coefficients decay faster than any power.
    k_min, k_max : int
        The wavenumbers actually fitted (``k_max`` is the last resolved one).
    n_points : int
        Number of tail sums fitted.
    note : str
        How the verdict was reached.
    """

    decay: float
    regularity: float
    uncertainty: float
    smooth: bool
    k_min: int
    k_max: int
    n_points: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def estimate_regularity(coeffs: np.ndarray, k_min: int = 2, k_max: int | None = None,
                        noise: float = NOISE_FLOOR) -> RegularityEstimate:
    r"""Estimate the decay exponent and Sobolev regularity of ``f`` from ``f_hat(0 .. K-1)``.

    Parameters
    ----------
    coeffs : (K,) complex
        One-sided coefficients, index = wavenumber (e.g. ``to_fourier(rho - 1)`` or
        ``density.fourier(K)``; ``[0]`` is ignored).
    k_min : int
        First wavenumber fitted (``>= 1``); low modes often carry a non-asymptotic shape.
    k_max : int, optional
        Last wavenumber considered (default ``K - 1``).
    noise : float
        Relative noise floor (module docstring, step 1).

    Returns
    -------
    RegularityEstimate

    Notes
    -----
    ``|f_hat(k)| ~ k^(-a)`` gives ``sum_(k >= K) |f_hat(k)|^2 ~ K^(1 - 2a) / (2a - 1)`` and
    ``f in H^r`` iff ``r < a - 1/2``. Method: module docstring.
    """
    mags = np.abs(np.asarray(coeffs))
    if mags.ndim != 1 or mags.size < 2:
        raise ValueError(f"coeffs must have shape (K,) with K >= 2, got shape {mags.shape}; pass "
                         "one-sided Fourier coefficients indexed by wavenumber")
    if not np.all(np.isfinite(mags)):
        raise ValueError("coeffs contains non-finite values; pass finite coefficients")
    if isinstance(k_min, bool) or not isinstance(k_min, (int, np.integer)) or k_min < 1:
        raise ValueError(f"k_min={k_min!r} must be an integer >= 1; pass e.g. k_min=2")
    last = mags.size - 1
    if k_max is None:
        k_max = last
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max <= k_min:
        raise ValueError(f"k_max={k_max!r} must be an integer > k_min={k_min}; pass e.g. "
                         f"k_max={last}")
    k_max = min(int(k_max), last)
    if k_max <= k_min:
        raise ValueError(f"k_min={k_min} leaves no wavenumbers: coeffs only reach k={last}; "
                         "pass more coefficients or a smaller k_min")
    if not (math.isfinite(noise) and 0 <= noise < 1):
        raise ValueError(f"noise={noise!r} must lie in [0, 1); pass e.g. noise=1e-13")

    peak = float(np.max(mags[1:]))
    floor = noise * peak
    resolved = np.nonzero(mags[k_min:k_max + 1] > floor)[0]
    if peak == 0.0 or resolved.size == 0:
        return _smooth(k_min, k_min, 0, "no coefficient above the noise floor for k >= k_min")
    k_end = k_min + int(resolved[-1])
    if resolved.size < 3:
        return _smooth(k_min, k_end, resolved.size,
                       f"only {resolved.size} resolved coefficients in range: faster than any "
                       "power")

    power = mags[k_min:k_end + 1] ** 2
    power = np.where(power > floor * floor, power, 0.0)
    ks = np.arange(k_min, k_end + 1, dtype=float)
    tail = np.cumsum(power[::-1])[::-1]             # T(K) for K = k_min .. k_end
    top = max(k_min + 2, k_end // 2) if k_end - k_min >= 4 else k_end
    grid = np.unique(np.rint(np.geomspace(k_min, top, 32)).astype(int))
    grid = grid[tail[grid - k_min] > 0]
    if grid.size < 3:
        return _smooth(k_min, k_end, grid.size, "tail sums vanish: faster than any power")
    log_t = np.log(tail[grid - k_min])
    # var(log T) ~ sum p_k^2 / T^2 for independent fluctuations of the p_k (random phases or
    # noise): high K, with more terms, is weighted more
    squares = np.cumsum((power * power)[::-1])[::-1]
    weight = tail[grid - k_min] ** 2 / squares[grid - k_min]
    weight /= weight.sum()

    a, rms_power = _fit_power(ks, grid - k_min, log_t, weight)
    # smooth or not is decided by the asymptotics: the upper half of the K grid, both models
    # fitted to log T without weights (one metric for both)
    upper = slice(max(0, grid.size // 2 - 1), grid.size)
    flat = np.full(grid[upper].size, 1.0 / grid[upper].size)
    rms_geo = _fit_geometric(grid[upper].astype(float), log_t[upper], flat)
    rms_pow = _fit_power(ks, grid[upper] - k_min, log_t[upper], flat, log=True)[1]
    if rms_geo < rms_pow:
        return _smooth(k_min, k_end, grid.size,
                       f"geometric decay fits the upper half better (rms of log T {rms_geo:.2g} "
                       f"vs power law {rms_pow:.2g})")
    half = grid.size // 2
    if half >= 3:
        a_low = _fit_power(ks, grid[:half + 1] - k_min, log_t[:half + 1], weight[:half + 1])[0]
        a_high = _fit_power(ks, grid[half:] - k_min, log_t[half:], weight[half:])[0]
        spread = 0.5 * abs(a_high - a_low)
    else:
        spread = 0.0
    error = max(spread, _standard_error(ks, grid - k_min, a, rms_power, weight))
    return RegularityEstimate(float(a), float(a - 0.5), float(error), False, int(k_min),
                              int(k_end), int(grid.size),
                              f"power law fit of tail sums (relative rms {rms_power:.2g}); upper "
                              f"half: rms of log T {rms_pow:.2g} (power) vs {rms_geo:.2g} "
                              "(geometric)")


# ------------------------------------------------------------------------------------ fits

def _smooth(k_min: int, k_end: int, n_points: int, note: str) -> RegularityEstimate:
    return RegularityEstimate(math.inf, math.inf, 0.0, True, int(k_min), int(k_end),
                              int(n_points), note)


def _log_model(ks: np.ndarray, index: np.ndarray, a: float) -> np.ndarray:
    """``log S_a(K)`` at ``K = ks[index]``, ``S_a(K) = sum_(k >= K) k^(-2a)`` up to ``ks[-1]``."""
    logs = -2.0 * a * np.log(ks)
    shift = logs[index[0]:].max() if index.size else 0.0
    terms = np.exp(logs - shift)
    tail = np.cumsum(terms[::-1])[::-1]
    return np.log(tail[index]) + shift


def _residual(ks, index, log_t, weight, a, log: bool = False) -> float:
    """Weighted rms relative misfit ``T / (C S_a) - 1``, ``C`` optimal (``log``: of ``log T``).

    Relative (not logarithmic) residuals: ``E[T] = C S_a`` makes them unbiased, while
    ``E[log T] < log E[T]`` would bias ``a`` where few terms make up a tail sum.
    """
    if log:
        r = log_t - _log_model(ks, index, a)
        r -= weight @ r / weight.sum()
        return float(np.sqrt(weight @ (r * r) / weight.sum()))
    z = np.exp(log_t - _log_model(ks, index, a))
    z /= np.exp(np.mean(np.log(z)))
    inv_c = (weight @ z) / (weight @ (z * z))
    r = inv_c * z - 1.0
    return float(np.sqrt(weight @ (r * r) / weight.sum()))


def _fit_power(ks: np.ndarray, index: np.ndarray, log_t: np.ndarray, weight: np.ndarray,
               log: bool = False) -> tuple[float, float]:
    """``(a, rms)`` minimising :func:`_residual` over ``a`` (coarse scan, then Brent)."""
    def cost(a):
        return _residual(ks, index, log_t, weight, a, log)

    scan = np.linspace(*_A_RANGE, 83)
    res = np.array([cost(a) for a in scan])
    i = int(np.argmin(res))
    lo, hi = scan[max(i - 1, 0)], scan[min(i + 1, scan.size - 1)]
    best = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    a = float(best.x) if best.fun <= res[i] else float(scan[i])
    return a, cost(a)


def _fit_geometric(grid: np.ndarray, log_t: np.ndarray, weight: np.ndarray) -> float:
    """Weighted rms residual of the straight-line fit ``log T = alpha - beta K``."""
    coef = np.polyfit(grid, log_t, 1, w=np.sqrt(weight))
    r = log_t - np.polyval(coef, grid)
    return float(np.sqrt(weight @ (r * r) / weight.sum()))


def _standard_error(ks, index, a: float, rms: float, weight: np.ndarray) -> float:
    """Standard error of ``a`` from the weighted regression linearised around ``a``."""
    h = 1e-5
    slope = (_log_model(ks, index, a + h) - _log_model(ks, index, a - h)) / (2 * h)
    w = weight / weight.sum()
    spread = float(w @ (slope - w @ slope) ** 2)
    n_eff = 1.0 / float(w @ w)                     # effective number of points
    dof = max(1.0, n_eff - 2.0)
    return math.sqrt(rms * rms / (dof * spread)) if spread > 0 else math.inf
