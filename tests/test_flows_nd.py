"""The flows on T^2 and T^3 (spectral PDE, NUFFT particles) against exact solutions, invariants,
slow references and each other."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kmdflow.domains import torus
from kmdflow.flows.particles_nd import ParticleFlowND
from kmdflow.flows.spectral_nd import SpectralFlowND, hermitian_part
from kmdflow.kernels.sobolev import SobolevKernel
from kmdflow.solve import simulate
from kmdflow.summation.nufft_nd import (
    TruncatedKernel,
    centred_target,
    direct_fourier_force_nd,
    nufft_energy_nd,
    nufft_force_nd,
    radial_multiplier,
    sobolev_tail_bound,
    truncation_modes,
)


# -- helpers: everything here is independent of the code under test ---------------------------
def layout_of(values: np.ndarray) -> np.ndarray:
    """One-sided coefficients straight from numpy (the convention of kmdflow.domains.torus)."""
    return np.fft.rfftn(values) / values.size


def uniform_layout(n: int, dim: int) -> np.ndarray:
    return layout_of(np.ones((n,) * dim))


def inverse_power(r: np.ndarray, p: float) -> np.ndarray:
    """r^-p with 0 at r = 0."""
    out = np.zeros(np.shape(r))
    np.power(r, -p, out=out, where=r > 0)
    return out


def naive_truncated(s: float, positions, weights, n_modes: int, target=None):
    """Velocities and energy of the kernel truncated to |k|_inf <= K, by explicit sums over all modes.

    ``target``: callable rho_nu(x (M, d)) -> (M,), its coefficients taken by a fine midpoint rule.
    """
    x = np.asarray(positions, dtype=float)
    dim = x.shape[1]
    ks = np.array(list(itertools.product(range(-n_modes, n_modes + 1), repeat=dim)), dtype=float)
    norm = np.linalg.norm(ks, axis=1)
    lam = inverse_power(norm, 2.0 * s)
    mu = np.exp(-1j * x @ ks.T).T @ weights
    if target is None:
        nu = (norm == 0).astype(complex)
    else:
        m = 2 * n_modes + 2                    # exact for targets whose modes are below K + 2
        grid = np.stack([g.ravel() for g in np.meshgrid(*[torus.TWO_PI * np.arange(m) / m] * dim,
                                                          indexing="ij")], axis=1)
        nu = np.exp(-1j * grid @ ks.T).T @ target(grid) / m**dim
    psi = lam * (mu - nu)
    v = -(np.exp(1j * x @ ks.T) @ (1j * ks * psi[:, None])).real
    return v, 0.5 * float(np.sum(lam * np.abs(mu - nu) ** 2))


def inverse_cdf(u: np.ndarray, a: float) -> np.ndarray:
    """Quantiles of the density 1 + a cos x on [0, 2 pi): solve x + a sin x = 2 pi u (Newton)."""
    x = torus.TWO_PI * u
    for _ in range(60):
        x = x - (x + a * np.sin(x) - torus.TWO_PI * u) / (1.0 + a * np.cos(x))
    return x


def product_particles(m: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """m^2 particles at the stratum centres of (1 + a cos x)(1 + b cos y), mapped by the inverse CDFs."""
    u = (np.arange(m) + 0.5) / m
    xs, ys = np.meshgrid(inverse_cdf(u, a), inverse_cdf(u, b), indexing="ij")
    return np.column_stack([xs.ravel(), ys.ravel()]), np.full(m * m, 1.0 / m**2)


def five_point_derivative(values: np.ndarray, h: float) -> float:
    """(f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / 12 h: error O(h^4)."""
    return float((values[0] - 8 * values[1] + 8 * values[3] - values[4]) / (12 * h))


def stencil_times(centres, h: float) -> np.ndarray:
    return np.concatenate([[0.0], *[c + h * np.arange(-2, 3) for c in centres]])


def check_invariants(flow, centres, h=0.01, rtol=1e-10, integrator="dopri5", identity_tol=1e-4):
    """Mass to 1e-12, energy non-increasing over accepted steps, dE/dt = -D to identity_tol."""
    times = stencil_times(centres, h)
    traj = simulate(flow, integrator=integrator, times=times, snapshot_at=np.array([0, times.size - 1]),
                    rtol=rtol, record_step_energy=True)
    assert traj.status == "completed"
    mass = np.array(traj.series["mass"])
    assert np.max(np.abs(mass - mass[0])) < 1e-12
    steps = np.array(traj.step_energies)
    assert steps.size > 5
    assert np.all(np.diff(steps) <= 1e-13 * steps[0])
    energy, dissipation = np.array(traj.series["energy"]), np.array(traj.series["dissipation"])
    for j in range(len(centres)):
        block = slice(1 + 5 * j, 6 + 5 * j)
        slope = five_point_derivative(energy[block], h)
        d_mid = dissipation[block][2]
        assert d_mid > 0
        assert abs(slope + d_mid) <= identity_tol * d_mid, (j, slope, -d_mid)
    return traj


# -- the spectral PDE --------------------------------------------------------------------------
@pytest.mark.parametrize("integrator", ["etdrk4", "dopri5"])
@pytest.mark.parametrize("dim, k, n", [(2, (2, 1), 16), (3, (1, 1, 1), 8)])
def test_single_mode_decays_at_the_linear_rate(dim, k, n, integrator):
    """MATH.md section 4.3: E(t)/E(0) = exp(-2 |k|^(2-2s) t), s = 2, amplitude 1e-6, to 1e-4 at t = 20."""
    grid = torus.grid_nd(n, dim)
    rho = 1.0 + 1e-6 * np.cos(sum(ki * xi for ki, xi in zip(k, grid)))
    flow = SpectralFlowND(2.0, layout_of(rho), None, n, dim)
    times = np.array([0.0, 5.0, 10.0, 20.0])
    traj = simulate(flow, integrator=integrator, times=times, snapshot_at=np.array([0, 3]), rtol=1e-10)
    assert traj.status == "completed"
    energy = np.array(traj.series["energy"])
    # E(0) = 1/2 lambda(k) (|f_hat(k)|^2 + |f_hat(-k)|^2) with f_hat(+-k) = 5e-7
    norm_sq = float(np.dot(k, k))
    assert energy[0] == pytest.approx(0.5 * norm_sq**-2 * 2 * (5e-7) ** 2, rel=1e-12)
    predicted = np.exp(-2.0 * norm_sq ** (1.0 - 2.0) * times)
    assert np.max(np.abs(energy / energy[0] / predicted - 1.0)) < 1e-4
    # the state stays a single mode: the density snapshot is the decayed cosine
    rho_end = traj.snapshots["density"][-1]
    want = 1.0 + 1e-6 * np.exp(-norm_sq ** (1.0 - 2.0) * 20.0) * np.cos(sum(ki * xi for ki, xi in zip(k, grid)))
    assert np.max(np.abs(rho_end - want)) < 1e-10


def smooth_2d(n):
    x, y = torus.grid_nd(n, 2)
    rho0 = 1.0 + 0.4 * np.cos(x) * (1.0 + 0.5 * np.sin(y)) + 0.2 * np.sin(2 * x + y)
    nu = 1.0 + 0.5 * np.cos(x - 2 * y + 0.3)
    return rho0, nu


def smooth_3d(n):
    x, y, z = torus.grid_nd(n, 3)
    rho0 = 1.0 + 0.4 * np.cos(x + z) + 0.3 * np.sin(y) * np.cos(z)
    nu = 1.0 + 0.5 * np.cos(x - y + 2 * z)
    return rho0, nu


@pytest.mark.parametrize("uniform_target", [True, False])
@pytest.mark.parametrize("dim, n", [(2, 16), (3, 8)])
def test_pde_conserves_mass_and_dissipates_energy_exactly(dim, n, uniform_target):
    rho0, nu = (smooth_2d if dim == 2 else smooth_3d)(n)
    target = None if uniform_target else layout_of(nu)
    flow = SpectralFlowND(2.0, layout_of(rho0), target, n, dim)
    traj = check_invariants(flow, centres=[0.3, 1.5])
    assert traj.series["energy"][-1] < 0.5 * traj.series["energy"][0]
    assert traj.series["min_density"][0] > 0
    assert traj.snapshots["density"][0].shape == (n,) * dim
    assert np.max(np.abs(traj.snapshots["density"][0] - rho0)) < 1e-13


def rough_density(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """1 + g/2max|g|, g with |k|^-1 amplitudes and random phases on every kept mode (|k_i| < n/2)."""
    rng = np.random.default_rng(seed)
    freq = np.fft.fftfreq(n, 1.0 / n)
    ks = np.meshgrid(*[freq] * dim, indexing="ij")
    norm = np.sqrt(sum(k**2 for k in ks))
    kept = np.all([np.abs(k) < n // 2 for k in ks], axis=0) & (norm > 0)
    c = np.where(kept, inverse_power(norm, 1.0), 0.0) * np.exp(2j * np.pi * rng.uniform(size=norm.shape))
    g = np.fft.ifftn(c).real
    return 1.0 + 0.5 * g / np.max(np.abs(g))


@pytest.mark.parametrize("dim, n", [(2, 16), (3, 8)])
def test_pde_rhs_is_the_exact_galerkin_projection(dim, n):
    """rhs = i k . P_K[rho grad psi]^ with the product formed exactly on a 2n grid (full FFTs)."""
    rho0 = rough_density(n, dim, seed=dim)
    _, nu = (smooth_2d if dim == 2 else smooth_3d)(n)
    flow = SpectralFlowND(2.0, layout_of(rho0), layout_of(nu), n, dim)
    y = flow.initial_state()
    fine = 2 * n                                            # > 3 K = 3 (n/2 - 1)
    modes = np.r_[-(n // 2 - 1):n // 2]
    coarse_index, fine_index = np.ix_(*[modes % n] * dim), np.ix_(*[modes % fine] * dim)
    k = np.meshgrid(*[modes.astype(float)] * dim, indexing="ij")
    lam = inverse_power(np.sqrt(sum(a**2 for a in k)), 4.0)

    def to_fine(coeffs):                                  # coefficients on the kept box -> fine values
        big = np.zeros((fine,) * dim, dtype=complex)
        big[fine_index] = coeffs
        return np.fft.ifftn(big).real * fine**dim

    rho_box = (np.fft.fftn(rho0) / n**dim)[coarse_index]
    f_box = (np.fft.fftn(rho0 - nu) / n**dim)[coarse_index]
    rho = to_fine(rho_box)
    want = sum(1j * ki * (np.fft.fftn(rho * to_fine(1j * ki * lam * f_box)) / fine**dim)[fine_index] for ki in k)
    got_full = np.fft.fftn(np.fft.irfftn(flow.rhs(0.0, y) * n**dim, s=(n,) * dim, axes=tuple(range(dim))))
    got = got_full[coarse_index] / n**dim
    assert np.max(np.abs(got - want)) < 1e-13 * np.max(np.abs(want))
    # the mass mode does not move, and rhs is the sum of its two parts
    rhs = flow.rhs(0.0, y)
    assert rhs.flat[0] == 0
    assert np.max(np.abs(rhs - (flow.linear * y + flow.nonlinear(0.0, y)))) == 0


def test_pde_dissipation_and_extrema_against_grid_formulas():
    """Diagnostics at t = 0 from their definitions on a fine grid (independent of the padding)."""
    n = 16
    rho0, nu = smooth_2d(n)
    flow = SpectralFlowND(SobolevKernel(1.5).multiplier, layout_of(rho0), layout_of(nu), n, 2)
    diag = flow.diagnostics(flow.initial_state())
    fine = 4 * flow.n_pad                      # the padded grid is every 4th point of this one
    assert flow.n_pad >= 3 * n // 2
    x, y = torus.grid_nd(fine, 2)
    f_hat = np.fft.fft2(rho0 - nu) / n**2
    kx = np.fft.fftfreq(n, 1.0 / n)
    kk = np.sqrt(kx[:, None] ** 2 + kx[None, :] ** 2)
    lam = inverse_power(kk, 3.0)
    assert diag["energy"] == pytest.approx(0.5 * np.sum(lam * np.abs(f_hat) ** 2), rel=1e-12)
    gx = gy = 0.0
    for (i, a), (j, b) in itertools.product(enumerate(kx), enumerate(kx)):
        phase = np.exp(1j * (a * x + b * y))
        gx = gx + (1j * a * lam[i, j] * f_hat[i, j] * phase).real
        gy = gy + (1j * b * lam[i, j] * f_hat[i, j] * phase).real
    rho_fine = 1.0 + 0.4 * np.cos(x) * (1.0 + 0.5 * np.sin(y)) + 0.2 * np.sin(2 * x + y)
    assert diag["dissipation"] == pytest.approx(np.mean(rho_fine * (gx**2 + gy**2)), rel=1e-11)
    assert diag["mass"] == pytest.approx(1.0, abs=1e-14)
    # extrema are those of the trigonometric polynomial: a local optimiser on the closed form,
    # started from the fine grid's best point, is the reference
    from scipy.optimize import minimize

    def closed(p, sign):
        return sign * (1.0 + 0.4 * np.cos(p[0]) * (1.0 + 0.5 * np.sin(p[1])) + 0.2 * np.sin(2 * p[0] + p[1]))

    for key, sign, pick in (("min_density", 1.0, np.argmin), ("max_density", -1.0, np.argmax)):
        i, j = np.unravel_index(pick(rho_fine), rho_fine.shape)
        best = minimize(closed, [x[i, j], y[i, j]], args=(sign,), method="BFGS", options={"gtol": 1e-12})
        assert diag[key] == pytest.approx(sign * best.fun, abs=1e-12)
    assert diag["min_density"] <= rho_fine.min() + 1e-13 and diag["max_density"] >= rho_fine.max() - 1e-13


@pytest.mark.parametrize("dim, n", [(2, 16), (3, 8)])
@pytest.mark.parametrize("amplitude", [0.7, -0.35])
def test_pde_extrema_are_those_of_the_polynomial(dim, n, amplitude):
    # rho = 1 + a prod_i cos(k_i (x_i - c_i)), k = (1, 2[, 1]), shifts off every grid: min 1 - |a|,
    # max 1 + |a| exactly, attained between the padded grid's points
    shifts = [0.3123, 1.1071, 2.0123][:dim]
    waves = [1, 2, 1][:dim]
    coords = torus.grid_nd(n, dim)
    rho = 1.0 + amplitude * np.prod([np.cos(k * (xi - c)) for k, xi, c in zip(waves, coords, shifts)], axis=0)
    flow = SpectralFlowND(2.0, layout_of(rho), None, n, dim)
    diag = flow.diagnostics(flow.initial_state())
    assert diag["min_density"] == pytest.approx(1.0 - abs(amplitude), abs=1e-13)
    assert diag["max_density"] == pytest.approx(1.0 + abs(amplitude), abs=1e-13)
    # the padded grid alone misses them
    grid = torus.from_fourier_nd(flow.density_hat(flow.initial_state()), flow.n_pad)
    assert grid.min() > 1.0 - abs(amplitude) + 1e-6


def test_pde_rejects_bad_input():
    with pytest.raises(ValueError, match="method.n = 10.5"):
        SpectralFlowND(2.0, uniform_layout(8, 2), None, 10.5, 2)
    with pytest.raises(ValueError, match="initial_hat has 3 axes"):
        SpectralFlowND(2.0, uniform_layout(8, 3), None, 8, 2)
    with pytest.raises(ValueError, match="must be 0 at 0"):
        SpectralFlowND(lambda r: 1.0 + r, uniform_layout(8, 2), None, 8, 2)


def test_hermitian_part_matches_a_real_round_trip():
    rng = np.random.default_rng(5)
    n = 8
    c = rng.normal(size=(n, n, n // 2 + 1)) + 1j * rng.normal(size=(n, n, n // 2 + 1))
    c[n // 2], c[:, n // 2], c[..., n // 2] = 0, 0, 0   # Nyquist planes: no mirror partner in range
    want = np.fft.rfftn(np.fft.irfftn(c, s=(n,) * 3, axes=(0, 1, 2)))
    assert np.max(np.abs(hermitian_part(c) - want)) < 1e-14


# -- the NUFFT sums --------------------------------------------------------------------------
@pytest.mark.parametrize("tol", [1e-6, 1e-9, 1e-12])
@pytest.mark.parametrize("dim, n_modes", [(2, 12), (3, 5)])
@pytest.mark.parametrize("with_target", [False, True])
def test_nufft_force_matches_direct_fourier_sum(dim, n_modes, tol, with_target):
    rng = np.random.default_rng(11 + dim)
    x = rng.uniform(-3.0, 9.0, size=(300, dim))             # unwrapped on purpose
    w = rng.uniform(0.5, 1.5, size=300)
    w /= w.sum()

    def nu(points):
        return 1.0 + 0.6 * np.cos(points[:, 0] - 2 * points[:, -1] + 0.4) + 0.2 * np.sin(3 * points[:, 0])

    target = None
    if with_target:
        g = torus.grid_nd(16, dim)
        target = layout_of(nu(np.stack([a.ravel() for a in g], axis=1)).reshape((16,) * dim))
    v_ref, e_ref = naive_truncated(2.0, x, w, n_modes, nu if with_target else None)
    v = nufft_force_nd(2.0, x, w, target, n_modes=n_modes, tol=tol)
    assert v.shape == (300, dim)
    assert np.max(np.abs(v - v_ref)) <= tol * np.max(np.abs(v_ref))
    e = nufft_energy_nd(2.0, x, w, target, n_modes=n_modes, tol=tol)
    assert abs(e - e_ref) <= tol * e_ref


def test_direct_fourier_reference_is_exact():
    rng = np.random.default_rng(2)
    for dim, n_modes in [(1, 9), (2, 7), (3, 3)]:
        x = rng.uniform(0, torus.TWO_PI, size=(50, dim))
        w = np.full(50, 0.02)
        kernel = TruncatedKernel(2.5, dim, None, n_modes, 1e-12)
        v_ref, _ = naive_truncated(2.5, x, w, n_modes)
        assert np.max(np.abs(direct_fourier_force_nd(kernel, x, w, block=16) - v_ref)) < 1e-13


def test_centred_target_is_numpys_full_spectrum():
    rng = np.random.default_rng(4)
    n, dim, k_cut = 12, 3, 4
    values = rng.normal(size=(n,) * dim)
    full = np.fft.fftshift(np.fft.fftn(values) / values.size)           # k = -6 .. 5 on each axis
    box = full[(slice(6 - k_cut, 6 + k_cut + 1),) * dim]
    assert np.max(np.abs(centred_target(layout_of(values), k_cut, dim) - box)) < 1e-15
    # modes beyond the layout are zero, the Nyquist planes are dropped
    big = centred_target(layout_of(values), 8, dim)
    assert big.shape == (17,) * dim
    assert np.max(np.abs(big[(slice(3, 14),) * dim] - full[1:, 1:, 1:])) < 1e-15
    assert np.all(big[:3] == 0) and np.all(big[..., 14:] == 0)


def test_automatic_cutoff_meets_tol_and_tail_bound_holds():
    # the bound exceeds the partial tail sum and is within a small factor of the true tail
    for s, dim, k_cut in [(2.0, 2, 10), (3.0, 2, 6), (2.5, 3, 5)]:
        ks = np.array(list(itertools.product(range(-60, 61), repeat=dim)), dtype=float)
        norm = np.linalg.norm(ks, axis=1)
        outside = np.max(np.abs(ks), axis=1) > k_cut
        partial = np.sum(norm[outside] ** (1 - 2 * s))
        bound = sobolev_tail_bound(s, dim, k_cut)
        rest = sobolev_tail_bound(s, dim, 60)
        assert partial <= bound <= 3.0 * (partial + rest)
    assert sobolev_tail_bound(2.0, 3, 10) == math.inf
    # the chosen K: truncation changes no velocity by more than tol (relative) vs a far larger K
    rng = np.random.default_rng(8)
    x = rng.uniform(0, torus.TWO_PI, size=(200, 2))
    w = np.full(200, 1 / 200)
    k_auto = truncation_modes(4.0, 2, 1e-6)
    assert 5 <= k_auto <= 40
    v = nufft_force_nd(4.0, x, w, tol=1e-6)
    v_far = nufft_force_nd(4.0, x, w, n_modes=200, tol=1e-12)
    assert np.max(np.abs(v - v_far)) <= 1e-6 * np.max(np.abs(v_far))
    # a tighter tolerance needs more modes
    assert truncation_modes(4.0, 2, 1e-6) > truncation_modes(4.0, 2, 1e-4)


def test_cutoff_errors_name_n_modes():
    with pytest.raises(ValueError, match=r"n_modes is required: .*diverges in d = 3 for s = 2"):
        truncation_modes(2.0, 3, 1e-8)
    with pytest.raises(ValueError, match=r"n_modes is required: s = 2 in d = 2 needs K = \d+"):
        truncation_modes(2.0, 2, 1e-8)
    with pytest.raises(ValueError, match="n_modes is required: the multiplier has no Sobolev order"):
        truncation_modes(lambda r: np.where(r > 0, np.exp(-r), 0.0), 2, 1e-8)
    with pytest.raises(ValueError, match="n_modes = 0"):
        truncation_modes(2.0, 2, 1e-8, n_modes=0)


def test_radial_multiplier_accepts_s_kernels_and_callables():
    r = np.array([0.0, 1.0, np.sqrt(2.0), 2.5])
    want = inverse_power(r, 3.0)
    for spec in (1.5, SobolevKernel(1.5), SobolevKernel(1.5).multiplier):
        lam = radial_multiplier(spec)
        assert lam.s == 1.5
        assert np.max(np.abs(lam(r) - want)) < 1e-15
    custom = radial_multiplier(lambda q: np.where(q > 0, 1.0 / (1.0 + q**4), 0.0))
    assert custom.s is None and custom(np.array([2.0]))[0] == pytest.approx(1 / 17)
    with pytest.raises(ValueError, match="s = -1 must be positive"):
        radial_multiplier(-1)


# -- particles -----------------------------------------------------------------------------------
@pytest.mark.parametrize("uniform_target", [True, False])
def test_particles_conserve_mass_and_dissipate_energy_exactly(uniform_target):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, torus.TWO_PI, size=(400, 2))
    w = rng.uniform(0.5, 1.5, size=400)
    w /= w.sum()
    target = None
    if not uniform_target:
        _, nu = smooth_2d(16)
        target = layout_of(nu)
    flow = ParticleFlowND(2.0, x, w, target, n_modes=8, tol=1e-12)
    assert flow.length_scale == pytest.approx(torus.TWO_PI / 8)
    traj = check_invariants(flow, centres=[0.2, 1.0], rtol=1e-10)
    assert traj.series["energy"][-1] < 0.8 * traj.series["energy"][0]
    pos = traj.snapshots["positions"][-1]
    assert pos.shape == (400, 2) and np.all((pos >= 0) & (pos < torus.TWO_PI))
    assert np.array_equal(traj.snapshots["weights"][0], w)


def run_particles_vs_pde(m: int, n: int):
    a, b = 0.5, 0.3
    positions, weights = product_particles(m, a, b)
    x, y = torus.grid_nd(n, 2)
    rho0 = (1 + a * np.cos(x)) * (1 + b * np.cos(y))
    times = np.linspace(0.0, 5.0, 11)
    pde = simulate(SpectralFlowND(2.0, layout_of(rho0), None, n, 2), integrator="etdrk4", times=times,
                   snapshot_at=np.array([0]), rtol=1e-9)
    flow = ParticleFlowND(2.0, positions, weights, None, n_modes=n // 2 - 1, tol=1e-10)
    particles = simulate(flow, integrator="dopri5", times=times, snapshot_at=np.array([0]), rtol=1e-8)
    e_pde, e_part = np.array(pde.series["energy"]), np.array(particles.series["energy"])
    # the energy falls by three decades, so agreement is not a matter of both staying put
    assert e_pde[-1] < 1e-3 * e_pde[0]
    return np.max(np.abs(e_part / e_pde - 1.0))


def test_particles_match_pde_energy_2d():
    """N = 64^2 stratum-centre particles vs the PDE on 32^2 points, same truncated kernel (K = 15)."""
    assert run_particles_vs_pde(64, 32) < 0.02


@pytest.mark.slow
def test_particles_match_pde_energy_2d_large():
    """The issue's size: N = 316^2 ~ 1e5 particles vs the PDE on 64^2 points (K = 31); ~10 s here."""
    assert run_particles_vs_pde(316, 64) < 0.02


def test_particles_reject_bad_input():
    with pytest.raises(ValueError, match=r"positions must have shape \(N, d\)"):
        ParticleFlowND(2.0, np.zeros((5, 4)), np.ones(5), n_modes=4)
    with pytest.raises(ValueError, match="weights must be 5 finite nonnegative"):
        ParticleFlowND(2.0, np.zeros((5, 2)), np.ones(4), n_modes=4)
    with pytest.raises(ValueError, match="n_modes is required"):
        ParticleFlowND(2.0, np.zeros((5, 2)), np.ones(5) / 5, tol=1e-10)
    with pytest.raises(ValueError, match=r"positions must have shape \(N, d\)"):
        nufft_force_nd(2.0, np.zeros(5), np.ones(5), n_modes=4)
    with pytest.raises(ValueError, match=r"weights must have shape \(5,\)"):
        nufft_energy_nd(2.0, np.zeros((5, 3)), np.ones(3), n_modes=4)
