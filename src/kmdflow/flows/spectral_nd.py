r"""Pseudo-spectral Wasserstein flow on ``T^d`` (d = 2, 3), evolving the deviation from the target.

The PDE (MATH.md section 3)

.. math::

    \partial_t \rho = \nabla\cdot(\rho \nabla\psi), \qquad
    \hat\psi(k) = \lambda(|k|)\,(\hat\rho(k) - \hat\nu(k)),

is solved for the deviation ``f = rho - nu``, stored as its one-sided ``rfftn`` spectrum on ``n^d``
points (layout and conventions: :mod:`kmdflow.domains.torus`). The grid carries the modes with all
``|k_i| <= K = n/2 - 1`` (Nyquist planes kept at zero); the target is represented by the same modes.
``lambda`` is a function of the Euclidean norm ``|k|`` (:func:`kmdflow.summation.nufft_nd.radial_multiplier`).

Splitting for exponential integrators: with ``nu_bar`` the target's mean,

.. math::

    \partial_t \hat f = \underbrace{-\bar\nu |k|^2 \lambda(|k|)}_{\text{linear}} \hat f
        + \underbrace{\sum_i i k_i\, P_K\big[(\nu - \bar\nu + f)\, \partial_i\psi\big]^\wedge}_{\text{nonlinear}}.

The quadratic products are formed on a padded grid of ``M >= 3n/2`` points per axis (the 3/2 rule:
``M > 3K``), so ``P_K`` is the exact Galerkin projection onto the kept modes. Hence the mass mode
never changes and ``dE/dt = -D`` holds exactly for the semi-discrete system; it is the Galerkin flow
of the kernel truncated to ``|k_i| <= K``, the same kernel as the particles of
:mod:`kmdflow.flows.particles_nd` with ``n_modes = K``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from kmdflow.domains import torus
from kmdflow.summation.nufft_nd import radial_multiplier


def hermitian_part(coeffs: np.ndarray) -> np.ndarray:
    r"""Project a one-sided d-dimensional spectrum onto the spectra of real functions (a copy).

    Only the stored plane ``k_d = 0`` holds both ``k`` and ``-k``; there the coefficient becomes
    ``(c(k) + conj(c(-k))) / 2``. Every other entry is unconstrained.
    """
    out = np.array(coeffs, dtype=complex)
    plane = out[..., 0]
    mirror = plane
    for axis in range(plane.ndim):      # index m -> (-m) mod n along each of the first d-1 axes
        mirror = np.roll(np.flip(mirror, axis=axis), 1, axis=axis)
    out[..., 0] = 0.5 * (plane + np.conj(mirror))
    return out


#: Local extrema of the padded-grid values refined by Newton steps, and the most steps each.
EXTREMUM_CANDIDATES = 3
NEWTON_STEPS = 8


class SpectralFlowND:
    r"""Galerkin-Fourier semi-discretisation of the Wasserstein flow of ``1/2 ||rho - nu||_k^2`` on ``T^d``.

    Parameters
    ----------
    multiplier : float, SobolevKernel, callable or RadialMultiplier
        ``lambda(|k|)`` of the Euclidean norm (``lambda(0) = 0``); a number is the Sobolev order
        ``s`` (see :func:`kmdflow.summation.nufft_nd.radial_multiplier`).
    initial_hat : one-sided layout complex, shape ``(m,) * (d-1) + (m//2 + 1,)``
        ``rfftn(rho_0) / m^d`` for any ``m`` (zero-padded or truncated to the grid's modes).
    target_hat : one-sided layout complex, or None
        The target density's coefficients, likewise; ``None`` for the uniform target.
    n : int
        Grid points per axis (even, ``>= 8``).
    dim : int
        ``d`` (1, 2 or 3; must match the arrays' number of axes).

    Attributes
    ----------
    n_modes : int
        ``K = n/2 - 1``, the largest kept ``|k_i|``.
    n_pad : int
        Points per axis of the padded grid (``> 3K``).
    linear : layout float
        ``-nu_bar |k|^2 lambda(|k|)``, for exponential integrators.
    """

    representation = "grid"

    #: step control measures each Fourier mode against its own size
    #: (:func:`kmdflow.integrators.error_control.modewise_error_norm`)
    error_norm = "modewise"

    def __init__(self, multiplier, initial_hat: np.ndarray, target_hat: np.ndarray | None, n: int, dim: int):
        if dim not in (1, 2, 3):
            raise ValueError(f"dim = {dim!r}: the torus flows support d = 1, 2, 3")
        if int(n) != n or n < 8 or n % 2:
            raise ValueError(f"method.n = {n!r}: the spectral grid needs an even n >= 8")
        self.n, self.dim = int(n), int(dim)
        self.n_modes = self.n // 2 - 1
        self.radial = radial_multiplier(multiplier)
        waves = torus.wavevectors(self.n, dim)
        self.waves = tuple(np.asarray(k, dtype=float) for k in waves)
        kept = np.ones(self._layout_shape, dtype=bool)
        for k in waves:
            kept &= np.abs(k) < self.n // 2
        self._kept = kept
        norm_sq = sum(k**2 for k in self.waves)
        self.lam = np.where(kept, self.radial(np.sqrt(norm_sq)), 0.0)
        self.lam.flat[0] = 0.0
        self.multiplicity = torus.one_sided_multiplicity(self.n, dim)

        initial = self._on_grid(initial_hat, "initial_hat")
        if target_hat is None:
            target = np.zeros(self._layout_shape, dtype=complex)
            target.flat[0] = 1.0
        else:
            target = hermitian_part(self._on_grid(target_hat, "target_hat"))
        self.target_hat = target
        # the deviation from its own difference, so it keeps full relative precision
        self._y0 = hermitian_part(initial - target)
        self.mean_target = float(target.flat[0].real)
        self._fluctuation_hat = target.copy()
        self._fluctuation_hat.flat[0] = 0.0
        self.linear = -self.mean_target * norm_sq * self.lam
        self.n_pad = sfft.next_fast_len(3 * (self.n // 2), real=True)

    @property
    def _layout_shape(self) -> tuple[int, ...]:
        return (self.n,) * (self.dim - 1) + (self.n // 2 + 1,)

    def _on_grid(self, coeffs, name: str) -> np.ndarray:
        c = np.asarray(coeffs, dtype=complex)
        if c.ndim != self.dim:
            raise ValueError(f"{name} has {c.ndim} axes (shape {c.shape}) but dim = {self.dim}; pass the "
                             f"one-sided rfftn layout (see kmdflow.domains.torus.to_fourier_nd)")
        m = c.shape[0] if self.dim > 1 else 2 * (c.shape[0] - 1)
        if c.shape != (m,) * (self.dim - 1) + (m // 2 + 1,):
            raise ValueError(f"{name} has shape {c.shape}, not a one-sided layout (m,)*(d-1) + (m//2+1,); "
                             f"build it with kmdflow.domains.torus.to_fourier_nd")
        return torus.resize_spectrum(c, self.n)

    # -- the equation --------------------------------------------------------------------------
    def initial_state(self) -> np.ndarray:
        return self._y0.copy()

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """``d f_hat / dt = linear * f_hat + nonlinear``: layout shape, complex."""
        return self.linear * y + self.nonlinear(t, y)

    def nonlinear(self, t: float, y: np.ndarray) -> np.ndarray:
        r"""``sum_i i k_i P_K[(nu - nu_bar + f) d_i psi]_hat``: the part of :meth:`rhs` beyond :attr:`linear`.

        Formed directly (not as ``rhs - linear * y``), so it keeps its relative precision near
        equilibrium, where it is far smaller than the linear part.
        """
        m = self.n_pad
        rho_fluct = torus.from_fourier_nd(self._fluctuation_hat + y, m)
        psi_hat = self.lam * y
        out = np.zeros(self._layout_shape, dtype=complex)
        for k in self.waves:
            d_psi = torus.from_fourier_nd(1j * k * psi_hat, m)
            flux_hat = torus.resize_spectrum(torus.to_fourier_nd(rho_fluct * d_psi), self.n)
            out += 1j * k * flux_hat
        return out

    # -- diagnostics ---------------------------------------------------------------------------
    def density_hat(self, y: np.ndarray) -> np.ndarray:
        """One-sided coefficients of ``rho = nu + f`` (layout shape)."""
        return self.target_hat + y

    def energy(self, y: np.ndarray) -> float:
        r"""``E = 1/2 sum_{k in Z^d} lambda(|k|) |f_hat(k)|^2`` (one-sided storage counted by multiplicity)."""
        return 0.5 * float(np.sum(self.multiplicity * self.lam * (y.real**2 + y.imag**2)))

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        r"""Energy, dissipation ``D = mean(rho |grad psi|^2)``, mass and density extrema.

        ``D`` is exact (the integrand is a trigonometric polynomial of degree ``3K`` per axis, below
        the padded grid's ``M``). ``min_density`` / ``max_density`` are the extrema of the
        trigonometric polynomial ``rho``: the best values on the padded grid of ``M^d`` points,
        refined by Newton steps on the series (:meth:`extrema`).
        """
        m = self.n_pad
        rho_hat = self.density_hat(y)
        rho = torus.from_fourier_nd(rho_hat, m)
        psi_hat = self.lam * y
        grad_sq = np.zeros(rho.shape)
        for k in self.waves:
            grad_sq += torus.from_fourier_nd(1j * k * psi_hat, m) ** 2
        lo, hi = self.extrema(rho_hat, rho)
        return {
            "energy": self.energy(y),
            "dissipation": float(np.mean(rho * grad_sq)),
            "mass": float(rho_hat.flat[0].real),
            "min_density": lo,
            "max_density": hi,
        }

    # -- extrema of the trigonometric polynomial -------------------------------------------------
    def series_jet(self, coeffs: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        r"""Value, gradient ``(d,)`` and Hessian ``(d, d)`` at the point ``x (d,)`` of the real series
        with one-sided coefficients ``coeffs`` (this grid's layout), by direct summation.

        Notes
        -----
        With ``c_k = m_k coeffs_k e^{i k.x}`` (``m_k`` the one-sided multiplicity):
        ``f = sum Re c_k``, ``d_i f = -sum k_i Im c_k``, ``d_i d_j f = -sum k_i k_j Re c_k``.
        """
        phase = self.multiplicity * coeffs
        for k, xi in zip(self.waves, x):
            phase = phase * np.exp(1j * k * xi)
        re, im = phase.real, phase.imag
        grad = np.array([-np.sum(k * im) for k in self.waves])
        hess = np.array([[-np.sum(ki * kj * re) for kj in self.waves] for ki in self.waves])
        return float(np.sum(re)), grad, hess

    def extrema(self, rho_hat: np.ndarray, values: np.ndarray | None = None) -> tuple[float, float]:
        r"""``(min, max)`` of the trigonometric polynomial with coefficients ``rho_hat`` over ``T^d``.

        Parameters
        ----------
        rho_hat : layout complex
            One-sided coefficients (this grid's layout).
        values : (M,) * d float, optional
            ``rho`` on the padded grid (computed when omitted).

        Notes
        -----
        The :data:`EXTREMUM_CANDIDATES` best local extrema of the grid values (spacing
        ``h = 2 pi / M``) are refined by Newton steps on the series, ``x <- x - H^-1 grad``
        restricted to the eigendirections of ``H`` with the right sign of curvature, each component
        clipped to ``h``; the result is never worse than the grid value. The grid sits within ``h/2`` of the extremum, where Newton
        converges quadratically for a band limit ``K < M/3``.
        """
        if values is None:
            values = torus.from_fourier_nd(rho_hat, self.n_pad)
        h = torus.TWO_PI / values.shape[0]
        out = []
        for sign in (-1.0, 1.0):
            v = sign * values
            peak = np.ones(v.shape, dtype=bool)
            for axis in range(v.ndim):
                peak &= (v >= np.roll(v, 1, axis)) & (v >= np.roll(v, -1, axis))
            flat = np.flatnonzero(peak)
            best = flat[np.argsort(v.flat[flat])[::-1][:EXTREMUM_CANDIDATES]]
            result = float(v.max())
            for index in best:
                x = np.array(np.unravel_index(index, v.shape), dtype=float) * h
                value = None
                for _ in range(NEWTON_STEPS):
                    value, grad, hess = self.series_jet(rho_hat, x)
                    # Newton for F = sign * rho in the directions where F curves down (a flat
                    # direction, e.g. along the crest of a single mode, has nothing to refine)
                    curvature, axes = np.linalg.eigh(sign * hess)
                    use = curvature < -1e-8 * max(float(np.max(np.abs(curvature))), 1e-300)
                    if not use.any():
                        break
                    along = axes.T @ (sign * grad)
                    step = np.clip(-axes[:, use] @ (along[use] / curvature[use]), -h, h)
                    x = x + step
                    if np.max(np.abs(step)) < 1e-13:
                        break
                value = self.series_jet(rho_hat, x)[0]
                result = max(result, sign * value)
            out.append(sign * result)
        return out[0], out[1]

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """``{"density": values on the n^d grid}``, shape ``(n,) * d``."""
        return {"density": torus.from_fourier_nd(self.density_hat(y), self.n)}
