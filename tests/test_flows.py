"""The flows against MATH.md section 4's exact solutions, invariants and each other."""

from __future__ import annotations

import numpy as np
import pytest

from kmdflow.domains import torus
from kmdflow.flows.particles import ParticleFlow1D
from kmdflow.flows.spectral import SpectralFlow1D
from kmdflow.measures.series import series_extrema
from kmdflow.integrators import SCHEMES
from kmdflow.kernels.sobolev import SobolevKernel
from kmdflow.solve import simulate


def uniform_hat(modes: int) -> np.ndarray:
    c = np.zeros(modes, dtype=complex)
    c[0] = 1.0
    return c


def von_mises_hat(modes: int, kappa: float, loc: float = 0.0) -> np.ndarray:
    from scipy.special import ive

    k = np.arange(modes)
    return ive(k, kappa) / ive(0, kappa) * np.exp(-1j * k * loc)


def run(flow, t_end, n_saves=2, integrator="dopri5", rtol=1e-10, spacing="linear", **kw):
    times = np.linspace(0.0, t_end, n_saves) if spacing == "linear" else spacing
    return simulate(flow, integrator=integrator, times=times, snapshot_at=np.array([0, len(times) - 1]),
                    rtol=rtol, **kw)


def exact_particles_s1(x0: np.ndarray, t: float) -> np.ndarray:
    """MATH.md section 4, exact solution 2 (sorted positions, weights 1/N)."""
    x = np.sort(x0)
    n = x.size
    i = np.arange(1, n + 1)
    star = x.sum() / n + np.pi * (2 * i - n - 1) / n
    return star + np.exp(-t) * (x - star)


def wrapped_distance(a, b):
    d = np.mod(a - b + np.pi, torus.TWO_PI) - np.pi
    return np.abs(d)


# -- exact solution 1: s = 1 PDE, extrema follow the logistic law ------------------------------
@pytest.mark.parametrize("kappa, loc", [(1.0, 0.0), (0.7, 1.3)])
def test_spectral_s1_extrema_follow_logistic_law(kappa, loc):
    n = 256
    flow = SpectralFlow1D(SobolevKernel(1.0).multiplier, von_mises_hat(n, kappa, loc), uniform_hat(n), n)
    traj = run(flow, 3.0, n_saves=4, rtol=1e-11)
    rho_max0 = np.exp(kappa) / np.i0(kappa)
    rho_min0 = np.exp(-kappa) / np.i0(kappa)
    for t, lo, hi in zip(traj.times, traj.series["min_density"], traj.series["max_density"]):
        law = lambda r0: 1.0 / (1.0 + (1.0 / r0 - 1.0) * np.exp(-t))  # noqa: E731
        assert abs(hi - law(rho_max0)) < 1e-6
        assert abs(lo - law(rho_min0)) < 1e-6
    assert traj.times[-1] == 3.0


# -- exact solution 2: s = 1 particles ----------------------------------------------------------
@pytest.mark.parametrize("summation", ["sorted", "direct"])
def test_particles_s1_match_closed_form(summation):
    rng = np.random.default_rng(7)
    x0 = rng.uniform(0, torus.TWO_PI, 64)
    flow = ParticleFlow1D(SobolevKernel(1.0), x0, np.full(64, 1 / 64), None, summation)
    traj = run(flow, 5.0, rtol=1e-13)
    got = np.sort(torus.wrap(traj.final_state))
    want = np.sort(torus.wrap(exact_particles_s1(x0, 5.0)))
    assert np.max(wrapped_distance(got, want)) < 1e-9


@pytest.mark.parametrize("scheme", sorted(n for n, sc in SCHEMES.items() if not getattr(sc, "needs_linear", False)))
def test_every_scheme_has_its_order_on_exact_particle_solution(scheme):
    """Fixed steps on exact solution 2: log-log slope of the error within 0.2 of the declared order."""
    rng = np.random.default_rng(3)
    x0 = np.sort(rng.uniform(0, torus.TWO_PI, 16))
    want = exact_particles_s1(x0, 1.0)
    order = SCHEMES[scheme].order
    # step sizes chosen so the error stays well above round-off for every order
    base = {1: 0.02, 2: 0.05, 3: 0.1, 4: 0.1, 5: 0.2}.get(order, 0.2)
    steps = base / 2.0 ** np.arange(4)
    errors = []
    for dt in steps:
        flow = ParticleFlow1D(SobolevKernel(1.0), x0, np.full(16, 1 / 16), None, "sorted")
        traj = run(flow, 1.0, integrator=scheme, dt=dt, rtol=1e-8)
        errors.append(np.max(np.abs(traj.final_state - want)))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.2, (scheme, slope, errors)


# -- linear regime: E(t)/E(0) = exp(-2 k^(2-2s) t) ---------------------------------------------
@pytest.mark.parametrize("s", [1.5, 2.0])
def test_linear_regime_single_mode(s):
    n, k, amp = 32, 3, 1e-6
    init = uniform_hat(n)
    init[k] = amp / 2
    flow = SpectralFlow1D(SobolevKernel(s).multiplier, init, uniform_hat(n), n)
    traj = run(flow, 20.0, rtol=1e-10)
    ratio = traj.series["energy"][-1] / traj.series["energy"][0]
    assert ratio == pytest.approx(np.exp(-2 * k ** (2 - 2 * s) * 20.0), rel=1e-4)


# -- invariants: mass, dissipation identity, monotone energy -----------------------------------
def _smooth_spectral(s=2.0, n=128):
    init = von_mises_hat(n, 1.5, 0.4)
    target = uniform_hat(n)
    target[2] = 0.25 / 2  # nu = 1 + 0.25 cos 2x
    return SpectralFlow1D(SobolevKernel(s).multiplier, init, target, n)


def _smooth_particles(s=2.0, n=400, target=None):
    from kmdflow.measures import make_measure, place_particles

    atoms = place_particles(make_measure("von_mises", {"loc": 0.4, "kappa": 1.5}), n, "quantile", 0)
    return ParticleFlow1D(SobolevKernel(s), atoms.positions, atoms.weights, target, "auto")


def _particles_to_density_target():
    from kmdflow.flows.particles import TargetSeries

    return _smooth_particles(target=TargetSeries(SobolevKernel(2.0).multiplier, von_mises_hat(512, 2.0, 3.0), 1e-13))


def _particles_to_atoms():
    y = np.linspace(0.1, 6.0, 9)
    return _smooth_particles(target=(y, np.full(9, 1 / 9)))


@pytest.mark.parametrize("make", [_smooth_spectral, _smooth_particles, _particles_to_density_target,
                                  _particles_to_atoms])
def test_dissipation_identity_mass_and_monotone_energy(make):
    flow = make()
    h = 2e-3
    times = np.concatenate([[0.0], (np.arange(1, 6) * 0.25 + h * np.array([[-1], [0], [1]])).ravel()])
    times = np.sort(np.unique(times))
    traj = simulate(flow, integrator="dopri5", times=times, snapshot_at=np.array([0]), rtol=1e-12,
                    record_step_energy=True)
    t = np.asarray(traj.times)
    e = np.asarray(traj.series["energy"])
    d = np.asarray(traj.series["dissipation"])
    for centre in np.arange(1, 6) * 0.25:
        i = int(np.argmin(np.abs(t - centre)))
        derivative = (e[i + 1] - e[i - 1]) / (t[i + 1] - t[i - 1])
        assert derivative == pytest.approx(-d[i], rel=1e-4)
    mass = np.asarray(traj.series["mass"])
    assert np.max(np.abs(mass - mass[0])) < 1e-12
    steps = np.asarray(traj.step_energies)
    assert np.all(np.diff(steps) <= 1e-13 * steps[0])
    assert len(steps) > 10


def test_density_extrema_of_known_polynomial():
    # p(x) = 1 + 0.3 cos(x - 0.37) + 0.1 cos(2x + 1): extrema by brute force on a very fine grid
    c = np.zeros(8, dtype=complex)
    c[0], c[1], c[2] = 1.0, 0.15 * np.exp(-0.37j), 0.05 * np.exp(1j)
    x = np.linspace(0, torus.TWO_PI, 2_000_001)
    p = 1 + 0.3 * np.cos(x - 0.37) + 0.1 * np.cos(2 * x + 1)
    lo, hi = series_extrema(c, n_grid=64, n_candidates=4)
    assert lo == pytest.approx(p.min(), abs=1e-11)
    assert hi == pytest.approx(p.max(), abs=1e-11)


# -- PDE vs particles --------------------------------------------------------------------------
def test_pde_and_particles_agree_s2():
    from kmdflow.measures import make_measure, place_particles

    init = make_measure("perturbation", {"amplitude": 0.3, "decay": 3.0, "seed": 0, "modes": 64})
    n, N = 512, 4096
    kernel = SobolevKernel(2.0)
    pde = SpectralFlow1D(kernel.multiplier, init.fourier(n // 2), uniform_hat(n // 2), n)
    atoms = place_particles(init, N, "quantile", 0)
    part = ParticleFlow1D(kernel, atoms.positions, atoms.weights, None, "auto")
    times = np.array([0.0, 1.0, 3.0, 10.0])
    a = simulate(pde, integrator="dopri5", times=times, snapshot_at=np.array([0]), rtol=1e-9)
    b = simulate(part, integrator="dopri5", times=times, snapshot_at=np.array([0]), rtol=1e-9)
    np.testing.assert_allclose(b.series["energy"], a.series["energy"], rtol=1e-2)
