"""The spectral WFR flow on the circle: Galerkin exactness, dE/dt = -D, mass law, particles agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import simpson
from scipy.special import ive

from kmdflow.domains import sphere, torus
from kmdflow.flows.wfr import WFRParticleFlow
from kmdflow.flows.wfr_spectral import WFRSpectralFlow
from kmdflow.kernels.relu import ReluKernel, ZonalMeasure
from kmdflow.solve import simulate

RELU = ReluKernel(1)


def relu_multiplier_by_hand(l):
    """MATH.md section 6, written out again: 1/pi^2, 1/16, 1/(pi^2 (l^2-1)^2) for even l, 0 for odd l >= 3."""
    out = []
    for value in np.abs(np.asarray(l)).ravel():
        if value == 0:
            out.append(1.0 / math.pi**2)
        elif value == 1:
            out.append(1.0 / 16.0)
        elif value % 2 == 0:
            out.append(1.0 / (math.pi**2 * (value * value - 1.0) ** 2))
        else:
            out.append(0.0)
    return np.array(out)


def smooth_spectrum(n_modes, seed, mass=1.0, amplitude=0.08, decay=0.35):
    """One-sided coefficients of a smooth positive density with the given mass."""
    rng = np.random.default_rng(seed)
    c = amplitude * np.exp(-decay * np.arange(n_modes)) * (rng.normal(size=n_modes) + 1j * rng.normal(size=n_modes))
    c[0] = mass
    return c


def von_mises_hat(n_modes, kappa, mass=1.0):
    """``mass * I_l(kappa) / I_0(kappa)``: the von Mises density centred at 0, w.r.t. dtheta / 2 pi."""
    return mass * ive(np.arange(n_modes), kappa) / ive(0, kappa)


def two_sided(one_sided):
    """Coefficients for l = -(K-1) .. K-1 from the one-sided ones of a real function."""
    return np.concatenate([np.conj(one_sided[:0:-1]), one_sided])


def galerkin_rhs_by_convolution(k_hat, rho_hat, f_hat, alpha, beta):
    """The projected PDE right-hand side from discrete convolutions of two-sided spectra (slow, no FFT)."""
    n_modes = f_hat.size
    l2 = np.arange(-(n_modes - 1), n_modes)
    v2 = two_sided(k_hat * f_hat)
    r2 = two_sided(rho_hat)
    # full convolution: index i <-> wavenumber i - 2 (K - 1)
    flux = np.convolve(r2, 1j * l2 * v2)
    reaction = np.convolve(r2, v2)
    centre = 2 * (n_modes - 1)
    keep = centre + np.arange(n_modes)
    l = np.arange(n_modes)
    return beta * 1j * l * flux[keep] - alpha * reaction[keep]


# -- the semi-discrete equation -------------------------------------------------------------------

@pytest.mark.parametrize("alpha, beta", [(2.0, 1.0), (0.0, 1.0), (3.0, 0.0)])
def test_rhs_is_the_exact_galerkin_truncation(alpha, beta):
    n = 24
    nu_hat = smooth_spectrum(n // 2, 1, mass=0.8)
    rho_hat = smooth_spectrum(n // 2, 2, mass=1.3)
    flow = WFRSpectralFlow(RELU, rho_hat, nu_hat, n, alpha=alpha, beta=beta)
    y = flow.initial_state()
    expected = galerkin_rhs_by_convolution(relu_multiplier_by_hand(np.arange(n // 2)), rho_hat, y, alpha, beta)
    got = flow.rhs(0.0, y)
    assert np.max(np.abs(got - expected)) < 1e-14 * np.max(np.abs(expected)) * n


def test_rhs_matches_products_on_a_2n_grid_and_the_split_adds_up():
    n = 128
    nu_hat = smooth_spectrum(n // 2, 3, mass=1.1)
    flow = WFRSpectralFlow(RELU, smooth_spectrum(n // 2, 4), nu_hat, n, alpha=2.0, beta=1.0)
    y = flow.initial_state()
    m, l = 2 * n, np.arange(n // 2)
    rho = torus.from_fourier(nu_hat + y, m)
    v_hat = RELU.circle_multiplier(l) * y
    flux = torus.to_fourier(rho * torus.from_fourier(1j * l * v_hat, m))[: n // 2]
    reaction = torus.to_fourier(rho * torus.from_fourier(v_hat, m))[: n // 2]
    reference = 1j * l * flux - 2.0 * reaction
    got = flow.rhs(0.0, y)
    scale = np.max(np.abs(reference))
    assert np.max(np.abs(got - reference)) < 1e-13 * scale
    split = flow.linear * y + flow.nonlinear(0.0, y)
    assert np.max(np.abs(split - got)) < 1e-13 * scale
    # around a uniform target the linear part is the whole linearisation: the remainder is quadratic
    uniform = np.zeros(n // 2, dtype=complex)
    uniform[0] = 1.3
    for eps in (1e-2, 1e-3):
        small = WFRSpectralFlow(RELU, uniform + eps * (nu_hat - 1.1 * (l == 0)), uniform, n)
        y_small = small.initial_state()
        ratio = np.linalg.norm(small.nonlinear(0.0, y_small)) / np.linalg.norm(small.linear * y_small)
        assert ratio < 3.0 * eps


@pytest.mark.parametrize("alpha, beta, multiplier", [
    (2.0, 1.0, RELU),
    (0.5, 3.0, RELU),
    (1.0, 1.0, lambda l: 1.0 / (1.0 + np.asarray(l, dtype=float) ** 2) ** 1.5),
])
def test_energy_decays_at_the_rate_of_the_dissipation(alpha, beta, multiplier):
    n = 64
    flow = WFRSpectralFlow(multiplier, smooth_spectrum(n // 2, 5, mass=1.2), smooth_spectrum(n // 2, 6, mass=0.9),
                           n, alpha=alpha, beta=beta)
    y = flow.initial_state()
    direction = flow.rhs(0.0, y)
    h = 1e-4
    # E is quadratic in the state: the central difference is exact up to round-off
    rate = (flow.energy(y + h * direction) - flow.energy(y - h * direction)) / (2 * h)
    dissipation = flow.diagnostics(y)["dissipation"]
    assert dissipation > 0
    assert abs(rate + dissipation) < 1e-6 * dissipation
    # and along the integrated trajectory: E(t) - E(0) = -int D dt
    run = simulate(flow, integrator="dopri5", times=np.linspace(0.0, 4.0, 81), snapshot_at=np.array([0]),
                   rtol=1e-11)
    e, d = np.array(run.series["energy"]), np.array(run.series["dissipation"])
    integral = simpson(d, x=np.array(run.times))
    assert abs((e[0] - e[-1]) - integral) < 1e-5 * (e[0] - e[-1])


def test_loss_is_half_the_kernel_norm_of_the_deviation():
    n = 32
    nu_hat, rho_hat = smooth_spectrum(n // 2, 7, mass=0.7), smooth_spectrum(n // 2, 8, mass=1.4)
    flow = WFRSpectralFlow(RELU, rho_hat, nu_hat, n)
    # 1/2 iint k(theta - theta') f(theta) f(theta') dtheta dtheta' / (2 pi)^2, by the closed-form kernel
    x = torus.grid(8 * n)
    f = torus.from_fourier(rho_hat - nu_hat, 8 * n)
    delta = np.abs(np.mod(x[:, None] - x[None, :] + np.pi, 2 * np.pi) - np.pi)
    kernel = (np.sin(delta) + (np.pi - delta) * np.cos(delta)) / (4 * np.pi)
    reference = 0.5 * f @ kernel @ f / (8 * n) ** 2
    # the kernel is C^2 only: the grid rule aliases k_hat(l + 256 j) ~ 256^-4 into each mode
    assert abs(flow.energy(flow.initial_state()) - reference) < 1e-6 * reference


# -- the mass -------------------------------------------------------------------------------------

def test_mass_changes_at_minus_alpha_mean_rho_v():
    n = 48
    nu_hat, rho_hat = smooth_spectrum(n // 2, 9, mass=1.0), smooth_spectrum(n // 2, 10, mass=1.5)
    flow = WFRSpectralFlow(RELU, rho_hat, nu_hat, n, alpha=2.0, beta=1.0)
    y = flow.initial_state()
    # direct series evaluation at irregular points would not be exact; a fine uniform grid is
    x = torus.grid(5 * n)
    v_hat = relu_multiplier_by_hand(np.arange(n // 2)) * (rho_hat - nu_hat)
    rho = torus.fourier_series(rho_hat, x)
    v = torus.fourier_series(v_hat, x)
    expected = -2.0 * np.mean(rho * v)
    assert abs(flow.rhs(0.0, y)[0].real - expected) < 1e-13 * abs(expected)
    assert abs(flow.mass_rate(y) - expected) < 1e-13 * abs(expected)
    # pure Wasserstein: the mass does not move
    wasserstein = WFRSpectralFlow(RELU, rho_hat, nu_hat, n, alpha=0.0, beta=1.0)
    assert abs(wasserstein.rhs(0.0, y)[0]) < 1e-16


@pytest.mark.parametrize("c0, integrator", [(0.3, "dopri5"), (2.5, "dopri5"), (0.3, "etdrk4")])
def test_uniform_density_follows_the_logistic_law(c0, integrator):
    # rho = c uniform, nu = 1: V = k0 (c - 1), so dc/dt = -alpha k0 c (c - 1), a logistic law
    n, alpha = 16, 2.0
    rho_hat, nu_hat = np.zeros(n // 2), np.zeros(n // 2)
    rho_hat[0], nu_hat[0] = c0, 1.0
    flow = WFRSpectralFlow(RELU, rho_hat, nu_hat, n, alpha=alpha)
    times = np.linspace(0.0, 30.0, 7)
    run = simulate(flow, integrator=integrator, times=times, snapshot_at=np.array([6]), rtol=1e-10)
    rate = alpha / math.pi**2
    exact = 1.0 / (1.0 + (1.0 / c0 - 1.0) * np.exp(-rate * times))
    assert np.max(np.abs(np.array(run.series["mass"]) - exact)) < 1e-8
    assert np.allclose(run.snapshots["density"][-1], exact[-1], rtol=1e-8, atol=0.0)


# -- agreement with the conic particle method -----------------------------------------------------

def quantiles(coeffs, m):
    """Angles ``F^-1((j + 1/2) / m)`` of an even density with real one-sided ``coeffs`` (bisection)."""
    l = np.arange(1, coeffs.size)
    target = (np.arange(m) + 0.5) / m

    def cdf(theta):
        return (theta + 2.0 * (coeffs[1:].real / l) @ np.sin(np.outer(l, theta))) / (2.0 * np.pi)

    lo, hi = np.zeros(m), np.full(m, 2.0 * np.pi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = cdf(mid) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def test_loss_agrees_with_wfr_particles_up_to_t_10():
    kernel, n, m, kappa = ReluKernel(1), 512, 4096, 1.0
    rho0 = von_mises_hat(n // 2, kappa)
    uniform = np.zeros(n // 2)
    uniform[0] = 1.0
    times = np.linspace(0.0, 10.0, 11)
    spectral = simulate(WFRSpectralFlow(kernel, rho0, uniform, n), integrator="dopri5", times=times,
                        snapshot_at=np.array([10]), rtol=1e-10)
    phi = quantiles(von_mises_hat(40, kappa), m)
    particles = WFRParticleFlow(kernel, sphere.angles_to_points(phi), np.full(m, 1.0 / m),
                                ZonalMeasure.uniform(kernel, 1.0))
    particle_run = simulate(particles, integrator="dopri5", times=times, snapshot_at=np.array([10]), rtol=1e-9)
    loss_s, loss_p = np.array(spectral.series["energy"]), np.array(particle_run.series["energy"])
    # the loss falls by a factor ~25 over the run; the quantile rule is O(m^-2) accurate
    assert loss_s[-1] < 0.1 * loss_s[0]
    assert np.max(np.abs(loss_s / loss_p - 1.0)) < 1e-5
    mass_s, mass_p = np.array(spectral.series["mass"]), np.array(particle_run.series["mass"])
    assert np.min(mass_s) < 0.95          # WFR really moves the mass here (it dips, then recovers)
    assert np.max(np.abs(mass_s - mass_p)) < 1e-6


# -- diagnostics, snapshot, errors ----------------------------------------------------------------

def test_diagnostics_and_snapshot_read_the_density():
    n = 32
    rho_hat = np.zeros(n // 2, dtype=complex)
    rho_hat[0], rho_hat[2] = 1.0, 0.25          # rho = 1 + 0.5 cos(2 theta)
    flow = WFRSpectralFlow(RELU, rho_hat, np.ones(n // 2) * (np.arange(n // 2) == 0), n)
    y = flow.initial_state()
    diag = flow.diagnostics(y)
    assert diag["mass"] == pytest.approx(1.0, abs=1e-15)
    assert diag["min_density"] == pytest.approx(0.5, abs=1e-14)   # theta = pi/2 lies on the padded grid
    assert diag["max_density"] == pytest.approx(1.5, abs=1e-14)
    x = torus.grid(n)
    assert np.allclose(flow.snapshot(y)["density"], 1.0 + 0.5 * np.cos(2 * x), atol=1e-14)
    # loss of f = 0.5 cos(2 theta): 2 * 1/2 * k(2) * 0.25^2
    assert flow.energy(y) == pytest.approx(0.25**2 / (9 * math.pi**2), rel=1e-14)
    assert flow.dissipation(y) == pytest.approx(diag["dissipation"])


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 10 + 1}, "n = 11"),
    ({"n": 4}, "n = 4"),
    ({"alpha": -1.0}, "alpha"),
    ({"beta": float("nan")}, "beta"),
    ({"initial_hat": np.ones(3)}, "initial_hat"),
    ({"target_hat": np.ones(8) * 1j}, "target_hat"),
    ({"multiplier": np.ones(3)}, "multiplier"),
    ({"multiplier": ReluKernel(2)}, "dim"),
])
def test_errors_name_the_argument(kwargs, match):
    args = {"multiplier": RELU, "initial_hat": np.ones(8), "target_hat": np.ones(8), "n": 16}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        WFRSpectralFlow(**args)
