r"""Weighted particles on the circle: the Lagrangian discretisation of the Wasserstein flow.

.. math::

    \dot X_i = -\partial_x \psi(X_i)
             = -\sum_j w_j K'(X_i - X_j) + (K' * \nu)(X_i)        \qquad (K'(0) := 0)

(MATH.md section 3; conventions in :mod:`kmdflow.domains.torus`). The target enters in one of three
ways: uniform (its term vanishes because ``lambda(0) = 0``), atoms ``sum_l u_l delta_{Y_l}`` (they
join the sum as sources with charges ``-u_l``), or a density (its force ``(K' * nu)`` is a Fourier
series evaluated at the particles by a type-2 NUFFT).

Positions are integrated unwrapped; the summation routines wrap them, and snapshots store them in
``[0, 2 pi)``.
"""

from __future__ import annotations

import numpy as np

from kmdflow.domains import torus
from kmdflow.summation import choose_summation, nufft_energy, pair_force
from kmdflow.summation.energy import atomic_energy


class TargetSeries:
    """A density target seen from the particles: ``nu - 1`` through its Fourier coefficients.

    Parameters
    ----------
    multiplier : callable
        ``lambda(k)``.
    target_hat : (K,) complex
        One-sided coefficients of the target density; the series is cut where
        ``|k lambda(k) nu_hat(k)|`` falls below ``tol`` times its largest value.
    tol : float
        Relative accuracy of the target force and potential.

    Attributes
    ----------
    target_hat : (n_keep,) complex
        The kept coefficients ``nu_hat(0 .. n_keep - 1)`` (the fast particle energy uses them).
    """

    def __init__(self, multiplier, target_hat: np.ndarray, tol: float):
        k = np.arange(target_hat.shape[-1])
        potential = np.asarray(multiplier(k), dtype=float) * target_hat  # psi_nu_hat, zero at k = 0
        size = np.abs(potential) * np.maximum(k, 1)
        keep = np.nonzero(size > tol * max(size.max(), 1e-300))[0]
        n_keep = int(keep[-1]) + 1 if keep.size else 1
        self.potential_hat = potential[:n_keep]
        self.target_hat = np.asarray(target_hat[:n_keep], dtype=complex)
        lam = np.asarray(multiplier(k[:n_keep]), dtype=float)
        # 1/2 ||nu - 1||^2 = sum_{k >= 1} lambda |nu_hat|^2 (one-sided)
        self.self_energy = float(np.sum(lam[1:] * np.abs(target_hat[1:n_keep]) ** 2))
        self.tol = tol

    def evaluate(self, x: np.ndarray, derivative: int = 0) -> np.ndarray:
        """``psi_nu(x) = (K * (nu - 1))(x)`` or its derivative at the points ``x``: ``(N,)``."""
        return series_at_points(self.potential_hat, x, derivative, self.tol)


def series_at_points(coeffs: np.ndarray, x: np.ndarray, derivative: int, tol: float) -> np.ndarray:
    """Real series ``sum_k c_k e^{ikx}`` (one-sided ``coeffs``) at points ``x``; NUFFT when large."""
    n_modes = coeffs.shape[-1]
    if n_modes * x.size <= 4_000_000:
        return torus.fourier_series(coeffs, x, derivative)
    import finufft

    k = np.arange(-(n_modes - 1), n_modes)
    c = np.concatenate([np.conj(coeffs[:0:-1]), coeffs]) * (1j * k) ** derivative
    values = finufft.nufft1d2(np.ascontiguousarray(torus.wrap(x)), c.astype(np.complex128), isign=1,
                              eps=max(tol, 1e-15), modeord=0)
    return values.real


class ParticleFlow1D:
    """Particles ``X (N,)`` with fixed weights ``w (N,)`` following the Wasserstein flow.

    Parameters
    ----------
    kernel : SobolevKernel
        Kernel with ``multiplier``, ``derivative`` and ``profile``.
    positions, weights : (N,) float
        Initial positions and weights (mass ``sum w``).
    target : None, (Y, u) or TargetSeries
        ``None`` for the uniform target, a pair of arrays ``(Y (M,), u (M,))`` for atoms, or a
        :class:`TargetSeries` for a density.
    summation : str
        ``"auto"``, ``"sorted"``, ``"nufft"`` or ``"direct"`` (see :mod:`kmdflow.summation`).
    tol : float
        Accuracy of approximate sums (``nufft``), relative to ``max |force|``.
    """

    representation = "particles"

    def __init__(self, kernel, positions: np.ndarray, weights: np.ndarray, target=None,
                 summation: str = "auto", tol: float = 1e-10):
        self.kernel = kernel
        self.tol = tol
        self._x0 = np.asarray(positions, dtype=float).copy()
        self.weights = np.asarray(weights, dtype=float).copy()
        self.target = target
        if isinstance(target, tuple):
            self.target_positions = np.asarray(target[0], dtype=float)
            self.target_weights = np.asarray(target[1], dtype=float)
        n_sources = self._x0.size + (self.target_positions.size if isinstance(target, tuple) else 0)
        self.summation = choose_summation(kernel, self._x0.size, n_sources, summation)

    def initial_state(self) -> np.ndarray:
        return self._x0.copy()

    def _sources(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.target, tuple):
            return (np.concatenate([x, self.target_positions]),
                    np.concatenate([self.weights, -self.target_weights]))
        return x, self.weights

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Velocities ``-d psi/dx (X_i)``, shape ``(N,)``."""
        sources, charges = self._sources(y)
        v = -pair_force(self.kernel, y, sources, charges, method=self.summation, tol=self.tol)
        if isinstance(self.target, TargetSeries):
            v += self.target.evaluate(y, derivative=1)
        return v

    def energy(self, y: np.ndarray) -> float:
        r"""``E = 1/2 ||mu_N - nu||^2``.

        With ``summation = "nufft"`` and non-integer ``s``: :func:`~kmdflow.summation.energy_nufft.nufft_energy` to ``tol``
        relative to ``E`` (atoms and atom target in one Ewald sum; a density target through its
        kept coefficients), ``O(N log N)``. Otherwise exact: :func:`atomic_energy` (sorted for
        integer ``s``, the ``O(N^2)`` pair sum for other ``s``); for a density target
        ``E = E(mu_N, 1) - <mu_N - 1, nu - 1> + E(nu, 1)`` with the middle term
        ``sum_j w_j psi_nu(X_j)``."""
        if self.summation == "nufft" and not self.kernel.is_integer:
            sources, charges = self._sources(y)
            target_hat = self.target.target_hat if isinstance(self.target, TargetSeries) else None
            return nufft_energy(self.kernel, sources, charges, target_hat=target_hat, tol=self.tol)
        if isinstance(self.target, tuple):
            sources, charges = self._sources(y)
            return atomic_energy(self.kernel, sources, charges, background=0.0)
        e = atomic_energy(self.kernel, y, self.weights, background=float(self.weights.sum()))
        if isinstance(self.target, TargetSeries):
            e += self.target.self_energy - float(self.weights @ self.target.evaluate(y))
        return e

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        v = self.rhs(0.0, y)
        return {
            "energy": self.energy(y),
            "dissipation": float(self.weights @ v**2),
            "mass": float(self.weights.sum()),
        }

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"positions": torus.wrap(y)[:, None], "weights": self.weights.copy()}
