r"""Particles from a density: quantile, random and Sobol' placement.

Conventions (positions in ``[0, 2 pi)^d``, densities w.r.t. ``dx / (2 pi)^d``):
:mod:`kmdflow.domains.torus`.

On the circle every rule goes through the generalised inverse cdf
:math:`F^{-1}(u) = \inf\{x \ge 0 : F(x) \ge u\}`, so flat stretches of ``F`` (vacuum) are never
landed in. Densities with a closed form
(:meth:`~kmdflow.measures.base.Density.exact_inverse_cdf`: uniform, indicator) use it; all
others go through :func:`solve_inverse_cdf`, a vectorised bracketed Newton iteration. In
``d >= 2`` the densities map uniforms themselves
(:meth:`~kmdflow.measures.base_nd.DensityND.transform`); quantile placement has no
``d``-dimensional analogue there.
"""

from __future__ import annotations

import numpy as np

from kmdflow.domains.torus import TWO_PI, grid
from kmdflow.measures.atoms import Atoms
from kmdflow.measures.base import Density, MeasureError, TorusDensity, next_pow2
from kmdflow.measures.piecewise import smooth_bandwidth

#: The largest double below ``2 pi``: positions are clipped to it so they stay in ``[0, 2 pi)``.
LAST_POSITION = float(np.nextafter(TWO_PI, 0.0))

#: Placement rules accepted by :func:`place_particles` (``"quantile"``: ``d = 1`` only).
PLACEMENTS = ("quantile", "random", "sobol")


def inverse_cdf(density: Density, u: np.ndarray) -> np.ndarray:
    r"""Generalised inverse of the cdf, :math:`\inf\{x \in [0, 2\pi) : F(x) \ge u\}`.

    Parameters
    ----------
    density : Density
        The measure.
    u : (M,) float
        Levels in ``[0, 1]``.

    Returns
    -------
    (M,) float
        Positions in ``[0, 2 pi)``, nondecreasing in ``u``.
    """
    u = np.asarray(u, dtype=float)
    if not np.all((u >= 0) & (u <= 1)):
        raise MeasureError("u", "levels must lie in [0, 1]")
    x = density.exact_inverse_cdf(u)
    if x is None:
        x = solve_inverse_cdf(density, u)
    return np.minimum(x, LAST_POSITION)


def solve_inverse_cdf(density: Density, u: np.ndarray, max_iter: int = 200) -> np.ndarray:
    r"""Solve :math:`F(x) = u` for many ``u`` at once: bracketed Newton with bisection fallback.

    Parameters
    ----------
    density : Density
        Supplies :meth:`~Density.cdf_and_values` (``F`` and ``F' = rho / 2 pi``).
    u : (M,) float
        Levels in ``[0, 1]``.
    max_iter : int
        Iteration cap (bisection alone halves a grid cell ~40 times to reach round-off).

    Returns
    -------
    (M,) float

    Notes
    -----
    1. Tabulate ``F`` on ``2^14`` points (more for high bandwidths: 8 per shortest wavelength of
       the smooth parts, :func:`~kmdflow.measures.piecewise.smooth_bandwidth`);
       ``searchsorted`` gives each ``u`` a cell ``[lo, hi]`` with ``F(lo) < u <= F(hi)`` and a
       start by linear interpolation.
    2. Iterate on the unconverged points only: evaluate ``F`` and ``rho`` at ``x``, shrink the
       bracket by the sign of ``F(x) - u``, take the Newton step
       :math:`x - 2\pi (F(x) - u) / \rho(x)` when it stays inside the bracket, else the
       midpoint (vacuum, ``rho = 0``, lands here).
    3. A point is done when the step is below ``1e-14 + 8 eps / F'(x)`` (the last Newton step is
       then accurate to ``O(step^2)``; the second term is the round-off floor of ``F`` divided by
       the slope, i.e. the conditioning limit in near-vacuum), or when the bracket is below
       ``2e-15``. No Python loop over points; a few iterations for smooth densities.
    """
    u = np.asarray(u, dtype=float)
    shape, u = u.shape, u.reshape(-1)
    n_nodes = min(1 << 22, next_pow2(max(1 << 14, 8 * smooth_bandwidth(density))))
    nodes = np.append(grid(n_nodes), TWO_PI)
    f = np.append(density.cdf(nodes[:-1]), 1.0)
    f[0] = 0.0
    f = np.maximum.accumulate(f)
    cell = np.searchsorted(f, u, side="left")
    x = np.zeros(u.shape)
    todo = np.nonzero(cell > 0)[0]
    cell = cell[todo]
    target = u[todo]
    lo, hi = nodes[cell - 1], nodes[cell]
    xt = lo + (target - f[cell - 1]) / (f[cell] - f[cell - 1]) * (hi - lo)
    xt = np.clip(xt, lo, hi)
    eps = np.finfo(float).eps
    for _ in range(max_iter):
        if todo.size == 0:
            break
        fx, rho = density.cdf_and_values(xt)
        r = fx - target
        below = r < 0
        lo = np.where(below, xt, lo)
        hi = np.where(below, hi, xt)
        slope = rho / TWO_PI
        positive = slope > 0
        safe = np.where(positive, slope, 1.0)
        newton = xt - r / safe
        inside = positive & (newton >= lo) & (newton <= hi)
        nxt = np.where(inside, newton, 0.5 * (lo + hi))
        nxt = np.where(r == 0, xt, nxt)
        done = ((r == 0) | (inside & (np.abs(newton - xt) <= 1e-14 + 8 * eps / safe))
                | (hi - lo <= 2e-15))
        x[todo[done]] = nxt[done]
        keep = ~done
        todo, target, lo, hi, xt = todo[keep], target[keep], lo[keep], hi[keep], nxt[keep]
    x[todo] = xt
    return x.reshape(shape)


def quantile_positions(density: Density, n: int) -> np.ndarray:
    r"""Quantile placement :math:`X_j = F^{-1}((j - 1/2)/n)`, ``j = 1..n``.

    Parameters
    ----------
    density : Density
    n : int
        Number of particles ``>= 1``.

    Returns
    -------
    (n,) float
        Sorted positions in ``[0, 2 pi)``; ``|F(X_j) - (j - 1/2)/n| <= ~1e-16`` and ``X_j`` to
        ``1e-13`` wherever ``rho(X_j)`` is not tiny (the error is ``~eps / F'(X_j)`` at worst).
    """
    n = _count(n)
    return inverse_cdf(density, (np.arange(n) + 0.5) / n)


def random_positions(density: Density, n: int, seed: int) -> np.ndarray:
    """I.i.d. positions from ``density``: ``F^{-1}(U)``, ``U = default_rng(seed).random(n)``.

    Parameters
    ----------
    density : Density
    n : int
        Number of particles ``>= 1``.
    seed : int
        Seed ``>= 0``; the same seed gives the same positions.

    Returns
    -------
    (n,) float
        Positions in ``[0, 2 pi)``, **not sorted** (in the order of the draws).
    """
    n = _count(n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MeasureError("seed", f"seed = {seed!r}: must be an integer >= 0")
    return inverse_cdf(density, np.random.default_rng(int(seed)).random(n))


def place_particles(density: TorusDensity, n: int, placement: str = "quantile",
                    seed: int = 0) -> Atoms:
    """``n`` equal-weight atoms (``w_j = 1/n``) approximating ``density``.

    Parameters
    ----------
    density : TorusDensity
        A density on :math:`T^d` (a :class:`Density` for ``d = 1``).
    n : int
        Number of particles.
    placement : {"quantile", "random", "sobol"}
        ``"quantile"``: :func:`quantile_positions` (``d = 1`` only); ``"random"``: i.i.d.
        (:func:`random_positions` in ``d = 1``); ``"sobol"``: a scrambled Sobol' sequence mapped
        through the density (:meth:`~kmdflow.measures.base.TorusDensity.sample`).
    seed : int
        Used by ``"random"`` and ``"sobol"``.

    Returns
    -------
    Atoms
        Positions of shape ``(n,)`` for ``d = 1``, ``(n, d)`` otherwise.
    """
    if not isinstance(density, TorusDensity):
        raise MeasureError("density", f"got {type(density).__name__}; place particles from a "
                           "density (atoms are used as they are)")
    if placement not in PLACEMENTS:
        raise MeasureError("placement", f"placement = {placement!r}: choose one of "
                           f"{', '.join(PLACEMENTS)}")
    if placement == "quantile" and density.dim != 1:
        raise MeasureError("placement", f"placement = 'quantile' is for d = 1 only (here d = "
                           f"{density.dim}); use 'random' or 'sobol'")
    n = _count(n)
    if placement == "quantile":
        x = quantile_positions(density, n)
    elif placement == "random" and density.dim == 1:
        x = random_positions(density, n, seed)
    else:
        x = density.sample(n, seed, placement)
    return Atoms(x, np.full(x.shape[0], 1.0 / x.shape[0]))


def _count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise MeasureError("n", f"n = {n!r}: the number of particles must be an integer >= 1")
    return int(n)
