r"""The discrepancy energy, its first variation and the dissipation on a grid (d = 1).

Conventions: :mod:`kmdflow.domains.torus`. For a kernel with Fourier multiplier ``lambda(k)``

.. math::

    E = \tfrac12 \sum_{k \ne 0} \lambda(k) |\hat f(k)|^2, \qquad
    \hat\psi(k) = \lambda(k) \hat f(k), \qquad
    D = \int \rho\, |\partial_x \psi|^2 \, \frac{dx}{2\pi},

with ``f = rho - rho_nu`` the deviation from the target. ``dE/dt = -D`` along the flow.
Particle energies live in :mod:`kmdflow.summation.energy`.
"""

from __future__ import annotations

import numpy as np

from kmdflow.domains import torus


def grid_energy(deviation_hat: np.ndarray, multiplier: np.ndarray) -> float:
    """Energy ``1/2 sum_{k != 0} lambda(k) |f_hat(k)|^2`` from one-sided coefficients.

    Parameters
    ----------
    deviation_hat : (K,) complex
        One-sided coefficients of ``f = rho - rho_nu``.
    multiplier : (K,) float
        ``lambda(k)`` for ``k = 0 .. K-1`` (``lambda(0) = 0``).
    """
    # one-sided: the k > 0 terms count twice, which cancels the 1/2
    return float(np.sum(multiplier[1:] * np.abs(deviation_hat[1:]) ** 2))


def grid_dissipation(density_hat: np.ndarray, potential_hat: np.ndarray, n_quad: int) -> float:
    r"""Dissipation :math:`D = \int \rho |\partial_x\psi|^2 dx/2\pi`, exact for trigonometric polynomials.

    The integrand has degree ``3 (K-1)``; a grid of ``n_quad > 3 (K-1)`` points integrates it exactly.

    Parameters
    ----------
    density_hat, potential_hat : (K,) complex
        One-sided coefficients of ``rho`` and ``psi``.
    n_quad : int
        Quadrature grid size, ``> 3 (K - 1)``.
    """
    k = np.arange(potential_hat.shape[-1])
    rho = torus.from_fourier(density_hat, n_quad)
    dpsi = torus.from_fourier(1j * k * potential_hat, n_quad)
    return float(np.mean(rho * dpsi**2))
