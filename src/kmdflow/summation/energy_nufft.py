r"""Particle energies for any ``s > 1/2`` in ``O(M log M)``: Ewald split, NUFFT far energy, near pairs.

Conventions (Fourier signs, positions, charges): :mod:`kmdflow.domains.torus`. The energy is
``E = 1/2 ||m - nu||^2_(H^-s)`` of atoms ``m = sum_j q_j delta_(X_j)`` against an optional density
target; :func:`nufft_energy` computes it to a relative tolerance (Notes there), the exact
reference being :func:`~kmdflow.summation.energy.atomic_energy`.

The split of ``K_s`` (:mod:`kmdflow.summation.ewald_energy`)
    far multiplier ``|k|^(-2s) Q(s, sigma^2 k^2)``, near potential ``g - c`` local.

The design (:func:`energy_design`)
    The error budget, cost model, constants and mode counting of the force sums
    (:mod:`kmdflow.summation.nufft`), with ``eta`` per unit of charge squared.

The passes (:func:`nufft_energy_report`)
    One type-1 NUFFT of the charges and the near pairs per pass; further passes (at most
    :data:`ENERGY_PASSES`) design for the energy found when the a posteriori bound exceeds
    ``tol * E``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import zeta

from kmdflow.summation.direct import as_particles
from kmdflow.summation.ewald_energy import (
    far_potential_multiplier,
    near_pair_energy,
    near_potential,
    near_potential_kernel,
    near_potential_mean,
    near_potential_multiplier,
)
from kmdflow.summation.nufft import (
    BUDGET_SHARE,
    NUFFT_ERROR_CONSTANT,
    ROUNDOFF,
    EwaldDesign,
    _charge_modes,
    _check_tol,
    _clamped_eps,
    _density_design,
    _empty_design,
    _mode_weights,
    _modes_for,
    _sigma_grid,
    _sort_wrapped,
    _threads,
)

__all__ = [
    "ENERGY_PASSES",
    "EnergyReport",
    "energy_design",
    "nufft_energy",
    "nufft_energy_report",
]

#: Most passes of :func:`nufft_energy` (each designs for the energy the last one found).
ENERGY_PASSES = 3


@lru_cache(maxsize=32)
def energy_design(s: float, n_atoms: int, *, tol: float, energy_scale: float, charge_l1: float,
                  charge_l2: float, density: float = 1.0) -> EwaldDesign:
    r"""Choose ``sigma``, ``K``, ``r_cut`` and the NUFFT tolerance for one energy evaluation.

    Parameters
    ----------
    s : float
        Sobolev order, ``s > 1/2``.
    n_atoms : int
        Number of atoms ``M``.
    tol : float
        Requested accuracy relative to ``energy_scale``.
    energy_scale : float
        ``S``: the error estimate of :func:`nufft_energy` is kept below ``tol * S / 2``.
    charge_l1, charge_l2 : float
        ``sum_j |q_j|`` and ``(sum_j q_j^2)^(1/2)``.
    density : float
        Near pairs relative to uniformly spread atoms (as in
        :func:`~kmdflow.summation.nufft.ewald_design`).

    Returns
    -------
    EwaldDesign
        ``eta`` is per unit of charge squared here.

    Notes
    -----
    With ``b = BUDGET_SHARE * tol * S``: ``eta = b / (sum|q|)^2`` bounds the near kernel beyond
    ``r_cut``, the one-sided far tail ``sum_(k > K) |k|^(-2s) Q`` and the near-table fit; with the
    per-mode NUFFT error ``e = c eps |q|_2`` the far energy changes by at most
    ``2 e sum_k w_k |m_hat(k)| <= 2 e (W S)^(1/2)`` (``W = sum_k w_k``, Cauchy-Schwarz), so
    ``eps = b / (2 c |q|_2 (W S)^(1/2))``. ``sigma`` minimises the cost model of
    :mod:`kmdflow.summation.nufft` as for forces (symmetric pairs).
    """
    budget = BUDGET_SHARE * tol * energy_scale
    eta = budget / charge_l1**2
    sigma, r_cut, guess = _sigma_grid(s, eta, int(n_atoms), int(n_atoms), True, float(density), 0)
    n_modes = _modes_for(far_potential_multiplier, s, sigma, eta, guess, sides=1.0)
    total_weight = float(np.sum(_mode_weights(far_potential_multiplier, s, sigma, n_modes)))
    eps = budget / (2.0 * NUFFT_ERROR_CONSTANT * charge_l2 * math.sqrt(total_weight * energy_scale))
    return EwaldDesign(s=s, sigma=sigma, n_modes=n_modes, r_cut=float(r_cut), eps=_clamped_eps(eps),
                       eta=eta)


@dataclass(frozen=True)
class EnergyReport:
    """What one :func:`nufft_energy_report` call did.

    Attributes
    ----------
    design : EwaldDesign
        Parameters of the last pass.
    passes : int
        1, or up to :data:`ENERGY_PASSES` when the a posteriori check asked for tighter designs.
    error_bound : float
        Estimated bound on ``|E - E_exact|`` (see :func:`nufft_energy`).
    scale : float
        The energy scale of the first pass, ``zeta(2s) sum_j q_j^2``.
    pairs : int
        Near-field pairs evaluated.
    attained : bool
        Whether ``error_bound <= tol * E``.
    """

    design: EwaldDesign
    passes: int
    error_bound: float
    scale: float
    pairs: int
    attained: bool


def _energy_pass(design: EwaldDesign, ys, qs, nu: np.ndarray, l2: float) -> tuple[float, float, int]:
    """Energy for one design and its error bound (without the design's ``eta`` terms)."""
    s, sigma = design.s, design.sigma
    n_target = nu.size                              # target modes k = 1 .. n_target
    k_max = max(design.n_modes, n_target)
    coeffs = _charge_modes(ys, qs, k_max, design.eps, _threads(ys.size))
    mu = coeffs[k_max + 1:]                          # k = 1 .. k_max
    deviation = mu.copy()
    deviation[:n_target] -= nu
    weights = _mode_weights(far_potential_multiplier, s, sigma, k_max)[1:]
    squares = deviation.real**2 + deviation.imag**2
    far = float(weights @ squares)
    g0 = float(near_potential(s, sigma, np.zeros(1))[0])
    self_term = 0.5 * g0 * float(qs @ qs)
    constant = 0.5 * near_potential_mean(s, sigma) * math.fsum(qs) ** 2
    pair_total, pair_weight, pairs, fit_error = 0.0, 0.0, 0, 0.0
    if design.r_cut > 0.0:
        g = near_potential_kernel(s, sigma, design.r_cut, design.eta)
        pair_total, pair_weight, pairs = near_pair_energy(g, ys, qs)
        fit_error = g.error
    # near part of the target terms, 1/2 <K_near (mu - nu), mu - nu> - (atoms' own part), in Fourier
    lam_near = near_potential_multiplier(s, sigma, np.arange(1, n_target + 1))
    mu_t = mu[:n_target]
    target_terms = float(lam_near @ (nu.real**2 + nu.imag**2 - 2.0 * (mu_t * np.conj(nu)).real))
    energy = far + self_term + pair_total - constant + target_terms
    e = NUFFT_ERROR_CONSTANT * design.eps * l2          # per-mode NUFFT error model
    nufft_error = e * (2.0 * float(weights @ np.sqrt(squares)) + e * float(np.sum(weights))
                       + 2.0 * float(lam_near @ np.abs(nu)))
    magnitude = far + self_term + pair_weight * g0 + constant + float(lam_near @ (np.abs(nu) * (np.abs(nu) + 2 * np.abs(mu_t))))
    bound = pair_weight * fit_error + nufft_error + ROUNDOFF * magnitude
    return energy, bound, pairs


def nufft_energy_report(kernel, positions, charges, *, target_hat=None,
                        tol: float = 1e-10) -> tuple[float, EnergyReport]:
    r""":func:`nufft_energy`, and an :class:`EnergyReport` of the design and the error estimate."""
    tol = _check_tol(tol)
    x, _, q = as_particles(positions, positions, charges)
    s = float(kernel.s)
    if s <= 0.5:
        raise ValueError(f"atoms have infinite H^-s energy for s <= 1/2 (got s={kernel.s}); "
                         f"use s > 1/2 for particles")
    nu = np.zeros(0, dtype=complex) if target_hat is None else \
        np.asarray(target_hat, dtype=complex).ravel()[1:]
    l1 = float(np.sum(np.abs(q)))
    l2 = float(np.linalg.norm(q))
    if x.size == 0 or l1 == 0.0:
        k = np.arange(1, nu.size + 1, dtype=float)
        energy = float(np.sum(k ** (-2.0 * s) * np.abs(nu) ** 2))
        return energy, EnergyReport(_empty_design(s), 0, 0.0, 0.0, 0, True)
    ys, order = _sort_wrapped(x)
    qs = q[order]
    scale = float(zeta(2.0 * s)) * l2 * l2      # mean energy of randomly placed charges
    first_scale = scale

    def design_for(energy_scale: float, density: float) -> EwaldDesign:
        return energy_design(s, x.size, tol=tol, energy_scale=energy_scale, charge_l1=l1,
                             charge_l2=l2, density=density)

    density = 1.0
    for passes in range(1, ENERGY_PASSES + 1):
        design, density = _density_design(design_for, scale, density, ys, ys, x.size**2)
        energy, bound, pairs = _energy_pass(design, ys, qs, nu, l2)
        bound += 1.5 * l1 * l1 * design.eta        # near cutoff (pairs, halved) and far tail
        attained = bound <= tol * abs(energy)
        # a posteriori: E (at most |E| + bound) is smaller than assumed; redesign for half of it
        # (a power of 2 keeps the caches warm), unless that is no smaller than before
        estimate = 0.5 * (max(energy, 0.0) + (bound if bound > tol * abs(energy) else 0.0))
        if attained or not 0.0 < estimate < 0.5 * scale:
            break
        scale = 2.0 ** math.floor(math.log2(estimate))
    if not attained:
        warnings.warn("nufft_energy: the estimated error exceeds tol * E: the energy is too small "
                      "for this tol in double precision; use a larger tol", RuntimeWarning,
                      stacklevel=2)
    return energy, EnergyReport(design, passes, bound, first_scale, pairs, attained)


def nufft_energy(kernel, positions, charges, *, target_hat=None, tol: float = 1e-10) -> float:
    r"""Energy ``E = 1/2 ||m - nu||^2_(H^-s)`` of atoms ``m = sum_j q_j delta_(X_j)`` in ``O(M log M)``.

    Parameters
    ----------
    kernel : SobolevKernel
        Any ``s > 1/2`` (only ``kernel.s`` is used).
    positions : (M,) float
        Atom positions, any reals (wrapped). A particle target joins the atoms with negative
        charges; a uniform target needs nothing (``lambda(0) = 0``).
    charges : (M,) float
        Signed charges ``q_j``.
    target_hat : (K_t,) complex, optional
        One-sided Fourier coefficients ``nu_hat(0 .. K_t - 1)`` of a density target
        (:mod:`kmdflow.domains.torus`; ``nu_hat(0)`` is ignored). ``None``: no density target.
    tol : float
        Accuracy: ``|E - E_exact| <= tol * E`` (estimated; see Notes), ``0 < tol < 1``.

    Returns
    -------
    float
        ``E = sum_(k >= 1) |k|^(-2s) |m_hat(k) - nu_hat(k)|^2``.

    Warns
    -----
    RuntimeWarning
        When the error estimate still exceeds ``tol * E`` after the last pass (``E`` below the
        round-off of its own terms).

    Notes
    -----
    Ewald split of the kernel (:func:`~kmdflow.summation.ewald_energy.near_potential`):
    ``K_s = K_far + K_near``, ``K_near = g - c`` with ``g`` local and ``c`` a constant, so

        E = sum_(1 <= k <= K) w_k |m_hat(k) - nu_hat(k)|^2                 (far, one type-1 NUFFT)
          + 1/2 g(0) sum_j q_j^2 + sum_(i < j, |X_i - X_j| < r_cut) q_i q_j g(X_i - X_j)
          - 1/2 c (sum_j q_j)^2
          + sum_(k >= 1) v_k (|nu_hat(k)|^2 - 2 Re m_hat(k) conj(nu_hat(k)))  (near part of the
                                                                              target terms)

    with ``w_k = k^(-2s) Q(s, sigma^2 k^2)`` and ``v_k = k^(-2s) - w_k``. Every term is either a sum
    of squares or of the size of the near field, so nothing large cancels: equispaced atoms
    (``E = zeta(2s) M^(-2s)``) keep their relative precision.

    Error bound (estimated): ``(sum|q|)^2 * 3/2 eta`` for the near cutoff and the far tail, the
    near table's fit error times ``sum |q_i q_j|`` over the near pairs, the NUFFT modelled as a
    per-mode error ``c eps |q|_2`` (as for :func:`~kmdflow.summation.nufft.nufft_force`) propagated through the far sum
    and the target terms, and ``1e-15`` of the terms' magnitudes. *Scale*: a first pass designs
    for ``S = zeta(2s) sum_j q_j^2`` (the mean energy of randomly placed charges); while the bound
    exceeds ``tol * E``, further passes (at most :data:`ENERGY_PASSES` in all) design for half the
    energy found, ``(E + bound) / 2`` when ``E`` is not yet resolved. The returned energy meets
    ``tol * E`` whenever :class:`EnergyReport` says ``attained`` (the function warns otherwise).
    The density target itself enters only through ``target_hat``: modes it does not list are zero.
    """
    return nufft_energy_report(kernel, positions, charges, target_hat=target_hat, tol=tol)[0]
