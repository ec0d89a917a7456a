r"""Energy ``E = 1/2 ||m||^2_(H^-s)`` of a signed atomic measure on ``T^1``, without cancellation.

Conventions: :mod:`kmdflow.domains.torus`. ``m = sum_j q_j delta_(X_j) - b * (dx / 2pi)``.
For integer ``s`` the energy is the mean of a square (a sum of nonnegative terms), so it keeps full
relative precision however close the particles are to equilibrium.
"""

from __future__ import annotations

import math

import numpy as np

from kmdflow.summation.direct import as_particles, direct_potential

__all__ = ["atomic_energy", "MASS_RTOL"]

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


#: Working precision of the integer-s recursion (x87 extended where available): the cumulative
#: sums then add no error visible next to the rounding of the float64 positions themselves.
WORK = np.longdouble
_TWO_PI_WORK = WORK("6.28318530717958647692528676655900577")


def _energy_integer(s: int, positions: np.ndarray, charges: np.ndarray) -> float:
    """``1/2 mean g_s^2`` for integer ``s`` (see :func:`atomic_energy`)."""
    # wrap with the exact period: float64 ``wrap`` (period fl(2 pi)) would move the wrapped atoms
    # by 2.4e-16, which is visible in E ~ N^(-2s) for large N and s
    x = positions.astype(WORK)
    x -= _TWO_PI_WORK * np.floor(x / _TWO_PI_WORK)
    order = np.argsort(x)
    x = x[order]
    q = charges[order].astype(WORK)
    h = np.empty_like(x)                      # h[k]: length of the interval after atom k
    h[:-1] = np.diff(x)                       # exact
    h[-1] = (x[0] - x[-1]) + _TWO_PI_WORK
    jumps = _TWO_PI_WORK * q
    # the slope that makes g_1 exactly periodic in the working precision (= sum(q) in exact math)
    density = np.sum(jumps) / np.sum(h)

    # values[j-1][k] = g_j(X_k^+), j = 1..s
    values: list[np.ndarray] = []
    for j in range(1, s + 1):
        step = np.zeros_like(x)
        if j == 1:                            # g_1 jumps by 2 pi q_k at X_k, slope -density
            step += jumps
            step[1:] -= density * h[:-1]
        else:                                 # g_j(X_(k+1)) - g_j(X_k) = int of g_(j-1) over interval k
            step[1:] = _interval_integral(values, h[:-1], density, j - 1, slice(None, -1))
        g = np.cumsum(step)
        values.append(g)
        g -= np.sum(_interval_integral(values, h, density, j, slice(None))) / _TWO_PI_WORK

    # exact Gauss-Legendre quadrature of g_s^2 on each interval (nonnegative terms)
    nodes, weights = np.polynomial.legendre.leggauss(s + 1)
    taylor = [values[s - 1 - r] / math.factorial(r) for r in range(s)]
    total = WORK(0)
    for xi, wq in zip(nodes, weights):
        u = WORK(0.5 * (1.0 + xi)) * h
        local = np.full_like(x, -density / math.factorial(s))
        for r in range(s - 1, -1, -1):
            local *= u
            local += taylor[r]
        total += WORK(0.5 * wq) * np.sum(h * local * local)
    return float(total / (2 * _TWO_PI_WORK))


def _interval_integral(values: list[np.ndarray], h: np.ndarray, density, j: int,
                       rows: slice) -> np.ndarray:
    r"""``int_0^h g_j(X_k + u) du`` for each interval, from the Taylor data at ``X_k^+``.

    Notes
    -----
    ``g_j(X_k + u) = sum_(r=0)^(j-1) g_(j-r)(X_k^+) u^r / r! - b u^j / j!``, hence
    ``int_0^h = sum_r g_(j-r)(X_k^+) h^(r+1) / (r+1)! - b h^(j+1) / (j+1)!``.
    """
    out = -density * h ** (j + 1) / math.factorial(j + 1)
    for r in range(j):
        out = out + values[j - 1 - r][rows] * h ** (r + 1) / math.factorial(r + 1)
    return out
