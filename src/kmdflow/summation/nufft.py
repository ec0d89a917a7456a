r"""Force sums for any ``s`` in ``O((N + M) log(N + M))``: Ewald split, NUFFT far field, sorted near field.

Conventions (Fourier signs, positions, charges): :mod:`kmdflow.domains.torus`. The sum is
``F_i = sum_j q_j K_s'(x_i - y_j)`` with ``K_s'(0) := 0``, as for the other methods of
:mod:`kmdflow.summation`; the result agrees with
:func:`~kmdflow.summation.direct.direct_force` to ``tol * max_i |F_i|`` (see :func:`nufft_force`).
This module chooses the parameters of the split from ``tol``, runs the far field and checks the
error; the split itself (far multiplier, closed-form near kernel, near-field table and near-pair
sums) is in :mod:`kmdflow.summation.ewald`, whose public names are re-exported here.

The split (:mod:`kmdflow.summation.ewald`)
    ``K_s' = K_far' + K_near'``: the far field has the multiplier ``i k |k|^(-2s) Q(s, sigma^2 k^2)``
    (Gaussian decay in ``k``), the near kernel decays like ``exp(-x^2 / 4 sigma^2)``.

The design (:func:`ewald_design`)
    An error budget ``tol * S`` shared by the near cutoff, the far cutoff, the near-field table and
    the NUFFTs; ``sigma`` balances near pairs against Fourier modes (module cost model).

The far field
    Type-1 NUFFT of the charges (``mu_hat(k)``, ``|k| <= K``), multiplication by the far
    multiplier, type-2 NUFFT at the targets (``finufft``).

Error control (:func:`nufft_force_report`)
    A first pass assumes the force scale of random charges; the a posteriori estimate decides
    whether a second, tighter pass is needed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import zeta

from kmdflow.domains.torus import TWO_PI, wrap
from kmdflow.summation.direct import as_particles
from kmdflow.summation.ewald import (
    far_cutoff,
    far_multiplier,
    far_potential_multiplier,
    near_derivative,
    near_field,
    near_pair_energy,
    near_potential,
    near_potential_kernel,
    near_potential_mean,
    near_potential_multiplier,
    near_radius,
)

__all__ = [
    "EnergyReport",
    "EwaldDesign",
    "NufftReport",
    "energy_design",
    "ewald_design",
    "far_multiplier",
    "near_derivative",
    "nufft_energy",
    "nufft_energy_report",
    "nufft_force",
    "nufft_force_report",
]


#: Smallest tolerance handed to finufft (its double-precision floor is near 1e-14).
EPS_FLOOR = 1e-14
#: Relative round-off of kernel values: no design asks for ``eta`` below ``ROUNDOFF * rms(K')``.
ROUNDOFF = 1e-15
#: Largest far-field cutoff ``K`` (the mode arrays hold ``2K + 1`` complex numbers).
MAX_MODES = 2**24
#: Cost model used to choose ``sigma`` (seconds per unit; measured on a 2-core x86 machine, only
#: their ratios matter): one near-field pair, one Fourier mode (FFT and multiplier), one point of
#: the spreading/interpolation.
PAIR_COST = 6.0e-8
MODE_COST = 2.0e-8
#: Share of the error budget ``tol * scale`` given to each of the four approximations (near cutoff,
#: far cutoff, near-field table, NUFFT); they add up to 1/2, leaving a factor 2 of headroom.
BUDGET_SHARE = 0.125
#: Constant ``c`` of the NUFFT error model ``c * eps * (|q|_2 |m|_2 + |a|_2)`` (see Notes of
#: :func:`nufft_force`); measured errors were below ``0.3 eps`` times that sum (x86, finufft 2.5).
NUFFT_ERROR_CONSTANT = 1.0
#: Above this ``N * M`` the near-pair count is measured (a sample of the targets) and ``sigma``
#: chosen again when the atoms are clustered.
DENSITY_CHECK_PAIRS = 10**8
#: Most passes of :func:`nufft_energy` (each designs for the energy the last one found).
ENERGY_PASSES = 3
#: Below this many points (targets + sources) finufft runs on one thread: on two shared cores its
#: threads cost more than they save there (measured at N = M = 1e5: 0.06-0.2 s on one thread,
#: 0.17-0.3 s on two; at 1e6 two threads win, 0.71 s vs 0.8-0.95 s).
THREADED_POINTS = 1_000_000


# ---------------------------------------------------------------------------------------------
# Design: sigma, K, r_cut, eps from tol and the sizes
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EwaldDesign:
    """Parameters of one evaluation (chosen by :func:`ewald_design`).

    Attributes
    ----------
    s : float
        Sobolev order.
    sigma : float
        Split scale: the far multiplier is ``|k|^(-2s) Q(s, sigma^2 k^2)``.
    n_modes : int
        ``K``: the far field keeps the modes ``0 < |k| <= K``.
    r_cut : float
        Near-field radius (``0``: no near field is needed at this tolerance).
    eps : float
        Tolerance handed to both NUFFTs.
    eta : float
        Bound, per unit of charge, on the near cutoff, the far cutoff and the near-field fit.
    """

    s: float
    sigma: float
    n_modes: int
    r_cut: float
    eps: float
    eta: float


@lru_cache(maxsize=32)
def _sigma_grid(s: float, eta: float, n_targets: int, n_sources: int, symmetric: bool, density: float,
                order: int = 1):
    """Cheapest ``(sigma, r_cut, K guess)`` over quarter octaves of ``sigma`` (module cost model).

    ``order = 1`` sizes the force split, ``order = 0`` the energy split (its near radius; the force's
    far cutoff bounds the energy's, whose weights are smaller by ``1/k``)."""
    pairs_factor = (0.5 if symmetric else 1.0) * density * n_targets * n_sources / math.pi
    spacing = TWO_PI / n_sources
    best = None
    for j in range(-40, 41):
        sigma = spacing * 2.0 ** (j / 4.0)
        if sigma > np.pi / 8:
            break
        r_cut = near_radius(s, sigma, eta, order)
        n_modes = max(1, math.ceil(far_cutoff(s, sigma, eta)))
        if r_cut > np.pi / 2 or n_modes > MAX_MODES:
            continue
        cost = PAIR_COST * pairs_factor * r_cut + MODE_COST * (2 * n_modes + 1) * math.log2(n_modes + 1)
        if best is None or cost < best[-1]:
            best = (sigma, r_cut, n_modes, cost)
    if best is None:
        raise ValueError(f"no Ewald split meets eta={eta:.3g} with at most {MAX_MODES} modes "
                         f"for s={s}; use summation='direct' or a larger tol")
    return best[:3]


@lru_cache(maxsize=8)
def _far_weights(s: float, sigma: float, k_max: int) -> np.ndarray:
    """``b_k`` for ``k = 0 .. k_max`` (cached: the flows call with the same design every step)."""
    return far_multiplier(s, sigma, np.arange(k_max + 1))


def _far_rms(b: np.ndarray) -> float:
    """``|m|_2 = (2 sum_k b_k^2)^(1/2)``: rms of ``K_far'`` from its weights ``b_0 .. b_K``."""
    return math.sqrt(2.0 * float(np.sum(b * b)))


def _modes_for(s: float, sigma: float, eta: float, guess: int) -> int:
    """Smallest ``K`` with ``2 sum_(k > K) b_k <= eta``, from the exact weights (``b_k`` decays like
    ``exp(-sigma^2 k^2)`` beyond ``k_hi``, so stopping once it is ``1e-3 eta sigma`` loses nothing)."""
    k_hi = max(8, int(1.5 * guess) + 8)
    while True:
        b = _far_weights(s, sigma, k_hi)
        if b[-1] < 1e-3 * eta * sigma or k_hi >= MAX_MODES:
            break
        k_hi *= 2
    tail = 2.0 * np.cumsum(b[::-1])[::-1]      # tail[k] = 2 sum_(j >= k) b_j
    ok = np.nonzero(tail <= eta)[0]
    return max(int(ok[0]) - 1, 1) if ok.size else k_hi


@lru_cache(maxsize=32)
def ewald_design(s: float, n_targets: int, n_sources: int, *, tol: float, force_scale: float,
                 charge_l1: float, charge_l2: float, symmetric: bool = False,
                 density: float = 1.0) -> EwaldDesign:
    r"""Choose ``sigma``, ``K``, ``r_cut`` and the NUFFT tolerance for one evaluation.

    Parameters
    ----------
    s : float
        Sobolev order.
    n_targets, n_sources : int
        Problem sizes ``N``, ``M``.
    tol : float
        Requested accuracy relative to ``force_scale``.
    force_scale : float
        ``S``: the error estimate of :func:`nufft_force` is kept below ``tol * S / 2``.
    charge_l1, charge_l2 : float
        ``sum_j |q_j|`` and ``(sum_j q_j^2)^(1/2)``.
    symmetric : bool
        Whether targets and sources are the same points (each near pair is evaluated once).
    density : float
        Near pairs per unit ``r_cut`` relative to uniformly spread atoms (clustered atoms have
        more neighbours; :func:`nufft_force` measures it and redesigns when it is large).

    Returns
    -------
    EwaldDesign
        Cached: repeated calls with the same arguments (a flow's every step) cost nothing.

    Notes
    -----
    With ``b = BUDGET_SHARE * tol * S``: ``eta = b / sum|q|`` bounds ``|K_near'(x)|`` for
    ``|x| >= r_cut``, the far tail ``2 sum_(k > K) b_k`` and the near-field fit;
    ``eps = b / (2 c |q|_2 |m|_2)`` (``|m|_2`` the rms of ``K_far'``) meets the NUFFT error model
    when the far force has the rms of random charges (checked afterwards). ``sigma`` minimises
    ``PAIR_COST * pairs + MODE_COST * (2K + 1) log2 K``, ``pairs = density N M r_cut / pi``
    (halved when symmetric): the near pairs grow with ``sigma``, the modes like
    ``1 / sigma``, so each target keeps a bounded number of neighbours and the cost is
    ``O((N + M) log(N + M))``. For ``s > 1`` both tails carry a factor ``sigma^(2s-2)``, so few
    neighbours or modes are needed (for large ``s`` no near field at all).
    """
    budget = BUDGET_SHARE * tol * force_scale
    eta = budget / charge_l1
    sigma, r_cut, guess = _sigma_grid(s, eta, int(n_targets), int(n_sources), bool(symmetric),
                                      float(density))
    n_modes = _modes_for(s, sigma, eta, guess)
    m_norm = _far_rms(_far_weights(s, sigma, n_modes))
    eps = budget / (2.0 * NUFFT_ERROR_CONSTANT * charge_l2 * m_norm) if m_norm > 0 else 1e-2
    return EwaldDesign(s=s, sigma=sigma, n_modes=n_modes, r_cut=float(r_cut),
                       eps=float(min(max(eps, EPS_FLOOR), 1e-2)), eta=eta)



# ---------------------------------------------------------------------------------------------
# Far field
# ---------------------------------------------------------------------------------------------

def _far_field(design: EwaldDesign, xs: np.ndarray, ys: np.ndarray, qs: np.ndarray, same: bool):
    """``K_far' * m`` at the targets by two NUFFTs; also the norms of the error model."""
    import finufft

    k_max = design.n_modes
    b = _far_weights(design.s, design.sigma, k_max)
    threads = 1 if xs.size + ys.size < THREADED_POINTS else 0
    coeffs = finufft.nufft1d1(ys, qs.astype(np.complex128), 2 * k_max + 1, eps=design.eps,
                              isign=-1, modeord=0, nthreads=threads)
    coeffs *= np.concatenate([-b[:0:-1], b]) * 1j           # i sign(k) b_|k| on k = -K .. K
    values = finufft.nufft1d2(ys if same else xs, coeffs, eps=design.eps, isign=1, modeord=0,
                              nthreads=threads)
    return values.real, _far_rms(b), float(np.linalg.norm(coeffs))


# ---------------------------------------------------------------------------------------------
# The method
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NufftReport:
    """What one :func:`nufft_force_report` call did.

    Attributes
    ----------
    design : EwaldDesign
        Parameters of the last pass.
    passes : int
        1, or 2 when the a posteriori check asked for a tighter design.
    error_bound : float
        Estimated bound on ``max_i |F_i - F_exact_i|`` (see :func:`nufft_force`).
    max_force : float
        ``max_i |F_i|``.
    pairs : int
        Near-field pairs evaluated.
    attained : bool
        Whether ``error_bound <= tol * max_force``.
    """

    design: EwaldDesign
    passes: int
    error_bound: float
    max_force: float
    pairs: int
    attained: bool


@lru_cache(maxsize=64)
def _rms_derivative(s: float, n_modes: int) -> float:
    """``sqrt(2 sum_(k=1)^n k^(2-4s))``: rms of ``K_s'`` resolved to ``n`` modes."""
    p = 4.0 * s - 2.0
    if p > 1.0:
        return math.sqrt(2.0 * (zeta(p) - zeta(p, n_modes + 1)))
    k = np.arange(1, min(n_modes, 2**22) + 1, dtype=float)
    return math.sqrt(2.0 * float(np.sum(k ** -p)))


def _check_tol(tol: float) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"tol must be a number in (0, 1), got tol={tol!r}; pass e.g. tol=1e-10") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"tol must be in (0, 1), got tol={tol!r}; pass e.g. tol=1e-10 "
                         f"(accuracy relative to max |F|)")
    return value


def _pair_density(xs: np.ndarray, ys: np.ndarray, r_cut: float) -> float:
    """Sources within ``r_cut`` of the targets, relative to uniformly spread sources (a sample of
    about 4096 sorted targets; the wrap-around at ``0 = 2 pi`` is ignored)."""
    sample = xs[::max(1, xs.size // 4096)]
    count = np.searchsorted(ys, sample + r_cut) - np.searchsorted(ys, sample - r_cut)
    return float(np.mean(count)) / (ys.size * r_cut / np.pi)


def _one_pass(design: EwaldDesign, xs, ys, qs, same: bool):
    """Force at the sorted targets and the data-dependent terms of the error estimate."""
    force, m_norm, a_norm = _far_field(design, xs, ys, qs, same)
    pairs, table_error = 0, 0.0
    if design.r_cut > 0.0:
        near, pairs, table_error = near_field(design.s, design.sigma, design.r_cut, design.eta,
                                              xs, ys, qs, same)
        force += near
    return force, m_norm, a_norm, table_error, pairs


def nufft_force_report(kernel, targets, sources, charges, *,
                       tol: float = 1e-10) -> tuple[np.ndarray, NufftReport]:
    r""":func:`nufft_force`, and a :class:`NufftReport` of the design and the error estimate."""
    tol = _check_tol(tol)
    x, y, q = as_particles(targets, sources, charges)
    s = float(kernel.s)
    n, m = x.size, y.size
    l1 = float(np.sum(np.abs(q)))
    if n == 0 or m == 0 or l1 == 0.0:
        return np.zeros(n), NufftReport(EwaldDesign(s, 0.0, 0, 0.0, 0.0, 0.0), 0, 0.0, 0.0, 0, True)
    l2 = float(np.linalg.norm(q))

    same = x.shape == y.shape and np.array_equal(x, y)
    y_wrapped = wrap(y)
    order = np.argsort(y_wrapped)
    ys, qs = y_wrapped[order], q[order]
    if same:
        t_order, xs = order, ys
    else:
        x_wrapped = wrap(x)
        t_order = np.argsort(x_wrapped)
        xs = x_wrapped[t_order]

    rms = _rms_derivative(s, m)
    scale = l2 * rms                              # a priori: rms force of random charges
    # below this scale eta would sink under the round-off of the kernel values themselves
    floor = l1 * rms * ROUNDOFF / (BUDGET_SHARE * tol)
    def design_for(force_scale: float, density: float) -> EwaldDesign:
        return ewald_design(s, n, m, tol=tol, force_scale=force_scale, charge_l1=l1, charge_l2=l2,
                            symmetric=same, density=density)

    density = 1.0
    for passes in (1, 2):
        design = design_for(scale, density)
        if design.r_cut > 0.0 and n * m > DENSITY_CHECK_PAIRS:
            measured = _pair_density(xs, ys, design.r_cut)
            if measured > 4.0 * density:          # clustered atoms: fewer neighbours, more modes
                density = 2.0 ** math.ceil(math.log2(measured))
                design = design_for(scale, density)
        force_sorted, m_norm, a_norm, table_error, pairs = _one_pass(design, xs, ys, qs, same)
        bound = l1 * (2.0 * design.eta + table_error) + NUFFT_ERROR_CONSTANT * design.eps * (l2 * m_norm + a_norm)
        max_force = float(np.max(np.abs(force_sorted)))
        attained = bound <= tol * max_force
        if attained or scale <= floor:
            break
        # a posteriori: the force is smaller than assumed; a power of 2 keeps the caches warm
        scale = max(2.0 ** math.floor(math.log2(max(0.5 * max_force, floor))), floor)
    if not attained:
        warnings.warn("nufft_force: the estimated error exceeds tol * max|F|: the forces are too "
                      "small for this tol in double precision (e.g. particles at equilibrium); "
                      "use summation='direct' or a larger tol", RuntimeWarning, stacklevel=2)
    force = np.empty(n)
    force[t_order] = force_sorted
    return force, NufftReport(design, passes, bound, max_force, pairs, attained)


def nufft_force(kernel, targets, sources, charges, *, tol: float = 1e-10) -> np.ndarray:
    r"""Force ``F_i = sum_j q_j K_s'(x_i - y_j)`` for any ``s > 0`` to a relative tolerance.

    Parameters
    ----------
    kernel : SobolevKernel
        Any ``s > 0`` (only ``kernel.s`` is used).
    targets : (N,) float
        Evaluation points ``x_i``, any reals (wrapped to ``[0, 2 pi)``).
    sources : (M,) float
        Atom positions ``y_j``.
    charges : (M,) float
        Signed charges ``q_j`` (weights ``w`` and ``-u`` for a particle target).
    tol : float
        Accuracy: ``max_i |F_i - F_exact_i| <= tol * max_i |F_exact_i|``, ``0 < tol < 1``.

    Returns
    -------
    (N,) float
        ``F_i``; coincident sources contribute ``K'(0) = 0``.

    Warns
    -----
    RuntimeWarning
        When the estimated error still exceeds ``tol * max|F|`` after the second pass (forces
        many orders below ``sum_j |q_j| * rms(K')``, e.g. particles at equilibrium).

    Notes
    -----
    Ewald split (module docstring): ``F = F_far + F_near``. Errors, with
    ``eta = BUDGET_SHARE * tol * S / sum|q|``:

    * near cutoff and far cutoff: each at most ``sum|q| * eta`` (pointwise bounds on the
      dropped kernel, so valid for any configuration);
    * near-field polynomial: at most ``sum|q|`` times its fit error (``<= eta`` plus the
      interpolation's round-off floor);
    * NUFFTs: modelled as ``c eps (|q|_2 |m|_2 + |a|_2)``, where ``|m|_2`` is the rms of ``K_far'``
      and ``|a|_2`` that of the far force (Parseval), ``c = NUFFT_ERROR_CONSTANT``.

    Scale ``S``: ``max|F|`` is not known in advance, so a first pass assumes
    ``S = |q|_2 rms(K_s')`` (the rms force of randomly placed charges; ``rms(K')`` resolved to ``M``
    modes). If the estimated error then exceeds ``tol * max|F|``, a second pass uses
    ``S = max|F| / 2``. Cost: one sort of each array, two NUFFTs with ``2K + 1`` modes and the
    near pairs; ``sigma`` balances the last two (:func:`ewald_design`), so the cost is
    ``O((N + M) log(N + M))`` for data of bounded density.
    """
    return nufft_force_report(kernel, targets, sources, charges, tol=tol)[0]


# ---------------------------------------------------------------------------------------------
# Energies: the same split for the kernel itself
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _energy_weights(s: float, sigma: float, k_max: int) -> np.ndarray:
    """``|k|^(-2s) Q(s, sigma^2 k^2)`` for ``k = 0 .. k_max`` (cached)."""
    return far_potential_multiplier(s, sigma, np.arange(k_max + 1))


def _energy_modes(s: float, sigma: float, eta: float, guess: int) -> int:
    """Smallest ``K`` with ``sum_(k > K) |k|^(-2s) Q(s, sigma^2 k^2) <= eta`` (exact weights)."""
    k_hi = max(8, int(1.5 * guess) + 8)
    while True:
        b = _energy_weights(s, sigma, k_hi)
        if b[-1] < 1e-3 * eta * sigma or k_hi >= MAX_MODES:
            break
        k_hi *= 2
    tail = np.cumsum(b[::-1])[::-1]            # tail[k] = sum_(j >= k) b_j
    ok = np.nonzero(tail <= eta)[0]
    return max(int(ok[0]) - 1, 1) if ok.size else k_hi


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
        Near pairs relative to uniformly spread atoms (as in :func:`ewald_design`).

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
    ``eps = b / (2 c |q|_2 (W S)^(1/2))``. ``sigma`` minimises the module cost model as for forces
    (symmetric pairs).
    """
    budget = BUDGET_SHARE * tol * energy_scale
    eta = budget / charge_l1**2
    sigma, r_cut, guess = _sigma_grid(s, eta, int(n_atoms), int(n_atoms), True, float(density), 0)
    n_modes = _energy_modes(s, sigma, eta, guess)
    total_weight = float(np.sum(_energy_weights(s, sigma, n_modes)))
    eps = budget / (2.0 * NUFFT_ERROR_CONSTANT * charge_l2 * math.sqrt(total_weight * energy_scale))
    return EwaldDesign(s=s, sigma=sigma, n_modes=n_modes, r_cut=float(r_cut),
                       eps=float(min(max(eps, EPS_FLOOR), 1e-2)), eta=eta)


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
    import finufft

    s, sigma = design.s, design.sigma
    n_target = nu.size                              # target modes k = 1 .. n_target
    k_max = max(design.n_modes, n_target)
    threads = 1 if ys.size < THREADED_POINTS else 0
    coeffs = finufft.nufft1d1(ys, qs.astype(np.complex128), 2 * k_max + 1, eps=design.eps,
                              isign=-1, modeord=0, nthreads=threads)
    mu = coeffs[k_max + 1:]                          # k = 1 .. k_max
    deviation = mu.copy()
    deviation[:n_target] -= nu
    weights = _energy_weights(s, sigma, k_max)[1:]
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
        return energy, EnergyReport(EwaldDesign(s, 0.0, 0, 0.0, 0.0, 0.0), 0, 0.0, 0.0, 0, True)
    order = np.argsort(wrap(x))
    ys, qs = wrap(x)[order], q[order]
    scale = float(zeta(2.0 * s)) * l2 * l2      # mean energy of randomly placed charges
    first_scale = scale

    def design_for(energy_scale: float, density: float) -> EwaldDesign:
        return energy_design(s, x.size, tol=tol, energy_scale=energy_scale, charge_l1=l1,
                             charge_l2=l2, density=density)

    density = 1.0
    for passes in range(1, ENERGY_PASSES + 1):
        design = design_for(scale, density)
        if design.r_cut > 0.0 and x.size**2 > DENSITY_CHECK_PAIRS:
            measured = _pair_density(ys, ys, design.r_cut)
            if measured > 4.0 * density:           # clustered atoms: fewer neighbours, more modes
                density = 2.0 ** math.ceil(math.log2(measured))
                design = design_for(scale, density)
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
    Ewald split of the kernel (:func:`~kmdflow.summation.ewald.near_potential`):
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
    per-mode error ``c eps |q|_2`` (as for :func:`nufft_force`) propagated through the far sum
    and the target terms, and ``1e-15`` of the terms' magnitudes. *Scale*: a first pass designs
    for ``S = zeta(2s) sum_j q_j^2`` (the mean energy of randomly placed charges); while the bound
    exceeds ``tol * E``, further passes (at most :data:`ENERGY_PASSES` in all) design for half the
    energy found, ``(E + bound) / 2`` when ``E`` is not yet resolved. The returned energy meets
    ``tol * E`` whenever :class:`EnergyReport` says ``attained`` (the function warns otherwise).
    The density target itself enters only through ``target_hat``: modes it does not list are zero.
    """
    return nufft_energy_report(kernel, positions, charges, target_hat=target_hat, tol=tol)[0]
