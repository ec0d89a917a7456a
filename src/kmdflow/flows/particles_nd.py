r"""Weighted particles on ``T^d`` (d = 2, 3): the Lagrangian discretisation of the truncated-kernel flow.

.. math::

    \dot X_i = -\nabla\psi_K(X_i), \qquad
    \hat\psi_K(k) = \lambda(|k|)\,(\hat\mu(k) - \hat\nu(k)) \quad (0 < |k|_\infty \le K),

with ``mu = sum_j w_j delta_{X_j}`` (MATH.md section 3; conventions in :mod:`kmdflow.domains.torus`).
In ``d >= 2`` the particle method is the flow of the kernel truncated to ``|k_i| <= K`` (why, and how
``K`` is chosen: :mod:`kmdflow.summation.nufft_nd`); its energy ``E_K`` uses the same kernel, so
``dE_K/dt = -sum_i w_i |v_i|^2``. Each velocity costs one type-1 and one (vectorised) type-2 NUFFT.

Positions are integrated unwrapped; the sums wrap them, and snapshots store them in ``[0, 2 pi)``.
"""

from __future__ import annotations

import numpy as np

from kmdflow.domains import torus
from kmdflow.summation.nufft_nd import TruncatedKernel


class ParticleFlowND:
    r"""Particles ``X (N, d)`` with fixed weights ``w (N,)`` following the truncated-kernel Wasserstein flow.

    Parameters
    ----------
    multiplier : float, SobolevKernel, callable or RadialMultiplier
        ``lambda(|k|)``; a number is the Sobolev order ``s``
        (:func:`kmdflow.summation.nufft_nd.radial_multiplier`).
    positions : (N, d) float
        Initial positions (any reals).
    weights : (N,) float
        Weights (mass ``sum w``; a probability measure against a probability target).
    target_hat : one-sided layout complex, or None
        Target density coefficients (:mod:`kmdflow.domains.torus` layout, any grid size);
        ``None`` for the uniform target.
    n_modes : int, optional
        Cutoff ``K``; chosen from ``tol`` when omitted, which needs ``s > (d + 1)/2``
        (:func:`kmdflow.summation.nufft_nd.truncation_modes`).
    tol : float
        Relative accuracy of the truncation (when ``K`` is chosen) and of the NUFFTs.

    Attributes
    ----------
    kernel : TruncatedKernel
    n_modes : int
        ``K``.
    length_scale : float
        ``2 pi / K``, the smallest length the flow resolves (saved with the results).
    """

    representation = "particles"

    def __init__(self, multiplier, positions: np.ndarray, weights: np.ndarray, target_hat=None,
                 n_modes: int | None = None, tol: float = 1e-10):
        x = np.asarray(positions, dtype=float)
        if x.ndim != 2 or x.shape[1] not in (1, 2, 3) or x.shape[0] == 0:
            raise ValueError(f"positions must have shape (N, d) with N >= 1 and d in 1, 2, 3, got {x.shape}; "
                             f"pass one row per particle")
        if not np.all(np.isfinite(x)):
            raise ValueError("positions contain non-finite values; pass finite coordinates")
        w = np.asarray(weights, dtype=float)
        if w.shape != (x.shape[0],) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be {x.shape[0]} finite nonnegative numbers (shape ({x.shape[0]},)), "
                             f"got shape {w.shape}; pass one weight per particle")
        self._x0 = x.copy()
        self.weights = w.copy()
        self.dim = x.shape[1]
        self.kernel = TruncatedKernel(multiplier, self.dim, target_hat, n_modes, tol)
        self.n_modes = self.kernel.n_modes
        self.length_scale = self.kernel.length_scale

    def initial_state(self) -> np.ndarray:
        """Positions ``(N, d)``."""
        return self._x0.copy()

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Velocities ``-grad psi_K(X_i)``, shape ``(N, d)``."""
        return self.kernel.velocity(y, self.weights)

    def energy(self, y: np.ndarray) -> float:
        r"""``E_K = 1/2 sum_{0 < |k|_inf <= K} lambda |mu_hat - nu_hat|^2``."""
        return self.kernel.energy(y, self.weights)

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        """Energy, dissipation ``sum_i w_i |v_i|^2`` and mass (one type-1 NUFFT for both sums)."""
        deviation = self.kernel.deviation(y, self.weights)
        v = self.kernel.velocity_from(deviation, y)
        return {
            "energy": self.kernel.energy_from(deviation),
            "dissipation": float(self.weights @ np.einsum("id,id->i", v, v)),
            "mass": float(self.weights.sum()),
        }

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """``{"positions": wrapped (N, d), "weights": (N,)}``."""
        return {"positions": torus.wrap(y), "weights": self.weights.copy()}
