r"""Pseudo-spectral Wasserstein flow on the circle, evolving the deviation from the target.

The PDE (MATH.md section 3)

.. math::

    \partial_t \rho = \partial_x(\rho\, \partial_x \psi), \qquad
    \hat\psi(k) = \lambda(k) (\hat\rho(k) - \hat\nu(k)),

is solved for the deviation ``f = rho - nu`` (one-sided Fourier coefficients, conventions in
:mod:`kmdflow.domains.torus`), so late in a run, when ``f`` is 1e-10 of ``rho``, it keeps full
relative precision. The grid of ``n`` points carries modes ``|k| <= K = n/2 - 1`` (the Nyquist mode
is kept at zero); the target is represented by its first ``K`` modes. The quadratic product
``rho * dpsi/dx`` is formed on a padded grid of ``M > 3K`` points (the 3/2 rule), so the right-hand
side is the exact Galerkin projection: mass is conserved exactly and ``dE/dt = -D`` holds for the
semi-discrete system.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from kmdflow.domains import torus
from kmdflow.energy import grid_dissipation, grid_energy
from kmdflow.measures.series import series_extrema


class SpectralFlow1D:
    """Galerkin-Fourier semi-discretisation of the Wasserstein flow of ``1/2 ||rho - nu||_k^2``.

    Parameters
    ----------
    multiplier : callable
        ``lambda(k)`` for integer arrays ``k`` (``lambda(0) = 0``), e.g. ``SobolevKernel.multiplier``.
    initial_hat, target_hat : (>= n//2,) complex
        One-sided Fourier coefficients of ``rho_0`` and ``nu`` (at least ``n // 2`` modes).
    n : int
        Grid points (even, >= 8).
    """

    representation = "grid"

    #: step control measures each Fourier mode against its own size (see
    #: :func:`kmdflow.integrators.error_control.modewise_error_norm`)
    error_norm = "modewise"

    #: ``linear`` (n/2,): the diagonal part ``-nu_bar k^2 lambda(k)``, exact for a uniform target;
    #: exponential integrators treat it exactly and :meth:`nonlinear` explicitly.

    def __init__(self, multiplier, initial_hat: np.ndarray, target_hat: np.ndarray, n: int):
        if n < 8 or n % 2:
            raise ValueError(f"method.n = {n}: the spectral grid needs an even n >= 8")
        self.n = n
        self.n_modes = n // 2  # k = 0 .. n/2 - 1; Nyquist dropped
        self.k = np.arange(self.n_modes)
        self.lam = np.asarray(multiplier(self.k), dtype=float)
        self.target_hat = np.asarray(target_hat[: self.n_modes], dtype=complex)
        self._y0 = np.asarray(initial_hat[: self.n_modes], dtype=complex) - self.target_hat
        self._y0[0] = self._y0[0].real
        # padded grid for the exact (alias-free) quadratic product; > 3 (n_modes - 1) points
        self.n_pad = sfft.next_fast_len(3 * self.n_modes, real=True)
        self._ik = 1j * self.k
        # linear part around the target's mean: d/dt f = nu_bar d_xx psi = -nu_bar k^2 lambda(k) f
        self.mean_target = float(self.target_hat[0].real)
        self.linear = -self.mean_target * self.k**2 * self.lam
        self._fluctuation_hat = self.target_hat.copy()
        self._fluctuation_hat[0] = 0.0
        # i k lambda(k): f_hat -> (d psi/dx)_hat; a uniform target adds nothing to rho - nu_bar
        self._ik_lam = self._ik * self.lam
        self._uniform_target = not np.any(self._fluctuation_hat)

    # -- the equation --------------------------------------------------------------------------
    def initial_state(self) -> np.ndarray:
        return self._y0.copy()

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """``d f_hat / dt = i k P_K[ (nu + f) d psi/dx ]_hat = linear * f_hat + nonlinear``; ``(n/2,)``."""
        return self.linear * y + self.nonlinear(t, y)

    def nonlinear(self, t: float, y: np.ndarray) -> np.ndarray:
        """The part of :meth:`rhs` beyond :attr:`linear`: ``i k P_K[ (nu - nu_bar + f) d psi/dx ]_hat``.

        Formed directly (not as ``rhs - linear * y``), so it keeps its relative precision when it is
        far smaller than the linear part, as it is near equilibrium.
        """
        # torus.from_fourier / to_fourier written out: both factors in one batched inverse
        # transform of a zero-padded (2, M/2 + 1) spectrum, and norm="forward" (no 1/M on the way
        # back, 1/M on the way in) instead of two scaling passes; the sums are the same
        k = self.n_modes
        spectra = np.zeros((2, self.n_pad // 2 + 1), dtype=complex)
        if self._uniform_target:
            spectra[0, :k] = y
        else:
            np.add(self._fluctuation_hat, y, out=spectra[0, :k])
        np.multiply(self._ik_lam, y, out=spectra[1, :k])
        grid = sfft.irfft(spectra, self.n_pad, norm="forward")
        product = grid[0]
        product *= grid[1]  # (rho - nu_bar) * d psi/dx on the padded grid
        flux_hat = sfft.rfft(product, norm="forward")[:k]
        flux_hat *= self._ik
        return flux_hat

    # -- diagnostics ---------------------------------------------------------------------------
    def density_hat(self, y: np.ndarray) -> np.ndarray:
        """One-sided coefficients of ``rho = nu + f``, shape ``(n/2,)``."""
        return self.target_hat + y

    def energy(self, y: np.ndarray) -> float:
        return grid_energy(y, self.lam)

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        rho_hat = self.density_hat(y)
        # extrema of the trigonometric polynomial, not just of the grid values
        lo, hi = series_extrema(rho_hat, n_grid=8 * self.n_modes, n_candidates=4)
        return {
            "energy": self.energy(y),
            "dissipation": grid_dissipation(rho_hat, self.lam * y, self.n_pad),
            "mass": float(rho_hat[0].real),
            "min_density": lo,
            "max_density": hi,
        }

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"density": torus.from_fourier(self.density_hat(y), self.n)}
