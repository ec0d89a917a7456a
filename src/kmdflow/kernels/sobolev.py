r"""The Sobolev kernel of ``H^-s`` on the circle ``T^1`` (MATH.md section 2).

Fourier and measure conventions: see :mod:`kmdflow.domains.torus`.

The kernel is given by its multiplier ``lambda(k) = |k|^(-2s)`` (``lambda(0) = 0``) and its profile

    K_s(x) = sum_{k != 0} |k|^(-2s) e^{ikx} = 2 sum_{k >= 1} cos(kx) / k^(2s).

Two closed forms are used, both accurate to round-off for every real ``x``:

* integer ``s = n``: a Bernoulli polynomial, ``K_n(x) = (-1)^(n-1) (2 pi)^(2n) B_2n(x/2pi) / (2n)!``
  on ``[0, 2 pi)`` (see :meth:`SobolevKernel.bernoulli_form`);
* other ``s``: with ``p = 2s`` and ``x`` wrapped to ``(-pi, pi]``, a singular term
  (``|x|^(p-1)``, or ``x^(p-1) log|x|`` when ``p`` is an odd integer) plus a power series in ``x^2``
  whose coefficients are values of the Riemann zeta function (:class:`_ZetaSeries`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import ClassVar

import numpy as np
from scipy.special import gamma, zeta

from kmdflow.domains.torus import TWO_PI
from kmdflow.polynomials import horner

__all__ = [
    "SobolevKernel",
    "bernoulli_numbers",
    "bernoulli_coefficients",
    "bernoulli_coefficients_exact",
]

#: Number of series coefficients computed for non-integer ``s``; terms below round-off where each
#: expansion is used are then dropped (about 17 remain).
SERIES_TERMS = 40


# ---------------------------------------------------------------------------------------------
# Bernoulli numbers and polynomials (exact rationals, converted to float64 on request)
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def bernoulli_numbers(n_max: int) -> tuple[Fraction, ...]:
    """Bernoulli numbers ``B_0 .. B_n_max`` as exact fractions (convention ``B_1 = -1/2``).

    Notes
    -----
    From ``sum_{j=0}^{m} C(m+1, j) B_j = 0`` for ``m >= 1``, ``B_0 = 1``.
    """
    numbers = [Fraction(1)]
    for m in range(1, n_max + 1):
        acc = sum(math.comb(m + 1, j) * numbers[j] for j in range(m))
        numbers.append(-acc / (m + 1))
    return tuple(numbers)


@lru_cache(maxsize=None)
def bernoulli_coefficients_exact(m: int) -> tuple[Fraction, ...]:
    """Coefficients of ``B_m(t) = sum_l C(m, l) B_(m-l) t^l``, ascending powers, exact."""
    numbers = bernoulli_numbers(m)
    return tuple(math.comb(m, l) * numbers[m - l] for l in range(m + 1))


def bernoulli_coefficients(m: int) -> np.ndarray:
    """Coefficients of the Bernoulli polynomial ``B_m(t)`` in ascending powers of ``t``.

    Parameters
    ----------
    m : int
        Degree, ``m >= 0``.

    Returns
    -------
    (m + 1,) float
        ``c`` with ``B_m(t) = sum_l c[l] t^l``; e.g. ``B_2(t) = t^2 - t + 1/6``.
    """
    if m < 0:
        raise ValueError(f"m must be a nonnegative integer, got m={m!r}")
    return np.array([float(c) for c in bernoulli_coefficients_exact(int(m))])


def _turns(x: np.ndarray) -> np.ndarray:
    """``x / 2pi`` reduced to ``[-1/2, 1/2]`` by subtracting the nearest integer (odd in ``x``)."""
    t = np.multiply(x, 1.0 / TWO_PI)
    t -= np.round(t)
    return t


# ---------------------------------------------------------------------------------------------
# Non-integer s: the zeta series
# ---------------------------------------------------------------------------------------------

def _truncate(coeffs: np.ndarray, radius: float) -> np.ndarray:
    """Drop the tail of a power series in ``x^2`` whose terms are below round-off at ``|x| = radius``."""
    size = np.abs(coeffs) * radius ** (2.0 * np.arange(coeffs.size))
    keep = int(np.max(np.nonzero(size > 1e-20 * np.max(size))[0])) + 1
    return coeffs[:keep]


@dataclass(frozen=True)
class _ZetaSeries:
    r"""``C_p(x) = sum_{k>=1} cos(kx) / k^p`` and ``C_p'(x)`` for ``|x| <= pi``, ``p = 2s``.

    Notes
    -----
    Near 0 (``|x| <= 2 pi/3``), for ``p`` not an odd integer (MATH.md section 2):

        C_p(x) = Gamma(1-p) sin(pi p/2) |x|^(p-1) + sum_{m>=0} a_m x^(2m),
        a_m = (-1)^m zeta(p - 2m) / (2m)!,
        C_p'(x) = Gamma(1-p) sin(pi p/2) (p-1) sign(x) |x|^(p-2) + sum_{m>=1} 2m a_m x^(2m-1),

    with ``Gamma(1-p) sin(pi p/2) = pi / (2 Gamma(p) cos(pi p/2))``. For ``p = 2n + 1`` the
    singular term is ``(-1)^n x^(2n)/(2n)! (H_2n - log|x|)`` and ``a_n`` is dropped; its derivative
    is ``(-1)^n x^(2n-1)/(2n-1)! (H_(2n-1) - log|x|)`` (``-1/x`` when ``n = 0``; ``H_j`` harmonic
    numbers). Terms shrink like ``(x / 2pi)^(2m)``, i.e. ``9^-m`` at ``|x| = 2 pi/3``.

    Near ``pi`` the function is analytic: with ``y = pi - |x|`` and the Dirichlet eta function
    ``eta(z) = (1 - 2^(1-z)) zeta(z)`` (``eta(1) = log 2``),

        C_p(x) = -sum_{m>=0} (-1)^m eta(p - 2m) y^(2m) / (2m)!,

    whose terms shrink like ``(y / pi)^(2m)``, again ``9^-m`` at ``y = pi/3``. Using each
    expansion where it converges fastest keeps cancellation to a factor of a few.
    """

    p: float
    log_order: int | None = field(init=False)
    singular: float = field(init=False)
    near: np.ndarray = field(init=False, repr=False)
    near_deriv: np.ndarray = field(init=False, repr=False)
    far: np.ndarray = field(init=False, repr=False)
    far_deriv: np.ndarray = field(init=False, repr=False)

    #: switch from the expansion at 0 to the one at pi
    SPLIT: ClassVar[float] = TWO_PI / 3.0

    def __post_init__(self) -> None:
        p = self.p
        half = (p - 1.0) / 2.0
        log_order = int(round(half)) if half == round(half) else None
        m = np.arange(SERIES_TERMS)
        fact = np.array([math.factorial(2 * j) for j in m], dtype=float)
        args = p - 2.0 * m
        with np.errstate(all="ignore"):
            z = zeta(args)
            near = (-1.0) ** m * z / fact
            eta = (1.0 - 2.0 ** (1.0 - args)) * z
        if log_order is not None:
            near[log_order] = 0.0
            eta[log_order] = math.log(2.0)
            singular = (-1.0) ** log_order / math.factorial(2 * log_order)
        else:
            singular = float(np.pi / (2.0 * gamma(p) * np.cos(np.pi * p / 2.0)))
        near = _truncate(near, self.SPLIT)
        far = _truncate(-((-1.0) ** m) * eta / fact, np.pi - self.SPLIT)
        object.__setattr__(self, "log_order", log_order)
        object.__setattr__(self, "singular", singular)
        object.__setattr__(self, "near", near)
        object.__setattr__(self, "far", far)
        # derivative series: d/dx sum c_m x^(2m) = x * sum_{m>=1} 2m c_m (x^2)^(m-1)
        object.__setattr__(self, "near_deriv", 2.0 * np.arange(1, near.size) * near[1:])
        object.__setattr__(self, "far_deriv", 2.0 * np.arange(1, far.size) * far[1:])

    def _singular_value(self, ax: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.log_order is None:
                return self.singular * ax ** (self.p - 1.0)
            n = self.log_order
            harmonic = sum(1.0 / j for j in range(1, 2 * n + 1))
            out = self.singular * ax ** (2 * n) * (harmonic - np.log(ax))
            return np.where(ax == 0.0, np.inf if n == 0 else 0.0, out)

    def _singular_slope(self, ax: np.ndarray) -> np.ndarray:
        """Derivative of the singular term for ``x = ax > 0`` (odd extension by the caller)."""
        if self.log_order is None:
            return self.singular * (self.p - 1.0) * ax ** (self.p - 2.0)
        n = self.log_order
        if n == 0:
            return -1.0 / ax
        harmonic = sum(1.0 / j for j in range(1, 2 * n))
        # (-1)^n x^(2n-1)/(2n-1)! = singular * 2n * x^(2n-1), singular = (-1)^n/(2n)!
        return self.singular * 2 * n * ax ** (2 * n - 1) * (harmonic - np.log(ax))

    def value(self, x: np.ndarray) -> np.ndarray:
        """``C_p(x)`` for ``x`` in ``[-pi, pi]``; ``+inf`` at 0 when ``p <= 1``."""
        ax = np.abs(np.asarray(x, dtype=float))
        out = np.empty(ax.shape)
        near = ax <= self.SPLIT
        a = ax[near]
        out[near] = horner(self.near, a * a) + self._singular_value(a)
        y = np.pi - ax[~near]
        out[~near] = horner(self.far, y * y)
        if self.p <= 1.0:
            out[ax == 0.0] = np.inf
        return out

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """``C_p'(x)`` for ``x`` in ``[-pi, pi]``, with the value 0 at ``x = 0``."""
        x = np.asarray(x, dtype=float)
        ax = np.abs(x)
        out = np.zeros(ax.shape)
        near = (ax <= self.SPLIT) & (ax > 0.0)
        a = ax[near]
        out[near] = horner(self.near_deriv, a * a) * a + self._singular_slope(a)
        far = ax > self.SPLIT
        y = np.pi - ax[far]
        # d/dx C_p = -(dC/dy) for x > 0
        out[far] = -horner(self.far_deriv, y * y) * y
        return out * np.sign(x)


# ---------------------------------------------------------------------------------------------
# The kernel
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SobolevKernel:
    r"""The ``H^-s`` kernel on ``T^1``: multiplier ``|k|^(-2s)``, profile ``K_s``, derivative ``K_s'``.

    Parameters
    ----------
    s : float
        Sobolev order, ``s > 0``. The paper's theory covers ``s >= 1``; particles need
        ``s > 1/2`` for a finite energy (``K_s(0) = 2 zeta(2s)``). Integer ``s`` uses exact
        Bernoulli polynomials; other ``s`` use the zeta series (round-off accuracy, except within
        about ``1e-6`` of a half-integer, where the series' two singular parts cancel).

    Notes
    -----
    ``K_s(x) = sum_{k != 0} |k|^(-2s) e^{ikx}``, even, ``2 pi``-periodic, mean zero. For integer
    ``s = n`` and ``x`` in ``[0, 2 pi)``:

        K_n(x) = (-1)^(n-1) (2 pi)^(2n) B_2n(x / 2pi) / (2n)!
        K_n'(x) = (-1)^(n-1) (2 pi)^(2n-1) B_(2n-1)(x / 2pi) / (2n-1)!

    ``K_s'`` is odd; at ``x = 0`` it is set to 0 (it jumps there for ``s = 1`` and is unbounded
    for ``s < 1``). Conventions: :mod:`kmdflow.domains.torus`.
    """

    s: float
    name: ClassVar[str] = "sobolev"

    def __post_init__(self) -> None:
        try:
            value = float(self.s)
        except (TypeError, ValueError):
            raise ValueError(f"s must be a positive real number, got s={self.s!r}; "
                             f"pass e.g. s=2.0") from None
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"s must be a positive finite number, got s={self.s!r}; "
                             f"pass e.g. s=1.0 (exponential regime) or s=2.0")
        object.__setattr__(self, "s", value)

    # -- classification -----------------------------------------------------------------------
    @property
    def is_integer(self) -> bool:
        """True when ``s`` is an integer (1, 2, 3, ...): exact Bernoulli forms and sorted sums apply."""
        return float(self.s).is_integer()

    @property
    def order(self) -> int:
        """``s`` as an ``int``; only for integer ``s``."""
        if not self.is_integer:
            raise ValueError(f"s={self.s} is not an integer; the Bernoulli forms need s in 1, 2, 3, ...")
        return int(self.s)

    # -- spectral side --------------------------------------------------------------------------
    def multiplier(self, k: np.ndarray) -> np.ndarray:
        """Fourier multiplier ``lambda(k) = |k|^(-2s)``, ``lambda(0) = 0``.

        Parameters
        ----------
        k : array of int or float, any shape
            Wavenumbers (or their norms).

        Returns
        -------
        float array, shape of ``k``.
        """
        a = np.abs(np.asarray(k, dtype=float))
        out = np.zeros(a.shape)
        nz = a != 0.0
        out[nz] = a[nz] ** (-2.0 * self.s)
        return out

    # -- closed forms --------------------------------------------------------------------------
    def bernoulli_form(self, derivative: int = 0) -> tuple[float, int]:
        """Scale ``c`` and degree ``m`` with ``K_s^(r)(x) = c B_m(x / 2pi)`` on ``(0, 2 pi)``.

        Parameters
        ----------
        derivative : int
            Order ``r`` of the derivative, ``0 <= r <= 2s - 1`` (integer ``s`` only).

        Notes
        -----
        ``c = (-1)^(s-1) (2 pi)^(2s - r) / (2s - r)!`` and ``m = 2s - r``, from
        ``B_m' = m B_(m-1)``.
        """
        n = self.order
        m = 2 * n - int(derivative)
        if not 1 <= m <= 2 * n:
            raise ValueError(f"derivative must be in 0..{2 * n - 1} for s={self.s}, "
                             f"got derivative={derivative!r}")
        return (-1.0) ** (n - 1) * TWO_PI ** m / math.factorial(m), m

    @cached_property
    def _bernoulli(self) -> tuple[tuple[float, np.ndarray], tuple[float, np.ndarray]]:
        """``(scale, coefficients)`` of ``K`` and ``K'`` in powers of ``|x| / 2pi`` (integer ``s``)."""
        forms = []
        for r in (0, 1):
            scale, m = self.bernoulli_form(r)
            forms.append((scale, bernoulli_coefficients(m)))
        return tuple(forms)

    @cached_property
    def _series(self) -> _ZetaSeries:
        return _ZetaSeries(2.0 * self.s)

    def profile(self, x: np.ndarray) -> np.ndarray:
        """Kernel profile ``K_s(x)`` for any real ``x`` (periodic).

        Parameters
        ----------
        x : float array, any shape

        Returns
        -------
        float array, shape of ``x``; ``K_s(0) = 2 zeta(2s)``, ``+inf`` when ``s <= 1/2``.
        """
        t = _turns(np.asarray(x, dtype=float))
        if self.is_integer:
            scale, coeffs = self._bernoulli[0]
            out = horner(coeffs, np.abs(t))
            out *= scale
            return out
        return 2.0 * self._series.value(TWO_PI * t)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """Kernel derivative ``K_s'(x)`` for any real ``x`` (periodic, odd, ``K_s'(0) := 0``).

        Parameters
        ----------
        x : float array, any shape

        Returns
        -------
        float array, shape of ``x``.
        """
        t = _turns(np.asarray(x, dtype=float))
        if self.is_integer:
            scale, coeffs = self._bernoulli[1]
            sign = np.sign(t)
            sign *= scale
            out = horner(coeffs, np.abs(t))
            out *= sign
            return out
        return 2.0 * self._series.derivative(TWO_PI * t)
