r"""The sphere :math:`S^d \subset R^{d+1}` (any ``d >= 1``) and its conventions, stated once.

Other docstrings about the sphere point here.

Points
    Unit vectors, arrays of shape ``(N, d + 1)``. On the circle (``d = 1``) the angle ``phi`` in
    ``[0, 2 pi)`` and the point ``(cos phi, sin phi)`` are the same thing (:func:`angles_to_points`,
    :func:`points_to_angles`); the angle is the torus coordinate of :mod:`kmdflow.domains.torus`.
Measures
    ``sigma`` is the uniform *probability* measure on ``S^d``. Densities are taken with respect to
    ``sigma`` (so on the circle with respect to ``dphi / 2 pi``, as on the torus). Particle measures
    are ``sum_j m_j delta_{theta_j}`` with ``m_j > 0`` (finite, not necessarily probability).
Tangent vectors and gradients
    Tangent vectors at ``theta`` are stored in the ambient coordinates (orthogonal to ``theta``).
    The Riemannian gradient of a function restricted to the sphere is the tangent projection
    ``(I - theta theta^T) g`` of any ambient gradient ``g`` (:func:`tangent_project`). The retraction
    is normalisation ``x / |x|`` (:func:`retract`).
Zonal functions and Funk--Hecke
    A zonal function is ``f(theta . eta)``. With the Gegenbauer polynomials normalised to
    ``P_l(1) = 1`` (Legendre for ``d = 2``, ``cos(l delta)`` for ``d = 1``; recurrence in
    :func:`gegenbauer`) and ``N_l`` the dimension of the degree-``l`` spherical harmonics
    (:func:`harmonic_dimension`), the Funk--Hecke coefficients are

        f_l = E[f(u) P_l(u)],   u = theta . eta with theta ~ sigma,

    so that ``f(u) = sum_l N_l f_l P_l(u)`` and the spherical convolution of two zonal functions is
    ``\int f(theta . theta') g(theta' . eta) dsigma(theta') = sum_l N_l f_l g_l P_l(theta . eta)``.
    :func:`funk_hecke_coefficients` computes ``f_l`` by Gauss--Legendre quadrature in the angle
    ``delta = arccos u``, where the kernels used here are analytic.
"""

from __future__ import annotations

import math

import numpy as np

TWO_PI = 2.0 * np.pi


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def check_points(points, name: str = "positions") -> np.ndarray:
    """Validate an ``(N, d + 1)`` float array with ``d >= 1`` and finite entries; returns float64.

    Raises
    ------
    ValueError
        Naming ``name`` when the shape is wrong or a value is not finite.
    """
    x = np.asarray(points, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, d + 1) with d >= 1 (unit vectors in R^(d+1)), "
                         f"got shape {x.shape}; on the circle use angles_to_points(angles)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains non-finite values; pass finite unit vectors")
    return x


def sample_uniform(n: int, dim: int, seed=0) -> np.ndarray:
    """``n`` independent points from ``sigma`` on ``S^dim``: ``(n, dim + 1)``.

    Parameters
    ----------
    n : int
        Number of points.
    dim : int
        Sphere dimension ``d >= 1``.
    seed : int or numpy.random.Generator
        Randomness (the same seed gives the same points).

    Notes
    -----
    Normalised standard Gaussian vectors are uniform on the sphere (rotation invariance).
    """
    if int(dim) < 1:
        raise ValueError(f"dim must be >= 1 (the sphere S^dim in R^(dim+1)), got {dim!r}")
    g = _rng(seed).standard_normal((int(n), int(dim) + 1))
    return retract(g)


def sample_von_mises_fisher(n: int, direction, kappa: float, seed=0) -> np.ndarray:
    r"""``n`` points from the von Mises--Fisher law ``~ exp(kappa theta . eta) dsigma``: ``(n, d + 1)``.

    Parameters
    ----------
    n : int
        Number of points.
    direction : (d + 1,) float
        Mean direction ``eta`` (normalised here).
    kappa : float
        Concentration ``>= 0`` (``0``: uniform).
    seed : int or numpy.random.Generator

    Notes
    -----
    Wood's (1994) rejection sampler for the cosine ``w = theta . eta``, whose density is
    proportional to :math:`e^{\kappa w} (1 - w^2)^{(d-2)/2}`, then an independent uniform direction
    orthogonal to ``eta``.
    """
    eta = np.asarray(direction, dtype=float)
    eta = eta / np.linalg.norm(eta)
    dim = eta.size - 1
    rng = _rng(seed)
    if kappa < 0:
        raise ValueError(f"kappa must be >= 0, got {kappa!r}")
    if kappa == 0:
        return sample_uniform(n, dim, rng)
    b = dim / (np.sqrt(4.0 * kappa**2 + dim**2) + 2.0 * kappa)
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + dim * np.log(1.0 - x0**2)
    w = np.empty(0)
    while w.size < n:
        size = 2 * (n - w.size) + 16
        z = rng.beta(dim / 2.0, dim / 2.0, size)
        cand = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        u = rng.uniform(size=size)
        ok = kappa * cand + dim * np.log(1.0 - x0 * cand) - c >= np.log(u)
        w = np.concatenate([w, cand[ok]])
    w = w[:n]
    v = tangent_project(np.broadcast_to(eta, (n, dim + 1)), rng.standard_normal((n, dim + 1)))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return retract(w[:, None] * eta + np.sqrt(np.clip(1.0 - w**2, 0.0, None))[:, None] * v)


def retract(points) -> np.ndarray:
    """Normalise rows to unit length (the retraction onto the sphere): ``(N, d + 1)``."""
    x = np.asarray(points, dtype=float)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def tangent_project(points, vectors) -> np.ndarray:
    r"""Tangent part ``v - (v . theta) theta`` of ``vectors (N, d+1)`` at unit ``points (N, d+1)``."""
    x = np.asarray(points, dtype=float)
    v = np.asarray(vectors, dtype=float)
    return v - np.sum(v * x, axis=-1, keepdims=True) * x


def geodesic_distance(a, b) -> np.ndarray:
    r"""Great-circle distance ``arccos(a . b)`` between rows of ``a`` and ``b`` (broadcast): ``(N,)``.

    Notes
    -----
    Computed as ``2 arctan2(|a - b|, |a + b|)``, accurate for nearly equal and nearly antipodal
    points, where ``arccos`` of a rounded dot product loses half the digits.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return 2.0 * np.arctan2(np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1))


def angles_to_points(angles) -> np.ndarray:
    """Circle angles ``(N,)`` to unit vectors ``(cos phi, sin phi)``: ``(N, 2)``."""
    phi = np.asarray(angles, dtype=float)
    return np.stack([np.cos(phi), np.sin(phi)], axis=-1)


def points_to_angles(points) -> np.ndarray:
    """Unit vectors on the circle ``(N, 2)`` to angles in ``[0, 2 pi)``: ``(N,)``."""
    x = np.asarray(points, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) (the circle S^1), got {x.shape}")
    phi = np.mod(np.arctan2(x[:, 1], x[:, 0]), TWO_PI)
    return np.where(phi >= TWO_PI, 0.0, phi)


# -- zonal functions ------------------------------------------------------------------------------

def harmonic_dimension(l_max: int, dim: int) -> np.ndarray:
    """Dimensions ``N_l`` of the degree-``l`` spherical harmonics on ``S^dim``, ``l = 0..l_max``.

    Notes
    -----
    ``N_0 = 1``; for ``l >= 1``, ``N_l = (2l + d - 1) C(l + d - 2, d - 1) / l`` (an integer)
    (``2`` on the circle, ``2l + 1`` on ``S^2``).
    """
    dim = int(dim)
    values = [1] + [(2 * l + dim - 1) * math.comb(l + dim - 2, dim - 1) // l for l in range(1, int(l_max) + 1)]
    return np.array(values, dtype=float)


def gegenbauer(l_max: int, dim: int, t, derivative: bool = False):
    r"""Normalised Gegenbauer polynomials ``P_0..P_lmax`` of ``S^dim`` at ``t``: ``(l_max + 1, N)``.

    Parameters
    ----------
    l_max : int
    dim : int
        Sphere dimension ``d >= 1``.
    t : (N,) float
        Points in ``[-1, 1]``.
    derivative : bool
        Also return the derivatives ``P_l'(t)`` (same shape).

    Notes
    -----
    ``P_0 = 1``, ``P_1 = t`` and
    :math:`(l + d - 1) P_{l+1} = (2l + d - 1)\, t P_l - l P_{l-1}`, so ``P_l(1) = 1``; the
    derivative follows by differentiating the recurrence.
    """
    t = np.atleast_1d(np.asarray(t, dtype=float))
    p = np.empty((int(l_max) + 1, t.size))
    dp = np.zeros_like(p)
    p[0] = 1.0
    if l_max >= 1:
        p[1] = t
        dp[1] = 1.0
    for l in range(1, int(l_max)):
        a, b = (2.0 * l + dim - 1) / (l + dim - 1), l / (l + dim - 1)
        p[l + 1] = a * t * p[l] - b * p[l - 1]
        dp[l + 1] = a * (p[l] + t * dp[l]) - b * dp[l - 1]
    return (p, dp) if derivative else p


def funk_hecke_coefficients(profile, l_max: int, dim: int, interval=(0.0, np.pi),
                            nodes: int | None = None) -> np.ndarray:
    r"""Funk--Hecke coefficients ``f_l = E[f(u) P_l(u)]``, ``l = 0..l_max`` (module docstring).

    Parameters
    ----------
    profile : callable
        ``f`` as a function of the angle ``delta = arccos u`` (vectorised); it should be analytic
        on ``interval`` and zero outside it.
    l_max : int
    dim : int
        Sphere dimension.
    interval : (float, float)
        Sub-interval of ``[0, pi]`` carrying ``f``.
    nodes : int, optional
        Gauss--Legendre nodes (default ``2 l_max + 200``).

    Returns
    -------
    (l_max + 1,) float

    Notes
    -----
    :math:`f_l = \int f(\cos\delta) P_l(\cos\delta) \sin^{d-1}\delta\, d\delta / \int_0^\pi
    \sin^{d-1}\delta\, d\delta`, the denominator being :math:`\sqrt\pi\,\Gamma(d/2)/\Gamma((d+1)/2)`.
    """
    n = int(nodes) if nodes is not None else 2 * int(l_max) + 200
    x, w = np.polynomial.legendre.leggauss(n)
    lo, hi = interval
    delta = lo + (hi - lo) * (x + 1.0) / 2.0
    w = w * (hi - lo) / 2.0
    norm = math.sqrt(math.pi) * math.exp(math.lgamma(dim / 2.0) - math.lgamma((dim + 1) / 2.0))
    weight = w * np.sin(delta) ** (dim - 1) * profile(delta) / norm
    return gegenbauer(l_max, dim, np.cos(delta)) @ weight


def zonal_series(coeffs, dim: int, t, derivative: bool = False):
    r"""``g(t) = sum_l N_l c_l P_l(t)`` (and ``g'(t)``) for Funk--Hecke coefficients ``coeffs (L,)``.

    ``t : (N,)`` in ``[-1, 1]``; returns ``(N,)`` (or a pair). Cost ``O(N L)``, memory ``O(N)``: the
    recurrence of :func:`gegenbauer` runs with the sums accumulated on the way.
    """
    c = np.asarray(coeffs, dtype=float)
    scaled = harmonic_dimension(c.size - 1, dim) * c
    t = np.atleast_1d(np.asarray(t, dtype=float))
    p_prev, p = np.zeros_like(t), np.ones_like(t)
    dp_prev, dp = np.zeros_like(t), np.zeros_like(t)
    value = np.full_like(t, scaled[0])
    slope = np.zeros_like(t)
    for l in range(c.size - 1):
        if l == 0:
            p_next, dp_next = t.copy(), np.ones_like(t)
        else:
            a, b = (2.0 * l + dim - 1) / (l + dim - 1), l / (l + dim - 1)
            p_next = a * t * p - b * p_prev
            dp_next = a * (p + t * dp) - b * dp_prev
        p_prev, p, dp_prev, dp = p, p_next, dp, dp_next
        value += scaled[l + 1] * p
        slope += scaled[l + 1] * dp
    return (value, slope) if derivative else value
