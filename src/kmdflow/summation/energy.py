r"""Energy ``E = 1/2 ||m||^2_(H^-s)`` of a signed atomic measure on ``T^1``, without cancellation.

Conventions: :mod:`kmdflow.domains.torus`. ``m = sum_j q_j delta_(X_j) - b * (dx / 2pi)``.
For integer ``s`` the energy is the mean of a square (a sum of nonnegative terms), so it keeps full
relative precision however close the particles are to equilibrium.
"""

from __future__ import annotations

import math

import numpy as np

from kmdflow.summation.direct import as_particles, direct_potential

__all__ = ["MASS_RTOL", "atomic_energy"]

#: Relative tolerance on ``sum(charges) - background`` (relative to ``sum|charges| + |background|``).
MASS_RTOL = 1e-9


def atomic_energy(kernel, positions, charges, background: float = 0.0) -> float:
    r"""Energy ``E = 1/2 sum_(k != 0) |k|^(-2s) |m_hat(k)|^2`` of ``m = sum_j q_j delta_(X_j) - b U``.

    Parameters
    ----------
    kernel : SobolevKernel
        ``s`` integer (exact, cancellation-free) or ``s > 1/2`` (pair sum).
    positions : (N,) float
        Atom positions ``X_j``, any reals (wrapped to ``[0, 2 pi)``).
    charges : (N,) float
        Signed charges ``q_j``: weights ``1/N`` against a uniform target (``background=1``), or
        ``(w, -u)`` for particles against a particle target (``background=0``).
    background : float
        Mass ``b`` of the uniform measure ``U`` subtracted from the atoms; must equal
        ``sum(charges)`` (relative tolerance :data:`MASS_RTOL`).

    Returns
    -------
    float
        ``E >= 0``. ``N`` equispaced atoms of charge ``1/N`` with ``background=1`` give exactly
        ``zeta(2s) N^(-2s)`` (MATH.md section 3).

    Raises
    ------
    ValueError
        If the total mass of ``m`` is not zero, or if ``s <= 1/2`` (atoms then have infinite energy).

    Notes
    -----
    The kernel's ``lambda(0) = 0`` makes ``E`` blind to the mass mode, so ``b`` only has to be
    consistent; the computation uses ``b = sum_j q_j``.

    *Integer s* (exact, no cancellation). Let ``g_1`` be the zero-mean function with
    ``g_1' = 2 pi sum_j q_j delta_(X_j) - b`` (a sawtooth: jumps ``2 pi q_j``, slope ``-b``), and
    ``g_(j+1)`` the zero-mean antiderivative of ``g_j``. Then ``g_s_hat(k) = m_hat(k) / (ik)^s`` and
    Parseval (:mod:`kmdflow.domains.torus`) gives ``E = 1/2 mean_(T^1) g_s^2``. Between sorted atoms
    ``g_s`` is a polynomial of degree ``s``, known by its local Taylor coefficients
    ``g_(s-r)(X_k^+) / r!`` (and ``-b/s!``); values at the atoms follow from one cumulative sum per
    level of the interval integrals, and each level's mean is removed exactly. The integral of
    ``g_s^2`` over each interval is computed by ``(s+1)``-point Gauss-Legendre quadrature, exact
    for degree ``2s``, so ``E`` is a sum of nonnegative terms. Cost ``O(N log N + s^2 N)``.
    The recursion runs in extended precision, takes gaps across the wrap with a two-term ``2 pi``
    and removes the rounding residual of each level's increments, so it resolves the energy of
    the given float64 positions: at ``N = 1e5``, ``s = 3`` (``E ~ 1e-30``) it agrees with a
    50-digit evaluation to ``1e-11``, although rounding equispaced positions to float64 has
    already raised ``E`` by ``1.5e-3`` relative to ``zeta(6) N^-6`` there.

    *Non-integer s* (``s > 1/2``): the pair sum ``E = 1/2 sum_(i,j) q_i q_j K_s(X_i - X_j)``
    (diagonal ``K_s(0) = 2 zeta(2s)`` included) through
    :func:`~kmdflow.summation.direct.direct_potential`, ``O(N^2)``. It subtracts terms of size
    ``sum|q|^2`` to produce ``E``, so near equilibrium it loses relative precision
    (absolute error about ``1e-16 * (sum|q|)^2``).
    """
    x, _, q = as_particles(positions, positions, charges)
    total = math.fsum(q)
    scale = math.fsum(np.abs(q)) + abs(float(background))
    if abs(total - float(background)) > MASS_RTOL * max(scale, np.finfo(float).tiny):
        raise ValueError(f"the measure must have total mass 0: sum(charges)={total!r} but "
                         f"background={background!r}; pass background=sum(charges) "
                         f"(the Sobolev kernel ignores the mass mode)")
    if x.size == 0:
        return 0.0
    if kernel.is_integer:
        return _energy_integer(kernel.order, x, q)
    if kernel.s <= 0.5:
        raise ValueError(f"atoms have infinite H^-s energy for s <= 1/2 (got s={kernel.s}); "
                         f"use s > 1/2 for particles")
    psi = direct_potential(kernel, x, x, q)
    return 0.5 * float(q @ psi)


#: Working precision of the integer-s recursion (x87 extended where available).
WORK = np.longdouble
#: ``2 pi = _TWO_PI_HI + _TWO_PI_LO``: a float64 head (so that ``n * head`` is exact in ``WORK``)
#: and the remainder, for gaps across the wrap that are exact to the working precision.
_TWO_PI_HI = WORK(6.283185307179586)
_TWO_PI_LO = WORK("2.44929359829470635445213186455e-16")
_TWO_PI_WORK = _TWO_PI_HI + _TWO_PI_LO


def _sorted_gaps(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Circular order of the atoms and the gaps ``h_k`` from atom ``k`` to the next, shape ``(N,)``.

    Notes
    -----
    With ``n_j = floor(X_j / 2pi)``, the gap between consecutive wrapped atoms is
    ``(X_(k+1) - X_k) - (n_(k+1) - n_k) 2pi`` (the last one wraps: ``n_0 - n_(N-1) - 1``). The
    float64 difference is exact in ``WORK`` and ``2 pi`` enters as a two-term sum, so each gap is
    exact up to its own rounding. Wrapping first (with ``fl(2 pi)``, or even ``2 pi`` rounded to
    ``WORK``) would move atoms by up to ``1e-16`` (``1e-19``), which changes ``E ~ N^(-2s)``
    visibly for large ``N`` and ``s``.
    """
    if np.all((positions >= 0.0) & (positions < 6.283185307179586)):   # already in [0, 2 pi)
        order = np.argsort(positions)
        x = positions[order].astype(WORK)
        turns = np.zeros_like(x)
    else:
        x = positions.astype(WORK)
        turns = np.floor(x / _TWO_PI_WORK)
        order = np.argsort(x - turns * _TWO_PI_WORK)
        x, turns = x[order], turns[order]
    dx = np.empty_like(x)
    dn = np.empty_like(x)
    dx[:-1] = np.diff(x)
    dx[-1] = x[0] - x[-1]
    dn[:-1] = np.diff(turns)
    dn[-1] = turns[0] - turns[-1] - 1
    return order, (dx - dn * _TWO_PI_HI) - dn * _TWO_PI_LO


def _energy_integer(s: int, positions: np.ndarray, charges: np.ndarray) -> float:
    """``1/2 mean g_s^2`` for integer ``s`` (see :func:`atomic_energy`)."""
    order, h = _sorted_gaps(positions)
    q = charges[order].astype(WORK)
    length = np.sum(h)
    jumps = _TWO_PI_WORK * q
    density = np.sum(jumps) / length          # the slope b; = sum(q) in exact arithmetic
    # scaled powers h^r / r!, r = 0..s+1 (repeated products: WORK ``**`` is slow)
    powers = [np.ones_like(h)]
    for r in range(1, s + 2):
        powers.append(powers[-1] * h / r)

    # values[j-1][k] = g_j(X_k^+), j = 1..s; X_k^+ is just right of atom k (sorted)
    values: list[np.ndarray] = []
    for j in range(1, s + 1):
        # change of g_j across interval k (from X_k^+ to X_(k+1)^+)
        if j == 1:
            change = np.roll(jumps, -1) - density * h
        else:
            change = _interval_integral(values, powers, density, j - 1)
        # the changes sum to zero around the circle; remove their rounding residual in proportion
        # to h, else coherent rounding would add a sawtooth of low frequency
        change -= np.sum(change) * (h / length)
        g = np.empty_like(h)
        g[0] = jumps[0] if j == 1 else 0
        np.cumsum(change[:-1], out=g[1:])
        g[1:] += g[0]
        values.append(g)
        g -= np.sum(_interval_integral(values, powers, density, j)) / length

    # exact Gauss-Legendre quadrature of g_s^2 on each interval (nonnegative terms)
    nodes, weights = np.polynomial.legendre.leggauss(s + 1)
    taylor = [values[s - 1 - r] / math.factorial(r) for r in range(s)]
    total = WORK(0)
    for xi, wq in zip(nodes, weights):
        u = WORK(0.5 * (1.0 + xi)) * h
        local = np.full_like(h, -density / math.factorial(s))
        for r in range(s - 1, -1, -1):
            local *= u
            local += taylor[r]
        total += WORK(0.5 * wq) * np.sum(h * local * local)
    return float(total / (2 * length))


def _interval_integral(values: list[np.ndarray], powers: list[np.ndarray], density,
                       j: int) -> np.ndarray:
    r"""``int_0^(h_k) g_j(X_k + u) du`` for each interval ``k``, from the Taylor data at ``X_k^+``.

    Parameters
    ----------
    values : list of (N,) arrays
        ``values[i][k] = g_(i+1)(X_k^+)`` for ``i < j``.
    powers : list of (N,) arrays
        ``powers[r] = h^r / r!``.

    Notes
    -----
    ``g_j(X_k + u) = sum_(r=0)^(j-1) g_(j-r)(X_k^+) u^r / r! - b u^j / j!``, hence
    ``int_0^h = sum_r g_(j-r)(X_k^+) h^(r+1) / (r+1)! - b h^(j+1) / (j+1)!``.
    """
    out = -density * powers[j + 1]
    for r in range(j):
        out += values[j - 1 - r] * powers[r + 1]
    return out
