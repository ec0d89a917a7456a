r"""The ReLU kernel on the sphere ``S^d`` (MATH.md section 6); sphere conventions in
:mod:`kmdflow.domains.sphere`.

For unit vectors and ``x`` uniform on ``S^d``,

    k(theta, theta') = E_x relu(theta . x) relu(theta' . x)
                     = (sin delta + (pi - delta) cos delta) / (2 pi (d + 1)),   delta = arccos(theta . theta').

In the cosine ``u = theta . theta'`` this is ``k(u) = (sqrt(1 - u^2) + u (pi/2 + arcsin u)) / c`` with
``c = 2 pi (d + 1)``, and ``dk/du = (pi - delta) / c`` (the square-root terms cancel), which is
bounded and continuous on ``[-1, 1]``. Hence the Riemannian gradient in the first argument,

    grad_theta k = (pi - delta) / c * (theta' - u theta),      |grad_theta k| = (pi - delta) sin(delta) / c,

is continuous everywhere and vanishes at ``delta = 0`` and ``delta = pi``. Around both points the
profile is ``k(0) - pi delta^2 / (2c) + delta^3 / (3c) + ...`` and ``(pi - delta)^3 / (3c) + ...``:
the kernel is ``C^2`` on the sphere (not ``C^3``), its Funk--Hecke coefficients decay like
``l^-(d+3)``, and nothing needs special handling once ``u`` is clipped to ``[-1, 1]``.

On the circle (``d = 1``) the multiplier on angles (torus conventions,
:mod:`kmdflow.domains.torus`) is ``1/pi^2`` at ``l = 0``, ``1/16`` at ``|l| = 1``,
``1/(pi^2 (l^2 - 1)^2)`` for even ``l``, and ``0`` for odd ``|l| >= 3``: the loss cannot see odd
harmonics of degree ``>= 3``, so it may converge while ``mu`` does not converge to ``nu``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.special import ive

from kmdflow.domains import sphere, torus

__all__ = ["CircleSeriesMeasure", "ReluKernel", "ZonalMeasure", "population_loss", "relu_mean"]


def relu_mean(dim: int) -> float:
    r"""``c_d = E relu(theta . x)`` for ``x`` uniform on ``S^dim`` (any unit ``theta``).

    Notes
    -----
    ``E|x_1| = Gamma((d+1)/2) / (sqrt(pi) Gamma(d/2 + 1))``, so
    :math:`c_d = \Gamma(\tfrac{d+1}{2}) / (2\sqrt\pi\,\Gamma(\tfrac d2 + 1))` (``1/pi`` on the
    circle, ``1/4`` on ``S^2``).
    """
    return math.exp(math.lgamma((dim + 1) / 2.0) - math.lgamma(dim / 2.0 + 1.0)) / (2.0 * math.sqrt(math.pi))


@dataclass(frozen=True)
class ReluKernel:
    """The ReLU kernel on ``S^dim`` (module docstring).

    Parameters
    ----------
    dim : int
        Sphere dimension ``d >= 1``; points live in ``R^(d+1)``.
    """

    dim: int

    def __post_init__(self) -> None:
        if not (isinstance(self.dim, (int, np.integer)) and self.dim >= 1):
            raise ValueError(f"dim must be an integer >= 1 (the sphere S^dim), got {self.dim!r}")

    @property
    def scale(self) -> float:
        """``c = 2 pi (d + 1)``, the denominator of the profile."""
        return 2.0 * math.pi * (self.dim + 1)

    def profile(self, u) -> np.ndarray:
        """``k(u)`` at cosines ``u`` (clipped to ``[-1, 1]``); any shape."""
        u = np.clip(np.asarray(u, dtype=float), -1.0, 1.0)
        return (np.sqrt(1.0 - u * u) + u * (0.5 * math.pi + np.arcsin(u))) / self.scale

    def profile_of_angle(self, delta) -> np.ndarray:
        """``k`` as a function of the angle ``delta`` in ``[0, pi]``; any shape."""
        delta = np.asarray(delta, dtype=float)
        return (np.sin(delta) + (math.pi - delta) * np.cos(delta)) / self.scale

    def slope(self, u) -> np.ndarray:
        """``dk/du = (pi - arccos u) / c`` at cosines ``u`` (clipped); any shape."""
        u = np.clip(np.asarray(u, dtype=float), -1.0, 1.0)
        return (0.5 * math.pi + np.arcsin(u)) / self.scale

    def __call__(self, theta, theta_prime) -> np.ndarray:
        """``k(theta_i, theta'_i)`` for rows ``(N, d+1)`` (broadcast): ``(N,)``."""
        return self.profile(np.sum(np.asarray(theta) * np.asarray(theta_prime), axis=-1))

    def gradient(self, theta, theta_prime) -> np.ndarray:
        """Riemannian gradient of ``k(., theta')`` at ``theta`` (rows ``(N, d+1)``): ``(N, d+1)``."""
        theta, theta_prime = np.asarray(theta, dtype=float), np.asarray(theta_prime, dtype=float)
        u = np.sum(theta * theta_prime, axis=-1, keepdims=True)
        return self.slope(u) * (theta_prime - np.clip(u, -1.0, 1.0) * theta)

    def matrix(self, a, b) -> np.ndarray:
        """Kernel matrix ``k(a_i, b_j)``: ``(N, M)`` for ``a (N, d+1)``, ``b (M, d+1)``."""
        return self.profile(np.asarray(a, dtype=float) @ np.asarray(b, dtype=float).T)

    def circle_multiplier(self, l) -> np.ndarray:
        """Fourier multiplier of the circle kernel (``dim = 1``) at integers ``l``; closed form."""
        if self.dim != 1:
            raise ValueError(f"circle_multiplier is for dim = 1, the kernel has dim = {self.dim}; "
                             "use zonal_coefficients(l_max) on S^d")
        l = np.abs(np.asarray(l))
        lf = l.astype(float)
        even = np.where(l % 2 == 0, 1.0 / (math.pi**2 * np.maximum((lf * lf - 1.0) ** 2, 1.0)), 0.0)
        return np.where(l == 1, 1.0 / 16.0, even)

    def zonal_coefficients(self, l_max: int, quadrature: bool = False) -> np.ndarray:
        """Funk--Hecke coefficients ``k_l`` (:mod:`kmdflow.domains.sphere`): ``(l_max + 1,)``.

        The circle uses :meth:`circle_multiplier` (``k_l = lambda(l)``) unless ``quadrature``;
        ``d >= 2`` uses Gauss--Legendre quadrature in the angle, where the profile is analytic
        (accurate to ~1e-15 absolute), with the exact ``k_0 = c_d^2``.
        """
        if self.dim == 1 and not quadrature:
            return self.circle_multiplier(np.arange(int(l_max) + 1))
        coeffs = sphere.funk_hecke_coefficients(self.profile_of_angle, l_max, self.dim)
        if not quadrature:
            coeffs[0] = self.uniform_potential      # exact; quadrature is good to ~1e-15
        return coeffs

    def relu_coefficients(self, l_max: int) -> np.ndarray:
        """Funk--Hecke coefficients ``r_l`` of ``relu(u)``: ``(l_max + 1,)``; ``k_l = r_l^2``."""
        return sphere.funk_hecke_coefficients(np.cos, l_max, self.dim, interval=(0.0, 0.5 * math.pi))

    @property
    def uniform_potential(self) -> float:
        r"""``\int k(theta, .) dsigma = c_d^2`` for every ``theta`` (:func:`relu_mean`).

        Notes
        -----
        ``E_theta' k(theta, theta') = E_x relu(theta . x) E_theta' relu(theta' . x)`` by Fubini, and
        the inner mean is ``c_d`` whatever ``x``.
        """
        return relu_mean(self.dim) ** 2


#: Funk--Hecke terms with ``N_l |p_l|`` below this fraction of ``p_0`` are dropped.
ZONAL_CUTOFF = 1e-17


@dataclass(frozen=True, eq=False)
class ZonalMeasure:
    r"""A zonal target ``nu = mass * p(theta . eta) dsigma`` for the kernel ``kernel``.

    Parameters
    ----------
    kernel : ReluKernel
    direction : (d + 1,) float
        ``eta`` (normalised here).
    density_coefficients : (L,) float
        Funk--Hecke coefficients ``p_l`` of the density (``p_0 = 1`` for a probability density).
    mass : float
        Total mass ``nu(S^d) > 0``.

    Notes
    -----
    By Funk--Hecke, ``V_nu(theta) = mass * g(theta . eta)`` with ``g = sum_l N_l k_l p_l P_l``,
    ``grad_S V_nu = mass * g'(t) (eta - t theta)``, ``<nu, nu>_k = mass^2 sum_l N_l k_l p_l^2`` and
    the network output ``f_nu(x) = mass * sum_l N_l r_l p_l P_l(x . eta)``.
    """

    kernel: ReluKernel
    direction: np.ndarray
    density_coefficients: np.ndarray
    mass: float = 1.0
    _k: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        eta = np.asarray(self.direction, dtype=float)
        if eta.shape != (self.kernel.dim + 1,) or not np.linalg.norm(eta) > 0:
            raise ValueError(f"direction must be a nonzero vector of length dim + 1 = {self.kernel.dim + 1}, "
                             f"got {self.direction!r}")
        if not self.mass > 0:
            raise ValueError(f"mass must be positive, got {self.mass!r}")
        object.__setattr__(self, "direction", eta / np.linalg.norm(eta))
        p = np.asarray(self.density_coefficients, dtype=float)
        object.__setattr__(self, "density_coefficients", p)
        object.__setattr__(self, "_k", self.kernel.zonal_coefficients(p.size - 1))

    @classmethod
    def uniform(cls, kernel: ReluKernel, mass: float = 1.0) -> ZonalMeasure:
        """``mass * sigma``; its potential is the constant ``mass * c_d^2``."""
        eta = np.zeros(kernel.dim + 1)
        eta[0] = 1.0
        return cls(kernel, eta, np.ones(1), mass)

    @classmethod
    def von_mises_fisher(cls, kernel: ReluKernel, direction, kappa: float, mass: float = 1.0) -> ZonalMeasure:
        r"""Density ``~ exp(kappa theta . eta)`` (von Mises on the circle), total mass ``mass``.

        Notes
        -----
        ``p_l = I_{l + nu}(kappa) / I_nu(kappa)``, ``nu = (d - 1)/2`` (on the circle the Fourier
        coefficients ``I_l / I_0``), cut where ``N_l p_l < ZONAL_CUTOFF``.
        """
        if not (np.isfinite(kappa) and kappa >= 0):
            raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
        if kappa == 0:
            return cls(kernel, direction, np.ones(1), mass)
        nu = (kernel.dim - 1) / 2.0
        l_try = int(kappa + 12.0 * math.sqrt(kappa) + 60)
        p = ive(np.arange(l_try + 1) + nu, kappa) / ive(nu, kappa)
        big = np.nonzero(sphere.harmonic_dimension(l_try, kernel.dim) * p >= ZONAL_CUTOFF)[0]
        return cls(kernel, direction, p[: int(big[-1]) + 1], mass)

    @cached_property
    def self_energy(self) -> float:
        """``<nu, nu>_k = iint k dnu dnu``."""
        dims = sphere.harmonic_dimension(self._k.size - 1, self.kernel.dim)
        return float(self.mass**2 * np.sum(dims * self._k * self.density_coefficients**2))

    def potential(self, points) -> tuple[np.ndarray, np.ndarray]:
        """``V_nu`` ``(N,)`` and its Riemannian gradient ``(N, d+1)`` at unit ``points (N, d+1)``."""
        x = np.asarray(points, dtype=float)
        t = np.clip(x @ self.direction, -1.0, 1.0)
        g, dg = sphere.zonal_series(self._k * self.density_coefficients, self.kernel.dim, t, derivative=True)
        grad = (self.mass * dg)[:, None] * (self.direction - t[:, None] * x)
        return self.mass * g, grad

    def output(self, inputs) -> np.ndarray:
        """Network output ``f_nu(x) = \\int relu(theta . x) dnu(theta)`` at unit ``inputs (B, d+1)``."""
        t = np.clip(np.asarray(inputs, dtype=float) @ self.direction, -1.0, 1.0)
        return self.mass * sphere.zonal_series(self._output_coefficients, self.kernel.dim, t)

    @cached_property
    def _output_coefficients(self) -> np.ndarray:
        """``r_l p_l``: the network output's Funk--Hecke coefficients (quadrature, computed once)."""
        return self.kernel.relu_coefficients(self.density_coefficients.size - 1) * self.density_coefficients


@dataclass(frozen=True, eq=False)
class CircleSeriesMeasure:
    r"""A target density on the circle given by its Fourier coefficients (torus conventions).

    Parameters
    ----------
    kernel : ReluKernel
        With ``dim = 1``.
    coefficients : (K,) complex
        One-sided coefficients ``nu_hat(0..K-1)`` of the density w.r.t. ``dphi / 2 pi``
        (:mod:`kmdflow.domains.torus`); ``nu_hat(0)`` is the mass.

    Notes
    -----
    ``V_nu(phi) = sum_l lambda(l) nu_hat(l) e^{i l phi}``, ``<nu, nu>_k = sum_l lambda(l) |nu_hat(l)|^2``
    (sums over ``Z``), and ``f_nu(x) = sum_l rho_l nu_hat(l) e^{i l phi_x}`` with ``rho_l = r_l`` the
    coefficients of ``relu(cos psi)``. Odd modes ``>= 3`` do not enter ``V_nu`` (``lambda = 0``).
    """

    kernel: ReluKernel
    coefficients: np.ndarray

    def __post_init__(self) -> None:
        if self.kernel.dim != 1:
            raise ValueError(f"CircleSeriesMeasure needs the circle kernel (dim = 1), got dim = {self.kernel.dim}")
        object.__setattr__(self, "coefficients", np.asarray(self.coefficients, dtype=complex).ravel())

    @property
    def mass(self) -> float:
        return float(self.coefficients[0].real)

    @cached_property
    def _potential_hat(self) -> np.ndarray:
        return self.kernel.circle_multiplier(np.arange(self.coefficients.size)) * self.coefficients

    @cached_property
    def self_energy(self) -> float:
        """``<nu, nu>_k``."""
        terms = self.kernel.circle_multiplier(np.arange(self.coefficients.size)) * np.abs(self.coefficients) ** 2
        return float(terms[0] + 2.0 * terms[1:].sum())

    def potential(self, points) -> tuple[np.ndarray, np.ndarray]:
        """``V_nu`` ``(N,)`` and its Riemannian gradient ``(N, 2)`` at unit ``points (N, 2)``."""
        phi = sphere.points_to_angles(points)
        values = torus.fourier_series(self._potential_hat, phi)
        slope = torus.fourier_series(self._potential_hat, phi, derivative=1)
        return values, slope[:, None] * np.stack([-np.sin(phi), np.cos(phi)], axis=1)

    def output(self, inputs) -> np.ndarray:
        """Network output ``f_nu(x)`` at unit ``inputs (B, 2)``."""
        return torus.fourier_series(self._output_hat, sphere.points_to_angles(inputs))

    @cached_property
    def _output_hat(self) -> np.ndarray:
        """``r_l nu_hat(l)``: the network output's Fourier coefficients (computed once)."""
        return self.kernel.relu_coefficients(self.coefficients.size - 1) * self.coefficients


def population_loss(kernel: ReluKernel, positions, weights, target=None) -> float:
    r"""``L(mu) = 1/2 iint k d(mu - nu)^2`` by dense kernel matrices (reference; ``O((N + M)^2)``).

    Parameters
    ----------
    kernel : ReluKernel
    positions : (N, d+1) float
        Atoms of ``mu`` (unit vectors).
    weights : (N,) float
        Their masses.
    target : None, (Y (M, d+1), u (M,)), AtomMeasure, ZonalMeasure or CircleSeriesMeasure
        ``nu``: none, atoms (a pair or any object with ``positions`` and ``weights``), or a density.

    Notes
    -----
    ``L = 1/2 <mu, mu> - <mu, nu> + 1/2 <nu, nu>`` with ``<a, b> = iint k da db``.
    """
    x = sphere.check_points(positions)
    w = np.asarray(weights, dtype=float)
    loss = 0.5 * w @ kernel.matrix(x, x) @ w
    if isinstance(target, (ZonalMeasure, CircleSeriesMeasure)):
        loss += 0.5 * target.self_energy - w @ target.potential(x)[0]
    elif target is not None:
        y, u = (target.positions, target.weights) if hasattr(target, "positions") else target
        y, u = sphere.check_points(y, "target positions"), np.asarray(u, dtype=float)
        loss += 0.5 * u @ kernel.matrix(y, y) @ u - w @ kernel.matrix(x, y) @ u
    return float(loss)
