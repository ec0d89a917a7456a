r"""Force sums for any ``s`` in ``O((N + M) log(N + M))``: Ewald split, NUFFT far field, sorted near field.

Conventions (Fourier signs, positions, charges): :mod:`kmdflow.domains.torus`. The sum is
``F_i = sum_j q_j K_s'(x_i - y_j)`` with ``K_s'(0) := 0``, as for the other methods of
:mod:`kmdflow.summation`; the result agrees with
:func:`~kmdflow.summation.direct.direct_force` to ``tol * max_i |F_i|`` (see :func:`nufft_force`).

The split
    Subordinating the multiplier to the heat kernel,
    ``|k|^(-2s) = Gamma(s)^-1 int_0^inf t^(s-1) exp(-t k^2) dt``, and cutting the integral at
    ``t = sigma^2`` writes ``K_s' = K_far' + K_near'`` with

        far:   multiplier  i k |k|^(-2s) Q(s, sigma^2 k^2)          (Q: regularised upper incomplete
                                                                     gamma; Gaussian decay in k)
        near:  K_near'(x) = -sqrt(pi) / Gamma(s) * 2^(2-2s) sign(x) |x|^(2s-2) Gamma(3/2 - s, x^2 / 4 sigma^2)

    (plus periodic images, below round-off because ``r_cut <= pi/2``). The near kernel decays like
    ``exp(-x^2 / 4 sigma^2)``; the far kernel is smooth. This is the "erfc-type" window: for
    ``s = 1/2`` the far multiplier's window is ``erfc(sigma |k|)``, for ``s = 1`` it is
    ``exp(-sigma^2 k^2)``. A plain Gaussian window ``exp(-sigma^2 k^2)`` would leave a near field
    with an algebraic tail for ``s != 1`` (``1 - exp(-sigma^2 k^2)`` is not flat enough at ``k = 0``).

The far field
    Type-1 NUFFT of the charges (``mu_hat(k)``, ``|k| <= K``), multiplication by the far
    multiplier, type-2 NUFFT at the targets (``finufft``).

The near field
    Sources within ``r_cut`` of a target, found by sorting (cyclic neighbours of the sorted
    arrays). ``K_near'(d) = S(d) + d P(d^2)`` for ``d > 0``: ``S`` is the singular part of ``K_s'``
    (``c |d|^(2s-2)``, or ``c d^(2m+1) log d`` for ``s = m + 3/2``), ``P`` a polynomial fitted at
    Chebyshev nodes to the closed form above, once per ``(s, sigma, r_cut)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import exp1, expn, gamma, gammainc, gammaincc, zeta

from kmdflow.domains.torus import TWO_PI, wrap
from kmdflow.summation.direct import as_particles

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
#: Chebyshev nodes used to fit the near-field polynomial, and the largest degree kept (Horner's
#: rule in the monomial basis of ``u`` in ``[-1, 1]`` stays stable well beyond it for this function).
TABLE_NODES = 96
MAX_TABLE_DEGREE = 48


# ---------------------------------------------------------------------------------------------
# The split, in closed form
# ---------------------------------------------------------------------------------------------

def _upper_gamma(a: float, w: np.ndarray) -> np.ndarray:
    """``Gamma(a, w) = int_w^inf t^(a-1) e^-t dt`` for any real ``a`` and ``w > 0``."""
    w = np.asarray(w, dtype=float)
    if a > 0:
        return gammaincc(a, w) * gamma(a)
    if a == round(a):                          # Gamma(-m, w) = w^-m E_(m+1)(w)
        m = -round(a)
        return exp1(w) if m == 0 else w ** (-m) * expn(m + 1, w)
    # Gamma(b, w) = (Gamma(b + 1, w) - w^b e^-w) / b, downwards from b + n > 0
    n = math.ceil(-a)
    b = a + n
    value = gammaincc(b, w) * gamma(b)
    for _ in range(n):
        b -= 1.0
        value = (value - w**b * np.exp(-w)) / b
    return value


def far_multiplier(s: float, sigma: float, k: np.ndarray) -> np.ndarray:
    r"""Real weights ``b_k = |k|^(1-2s) Q(s, sigma^2 k^2)`` of the far field (``b_0 = 0``).

    Parameters
    ----------
    s : float
        Sobolev order, ``s > 0``.
    sigma : float
        Split scale, ``sigma > 0``.
    k : (K,) int or float
        Wavenumbers.

    Returns
    -------
    (K,) float
        ``b_|k|``; the far force multiplier is ``i sign(k) b_|k|`` and
        ``K_far'(x) = -2 sum_(k >= 1) b_k sin(k x)``.

    Notes
    -----
    ``Q(s, w) = Gamma(s, w) / Gamma(s)`` decays like ``w^(s-1) e^-w``.
    """
    a = np.abs(np.asarray(k, dtype=float))
    out = np.zeros(a.shape)
    nz = a != 0.0
    out[nz] = a[nz] ** (1.0 - 2.0 * s) * gammaincc(s, (sigma * a[nz]) ** 2)
    return out


def near_derivative(s: float, sigma: float, x: np.ndarray) -> np.ndarray:
    r"""Near-field kernel ``K_near'(x) = K_s'(x) - K_far'(x)`` in closed form (no periodic images).

    Parameters
    ----------
    s : float
        Sobolev order, ``s > 0``.
    sigma : float
        Split scale, ``sigma > 0``. The periodic images ``x + 2 pi n`` are left out: the sums use
        ``|x| < r_cut <= pi/2`` and ``sigma <= pi/8``, where they are below ``exp(-36)`` times
        ``K_near'`` itself.
    x : float array, any shape
        Separations; ``0`` maps to ``0``.

    Returns
    -------
    float array, shape of ``x``.

    Notes
    -----
    ``K_near'(x) = -sqrt(pi) / Gamma(s) * 2^(2-2s) sign(x) |x|^(2s-2) Gamma(3/2 - s, x^2 / (4 sigma^2))``,
    from ``K_near' = Gamma(s)^-1 int_0^(sigma^2) t^(s-1) d/dx theta_t dt`` with the heat kernel
    ``theta_t(x) = sqrt(pi / t) exp(-x^2 / 4t)`` (one image).
    """
    x = np.asarray(x, dtype=float)
    ax = np.abs(x)
    out = np.zeros(x.shape)
    nz = ax > 0.0
    a = ax[nz]
    out[nz] = (-math.sqrt(math.pi) / gamma(s) * 2.0 ** (2.0 - 2.0 * s) * a ** (2.0 * s - 2.0)
               * _upper_gamma(1.5 - s, (a / (2.0 * sigma)) ** 2))
    return out * np.sign(x)


def _near_envelope(s: float, z: np.ndarray) -> np.ndarray:
    """``h(z) = z^(2s-2) Gamma(3/2 - s, z^2)``, so ``|K_near'(x)| = sqrt(pi)/Gamma(s) sigma^(2s-2) h(|x|/2sigma)``."""
    z = np.asarray(z, dtype=float)
    return z ** (2.0 * s - 2.0) * np.abs(_upper_gamma(1.5 - s, z * z))


@lru_cache(maxsize=16)
def _envelope_table(s: float) -> tuple[np.ndarray, np.ndarray]:
    """``z`` on ``(0, 16]`` (step 0.002) and ``log h(z)``."""
    z = np.linspace(0.0, 16.0, 8001)[1:]
    with np.errstate(divide="ignore"):
        return z, np.log(_near_envelope(s, z))


def _near_radius(s: float, target: float) -> float:
    """A ``z`` beyond which ``h(z) <= target`` (the next grid point after the last exceedance; 0 when
    ``h`` never exceeds ``target``)."""
    z, log_h = _envelope_table(s)
    above = np.nonzero(log_h > math.log(target))[0]
    if above.size == 0:
        return 0.0
    return float(z[min(int(above[-1]) + 1, z.size - 1)])


@lru_cache(maxsize=16)
def _far_tail_table(s: float) -> tuple[np.ndarray, np.ndarray]:
    """``kappa`` on ``[0.05, 12]`` and the log of ``E1(kappa^2) (1 + (|s - 1| + 1) / kappa^2) / Gamma(s)``."""
    kappa = np.linspace(0.05, 12.0, 4000)
    w = kappa * kappa
    return kappa, np.log(exp1(w) * (1.0 + (abs(s - 1.0) + 1.0) / w) / gamma(s))


def _far_tail_kappa(s: float, target: float) -> float:
    """``kappa`` with ``2 int_kappa^inf u^(1-2s) Q(s, u^2) du <= target`` (asymptotic form of ``Q``;
    only sizes the design: the cutoff ``K`` itself comes from the exact weights)."""
    kappa, log_tail = _far_tail_table(s)
    above = np.nonzero(log_tail > math.log(target))[0]
    if above.size == 0:
        return float(kappa[0])
    return float(kappa[min(int(above[-1]) + 1, kappa.size - 1)])


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
def _sigma_grid(s: float, eta: float, n_targets: int, n_sources: int, symmetric: bool, density: float):
    """Cheapest ``(sigma, z_cut, K guess)`` over quarter octaves of ``sigma`` (module cost model)."""
    c0 = math.sqrt(math.pi) / gamma(s)
    pairs_factor = (0.5 if symmetric else 1.0) * density * n_targets * n_sources / math.pi
    spacing = TWO_PI / n_sources
    best = None
    for j in range(-40, 41):
        sigma = spacing * 2.0 ** (j / 4.0)
        if sigma > np.pi / 8:
            break
        z_cut = _near_radius(s, eta / (c0 * sigma ** (2.0 * s - 2.0)))
        r_cut = 2.0 * sigma * z_cut
        n_modes = max(1, math.ceil(_far_tail_kappa(s, eta / sigma ** (2.0 * s - 2.0)) / sigma))
        if r_cut > np.pi / 2 or n_modes > MAX_MODES:
            continue
        cost = PAIR_COST * pairs_factor * r_cut + MODE_COST * (2 * n_modes + 1) * math.log2(n_modes + 1)
        if best is None or cost < best[-1]:
            best = (sigma, z_cut, n_modes, cost)
    if best is None:
        raise ValueError(f"no Ewald split meets eta={eta:.3g} with at most {MAX_MODES} modes "
                         f"for s={s}; use summation='direct' or a larger tol")
    return best[:3]


@lru_cache(maxsize=8)
def _far_weights(s: float, sigma: float, k_max: int) -> np.ndarray:
    """``b_k`` for ``k = 0 .. k_max`` (cached: the flows call with the same design every step)."""
    return far_multiplier(s, sigma, np.arange(k_max + 1))


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
    sigma, z_cut, guess = _sigma_grid(s, eta, int(n_targets), int(n_sources), bool(symmetric),
                                      float(density))
    n_modes = _modes_for(s, sigma, eta, guess)
    b = _far_weights(s, sigma, n_modes)
    m_norm = math.sqrt(2.0 * float(np.sum(b * b)))
    eps = budget / (2.0 * NUFFT_ERROR_CONSTANT * charge_l2 * m_norm) if m_norm > 0 else 1e-2
    return EwaldDesign(s=s, sigma=sigma, n_modes=n_modes, r_cut=float(2.0 * sigma * z_cut),
                       eps=float(min(max(eps, EPS_FLOOR), 1e-2)), eta=eta)


# ---------------------------------------------------------------------------------------------
# Near field: singular part + fitted polynomial, evaluated on pair separations
# ---------------------------------------------------------------------------------------------

def _horner(coeffs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``sum_l coeffs[l] u^l``, one output array reused."""
    out = np.full(u.shape, coeffs[-1])
    for c in coeffs[-2::-1]:
        out *= u
        out += c
    return out


@dataclass(frozen=True)
class _NearKernel:
    r"""``K_near'(d)`` for ``0 < d < r_cut``: ``S(d) + d P(d^2)``, ``P`` a polynomial in ``u``.

    The singular part ``S`` is that of ``K_s'`` (and of the closed form of ``K_near'``):

        S(d) = -sqrt(pi) / Gamma(s) * 2^(2-2s) Gamma(3/2 - s) d^(2s-2)       (s not in 3/2 + N)
        S(d) = 2 sqrt(pi) / Gamma(s) * 2^(2-2s) (-1)^m / m! d^(2m+1) log d     (s = m + 3/2)

    (for ``s = 1``: ``-pi``, the jump of the sawtooth). What is left, ``d P(d^2)``, is odd and
    analytic; ``u = 2 d^2 / r_cut^2 - 1`` maps ``[0, r_cut]`` to ``[-1, 1]`` and ``coeffs`` are
    the monomial coefficients in ``u`` of a Chebyshev interpolant (for this entire function their
    absolute sum stays within a few times ``max |P|``, so Horner's rule is stable). For ``s < 3/2``
    the remainder is computed as ``sqrt(pi)/Gamma(s) 2^(2-2s) d^(2s-2) gamma(3/2 - s, d^2/4sigma^2)``
    (lower incomplete gamma), free of the cancellation between ``K_near'`` and ``S`` at small ``d``.
    """

    s: float
    sigma: float
    r_cut: float
    eta: float
    kind: str = field(init=False)          # "power" (c d^p) or "log" (c d^p log d)
    power: float = field(init=False)
    coefficient: float = field(init=False)
    coeffs: np.ndarray = field(init=False, repr=False)
    error: float = field(init=False)       # estimated max |fit error| of d P(d^2) on (0, r_cut)

    def __post_init__(self) -> None:
        s = self.s
        a = 1.5 - s
        root_pi = math.sqrt(math.pi)
        if a <= 0 and a == round(a):             # s = m + 3/2: c d^(2m+1) log d
            m = round(-a)
            kind, power = "log", 2.0 * m + 1.0
            coefficient = 2.0 * root_pi / gamma(s) * 2.0 ** (2.0 - 2.0 * s) * (-1.0) ** m / math.factorial(m)
        else:
            kind, power = "power", 2.0 * s - 2.0
            coefficient = -root_pi / gamma(s) * 2.0 ** (2.0 - 2.0 * s) * gamma(a)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "power", power)
        object.__setattr__(self, "coefficient", coefficient)
        half = 0.5 * self.r_cut**2
        scale = root_pi / gamma(s) * 2.0 ** (2.0 - 2.0 * s)
        sigma = self.sigma

        def smooth(u):
            d = np.sqrt((u + 1.0) * half)
            if a > 0:      # K_near' - S = scale d^(2s-2) gamma_lower(a, w): no cancellation near 0
                w = (d / (2.0 * sigma)) ** 2
                return scale * d ** (2.0 * s - 3.0) * gammainc(a, w) * gamma(a)
            return (near_derivative(s, sigma, d) - self.singular(d)) / d

        cheb = chebyshev.chebinterpolate(smooth, TABLE_NODES - 1)
        # round-off floor of the interpolant: the size of its last coefficients
        noise = float(np.max(np.abs(cheb[-16:])))
        # shortest expansion whose dropped coefficients are all below eta / (16 r_cut) or the floor
        limit = max(self.eta / (16.0 * self.r_cut), 2.0 * noise)
        above = np.nonzero(np.abs(cheb) > limit)[0]
        degree = min(int(above[-1]) if above.size else 0, MAX_TABLE_DEGREE)
        dropped = float(np.max(np.abs(cheb[degree + 1:]))) if degree + 1 < cheb.size else 0.0
        coeffs = chebyshev.cheb2poly(cheb[:degree + 1])
        object.__setattr__(self, "coeffs", coeffs)
        # fit error measured against the closed form between the nodes, with a factor 2 margin
        u = np.linspace(-1.0, 1.0, 4 * TABLE_NODES + 1)[1:]
        d = np.sqrt((u + 1.0) * half)
        misfit = np.max(np.abs(d * (_horner(coeffs, u) - smooth(u))))
        object.__setattr__(self, "error", float(2.0 * misfit + self.r_cut * dropped))

    @property
    def degree(self) -> int:
        return self.coeffs.size - 1

    def singular(self, d: np.ndarray) -> np.ndarray:
        """Singular part ``S(d)`` for ``d > 0``."""
        if self.kind == "log":
            return self.coefficient * d**self.power * np.log(d)
        if self.power == 0.0:
            return np.full(np.shape(d), self.coefficient)
        if self.power == round(self.power) and self.power > 0:
            return self.coefficient * d ** int(self.power)
        return self.coefficient * np.power(d, self.power)

    def __call__(self, d: np.ndarray) -> np.ndarray:
        """``K_near'(d)`` for ``0 < d`` (values beyond ``r_cut`` are not meaningful)."""
        u = d * d
        u -= 0.5 * self.r_cut**2
        u *= 2.0 / self.r_cut**2
        out = _horner(self.coeffs, u)
        out *= d
        out += self.singular(d)
        return out


@lru_cache(maxsize=8)
def _near_kernel(s: float, sigma: float, r_cut: float, eta: float) -> _NearKernel:
    return _NearKernel(s, sigma, r_cut, eta)


def _near_symmetric(g, ys: np.ndarray, qs: np.ndarray, r_cut: float) -> tuple[np.ndarray, int]:
    """Near-field force at the sorted sources themselves, each pair evaluated once.

    For the pair ``(i, j = i + r mod M)`` at separation ``d = y_j - y_i`` (cyclic, ``>= 0``),
    ``F_i += q_j K_near'(-d) = -q_j g(d)`` and ``F_j += q_i g(d)``. Separations grow with ``r``,
    so a source leaves the scan at its first neighbour beyond ``r_cut``. While most sources are
    still in the scan, whole contiguous slices are evaluated (masked); then index arrays.
    Returns the force and the number of pairs evaluated.
    """
    m = ys.size
    force = np.zeros(m)
    d = np.empty(m)
    pairs = 0
    active = None
    for r in range(1, m):
        if active is None:
            np.subtract(ys[r:], ys[:m - r], out=d[:m - r])
            np.subtract(ys[:r], ys[m - r:], out=d[m - r:])
            d[m - r:] += TWO_PI
            inside = d < r_cut
            count = int(np.count_nonzero(inside))
            if count == 0:
                break
            if 3 * count > 2 * m:                  # dense: evaluate every slot, zero the rest
                keep = inside & (d > 0.0)
                val = g(np.where(keep, d, r_cut))
                val *= keep
                pairs += count
                force[:m - r] -= qs[r:] * val[:m - r]
                force[m - r:] -= qs[:r] * val[m - r:]
                force[r:] += qs[:m - r] * val[:m - r]
                force[:r] += qs[m - r:] * val[m - r:]
                continue
            active = np.flatnonzero(inside)
            sep = d[active]
        else:
            j = active + r
            wrapped = j >= m
            j[wrapped] -= m
            sep = ys[j] - ys[active]
            sep[wrapped] += TWO_PI
            inside = sep < r_cut
            active, sep = active[inside], sep[inside]
            if active.size == 0:
                break
        hit = sep > 0.0
        i, sep = active[hit], sep[hit]
        j = i + r
        j[j >= m] -= m
        val = g(sep)
        pairs += i.size
        force[i] -= qs[j] * val
        force[j] += qs[i] * val
    return force, pairs


def _near_general(g, xs: np.ndarray, ys: np.ndarray, qs: np.ndarray, r_cut: float) -> tuple[np.ndarray, int]:
    """Near-field force at sorted targets ``xs`` from sorted sources ``ys`` (both in ``[0, 2pi)``).

    Scans the sorted sources right (``direction = 1``, ``d = y - x``) and left (``d = x - y``) of
    each target until the separation reaches ``r_cut``; returns the force and the pair count.
    """
    m = ys.size
    force = np.zeros(xs.size)
    pairs = 0
    first = np.searchsorted(ys, xs, side="left")          # first source >= target
    for direction in (1, -1):
        active = np.arange(xs.size)                       # targets still scanning, their
        base = first if direction == 1 else first - 1     # first source index and position
        xa = xs
        for r in range(m):
            j = base + r if direction == 1 else base - r
            wrapped = j >= m if direction == 1 else j < 0
            j[wrapped] -= direction * m
            d = ys[j] - xa if direction == 1 else xa - ys[j]
            d[wrapped] += TWO_PI
            near = d < r_cut
            if not near.all():
                active, base, xa, j, d = active[near], base[near], xa[near], j[near], d[near]
                if active.size == 0:
                    break
            apart = d > 0.0                                # coincident atoms: K'(0) = 0
            val = g(np.where(apart, d, r_cut))
            val *= apart
            pairs += int(np.count_nonzero(apart))
            force[active] -= direction * qs[j] * val
    return force, pairs


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
    return values.real, float(np.sqrt(2.0 * np.sum(b * b))), float(np.linalg.norm(coeffs))


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
        g = _near_kernel(design.s, design.sigma, design.r_cut, design.eta)
        near, pairs = (_near_symmetric(g, ys, qs, design.r_cut) if same
                       else _near_general(g, xs, ys, qs, design.r_cut))
        force += near
        table_error = g.error
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
    density = 1.0
    for passes in (1, 2):
        design = ewald_design(s, n, m, tol=tol, force_scale=scale, charge_l1=l1, charge_l2=l2,
                              symmetric=same, density=density)
        if design.r_cut > 0.0 and n * m > DENSITY_CHECK_PAIRS:
            measured = _pair_density(xs, ys, design.r_cut)
            if measured > 4.0 * density:          # clustered atoms: fewer neighbours, more modes
                density = 2.0 ** math.ceil(math.log2(measured))
                design = ewald_design(s, n, m, tol=tol, force_scale=scale, charge_l1=l1,
                                      charge_l2=l2, symmetric=same, density=density)
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
