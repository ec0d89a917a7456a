"""The Sobolev kernel's closed forms against independent references (MATH.md section 2)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.special import zeta

from kmdflow.kernels.sobolev import (
    SobolevKernel,
    bernoulli_coefficients,
    bernoulli_numbers,
)

TWO_PI = 2.0 * np.pi
ALL_S = [1.0, 2.0, 3.0, 0.75, 1.25, 1.5, 2.5, 2.75]
# points away from 0 (where the Fourier reference converges slowly), on both sides, beyond 2 pi
POINTS = np.array([0.05, 0.3, 1.0, 2.0, 2.09, 2.1, 3.0, np.pi, 3.3, 4.5, 6.2, -0.7, -2.5, 8.0, -11.0])


def exponential_sum(p: float, x: np.ndarray, n_direct: int = 20000, n_tail: int = 8) -> np.ndarray:
    """Reference ``sum_{k>=1} e^{ikx} / k^p`` (complex), any real ``p``, ``x`` not in ``2 pi Z``.

    The first ``n_direct`` terms are summed directly; the tail ``sum_{k>K} a_k z^k`` with
    ``a_k = k^-p`` and ``z = e^{ix}`` by Euler's transformation
    ``sum_{i>=0} a_{K+1+i} z^i = sum_j (Delta^j a)_{K+1} z^j / (1 - z)^{j+1}``, whose terms shrink
    like ``(p / (2 K sin(x/2)))^j`` until round-off in the differences takes over; the series is
    cut at its smallest term (point by point).
    """
    x = np.asarray(x, dtype=float)
    k = np.arange(1, n_direct + 1, dtype=float)
    head = np.exp(1j * np.outer(x, k)) @ k ** (-p)
    a = np.arange(n_direct + 1, n_direct + 2 + n_tail, dtype=float) ** (-p)
    z = np.exp(1j * x)
    terms = []
    diffs = a
    for j in range(n_tail):
        terms.append(diffs[0] * z ** j / (1.0 - z) ** (j + 1))
        diffs = np.diff(diffs)
    terms = np.array(terms)                                   # (n_tail, len(x))
    stop = np.argmin(np.abs(terms), axis=0)                   # smallest term, per point
    keep = np.arange(n_tail)[:, None] < stop[None, :]
    tail = np.sum(np.where(keep, terms, 0.0), axis=0)
    return head + np.exp(1j * (n_direct + 1) * x) * tail


def test_reference_sum_is_right():
    # sanity of the reference itself: p = 1 is -log(2 sin(x/2)) + i (pi - x)/2 on (0, 2 pi)
    x = np.array([0.05, 1.0, 3.0, 6.0])
    expected = -np.log(2.0 * np.sin(x / 2.0)) + 0.5j * (np.pi - x)
    np.testing.assert_allclose(exponential_sum(1.0, x), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("s", ALL_S)
def test_profile_matches_fourier_series(s):
    kernel = SobolevKernel(s)
    expected = 2.0 * exponential_sum(2.0 * s, POINTS).real
    np.testing.assert_allclose(kernel.profile(POINTS), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("s", ALL_S)
def test_derivative_matches_fourier_series(s):
    # K'(x) = -2 sum_k sin(kx) / k^(2s-1)
    kernel = SobolevKernel(s)
    expected = -2.0 * exponential_sum(2.0 * s - 1.0, POINTS).imag
    np.testing.assert_allclose(kernel.derivative(POINTS), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("s", ALL_S)
def test_value_at_zero(s):
    kernel = SobolevKernel(s)
    assert kernel.profile(np.array([0.0]))[0] == pytest.approx(2.0 * zeta(2.0 * s), rel=1e-14)
    assert kernel.derivative(np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize("s", [0.25, 0.5])
def test_profile_infinite_at_zero_for_small_s(s):
    kernel = SobolevKernel(s)
    values = kernel.profile(np.array([0.0, 1.0]))
    assert values[0] == np.inf and np.isfinite(values[1])
    assert kernel.derivative(np.array([0.0]))[0] == 0.0


def test_log_case_s_half_near_zero():
    # s = 1/2: K(x) = -2 log(2 sin(x/2)), K'(x) = -cot(x/2)
    x = np.array([1e-6, 1e-3, 0.5, 2.5])
    kernel = SobolevKernel(0.5)
    np.testing.assert_allclose(kernel.profile(x), -2.0 * np.log(2.0 * np.sin(x / 2.0)), rtol=1e-14)
    np.testing.assert_allclose(kernel.derivative(x), -1.0 / np.tan(x / 2.0), rtol=1e-13)


def test_bernoulli_forms_match_explicit_polynomials():
    # MATH.md: K_1 = pi^2/3 - pi x + x^2/2, K_1' = x - pi, K_2 = pi^4/45 - pi^2 x^2/6 + pi x^3/6 - x^4/24
    x = np.linspace(1e-9, TWO_PI - 1e-9, 501)
    pi = np.pi
    np.testing.assert_allclose(SobolevKernel(1).profile(x), pi**2 / 3 - pi * x + x**2 / 2, atol=1e-13)
    np.testing.assert_allclose(SobolevKernel(1).derivative(x), x - pi, atol=1e-13)
    k2 = pi**4 / 45 - pi**2 * x**2 / 6 + pi * x**3 / 6 - x**4 / 24
    np.testing.assert_allclose(SobolevKernel(2).profile(x), k2, atol=1e-13)
    dk2 = -pi**2 * x / 3 + pi * x**2 / 2 - x**3 / 6
    np.testing.assert_allclose(SobolevKernel(2).derivative(x), dk2, atol=1e-13)


def test_bernoulli_numbers_and_polynomials():
    b = bernoulli_numbers(8)
    assert b[:5] == (1, Fraction(-1, 2), Fraction(1, 6), 0, Fraction(-1, 30))
    assert b[6] == Fraction(1, 42) and b[8] == Fraction(-1, 30)
    np.testing.assert_array_equal(bernoulli_coefficients(2), [1 / 6, -1.0, 1.0])
    t = np.linspace(0.0, 1.0, 7)
    for m in range(1, 9):
        c = bernoulli_coefficients(m)
        # B_m(t + 1) - B_m(t) = m t^(m-1) and B_m(1 - t) = (-1)^m B_m(t)
        poly = np.polynomial.Polynomial(c)
        np.testing.assert_allclose(poly(t + 1) - poly(t), m * t ** (m - 1), atol=1e-12)
        np.testing.assert_allclose(poly(1 - t), (-1) ** m * poly(t), atol=1e-14)
        # zero mean on [0, 1]
        assert abs(poly.integ()(1.0) - poly.integ()(0.0)) < 1e-15


@pytest.mark.parametrize("s", ALL_S)
def test_symmetry_and_periodicity(s):
    kernel = SobolevKernel(s)
    x = np.random.default_rng(1).uniform(-3 * np.pi, 3 * np.pi, 200)
    x = x[np.abs(x - TWO_PI * np.round(x / TWO_PI)) > 0.05]   # K' is steep near 0 for s < 1
    np.testing.assert_array_equal(kernel.profile(-x), kernel.profile(x))
    np.testing.assert_array_equal(kernel.derivative(-x), -kernel.derivative(x))
    for shift in (TWO_PI, -2 * TWO_PI):
        np.testing.assert_allclose(kernel.profile(x + shift), kernel.profile(x), rtol=0, atol=2e-13)
        np.testing.assert_allclose(kernel.derivative(x + shift), kernel.derivative(x), rtol=0, atol=2e-13)
    assert abs(kernel.derivative(np.array([np.pi]))[0]) < 1e-14


@pytest.mark.parametrize("s", ALL_S)
@pytest.mark.parametrize("n", [16, 1000])
def test_grid_mean_is_aliased_zeta(s, n):
    # (1/n) sum_m K(2 pi m / n) = sum over k != 0 with n | k of |k|^-2s = 2 zeta(2s) n^-2s:
    # checks mean zero and the whole spectrum at once
    kernel = SobolevKernel(s)
    values = kernel.profile(TWO_PI * np.arange(n) / n)
    assert math.fsum(values) / n == pytest.approx(2.0 * zeta(2.0 * s) * n ** (-2.0 * s), rel=1e-10, abs=1e-15)


@pytest.mark.parametrize("s", [1.0, 1.5, 2.75])
def test_derivative_is_slope_of_profile(s):
    kernel = SobolevKernel(s)
    x = np.array([0.2, 1.0, 2.0, 2.5, 3.0])
    h = 1e-5
    slope = (kernel.profile(x + h) - kernel.profile(x - h)) / (2 * h)
    np.testing.assert_allclose(kernel.derivative(x), slope, rtol=0, atol=1e-8)


def test_multiplier():
    kernel = SobolevKernel(1.5)
    k = np.array([[0, 1, -2], [3, -4, 5]])
    expected = np.array([[0.0 if v == 0 else abs(v) ** -3.0 for v in row] for row in k])
    lam = kernel.multiplier(k)
    assert lam.shape == k.shape and lam.dtype == np.float64
    np.testing.assert_allclose(lam, expected, rtol=1e-15)


def test_is_integer_and_bernoulli_form():
    assert SobolevKernel(2).is_integer and SobolevKernel(2.0).is_integer
    assert not SobolevKernel(1.5).is_integer
    scale, m = SobolevKernel(2).bernoulli_form(1)
    assert m == 3 and scale == pytest.approx(-TWO_PI**3 / 6)
    with pytest.raises(ValueError, match="not an integer"):
        SobolevKernel(1.5).bernoulli_form(0)
    with pytest.raises(ValueError, match="derivative must be in 0..3"):
        SobolevKernel(2).bernoulli_form(4)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "two"])
def test_invalid_s_is_rejected(bad):
    with pytest.raises(ValueError, match="s must be a positive"):
        SobolevKernel(bad)


def test_kernel_is_hashable_and_named():
    assert SobolevKernel(2) == SobolevKernel(2.0)
    assert len({SobolevKernel(2), SobolevKernel(2.0), SobolevKernel(3)}) == 2
    assert SobolevKernel.name == "sobolev"
