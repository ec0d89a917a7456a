"""``summation="nufft"``: Ewald-split NUFFT force sums against direct sums, closed forms and invariants."""

from __future__ import annotations

import math
import warnings
from functools import cache

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmdflow.kernels.sobolev import SobolevKernel
from kmdflow.summation import (
    AUTO_NUFFT_PAIRS,
    SUMMATIONS,
    choose_summation,
    direct_force,
    nufft_force,
    pair_force,
)
from kmdflow.summation.ewald import near_kernel
from kmdflow.summation.nufft import (
    far_multiplier,
    near_derivative,
    nufft_force_report,
)

TWO_PI = 2.0 * np.pi


def uniform_target_problem(n: int, seed: int):
    """``n`` random atoms of weight ``1/n`` against the uniform target: sources are the targets."""
    x = np.random.default_rng(seed).uniform(0.0, TWO_PI, n)
    return x, x, np.full(n, 1.0 / n)


def particle_target_problem(n: int, seed: int):
    """Atoms ``X`` (weights ``w``) against atoms ``Y`` (weights ``u``): sources ``(X, Y)``, charges ``(w, -u)``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, TWO_PI, n)
    w = rng.dirichlet(np.ones(n))
    y = rng.uniform(0.0, TWO_PI, n // 2)
    y[:5] = x[:5]                                 # target atoms exactly on particles
    u = rng.dirichlet(np.ones(n // 2))
    return x, np.concatenate([x, y]), np.concatenate([w, -u])


@cache
def reference(kind: str, n: int, seed: int, s: float):
    """The problem and its direct (exact-kernel) force, computed once per module run."""
    x, y, q = (uniform_target_problem if kind == "uniform" else particle_target_problem)(n, seed)
    return x, y, q, direct_force(SobolevKernel(s), x, y, q)


def relative_error(force, exact) -> float:
    return float(np.max(np.abs(force - exact)) / np.max(np.abs(exact)))


# ---------------------------------------------------------------------------------------------
# the split itself: K' = K_far' + K_near', independently of the fast sums
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("s", [0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.3])
@pytest.mark.parametrize("sigma", [0.05, 0.3])
def test_split_adds_up_to_the_kernel(s, sigma):
    # far field by its Fourier series (b_k decays like exp(-sigma^2 k^2): 40 / sigma modes is exact)
    x = np.linspace(-1.2, 1.2, 13)
    k = np.arange(1, int(40 / sigma))
    far = -2.0 * np.sin(np.outer(x, k)) @ far_multiplier(s, sigma, k)
    total = far + near_derivative(s, sigma, x)
    np.testing.assert_allclose(total, SobolevKernel(s).derivative(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("s", [0.75, 1.25, 1.5, 2.5, 2.8])
def test_near_kernel_matches_incomplete_gamma_in_mpmath(s):
    # K_near'(x) = -sqrt(pi)/Gamma(s) 2^(2-2s) |x|^(2s-2) Gamma(3/2 - s, x^2 / 4 sigma^2), x > 0,
    # with mpmath's analytically continued incomplete gamma (negative and zero orders included)
    sigma = 0.01
    x = np.array([1e-4, 3e-3, 0.01, 0.03, 0.07])
    expected = [float(-mpmath.sqrt(mpmath.pi) / mpmath.gamma(s) * mpmath.mpf(2) ** (2 - 2 * s)
                      * mpmath.mpf(v) ** (2 * s - 2) * mpmath.gammainc(1.5 - s, (v / (2 * sigma)) ** 2))
                for v in x]
    np.testing.assert_allclose(near_derivative(s, sigma, x), expected, rtol=1e-12)
    np.testing.assert_allclose(near_derivative(s, sigma, -x), -np.array(expected), rtol=1e-12)


@pytest.mark.parametrize("s", [0.75, 1.0, 1.25, 1.5, 2.5])
def test_near_field_polynomial_fit(s):
    sigma, r_cut, eta = 1e-3, 0.011, 1e-13
    table = near_kernel(s, sigma, r_cut, eta)
    d = np.linspace(1e-6, r_cut, 20001)
    exact = near_derivative(s, sigma, d)
    misfit = np.abs(table(d) - exact)
    # the fit is within its own error estimate, and that estimate is near eta or round-off
    assert np.max(misfit) <= table.error
    assert table.error <= max(eta, 1e-14 * np.max(np.abs(exact[d > 0.1 * r_cut])) * 100)


# ---------------------------------------------------------------------------------------------
# against direct sums
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("s", [1.25, 1.5, 2.5])
@pytest.mark.parametrize("tol", [1e-6, 1e-10])
def test_uniform_target_matches_direct(s, tol):
    x, y, q, exact = reference("uniform", 10_000, 1, s)
    force, report = nufft_force_report(SobolevKernel(s), x, y, q, tol=tol)
    error = relative_error(force, exact)
    assert error <= tol
    # the a posteriori estimate is an upper bound, and not a wildly loose one
    assert report.attained
    assert error * max(np.max(np.abs(exact)), 0) <= report.error_bound
    assert report.error_bound <= 1e3 * max(error, 1e-15) * np.max(np.abs(exact))


@pytest.mark.parametrize("s", [0.75, 1.25, 1.5])
@pytest.mark.parametrize("tol", [1e-6, 1e-10])
def test_particle_target_matches_direct(s, tol):
    x, y, q, exact = reference("particles", 3000, 2, s)
    assert relative_error(nufft_force(SobolevKernel(s), x, y, q, tol=tol), exact) <= tol


@pytest.mark.parametrize("tol", [1e-6, 1e-10])
def test_singular_force_below_s_one(tol):
    # s = 0.75: K'(x) ~ |x|^(-1/2), the force is dominated by close neighbours
    x, y, q, exact = reference("uniform", 3000, 3, 0.75)
    assert relative_error(nufft_force(SobolevKernel(0.75), x, y, q, tol=tol), exact) <= tol


def test_coincident_atoms_contribute_nothing():
    # K'(0) := 0: atoms stacked on a 50-point grid, as in the sorted-sum tests
    rng = np.random.default_rng(5)
    x = TWO_PI * rng.integers(0, 50, 400) / 50
    q = rng.normal(size=400)
    kernel = SobolevKernel(1.5)
    exact = direct_force(kernel, x, x, q)
    assert relative_error(nufft_force(kernel, x, x, q, tol=1e-10), exact) <= 1e-10
    targets = rng.uniform(0.0, TWO_PI, 30)
    targets[:10] = x[:10]                        # targets on top of sources, not the same array
    exact = direct_force(kernel, targets, x, q)
    assert relative_error(nufft_force(kernel, targets, x, q, tol=1e-10), exact) <= 1e-10


def test_plain_truncation_at_the_same_modes_misses_tol():
    # the near field matters: sum_{0 < |k| <= K} i k |k|^-2s mu_hat(k) e^{ikx} with the design's K
    # has a tail ~ K^(2-2s) = K^-0.5 for s = 1.25, far above tol
    s, tol = 1.25, 1e-6
    x, y, q, exact = reference("uniform", 10_000, 1, s)
    force, report = nufft_force_report(SobolevKernel(s), x, y, q, tol=tol)
    k_max = report.design.n_modes
    assert report.design.r_cut > 0.0
    k = np.arange(1, k_max + 1)
    plain = np.zeros(x.size)
    for start in range(0, k.size, 512):          # exact DFT in blocks
        kb = k[start:start + 512].astype(float)
        mu_hat = np.exp(-1j * np.outer(kb, y)) @ q
        plain += -2.0 * (np.sin(np.outer(x, kb)) * (kb ** (1 - 2 * s) * mu_hat.real)
                         - np.cos(np.outer(x, kb)) * (kb ** (1 - 2 * s) * mu_hat.imag)).sum(axis=1)
    assert relative_error(force, exact) <= tol
    assert relative_error(plain, exact) > 100 * tol


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

# positions on a grid of 2 pi / 64 so that shifts keep coincidences exact
grid_index = st.lists(st.integers(0, 63), min_size=2, max_size=40)


@settings(max_examples=40, deadline=None)
@given(indices=grid_index, shift=st.integers(-200, 200), s=st.sampled_from([0.75, 1.25, 1.5, 2.5]),
       seed=st.integers(0, 2**16))
def test_forces_translation_invariant_and_antisymmetric(indices, shift, s, seed):
    idx = np.array(indices)
    charges = np.random.default_rng(seed).normal(size=idx.size)
    kernel = SobolevKernel(s)
    x = TWO_PI * idx / 64
    moved = TWO_PI * (idx + shift) / 64              # unwrapped, up to 3 turns away
    exact = direct_force(kernel, x, x, charges)
    scale = np.max(np.abs(exact))
    tol = 1e-10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-zero forces (e.g. all atoms coincide)
        f = nufft_force(kernel, x, x, charges, tol=tol)
        g = nufft_force(kernel, moved, moved, charges, tol=tol)
    # a floor for configurations whose exact force vanishes: round-off of sum|q| * rms(K')
    floor = 1e-12 * np.sum(np.abs(charges)) * np.sqrt(np.mean(kernel.derivative(TWO_PI * np.arange(1, 64) / 64) ** 2))
    np.testing.assert_allclose(g, f, rtol=0, atol=2 * tol * scale + floor)
    # Newton's third law: sum_i q_i F_i = 0 for the exact sum (K' odd, K'(0) = 0)
    assert abs(charges @ f) <= np.sum(np.abs(charges)) * (tol * scale + floor)


def test_permuting_atoms_permutes_forces():
    x, y, q = particle_target_problem(500, 9)
    kernel = SobolevKernel(1.5)
    base = nufft_force(kernel, x, y, q)
    perm_t = np.random.default_rng(1).permutation(x.size)
    perm_s = np.random.default_rng(2).permutation(y.size)
    moved = nufft_force(kernel, x[perm_t], y[perm_s], q[perm_s])
    np.testing.assert_allclose(moved, base[perm_t], rtol=0, atol=1e-10 * np.max(np.abs(base)))


# ---------------------------------------------------------------------------------------------
# error control, registry, validation
# ---------------------------------------------------------------------------------------------

def test_tol_controls_the_work_and_the_error():
    x, y, q, exact = reference("uniform", 10_000, 1, 1.5)
    kernel = SobolevKernel(1.5)
    loose, loose_report = nufft_force_report(kernel, x, y, q, tol=1e-4)
    tight, tight_report = nufft_force_report(kernel, x, y, q, tol=1e-12)
    assert relative_error(loose, exact) <= 1e-4
    assert relative_error(tight, exact) <= 1e-12
    assert loose_report.design.n_modes < tight_report.design.n_modes
    assert loose_report.design.eps > tight_report.design.eps


def test_small_forces_trigger_a_second_pass():
    # near equilibrium: equispaced atoms, slightly displaced, against the uniform target. The
    # a priori scale (rms force of random charges) is far too large; the second pass fixes it.
    n = 2000
    rng = np.random.default_rng(4)
    x = TWO_PI * (np.arange(n) + 0.05 * rng.normal(size=n)) / n
    q = np.full(n, 1.0 / n)
    kernel = SobolevKernel(1.5)
    exact = direct_force(kernel, x, x, q)
    force, report = nufft_force_report(kernel, x, x, q, tol=1e-8)
    assert report.passes == 2 and report.attained
    assert relative_error(force, exact) <= 1e-8


def test_equilibrium_warns():
    # exactly equispaced atoms feel no force: no relative accuracy is possible, and we say so
    n = 1000
    x = TWO_PI * np.arange(n) / n
    with pytest.warns(RuntimeWarning, match="forces are too small for this tol"):
        force = nufft_force(SobolevKernel(1.5), x, x, np.full(n, 1.0 / n))
    assert np.max(np.abs(force)) < 1e-12


def test_auto_chooses_nufft_for_large_non_integer_problems():
    side = math.isqrt(AUTO_NUFFT_PAIRS) + 1
    assert choose_summation(SobolevKernel(1.5), side, side) == "nufft"
    assert choose_summation(SobolevKernel(1.5), 100, 100) == "direct"
    assert choose_summation(SobolevKernel(2), side, side) == "sorted"        # exact for integer s
    assert choose_summation(SobolevKernel(2), 10, 10, "nufft") == "nufft"
    assert SUMMATIONS["nufft"].serves(SobolevKernel(0.3))


def test_pair_force_passes_tol_through():
    x, y, q = particle_target_problem(400, 11)
    kernel = SobolevKernel(1.25)
    for tol in (1e-3, 1e-9):
        np.testing.assert_array_equal(pair_force(kernel, x, y, q, method="nufft", tol=tol),
                                      nufft_force(kernel, x, y, q, tol=tol))
    np.testing.assert_array_equal(pair_force(kernel, x, y, q, method="nufft"), nufft_force(kernel, x, y, q))
    # exact methods ignore tol
    np.testing.assert_array_equal(pair_force(kernel, x, y, q, method="direct", tol=1e-3),
                                  direct_force(kernel, x, y, q))


def test_validation_and_empty_inputs():
    kernel = SobolevKernel(1.5)
    with pytest.raises(ValueError, match=r"tol must be in \(0, 1\), got tol=0"):
        nufft_force(kernel, np.ones(3), np.ones(3), np.ones(3), tol=0)
    with pytest.raises(ValueError, match="tol must be a number"):
        nufft_force(kernel, np.ones(3), np.ones(3), np.ones(3), tol="small")
    with pytest.raises(ValueError, match="charges must have the shape of sources"):
        nufft_force(kernel, np.ones(3), np.ones(4), np.ones(3))
    assert nufft_force(kernel, np.zeros(0), np.ones(3), np.ones(3)).shape == (0,)
    np.testing.assert_array_equal(nufft_force(kernel, np.ones(4), np.zeros(0), np.zeros(0)), 0.0)
    np.testing.assert_array_equal(nufft_force(kernel, np.ones(4), np.ones(2), np.zeros(2)), 0.0)
