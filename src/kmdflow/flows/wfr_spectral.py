r"""Fourier--Galerkin Wasserstein--Fisher--Rao flow on the circle (the ReLU network in angles).

The PDE (MATH.md section 6, ``d = 1``, written in the angle ``theta``)

.. math::

    \partial_t \rho = \beta\, \partial_\theta(\rho\, \partial_\theta V) - \alpha\, \rho V, \qquad
    \hat V(l) = \hat k(l)\, (\hat\rho(l) - \hat\nu(l)),

with densities taken w.r.t. ``dtheta / 2 pi`` and the conventions of :mod:`kmdflow.domains.torus`.
Unlike the Wasserstein flow (:mod:`kmdflow.flows.spectral`) the ``l = 0`` mode moves: the mass
changes at the rate ``d/dt mass = -alpha mean(rho V)``. The network case is ``alpha = 2, beta = 1``
and ``k_hat = ReluKernel(1).circle_multiplier``, which is zero for odd ``l >= 3``: the loss cannot
see those modes, so it may converge to 0 while ``rho`` does not converge to ``nu``.

State and discretisation
    The state is the one-sided spectrum of the deviation ``f = rho - nu`` on modes
    ``l = 0 .. K - 1``, ``K = n / 2`` (the Nyquist mode is dropped), so it keeps its full relative
    precision when ``f`` is far smaller than ``rho``. The target is represented by its first ``K``
    modes. Both quadratic products ``rho dV/dtheta`` and ``rho V`` are formed on a padded grid of
    ``M >= 3K`` points; they have degree ``<= 2 (K - 1)``, so their projections on the first ``K``
    modes are alias-free and the right-hand side is the exact Galerkin truncation. The same grid
    integrates the cubic dissipation integrand exactly, so ``dE/dt = -D`` holds for the
    semi-discrete system to round-off.
Positivity
    A Galerkin truncation does not keep ``rho >= 0``; ``min_density`` (on the padded grid) tells.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from kmdflow.domains import torus

__all__ = ["WFRSpectralFlow"]


def _multiplier_values(multiplier, n_modes: int) -> np.ndarray:
    """``k_hat(l)`` for ``l = 0 .. n_modes - 1`` from a kernel, a callable or an array: ``(n_modes,)``."""
    l = np.arange(n_modes)
    if hasattr(multiplier, "circle_multiplier"):
        values = multiplier.circle_multiplier(l)
    elif callable(getattr(multiplier, "multiplier", None)):
        values = multiplier.multiplier(l)
    elif callable(multiplier):
        values = multiplier(l)
    else:
        values = np.asarray(multiplier, dtype=float).ravel()
        if values.size < n_modes:
            raise ValueError(f"multiplier holds {values.size} coefficients; the grid needs k_hat(l) for "
                             f"l = 0 .. {n_modes - 1}: pass at least {n_modes} values, or a kernel")
        values = values[:n_modes]
    values = np.asarray(values, dtype=float)
    if values.shape != (n_modes,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"multiplier must give {n_modes} finite values >= 0 (a positive semi-definite "
                         f"kernel); got shape {values.shape}, min {np.min(values) if values.size else None!r}")
    return values


def _coefficients(name: str, coeffs, n_modes: int) -> np.ndarray:
    """The first ``n_modes`` one-sided coefficients of a real density, checked: ``(n_modes,)``."""
    c = np.asarray(coeffs, dtype=complex).ravel()
    if c.size < n_modes:
        raise ValueError(f"{name} holds {c.size} Fourier coefficients; n = {2 * n_modes} needs at least "
                         f"{n_modes} (zero-pad the spectrum)")
    c = c[:n_modes].copy()
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name} has non-finite coefficients")
    if abs(c[0].imag) > 1e-12 * max(1.0, abs(c[0].real)):
        raise ValueError(f"{name}[0] = {c[0]!r} is the mass of a real density and must be real")
    c[0] = c[0].real
    return c


class WFRSpectralFlow:
    r"""Galerkin--Fourier semi-discretisation of the WFR flow of ``1/2 ||rho - nu||_k^2`` on the circle.

    Parameters
    ----------
    multiplier : ReluKernel, kernel with ``multiplier``, callable or (>= n//2,) float
        The Fourier multiplier ``k_hat(l) >= 0`` (``l = 0`` included): ``ReluKernel(1)`` uses its
        closed-form ``circle_multiplier``; a callable is called on the integer array ``l``; an array
        holds ``k_hat(0 .. n//2 - 1)``.
    initial_hat, target_hat : (>= n//2,) complex
        One-sided coefficients of ``rho_0`` and ``nu`` (densities w.r.t. ``dtheta / 2 pi``;
        :mod:`kmdflow.domains.torus`), at least ``n // 2`` modes.
    n : int
        Grid points (even, ``>= 8``); modes ``l = 0 .. n/2 - 1`` are evolved.
    alpha, beta : float
        Fisher--Rao and Wasserstein rates (network: ``2, 1``).

    Notes
    -----
    With ``f = rho - nu`` and ``P_K`` the projection on ``|l| < K``,

    .. math::

        \frac{d\hat f(l)}{dt} = \beta\, i l\, \widehat{P_K[\rho V']}(l) - \alpha\, \widehat{P_K[\rho V]}(l)
        = \underbrace{-(\beta l^2 + \alpha)\, \bar\nu\, \hat k(l)}_{\text{linear}}\, \hat f(l)
          + \text{nonlinear}(l),

    where the linear part is the exact equation around the mean ``nu_bar = nu_hat(0)`` and the
    nonlinear part carries ``rho - nu_bar`` in both products. The loss and its dissipation are

    .. math::

        E = \tfrac12 \sum_{l \in Z} \hat k(l) |\hat f(l)|^2, \qquad
        D = -\frac{dE}{dt} = \beta\, \mathrm{mean}(\rho |V'|^2) + \alpha\, \mathrm{mean}(\rho V^2).
    """

    representation = "grid"

    #: step control measures each Fourier mode against its own size
    #: (:func:`kmdflow.integrators.error_control.modewise_error_norm`)
    error_norm = "modewise"

    def __init__(self, multiplier, initial_hat, target_hat, n: int, alpha: float = 2.0, beta: float = 1.0):
        if not isinstance(n, (int, np.integer)) or n < 8 or n % 2:
            raise ValueError(f"n = {n!r}: the spectral grid needs an even integer n >= 8")
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} = {value!r}: the rates must be finite numbers >= 0")
        self.n = int(n)
        self.n_modes = self.n // 2
        self.l = np.arange(self.n_modes)
        self.alpha, self.beta = float(alpha), float(beta)
        self.multiplier = _multiplier_values(multiplier, self.n_modes)
        self.target_hat = _coefficients("target_hat", target_hat, self.n_modes)
        self._y0 = _coefficients("initial_hat", initial_hat, self.n_modes) - self.target_hat
        # > 3 (K - 1): products alias-free on the first K modes, cubic dissipation integrand exact
        self.n_pad = sfft.next_fast_len(3 * self.n_modes, real=True)
        self._il = 1j * self.l
        self.mean_target = float(self.target_hat[0].real)
        #: ``(n/2,)``: ``-(beta l^2 + alpha) nu_bar k_hat(l)``, exact for a uniform target; the
        #: exponential integrators treat it exactly and :meth:`nonlinear` explicitly.
        self.linear = -(self.beta * self.l**2 + self.alpha) * self.mean_target * self.multiplier
        self._fluctuation_hat = self.target_hat.copy()
        self._fluctuation_hat[0] = 0.0

    # -- the equation ----------------------------------------------------------------------------
    def initial_state(self) -> np.ndarray:
        """One-sided coefficients of ``rho_0 - nu``: ``(n/2,)`` complex."""
        return self._y0.copy()

    def potential_hat(self, y: np.ndarray) -> np.ndarray:
        """``V_hat(l) = k_hat(l) f_hat(l)``: ``(n/2,)`` complex."""
        return self.multiplier * y

    def _galerkin_source(self, weight_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``beta i l P_K[w V']_hat - alpha P_K[w V]_hat`` for the weight ``w`` given by ``weight_hat``."""
        m = self.n_pad
        v_hat = self.potential_hat(y)
        weight = torus.from_fourier(weight_hat, m)
        out = np.zeros(self.n_modes, dtype=complex)
        if self.beta:
            flux = torus.to_fourier(weight * torus.from_fourier(self._il * v_hat, m))[: self.n_modes]
            out += self.beta * self._il * flux
        if self.alpha:
            reaction = torus.to_fourier(weight * torus.from_fourier(v_hat, m))[: self.n_modes]
            out -= self.alpha * reaction
        return out

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """``d f_hat / dt``, the exact Galerkin truncation of the PDE: ``(n/2,)`` complex."""
        return self._galerkin_source(self.density_hat(y), y)

    def nonlinear(self, t: float, y: np.ndarray) -> np.ndarray:
        """:meth:`rhs` minus ``linear * y``: the products with ``rho - nu_bar``; ``(n/2,)`` complex.

        Formed directly (not as a difference), so it keeps its relative precision near equilibrium.
        """
        return self._galerkin_source(self._fluctuation_hat + y, y)

    # -- diagnostics -----------------------------------------------------------------------------
    def density_hat(self, y: np.ndarray) -> np.ndarray:
        """One-sided coefficients of ``rho = nu + f``: ``(n/2,)`` complex."""
        return self.target_hat + y

    def energy(self, y: np.ndarray) -> float:
        """The loss ``1/2 sum_{l in Z} k_hat(l) |f_hat(l)|^2`` (``l = 0`` included)."""
        terms = self.multiplier * np.abs(y) ** 2
        # one-sided: l > 0 stands for +-l, which cancels the 1/2
        return float(0.5 * terms[0] + np.sum(terms[1:]))

    def dissipation(self, y: np.ndarray) -> float:
        """``-dE/dt = beta mean(rho |V'|^2) + alpha mean(rho V^2)``, exact quadrature on the padded grid."""
        return self.diagnostics(y)["dissipation"]

    def mass_rate(self, y: np.ndarray) -> float:
        """``d/dt mass = -alpha mean(rho V)`` (exact on the padded grid)."""
        m = self.n_pad
        rho = torus.from_fourier(self.density_hat(y), m)
        return float(-self.alpha * np.mean(rho * torus.from_fourier(self.potential_hat(y), m)))

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        """``energy``, ``dissipation``, ``mass`` and grid extrema ``min_density``, ``max_density``."""
        m = self.n_pad
        rho_hat = self.density_hat(y)
        v_hat = self.potential_hat(y)
        rho = torus.from_fourier(rho_hat, m)
        v = torus.from_fourier(v_hat, m)
        dv = torus.from_fourier(self._il * v_hat, m)
        dissipation = self.beta * np.mean(rho * dv**2) + self.alpha * np.mean(rho * v**2)
        return {
            "energy": self.energy(y),
            "dissipation": float(dissipation),
            "mass": float(rho_hat[0].real),
            "min_density": float(rho.min()),
            "max_density": float(rho.max()),
        }

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """``density``: values of ``rho`` on the ``n`` grid points (:func:`kmdflow.domains.torus.grid`)."""
        return {"density": torus.from_fourier(self.density_hat(y), self.n)}
