"""Fast particle energy (``nufft_energy``): the Ewald split of ``K_s`` against closed forms and direct sums."""

from __future__ import annotations

import math
import warnings
from functools import cache

import mpmath
import numpy as np
import pytest
from scipy.special import zeta

import kmdflow
from kmdflow.domains import torus
from kmdflow.experiments.build import build_problem
from kmdflow.flows.particles import ParticleFlow1D
from kmdflow.kernels.sobolev import SobolevKernel
from kmdflow.summation.energy import atomic_energy
from kmdflow.summation.energy_nufft import nufft_energy, nufft_energy_report
from kmdflow.summation.ewald_energy import (
    NearPotential,
    far_potential_multiplier,
    near_potential,
    near_potential_mean,
    near_potential_multiplier,
)

TWO_PI = 2.0 * np.pi
S_VALUES = [1.25, 1.5, 2.5]
#: a density target with a few modes: nu = 1 + 2 Re sum_k c_k e^{ikx} > 0
TARGET_HAT = np.array([1.0, 0.2 * np.exp(0.3j), 0.05j, -0.01 + 0.02j, 0.004])


# ---------------------------------------------------------------------------------------------
# the split of the kernel itself
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("s", [0.75, 1.25, 1.5, 2.0, 2.5, 3.3])
@pytest.mark.parametrize("sigma", [0.05, 0.3])
def test_potential_split_adds_up_to_the_kernel(s, sigma):
    # far part by its Fourier series (Gaussian decay: 40 / sigma modes are exact), near part closed
    # form minus its mean; the sum is K_s (MATH.md section 2 closed forms, in SobolevKernel.profile)
    x = np.linspace(-1.2, 1.2, 13)
    k = np.arange(1, int(40 / sigma))
    far = 2.0 * np.cos(np.outer(x, k)) @ far_potential_multiplier(s, sigma, k)
    total = far + near_potential(s, sigma, x) - near_potential_mean(s, sigma)
    np.testing.assert_allclose(total, SobolevKernel(s).profile(x), rtol=0, atol=2e-14)
    # the multipliers add up to |k|^-2s
    np.testing.assert_allclose(far_potential_multiplier(s, sigma, k) + near_potential_multiplier(s, sigma, k),
                               k ** (-2.0 * s), rtol=1e-14)


@pytest.mark.parametrize("s", [0.75, 1.25, 1.5, 2.5])
def test_near_potential_is_the_truncated_heat_kernel_integral(s):
    # g(x) = Gamma(s)^-1 int_0^(sigma^2) t^(s-1) sqrt(pi/t) exp(-x^2/4t) dt, by mpmath quadrature
    sigma = 0.2
    for x in (0.0, 0.03, 0.2, 0.7):
        def integrand(v, x=x):   # t = sigma^2 v^4 removes the t^(s - 3/2) singularity at t = 0
            t = sigma**2 * v**4
            return t ** (s - 1) * mpmath.sqrt(mpmath.pi / t) * mpmath.exp(-x * x / (4 * t)) * 4 * sigma**2 * v**3
        exact = float(mpmath.quad(integrand, [0, 0.25, 0.5, 1]) / mpmath.gamma(s))
        assert near_potential(s, sigma, np.array([x]))[0] == pytest.approx(exact, rel=1e-12)
    # the mean of one image over the circle (normalised measure) is sigma^(2s) / Gamma(s + 1)
    mean = mpmath.quad(lambda x: float(near_potential(s, sigma, np.array([float(x)]))[0]),
                       [-np.pi, -0.5, 0, 0.5, np.pi]) / (2 * mpmath.pi)
    assert float(mean) == pytest.approx(near_potential_mean(s, sigma), rel=1e-10)


@pytest.mark.parametrize("s", [0.75, 1.25, 1.5, 2.5, 3.3])
def test_near_potential_fit_is_within_its_error_relative_to_g0(s):
    sigma = 0.004
    g = NearPotential(s, sigma, 12 * sigma, 1e-30)
    d = np.concatenate([[0.0], np.geomspace(1e-9, 12 * sigma, 3000)])
    misfit = np.max(np.abs(g(d) - near_potential(s, sigma, d)))
    assert misfit <= g.error
    assert g.error <= 1e-12 * g.at_zero      # round-off level, relative to the largest value


# ---------------------------------------------------------------------------------------------
# energies against the direct pair sum
# ---------------------------------------------------------------------------------------------

def random_weights(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, TWO_PI, n), rng.dirichlet(np.ones(n))


@cache
def direct_uniform(s: float, n: int):
    x, w = random_weights(n, 7)
    return x, w, atomic_energy(SobolevKernel(s), x, w, background=1.0)


def check_uniform(s: float, n: int) -> None:
    x, w, exact = direct_uniform(s, n)
    for tol in (1e-6, 1e-10):
        energy, report = nufft_energy_report(SobolevKernel(s), x, w, tol=tol)
        assert report.attained
        assert abs(energy - exact) <= tol * exact
        assert report.error_bound <= tol * energy


@pytest.mark.parametrize("s", S_VALUES)
def test_weighted_particles_uniform_target_match_direct(s):
    # N = 4000 keeps the O(N^2) reference near a second; the slow variant below runs N = 1e4
    check_uniform(s, 4000)


@pytest.mark.slow
@pytest.mark.parametrize("s", S_VALUES)
def test_weighted_particles_uniform_target_match_direct_at_1e4(s):
    check_uniform(s, 10_000)


def density_target_reference(s: float, x, w, target_hat) -> float:
    """E(mu, 1) + E(nu, 1) - sum_j w_j psi_nu(X_j): direct pair sum plus exact Fourier sums."""
    kernel = SobolevKernel(s)
    k = np.arange(target_hat.size)
    lam = kernel.multiplier(k)
    psi_nu = torus.fourier_series(lam * target_hat, x)
    self_energy = float(np.sum(lam[1:] * np.abs(target_hat[1:]) ** 2))
    return atomic_energy(kernel, x, w, background=1.0) + self_energy - float(w @ psi_nu)


def atom_target_problem(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x, w = random_weights(n, seed)
    y = rng.uniform(0.0, TWO_PI, n // 2)
    y[:5] = x[:5]                                  # target atoms exactly on particles
    u = rng.dirichlet(np.ones(n // 2))
    return np.concatenate([x, y]), np.concatenate([w, -u])


@cache
def direct_targets(s: float, n: int):
    x, w = random_weights(n, 11)
    density = density_target_reference(s, x, w, TARGET_HAT)
    atoms, charges = atom_target_problem(n, 12)
    return x, w, density, atoms, charges, atomic_energy(SobolevKernel(s), atoms, charges)


def check_targets(s: float, n: int) -> None:
    x, w, density_exact, atoms, charges, atom_exact = direct_targets(s, n)
    for tol in (1e-6, 1e-10):
        energy = nufft_energy(SobolevKernel(s), x, w, target_hat=TARGET_HAT, tol=tol)
        assert abs(energy - density_exact) <= tol * density_exact
        energy = nufft_energy(SobolevKernel(s), atoms, charges, tol=tol)
        assert abs(energy - atom_exact) <= tol * atom_exact


@pytest.mark.parametrize("s", S_VALUES)
def test_density_and_atom_targets_match_direct(s):
    check_targets(s, 2000)


@pytest.mark.slow
@pytest.mark.parametrize("s", S_VALUES)
def test_density_and_atom_targets_match_direct_at_1e4(s):
    check_targets(s, 10_000)


def test_particles_sampled_from_the_target_keep_relative_precision():
    # near the target the energy is far below E(nu, 1): the Fourier form of the target terms does
    # not cancel large numbers, so tol holds relative to E itself
    s, n = 1.5, 4000
    cdf_grid = np.linspace(0.0, TWO_PI, 20001)
    density = torus.fourier_series(TARGET_HAT, cdf_grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(cdf_grid))])
    x = np.interp((np.arange(n) + 0.5) / n * cdf[-1], cdf, cdf_grid)      # quantiles of nu
    w = np.full(n, 1.0 / n)
    exact = density_target_reference(s, x, w, TARGET_HAT)
    k = np.arange(1, TARGET_HAT.size)
    self_energy = float(np.sum(k ** (-2.0 * s) * np.abs(TARGET_HAT[1:]) ** 2))      # E(nu, 1)
    assert exact < 1e-6 * self_energy                  # the regime where cancellation would bite
    energy = nufft_energy(SobolevKernel(s), x, w, target_hat=TARGET_HAT, tol=1e-8)
    # the reference itself cancels terms of size E(nu, 1): its own error is ~1e-16 E(nu, 1)
    assert abs(energy - exact) <= 1e-8 * exact + 1e-14 * self_energy


@pytest.mark.parametrize("s", [1.25, 1.5, 2.5])
@pytest.mark.parametrize("n", [1000, 20_000])
def test_equispaced_energy_law_to_tol(s, n):
    # E = zeta(2s) N^(-2s) exactly (MATH.md section 3); the pair sum loses it to round-off, the
    # Ewald sum keeps relative precision because none of its terms is much larger than E
    x = (np.arange(n) + 0.3) * TWO_PI / n
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        energy, report = nufft_energy_report(SobolevKernel(s), x, np.full(n, 1.0 / n), tol=1e-10)
    law = zeta(2 * s) * float(n) ** (-2 * s)
    if report.attained:
        assert not caught
        assert abs(energy - law) <= 1e-10 * law
    else:                                              # honest: says so, and the bound holds
        assert any("nufft_energy" in str(c.message) for c in caught)
        assert abs(energy - law) <= report.error_bound
    assert report.passes >= 2                          # designed again for the small energy
    if s == 1.25:                                      # measured: attained up to N = 1e5
        assert report.attained


def test_coincident_and_cancelling_atoms():
    s = 1.5
    kernel = SobolevKernel(s)
    x = np.array([0.5, 0.5, 2.0, 4.0, 4.0 + 1e-12])
    q = np.array([0.3, -0.3, 0.2, 0.25, -0.25])
    exact = atomic_energy(kernel, x, q, background=float(q.sum()))
    assert nufft_energy(kernel, x, q, tol=1e-10) == pytest.approx(exact, rel=1e-9)
    # a measure that is exactly zero: round-off only, within the bound, and a warning (no tol * 0)
    with pytest.warns(RuntimeWarning, match="nufft_energy"):
        energy, report = nufft_energy_report(kernel, [1.0, 1.0], [0.5, -0.5], tol=1e-6)
    assert abs(energy) <= report.error_bound < 1e-14


def test_translation_and_permutation_invariant():
    s = 1.25
    x, w = random_weights(3000, 3)
    kernel = SobolevKernel(s)
    e0 = nufft_energy(kernel, x, w, tol=1e-10)
    perm = np.random.default_rng(0).permutation(x.size)
    assert nufft_energy(kernel, x[perm] + 0.7, w[perm], tol=1e-10) == pytest.approx(e0, rel=2e-10)
    assert nufft_energy(kernel, x + 3 * TWO_PI, w, tol=1e-10) == pytest.approx(e0, rel=2e-10)


def test_energy_validation():
    kernel = SobolevKernel(0.5)
    with pytest.raises(ValueError, match="s <= 1/2"):
        nufft_energy(kernel, [0.0, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="tol"):
        nufft_energy(SobolevKernel(1.5), [0.0, 1.0], [0.5, 0.5], tol=0.0)
    # no atoms: the target's own energy, sum_k k^-2s |nu_hat(k)|^2
    k = np.arange(1, TARGET_HAT.size)
    own = float(np.sum(k ** -3.0 * np.abs(TARGET_HAT[1:]) ** 2))
    assert nufft_energy(SobolevKernel(1.5), [], [], target_hat=TARGET_HAT) == pytest.approx(own, rel=1e-14)


# ---------------------------------------------------------------------------------------------
# the run path
# ---------------------------------------------------------------------------------------------

def test_particle_runs_save_fast_energies_that_agree_with_direct(monkeypatch):
    config = {"energy": {"s": 1.5},
              "initial": {"kind": "von_mises", "kappa": 2.0},
              "target": {"kind": "von_mises", "kappa": 0.5},
              "method": {"kind": "particles", "n": 3000, "summation": "nufft", "tol": 1e-10},
              "time": {"t_end": 1.0, "n_saves": 4}, "output": {"snapshots": 2}}
    problem = build_problem(kmdflow.load_config(config))
    target = problem.flow.target

    # the run must not call the O(N^2) pair sum: make it fail if it does
    def forbidden(*args, **kwargs):
        raise AssertionError("the run used the O(N^2) energy")

    monkeypatch.setattr("kmdflow.flows.particles.atomic_energy", forbidden)
    ds = kmdflow.run(config)
    monkeypatch.undo()
    assert ds.attrs["status"] == "completed"
    kernel = SobolevKernel(1.5)
    for t in ds.snapshot_time.values:
        x = ds.positions.sel(snapshot_time=t).values[:, 0]
        w = ds.weights.sel(snapshot_time=t).values
        direct = ParticleFlow1D(kernel, x, w, target, summation="direct").energy(x)
        saved = float(ds.energy.sel(time=t))
        # the direct density-target formula cancels terms of size E(nu, 1); allow its round-off
        assert abs(saved - direct) <= 1e-10 * direct + 1e-14 * target.self_energy
    assert np.all(np.diff(ds.energy.values) < 0)


def test_large_particle_energy_is_fast():
    # N = 2e5 random particles, s = 1.25: the direct pair sum would take minutes here. Timed against
    # N = 2e4 in the same process (best of 3 each), so the check holds on a loaded machine: ten times
    # the particles may cost at most 30 times as much (an O(N^2) sum costs 100 times as much)
    import time

    kernel = SobolevKernel(1.25)
    seconds = {}
    for n in (20_000, 200_000):
        x, w = random_weights(n, 5)
        nufft_energy(kernel, x, w, tol=1e-8)                   # design and tables
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            energy = nufft_energy(kernel, x, w, tol=1e-8)
            runs.append(time.perf_counter() - start)
        seconds[n] = min(runs)
    assert seconds[200_000] < 30 * seconds[20_000]
    assert seconds[200_000] < 10.0
    # a different design (tol 1e-11: other sigma, modes, radius) agrees to the looser tol
    assert nufft_energy(kernel, x, w, tol=1e-11) == pytest.approx(energy, rel=1e-8)
    assert math.isfinite(energy) and energy > 0
