r"""The Ewald split of the force kernel ``K_s'`` on ``T^1``: far multiplier, near kernel, near sums.

Conventions (Fourier signs, positions, charges): :mod:`kmdflow.domains.torus`. This module holds
the mathematics of the split for given parameters ``(s, sigma, r_cut, eta)``; choosing them from
a tolerance, the NUFFT passes of the far field and the error estimate are in
:mod:`kmdflow.summation.nufft`.

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
    :func:`far_multiplier` and :func:`near_derivative` evaluate the two parts;
    :func:`near_radius` and :func:`far_cutoff` size their tails.

The near field
    Sources within ``r_cut`` of a target, found by sorting (cyclic neighbours of the sorted
    arrays; :func:`near_field`). ``K_near'(d) = S(d) + d P(d^2)`` for ``d > 0``: ``S`` is the
    singular part of ``K_s'`` (``c |d|^(2s-2)``, or ``c d^(2m+1) log d`` for ``s = m + 3/2``),
    ``P`` a polynomial fitted at Chebyshev nodes to the closed form above, once per
    ``(s, sigma, r_cut)`` (:class:`NearKernel`).

The same split of the kernel ``K_s`` itself, for particle energies, is in
:mod:`kmdflow.summation.ewald_energy`; it shares the closed forms and the Chebyshev fit of this
module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import exp1, expn, gamma, gammainc, gammaincc

from kmdflow.domains.torus import TWO_PI
from kmdflow.polynomials import horner

__all__ = [
    "MAX_TABLE_DEGREE",
    "TABLE_NODES",
    "NearKernel",
    "far_cutoff",
    "far_multiplier",
    "near_derivative",
    "near_field",
    "near_kernel",
    "near_radius",
]

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


def _near_prefactor(s: float) -> float:
    """``sqrt(pi) / Gamma(s) * 2^(2-2s)``, the constant of the closed form of ``K_near'``."""
    return math.sqrt(math.pi) / gamma(s) * 2.0 ** (2.0 - 2.0 * s)


def _windowed_power(s: float, sigma: float, k: np.ndarray, power: float, window) -> np.ndarray:
    """``|k|^power window(s, sigma^2 k^2)`` (``window``: ``gammaincc`` = ``Q`` or ``gammainc`` = ``P``),
    ``0`` at ``k = 0``: the common form of the far and near multipliers of the split."""
    a = np.abs(np.asarray(k, dtype=float))
    out = np.zeros(a.shape)
    nz = a != 0.0
    out[nz] = a[nz] ** power * window(s, (sigma * a[nz]) ** 2)
    return out


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
    return _windowed_power(s, sigma, k, 1.0 - 2.0 * s, gammaincc)


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
    out[nz] = (-_near_prefactor(s) * a ** (2.0 * s - 2.0)
               * _upper_gamma(1.5 - s, (a / (2.0 * sigma)) ** 2))
    return out * np.sign(x)


# ---------------------------------------------------------------------------------------------
# Sizes of the tails: near radius and far cutoff for a pointwise bound eta
# ---------------------------------------------------------------------------------------------

def _near_envelope(s: float, z: np.ndarray, order: int = 1) -> np.ndarray:
    """``h(z) = z^(2s-2) |Gamma(3/2 - s, z^2)|`` (``order = 1``) or ``z^(2s-1) Gamma(1/2 - s, z^2)``
    (``order = 0``), so ``|K_near^(order)(x)| = sqrt(pi)/Gamma(s) sigma^(2s-1-order) h(|x|/2sigma)``."""
    z = np.asarray(z, dtype=float)
    p = 2.0 * s - 1.0 - order
    return z ** p * np.abs(_upper_gamma(0.5 + order - s, z * z))


@lru_cache(maxsize=16)
def _envelope_table(s: float, order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``z`` on ``(0, 16]`` (step 0.002) and ``log h(z)``."""
    z = np.linspace(0.0, 16.0, 8001)[1:]
    with np.errstate(divide="ignore"):
        return z, np.log(_near_envelope(s, z, order))


@lru_cache(maxsize=16)
def _far_tail_table(s: float) -> tuple[np.ndarray, np.ndarray]:
    """``kappa`` on ``[0.05, 12]`` and the log of ``E1(kappa^2) (1 + (|s - 1| + 1) / kappa^2) / Gamma(s)``."""
    kappa = np.linspace(0.05, 12.0, 4000)
    w = kappa * kappa
    return kappa, np.log(exp1(w) * (1.0 + (abs(s - 1.0) + 1.0) / w) / gamma(s))


def _past_last_exceedance(grid: np.ndarray, log_values: np.ndarray, target: float,
                          none_above: float) -> float:
    """The grid point after the last one where the tabulated function exceeds ``target``
    (``none_above`` when it never does)."""
    above = np.nonzero(log_values > math.log(target))[0]
    if above.size == 0:
        return none_above
    return float(grid[min(int(above[-1]) + 1, grid.size - 1)])


def near_radius(s: float, sigma: float, eta: float, order: int = 1) -> float:
    r"""A radius ``r_cut`` beyond which ``|K_near'(x)| <= eta`` (``order = 1``) or ``|K_near(x)| <= eta``.

    Parameters
    ----------
    s : float
        Sobolev order.
    sigma : float
        Split scale.
    eta : float
        Pointwise bound, per unit of charge (per unit of charge squared for ``order = 0``).
    order : int
        ``1``: the force kernel ``K_near'``; ``0``: the potential kernel ``K_near`` of
        :func:`~kmdflow.summation.ewald_energy.near_potential` (without its constant, see there).

    Returns
    -------
    float
        ``r_cut = 2 sigma z``, ``z`` on a grid of step 0.002 in ``(0, 16]``; ``0`` when the kernel
        never exceeds ``eta`` (no near field is needed).

    Notes
    -----
    ``|K_near^(order)(x)| = sqrt(pi) / Gamma(s) sigma^(2s-1-order) h(|x| / 2 sigma)`` with
    ``h(z) = z^(2s-2) |Gamma(3/2 - s, z^2)|`` for the force and ``h(z) = z^(2s-1) Gamma(1/2 - s, z^2)``
    for the potential (tabulated once per ``s``; both decrease in ``z``).
    """
    z, log_h = _envelope_table(s, order)
    c0 = math.sqrt(math.pi) / gamma(s)
    z_cut = _past_last_exceedance(z, log_h, eta / (c0 * sigma ** (2.0 * s - 1.0 - order)), 0.0)
    return 2.0 * sigma * z_cut


def far_cutoff(s: float, sigma: float, eta: float) -> float:
    r"""A cutoff ``K`` (real, not rounded) with dropped far tail ``2 int_K^inf b_k dk <= eta``.

    Parameters
    ----------
    s : float
        Sobolev order.
    sigma : float
        Split scale.
    eta : float
        Pointwise bound, per unit of charge.

    Returns
    -------
    float
        ``kappa / sigma``, ``kappa`` on a grid in ``[0.05, 12]``.

    Notes
    -----
    ``2 int_kappa^inf u^(1-2s) Q(s, u^2) du`` in the asymptotic form of ``Q`` (tabulated once per
    ``s``), times ``sigma^(2s-2)``. It only sizes the design: the cutoff itself is then taken from
    the exact weights :func:`far_multiplier`.
    """
    kappa, log_tail = _far_tail_table(s)
    return _past_last_exceedance(kappa, log_tail, eta / sigma ** (2.0 * s - 2.0),
                                 float(kappa[0])) / sigma


# ---------------------------------------------------------------------------------------------
# Near field: singular part + fitted polynomial, evaluated on pair separations
# ---------------------------------------------------------------------------------------------

def _chebyshev_fit(smooth, weight, eta: float, weight_max: float,
                   monomial: bool = True) -> tuple[np.ndarray, float]:
    r"""Coefficients of a Chebyshev interpolant of ``smooth`` on ``[-1, 1]``, and its error.

    The fitted function enters a near kernel as ``weight(u) * smooth(u)``, ``0 <= weight <= weight_max``.
    The expansion is cut at the shortest length whose dropped coefficients are all below
    ``eta / (16 weight_max)`` or twice the interpolant's round-off floor (the size of its last
    coefficients), at most :data:`MAX_TABLE_DEGREE`. Returns monomial coefficients in ``u``
    (``monomial=True``, for :func:`~kmdflow.polynomials.horner`) or the Chebyshev ones, and the
    error: twice the misfit of ``weight * P`` measured between the nodes plus ``weight_max`` times
    the largest dropped coefficient.
    """
    cheb = chebyshev.chebinterpolate(smooth, TABLE_NODES - 1)
    noise = float(np.max(np.abs(cheb[-16:])))
    limit = max(eta / (16.0 * weight_max), 2.0 * noise)
    above = np.nonzero(np.abs(cheb) > limit)[0]
    degree = min(int(above[-1]) if above.size else 0, MAX_TABLE_DEGREE)
    dropped = float(np.max(np.abs(cheb[degree + 1:]))) if degree + 1 < cheb.size else 0.0
    coeffs = chebyshev.cheb2poly(cheb[:degree + 1]) if monomial else cheb[:degree + 1].copy()
    u = np.linspace(-1.0, 1.0, 4 * TABLE_NODES + 1)[1:]
    fitted = horner(coeffs, u) if monomial else chebyshev.chebval(u, coeffs)
    misfit = np.max(np.abs(weight(u) * (fitted - smooth(u))))
    return coeffs, float(2.0 * misfit + weight_max * dropped)


@dataclass(frozen=True)
class NearKernel:
    r"""``K_near'(d)`` for ``0 < d < r_cut``: ``S(d) + d P(d^2)``, ``P`` a polynomial in ``u``.

    Parameters
    ----------
    s, sigma : float
        Sobolev order and split scale.
    r_cut : float
        Near-field radius, ``> 0``.
    eta : float
        Accuracy the fit aims for (coefficients below ``eta / (16 r_cut)`` are dropped).

    Attributes
    ----------
    coeffs : (degree + 1,) float
        Monomial coefficients of ``P`` in ``u = 2 d^2 / r_cut^2 - 1``.
    error : float
        Estimated ``max |fit error|`` of ``d P(d^2)`` on ``(0, r_cut)``.

    Notes
    -----
    The singular part ``S`` is that of ``K_s'`` (and of the closed form of ``K_near'``):

        S(d) = -sqrt(pi) / Gamma(s) * 2^(2-2s) Gamma(3/2 - s) d^(2s-2)       (s not in 3/2 + N)
        S(d) = 2 sqrt(pi) / Gamma(s) * 2^(2-2s) (-1)^m / m! d^(2m+1) log d     (s = m + 3/2)

    (for ``s = 1``: ``-pi``, the jump of the sawtooth). What is left, ``d P(d^2)``, is odd and
    analytic; ``u`` maps ``[0, r_cut]`` to ``[-1, 1]`` and ``coeffs`` are those of a Chebyshev
    interpolant (for this entire function their absolute sum stays within a few times
    ``max |P|``, so Horner's rule is stable). For ``s < 3/2`` the remainder is computed as
    ``sqrt(pi)/Gamma(s) 2^(2-2s) d^(2s-2) gamma(3/2 - s, d^2/4sigma^2)`` (lower incomplete gamma),
    free of the cancellation between ``K_near'`` and ``S`` at small ``d``.
    """

    s: float
    sigma: float
    r_cut: float
    eta: float
    kind: str = field(init=False)          # "power" (c d^p) or "log" (c d^p log d)
    power: float = field(init=False)
    coefficient: float = field(init=False)
    coeffs: np.ndarray = field(init=False, repr=False)
    error: float = field(init=False)

    def __post_init__(self) -> None:
        s = self.s
        a = 1.5 - s
        scale = _near_prefactor(s)
        if a <= 0 and a == round(a):             # s = m + 3/2: c d^(2m+1) log d
            m = round(-a)
            kind, power = "log", 2.0 * m + 1.0
            coefficient = 2.0 * scale * (-1.0) ** m / math.factorial(m)
        else:
            kind, power = "power", 2.0 * s - 2.0
            coefficient = -scale * gamma(a)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "power", power)
        object.__setattr__(self, "coefficient", coefficient)
        half = 0.5 * self.r_cut**2
        sigma = self.sigma

        def separation(u):
            return np.sqrt((u + 1.0) * half)

        def smooth(u):
            d = separation(u)
            if a > 0:      # K_near' - S = scale d^(2s-2) gamma_lower(a, w): no cancellation near 0
                w = (d / (2.0 * sigma)) ** 2
                return scale * d ** (2.0 * s - 3.0) * gammainc(a, w) * gamma(a)
            return (near_derivative(s, sigma, d) - self.singular(d)) / d

        coeffs, error = _chebyshev_fit(smooth, separation, self.eta, self.r_cut)
        object.__setattr__(self, "coeffs", coeffs)
        object.__setattr__(self, "error", error)

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
        out = horner(self.coeffs, u)
        out *= d
        out += self.singular(d)
        return out


@lru_cache(maxsize=8)
def near_kernel(s: float, sigma: float, r_cut: float, eta: float) -> NearKernel:
    """The :class:`NearKernel` of these parameters (cached: the flows reuse one design every step)."""
    return NearKernel(s, sigma, r_cut, eta)


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


def near_field(s: float, sigma: float, r_cut: float, eta: float, xs: np.ndarray, ys: np.ndarray,
               qs: np.ndarray, same: bool) -> tuple[np.ndarray, int, float]:
    r"""Near-field force ``sum_(|x_i - y_j| < r_cut) q_j K_near'(x_i - y_j)`` at sorted targets.

    Parameters
    ----------
    s, sigma, r_cut, eta : float
        Split parameters (see :class:`NearKernel`); ``r_cut > 0``.
    xs : (N,) float
        Targets, sorted, in ``[0, 2 pi)``.
    ys : (M,) float
        Sources, sorted, in ``[0, 2 pi)``.
    qs : (M,) float
        Charges in the order of ``ys``.
    same : bool
        Whether ``xs`` is ``ys`` (each pair is then evaluated once, for both its atoms).

    Returns
    -------
    force : (N,) float
        Near-field force; coincident atoms contribute ``K'(0) = 0``.
    pairs : int
        Near pairs evaluated.
    error : float
        Fit error of the near kernel (:attr:`NearKernel.error`), per unit of charge.
    """
    g = near_kernel(s, sigma, r_cut, eta)
    force, pairs = _near_symmetric(g, ys, qs, r_cut) if same else _near_general(g, xs, ys, qs, r_cut)
    return force, pairs, g.error
