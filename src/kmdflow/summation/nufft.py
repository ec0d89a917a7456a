r"""Force sums for any ``s`` in ``O((N + M) log(N + M))``: Ewald split, NUFFT far field, sorted near field.

Conventions (Fourier signs, positions, charges): :mod:`kmdflow.domains.torus`. The sum is
``F_i = sum_j q_j K_s'(x_i - y_j)`` with ``K_s'(0) := 0``, as for the other methods of
:mod:`kmdflow.summation`; the result agrees with
:func:`~kmdflow.summation.direct.direct_force` to ``tol * max_i |F_i|`` (see :func:`nufft_force`).
This module chooses the parameters of the split from ``tol``, runs the far field and checks the
error; the split itself (far multiplier, closed-form near kernel, near-field table and near-pair
sums) is in :mod:`kmdflow.summation.ewald`, whose public names are re-exported here. Particle
energies by the same split (:func:`~kmdflow.summation.energy_nufft.nufft_energy`) are in
:mod:`kmdflow.summation.energy_nufft`; they share this module's design helpers and constants.

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
    near_derivative,
    near_field,
    near_radius,
)

__all__ = [
    "EwaldDesign",
    "NufftReport",
    "ewald_design",
    "far_multiplier",
    "near_derivative",
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


def _empty_design(s: float) -> EwaldDesign:
    """The design reported when there is nothing to sum (no atoms or no charge)."""
    return EwaldDesign(s, 0.0, 0, 0.0, 0.0, 0.0)


def _clamped_eps(eps: float) -> float:
    """The NUFFT tolerance actually used: ``eps`` within ``[EPS_FLOOR, 1e-2]``."""
    return float(min(max(eps, EPS_FLOOR), 1e-2))


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


@lru_cache(maxsize=16)
def _mode_weights(multiplier, s: float, sigma: float, k_max: int) -> np.ndarray:
    """``multiplier(s, sigma, k)`` for ``k = 0 .. k_max`` (cached: the flows call with the same
    design every step). ``multiplier``: :func:`far_multiplier` (forces) or
    :func:`~kmdflow.summation.ewald_energy.far_potential_multiplier` (energies)."""
    return multiplier(s, sigma, np.arange(k_max + 1))


def _far_rms(b: np.ndarray) -> float:
    """``|m|_2 = (2 sum_k b_k^2)^(1/2)``: rms of ``K_far'`` from its weights ``b_0 .. b_K``."""
    return math.sqrt(2.0 * float(np.sum(b * b)))


def _modes_for(multiplier, s: float, sigma: float, eta: float, guess: int, sides: float = 2.0) -> int:
    """Smallest ``K`` with ``sides * sum_(k > K) b_k <= eta``, ``b_k`` the exact weights of
    ``multiplier`` (:func:`_mode_weights`): ``sides = 2`` for the force's two-sided tail, ``1`` for
    the energy's one-sided one. ``b_k`` decays like ``exp(-sigma^2 k^2)`` beyond ``k_hi``, so
    stopping once it is ``1e-3 eta sigma`` loses nothing."""
    k_hi = max(8, int(1.5 * guess) + 8)
    while True:
        b = _mode_weights(multiplier, s, sigma, k_hi)
        if b[-1] < 1e-3 * eta * sigma or k_hi >= MAX_MODES:
            break
        k_hi *= 2
    tail = sides * np.cumsum(b[::-1])[::-1]    # tail[k] = sides * sum_(j >= k) b_j
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
    n_modes = _modes_for(far_multiplier, s, sigma, eta, guess)
    m_norm = _far_rms(_mode_weights(far_multiplier, s, sigma, n_modes))
    eps = budget / (2.0 * NUFFT_ERROR_CONSTANT * charge_l2 * m_norm) if m_norm > 0 else 1e-2
    return EwaldDesign(s=s, sigma=sigma, n_modes=n_modes, r_cut=float(r_cut), eps=_clamped_eps(eps),
                       eta=eta)


# ---------------------------------------------------------------------------------------------
# Far field
# ---------------------------------------------------------------------------------------------

def _threads(points: int) -> int:
    """finufft threads for this many points: one below :data:`THREADED_POINTS`, else all (``0``)."""
    return 1 if points < THREADED_POINTS else 0


def _charge_modes(ys: np.ndarray, qs: np.ndarray, k_max: int, eps: float, threads: int) -> np.ndarray:
    """``mu_hat(k) = sum_j q_j exp(-i k y_j)`` for ``k = -K .. K`` (type-1 NUFFT, tolerance ``eps``)."""
    import finufft

    return finufft.nufft1d1(ys, qs.astype(np.complex128), 2 * k_max + 1, eps=eps, isign=-1,
                            modeord=0, nthreads=threads)


def _far_field(design: EwaldDesign, xs: np.ndarray, ys: np.ndarray, qs: np.ndarray, same: bool):
    """``K_far' * m`` at the targets by two NUFFTs; also the norms of the error model."""
    import finufft

    k_max = design.n_modes
    b = _mode_weights(far_multiplier, design.s, design.sigma, k_max)
    threads = _threads(xs.size + ys.size)
    coeffs = _charge_modes(ys, qs, k_max, design.eps, threads)
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


def _sort_wrapped(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``points`` wrapped to ``[0, 2 pi)`` and sorted, and the sorting permutation."""
    wrapped = wrap(points)
    order = np.argsort(wrapped)
    return wrapped[order], order


def _density_design(design_for, scale: float, density: float, xs: np.ndarray, ys: np.ndarray,
                    n_pairs: int) -> tuple[EwaldDesign, float]:
    """``design_for(scale, density)``, designed again for the measured density of near pairs when
    ``n_pairs > DENSITY_CHECK_PAIRS`` and the sorted atoms are clustered; returns it and the
    density used."""
    design = design_for(scale, density)
    if design.r_cut > 0.0 and n_pairs > DENSITY_CHECK_PAIRS:
        measured = _pair_density(xs, ys, design.r_cut)
        if measured > 4.0 * density:          # clustered atoms: fewer neighbours, more modes
            density = 2.0 ** math.ceil(math.log2(measured))
            design = design_for(scale, density)
    return design, density


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
        return np.zeros(n), NufftReport(_empty_design(s), 0, 0.0, 0.0, 0, True)
    l2 = float(np.linalg.norm(q))

    same = x.shape == y.shape and np.array_equal(x, y)
    ys, order = _sort_wrapped(y)
    qs = q[order]
    xs, t_order = (ys, order) if same else _sort_wrapped(x)

    rms = _rms_derivative(s, m)
    scale = l2 * rms                              # a priori: rms force of random charges
    # below this scale eta would sink under the round-off of the kernel values themselves
    floor = l1 * rms * ROUNDOFF / (BUDGET_SHARE * tol)
    def design_for(force_scale: float, density: float) -> EwaldDesign:
        return ewald_design(s, n, m, tol=tol, force_scale=force_scale, charge_l1=l1, charge_l2=l2,
                            symmetric=same, density=density)

    density = 1.0
    for passes in (1, 2):
        design, density = _density_design(design_for, scale, density, xs, ys, n * m)
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
