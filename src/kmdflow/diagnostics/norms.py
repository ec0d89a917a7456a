r"""Sobolev norms ``||f||_(H^q)`` of grid deviations and of particles minus a target (d = 1).

Fourier and measure conventions: :mod:`kmdflow.domains.torus`. All norms here are the homogeneous
(semi)norm that ignores the mass mode,

    ||f||_(H^q)^2 = sum_(k != 0) |k|^(2q) |f_hat(k)|^2 = 2 sum_(k >= 1) k^(2q) |f_hat(k)|^2,

so ``||mu - nu||_(H^-s)^2 = 2 E`` for the Sobolev energy ``E`` of MATH.md section 2.

Grid deviations (:func:`grid_sobolev_norm`) take one-sided coefficients, any real ``q``.

Particle measures (:func:`particle_sobolev_norm`) lie in ``H^q`` only for ``q < -1/2``. Four
routes; ``method="auto"`` takes ``"exact"`` or ``"cdf"`` where they apply, then ``"pair"`` for
an atomic target with at most :data:`PAIR_BUDGET` pairs, then ``"fourier"`` if its cutoff is
at most :data:`MAX_MODES`, then ``"pair"`` for an atomic target whatever its size:

``"exact"``
    integer ``s = -q``, target uniform or atoms: ``2 * atomic_energy`` (piecewise-polynomial
    recursion, a sum of nonnegative terms; exact up to round-off and cancellation-free, so it
    keeps full relative precision at equilibrium).
``"cdf"``
    ``q = -1``, density (or uniform) target: ``g = 2 pi (D - mean D)`` with
    ``D(x) = mu([0, x)) - nu([0, x)) - (mu(T) - nu(T)) x / 2 pi`` has
    ``g_hat(k) = m_hat(k) / (ik)``, so by Parseval

        ||m||_(H^-1)^2 = mean(g^2) = 2 pi int_0^(2 pi) (D - mean D)^2 dx,

    integrated by 12-point Gauss-Legendre panels cut at the atoms and the density's breakpoints,
    panel length ``<= pi / bandwidth``. ``D`` is a difference of cdfs, so no large terms cancel:
    exact up to round-off, full relative precision at equilibrium.
``"fourier"``
    any ``q < -1/2``, any target: ``2 sum_(k=1)^K k^(2q) |mu_hat(k) - nu_hat(k)|^2`` with
    ``mu_hat`` from a type-1 NUFFT (finufft) and ``nu_hat`` from the target's exact coefficients.
    The tail is certified: ``|m_hat(k)| <= |m|(T) <= B = sum|w| + nu(T)`` for every ``k``, so

        0 <= tail <= 2 B^2 sum_(k > K) k^(2q) = 2 B^2 zeta(-2q, K + 1)
                    <= 2 B^2 K^(1+2q) / (-2q - 1),

    and ``K`` is the smallest cutoff whose bound is ``<= tol`` (an *absolute* bound on the
    squared norm). Used when ``K <= MAX_MODES``. Particle spectra do not decay, so the tail is
    never negligible by itself: the bound is attained by a single atom, and for ``N`` atoms of
    weight ``1/N`` the typical tail is still about ``B^2 N`` times smaller only. Near
    equilibrium (``||.||^2 ~ N^(2q)``) lower ``tol`` accordingly.
``"pair"``
    non-integer ``s``, target uniform or atoms: the pair sum ``sum_(i,j) q_i q_j K_s(X_i - X_j)`` of
    :func:`~kmdflow.summation.energy.atomic_energy`, ``O(N^2)``, absolute error about
    ``1e-16 (sum |q|)^2``.

A density target with non-integer ``q`` too close to ``-1/2`` for the requested ``tol`` is
refused with a message giving the smallest feasible ``tol``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import zeta

from kmdflow.measures.piecewise import smooth_bandwidth
from kmdflow.domains.torus import TWO_PI, wrap
from kmdflow.kernels.sobolev import SobolevKernel
from kmdflow.measures import Atoms, Density, Uniform
from kmdflow.summation.energy import atomic_energy

__all__ = ["grid_sobolev_norm", "particle_sobolev_norm", "atom_coefficients", "fourier_cutoff",
           "MAX_MODES", "NORM_METHODS", "PAIR_BUDGET"]

#: Largest Fourier cutoff of the ``"fourier"`` route (a NUFFT of ``2^22`` modes, about 2 s).
MAX_MODES = 1 << 21
#: Largest number of pairs for which ``"auto"`` prefers the pair sum (non-integer ``s``, atomic
#: target): about 0.2 s here, and round-off accuracy instead of ``tol``.
PAIR_BUDGET = 4_000_000
#: Requested NUFFT precision (finufft reaches about 1e-14 relative to ``sum |w|``).
NUFFT_EPS = 1e-14
#: Routes of :func:`particle_sobolev_norm`.
NORM_METHODS = ("auto", "exact", "cdf", "fourier", "pair")
#: Gauss-Legendre nodes per panel of the ``"cdf"`` route.
_GL_NODES = 12


# ----------------------------------------------------------------------------------- grids

def grid_sobolev_norm(deviation_hat: np.ndarray, q: float) -> float | np.ndarray:
    r"""``||f||_(H^q)`` of a real function from its one-sided Fourier coefficients.

    Parameters
    ----------
    deviation_hat : (K,) or (..., K) complex
        One-sided coefficients ``f_hat(0 .. K-1)`` (e.g. ``to_fourier(rho - nu)``); leading axes
        are batch axes. ``f_hat(0)`` is ignored (the mass mode).
    q : float
        Any real order (negative: dual norms such as ``H^-s``).

    Returns
    -------
    float, or (...) float for batched input

    Notes
    -----
    ``||f||_(H^q)^2 = sum_(k != 0) |k|^(2q) |f_hat(k)|^2 = 2 sum_(k >= 1) k^(2q) |f_hat(k)|^2``
    (every ``k > 0`` counted twice, convention of :mod:`kmdflow.domains.torus`). For ``q = 0`` this
    is ``mean((f - mean f)^2)^(1/2)`` on the grid; for ``q = 1`` it is the same for ``f'``. The
    Nyquist coefficient of an even-length ``rfft`` stands for both ``+-n/2`` and is counted twice
    here too; the solvers keep it at zero. Terms are rescaled by their maximum before squaring,
    so tiny deviations (``1e-200``) neither underflow nor lose precision.
    """
    c = np.asarray(deviation_hat)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError(f"deviation_hat must have shape (K,) with K >= 1, got shape {c.shape}; "
                         "pass one-sided coefficients such as to_fourier(values)")
    q = _finite_real(q, "q")
    k = np.arange(1, c.shape[-1], dtype=float)
    terms = np.abs(c[..., 1:]) * k ** q
    if not np.all(np.isfinite(terms)):
        raise ValueError("deviation_hat contains non-finite values (or |k|^q overflows); "
                         "pass finite coefficients")
    scale = np.max(terms, axis=-1, initial=0.0)
    safe = np.where(scale > 0, scale, 1.0)
    out = scale * np.sqrt(2.0 * np.sum((terms / safe[..., None]) ** 2, axis=-1))
    return float(out) if out.ndim == 0 else out


# ------------------------------------------------------------------------------- particles

def fourier_cutoff(q: float, tol: float, bound: float) -> int:
    r"""Smallest ``K`` with ``2 bound^2 sum_(k > K) k^(2q) <= tol`` (``q < -1/2``).

    Parameters
    ----------
    q : float
        Order, ``q < -1/2``.
    tol : float
        Absolute bound on the truncation error of the squared norm.
    bound : float
        ``B >= sup_k |m_hat(k)|`` (the total variation of the signed measure).

    Returns
    -------
    int
        ``K >= 1``; may exceed :data:`MAX_MODES` (callers decide).

    Notes
    -----
    The start ``K0 = ceil((2 B^2 / ((p - 1) tol))^(1/(p-1)))``, ``p = -2q``, comes from the
    integral bound ``sum_(k>K) k^-p <= K^(1-p) / (p - 1)``; it is then lowered by bisection on
    the exact tail ``zeta(p, K + 1)`` (Hurwitz zeta).
    """
    p = -2.0 * q
    if bound == 0.0:
        return 1
    log_k0 = (math.log(2.0 * bound * bound / ((p - 1.0) * tol))) / (p - 1.0)
    if log_k0 > math.log(1e18):
        return 10 ** 18
    hi = max(1, math.ceil(math.exp(log_k0)))
    lo = 0
    while hi - lo > 1:                       # tail(lo) > tol >= tail(hi)
        mid = (lo + hi) // 2
        if mid >= 1 and 2.0 * bound * bound * zeta(p, mid + 1.0) <= tol:
            hi = mid
        else:
            lo = mid
    return hi


def particle_sobolev_norm(positions, weights, target, q: float, tol: float = 1e-10,
                          method: str = "auto") -> float:
    r"""``||mu_N - nu||_(H^q)`` for ``mu_N = sum_j w_j delta_(X_j)`` and a target ``nu``.

    Parameters
    ----------
    positions : (N,) float
        Particle positions, any reals (wrapped to ``[0, 2 pi)``).
    weights : (N,) float
        Particle weights (``1/N`` for a probability measure; any finite reals are accepted, the
        mass mode is ignored).
    target : "uniform", Density or Atoms
        The target ``nu``.
    q : float
        Order, ``q < -1/2`` (atoms are not in ``H^q`` otherwise).
    tol : float
        Absolute bound on the truncation error of the *squared* norm (``"fourier"`` route).
    method : {"auto", "exact", "cdf", "fourier", "pair"}
        Route (see the module docstring); ``"auto"`` picks the most accurate feasible one.

    Returns
    -------
    float
        ``>= 0``. ``N`` equispaced particles of weight ``1/N`` against the uniform target give
        ``(2 zeta(-2q))^(1/2) N^q`` (MATH.md section 3, with ``s = -q``).

    Raises
    ------
    ValueError
        ``q >= -1/2``, a bad ``tol``, ``target`` or ``method``, a route that does not apply, or a
        density target whose Fourier cutoff exceeds :data:`MAX_MODES`.

    Notes
    -----
    ``||mu - nu||_(H^q)^2 = sum_(k != 0) |k|^(2q) |mu_hat(k) - nu_hat(k)|^2 = 2 E`` with ``E`` the
    ``H^-s`` energy for ``s = -q``. Routes and their accuracy: module docstring.
    """
    q = _finite_real(q, "q")
    if not q < -0.5:
        raise ValueError(f"q={q!r}: particle measures have a finite H^q norm only for q < -1/2; "
                         "pass e.g. q=-1.0 (the H^-1 norm) or q=-2.0")
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        tol = float("nan")
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol={tol!r} must be a positive finite number; pass e.g. tol=1e-10")
    if method not in NORM_METHODS:
        raise ValueError(f"method={method!r} is not a route; choose one of "
                         f"{', '.join(NORM_METHODS)}")
    x, w = _particles(positions, weights)
    nu = _target(target)
    s = -q
    integer_s = float(s).is_integer()
    atomic_target = not isinstance(nu, Density)        # "uniform" string or Atoms
    bound = math.fsum(np.abs(w)) + 1.0                  # >= |mu - nu|(T); every target has mass 1

    if method == "auto":
        if integer_s and atomic_target:
            method = "exact"
        elif s == 1.0:
            method = "cdf"
        elif atomic_target and (x.size + _size(nu)) ** 2 <= PAIR_BUDGET:
            method = "pair"
        elif fourier_cutoff(q, tol, bound) <= MAX_MODES:
            method = "fourier"
        elif atomic_target:
            method = "pair"
        else:
            least = 2.0 * bound * bound * float(zeta(-2.0 * q, MAX_MODES + 1.0))
            raise ValueError(f"q={q!r} with a density target needs more than {MAX_MODES} Fourier "
                             f"modes for tol={tol!r}; pass tol >= {least:.3g} (the certified "
                             "tail bound at the largest cutoff)")

    if method == "exact":
        if not (integer_s and atomic_target):
            raise ValueError(f"method='exact' needs an integer -q and a uniform or atomic target "
                             f"(got q={q!r}, target {type(nu).__name__}); use method='auto'")
        return _atomic_norm(SobolevKernel(s), x, w, nu)
    if method == "pair":
        if not atomic_target:
            raise ValueError("method='pair' needs a uniform or atomic target, got a Density; "
                             "use method='fourier' or 'auto'")
        return _atomic_norm(SobolevKernel(s), x, w, nu)
    if method == "cdf":
        if s != 1.0 or isinstance(nu, Atoms):
            raise ValueError(f"method='cdf' needs q=-1 and a uniform or density target (got "
                             f"q={q!r}, target {type(nu).__name__}); use method='auto'")
        return _cdf_norm(wrap(x), w, Uniform() if isinstance(nu, str) else nu)
    n_modes = fourier_cutoff(q, tol, bound)
    if n_modes > MAX_MODES:
        least = 2.0 * bound * bound * float(zeta(-2.0 * q, MAX_MODES + 1.0))
        raise ValueError(f"tol={tol!r} needs {n_modes} Fourier modes for q={q!r}, more than "
                         f"MAX_MODES={MAX_MODES}; pass tol >= {least:.3g} or use method='auto'")
    return _fourier_norm(wrap(x), w, nu, q, n_modes)


# ---------------------------------------------------------------------------------- routes

def _atomic_norm(kernel: SobolevKernel, x: np.ndarray, w: np.ndarray, nu) -> float:
    """``(2 atomic_energy)^(1/2)`` of ``mu - nu`` for a uniform or atomic ``nu``.

    The background passed is the total charge, so a mass mismatch (the ``k = 0`` mode, which the
    kernel ignores) is accepted.
    """
    if isinstance(nu, Atoms):
        x = np.concatenate([x, nu.positions])
        w = np.concatenate([w, -nu.weights])
    energy = atomic_energy(kernel, x, w, background=math.fsum(w))
    return math.sqrt(max(0.0, 2.0 * energy))


def _fourier_norm(x: np.ndarray, w: np.ndarray, nu, q: float, n_modes: int) -> float:
    """``(2 sum_(k=1)^K k^(2q) |mu_hat(k) - nu_hat(k)|^2)^(1/2)``, ``K = n_modes``."""
    diff = atom_coefficients(x, w, n_modes)
    if isinstance(nu, Atoms):
        diff -= atom_coefficients(nu.positions, nu.weights, n_modes)
    elif isinstance(nu, Density):
        diff -= nu.fourier(n_modes + 1)[1:]
    # the uniform target has nu_hat(k) = 0 for k != 0
    k = np.arange(1, n_modes + 1, dtype=float)
    terms = np.abs(diff) * k ** q
    scale = float(np.max(terms, initial=0.0))
    if scale == 0.0:
        return 0.0
    return scale * math.sqrt(2.0 * float(np.sum((terms / scale) ** 2)))


def atom_coefficients(positions: np.ndarray, weights: np.ndarray, n_modes: int) -> np.ndarray:
    r"""``mu_hat(k) = sum_j w_j exp(-i k X_j)`` for ``k = 1 .. n_modes`` by a type-1 NUFFT.

    Parameters
    ----------
    positions : (N,) float
        Positions in ``[0, 2 pi)``.
    weights : (N,) float
    n_modes : int
        ``K``.

    Returns
    -------
    (K,) complex

    Notes
    -----
    One transform of modes ``-K .. K`` (``modeord=1``: ``0, 1, .., K, -K, .., -1``), of which
    ``1 .. K`` are kept. finufft is backward stable: the error of mode ``k`` grows like
    ``k |X| eps`` (positions perturbed by round-off), about ``1e-16`` at ``k = 1`` and ``1e-11``
    at ``k = 7e4``. Shifting the modes onto ``1 .. K`` with a half-size transform would move those
    large errors to the low modes, which the Sobolev weights ``k^(2q)`` favour; so it is not done.
    """
    import finufft

    out = finufft.nufft1d1(positions, np.asarray(weights, dtype=complex), 2 * n_modes + 1,
                           eps=NUFFT_EPS, isign=-1, modeord=1)
    return out[1:n_modes + 1]


def _cdf_norm(x: np.ndarray, w: np.ndarray, density: Density) -> float:
    """``||mu - nu||_(H^-1)`` from the difference of cdfs (module docstring, route ``"cdf"``)."""
    order = np.argsort(x)
    xs, ws = x[order], w[order]
    cum = np.concatenate([[0.0], np.cumsum(ws)])
    excess = math.fsum(ws) - 1.0
    nodes, quad = _panels(np.concatenate([xs, _breakpoints(density)]), smooth_bandwidth(density))
    d = cum[np.searchsorted(xs, nodes, side="left")] - density.cdf(nodes) - excess * nodes / TWO_PI
    mean = float(quad @ d) / TWO_PI
    return math.sqrt(TWO_PI * float(quad @ (d - mean) ** 2))


def _panels(cuts: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[0, 2 pi]``, panels cut at ``cuts`` and every
    ``pi / bandwidth`` (at most ``pi / 8``)."""
    step = min(np.pi / 8.0, np.pi / max(1.0, bandwidth))
    uniform = np.linspace(0.0, TWO_PI, int(np.ceil(TWO_PI / step)) + 1)
    edges = np.unique(np.concatenate([uniform, np.clip(cuts, 0.0, TWO_PI)]))
    lo, hi = edges[:-1], edges[1:]
    xi, omega = np.polynomial.legendre.leggauss(_GL_NODES)
    half = 0.5 * (hi - lo)
    nodes = (lo + half)[:, None] + half[:, None] * xi[None, :]
    return nodes.ravel(), (half[:, None] * omega[None, :]).ravel()




def _breakpoints(density: Density) -> np.ndarray:
    return wrap(np.asarray(density.breakpoints, dtype=float).reshape(-1))


# ------------------------------------------------------------------------------ validation

def _size(nu) -> int:
    return nu.size if isinstance(nu, Atoms) else 0


def _finite_real(value, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be a real number") from None
    if not math.isfinite(out):
        raise ValueError(f"{name}={value!r} must be finite")
    return out


def _particles(positions, weights) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(positions, dtype=float)
    w = np.asarray(weights, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"positions must have shape (N,) with N >= 1, got shape {x.shape}; "
                         "pass a flat array of positions on T^1")
    if w.shape != x.shape:
        raise ValueError(f"weights must have the shape of positions {x.shape}, got {w.shape}; "
                         "pass one weight per particle")
    for name, arr in (("positions", x), ("weights", w)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains non-finite values (first at index "
                             f"{int(np.argmin(np.isfinite(arr)))}); pass finite numbers")
    return x, w


def _target(target):
    if isinstance(target, str):
        if target != "uniform":
            raise ValueError(f"target={target!r}: the only named target is 'uniform'; pass a "
                             "Density or Atoms for others")
        return target
    if isinstance(target, (Density, Atoms)):
        return target
    raise ValueError(f"target of type {type(target).__name__} is not a measure; pass 'uniform', "
                     "a kmdflow.measures.Density or kmdflow.measures.Atoms")
