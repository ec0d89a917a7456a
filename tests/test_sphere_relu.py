"""The sphere, the ReLU kernel, its targets and its potential sums against independent answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import eval_gegenbauer, eval_legendre, iv

from kmdflow.domains import sphere
from kmdflow.kernels.relu import (
    CircleSeriesMeasure,
    ReluKernel,
    ZonalMeasure,
    population_loss,
    relu_mean,
)
from kmdflow.summation.relu import (
    dense_potential,
    relu_potential,
    sorted_circle_potential,
)

TWO_PI = 2.0 * np.pi


def rotation(dim: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim + 1, dim + 1)))
    return q * np.sign(np.diag(r))


def pair_at_angle(dim: int, delta: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors at geodesic distance ``delta``, randomly rotated."""
    a = np.zeros(dim + 1)
    b = np.zeros(dim + 1)
    a[0] = 1.0
    b[0], b[1] = math.cos(delta), math.sin(delta)
    rot = rotation(dim, seed)
    return rot @ a, rot @ b


# -- the sphere --------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [1, 2, 3])
def test_uniform_samples_are_unit_seeded_and_centred(dim):
    x = sphere.sample_uniform(20000, dim, seed=4)
    assert x.shape == (20000, dim + 1)
    assert np.max(np.abs(np.linalg.norm(x, axis=1) - 1.0)) < 1e-14
    np.testing.assert_array_equal(x, sphere.sample_uniform(20000, dim, seed=4))
    # E x = 0 and E x x^T = I / (d + 1), each within 4 standard errors
    se = 1.0 / math.sqrt((dim + 1) * x.shape[0])
    assert np.all(np.abs(x.mean(axis=0)) < 4 * se)
    second = x.T @ x / x.shape[0]
    assert np.all(np.abs(np.diag(second) - 1.0 / (dim + 1)) < 4 * math.sqrt(2.0 / x.shape[0]) / (dim + 1))


def test_geometry_helpers():
    rng = np.random.default_rng(1)
    x = sphere.sample_uniform(50, 2, 2)
    v = rng.normal(size=x.shape)
    t = sphere.tangent_project(x, v)
    assert np.max(np.abs(np.sum(t * x, axis=1))) < 1e-15
    np.testing.assert_allclose(sphere.tangent_project(x, t), t, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(sphere.retract(3.0 * x + 1e-3 * t), axis=1), 1.0, atol=1e-15)
    # geodesic distance: arccos where it is well conditioned, and exact for tiny / antipodal gaps
    a, b = pair_at_angle(2, 1.234, seed=3)
    assert abs(sphere.geodesic_distance(a, b) - 1.234) < 1e-14
    a, b = pair_at_angle(2, 3e-9, seed=3)
    assert abs(sphere.geodesic_distance(a, b) - 3e-9) < 1e-15          # arccos(a . b) gives 0 here
    a, b = pair_at_angle(3, math.pi - 2e-9, seed=5)
    assert abs(sphere.geodesic_distance(a, b) - (math.pi - 2e-9)) < 1e-15
    phi = np.array([0.0, 1.0, math.pi, 5.5, TWO_PI - 1e-12])
    np.testing.assert_allclose(sphere.points_to_angles(sphere.angles_to_points(phi)), phi, atol=1e-15)
    np.testing.assert_allclose(sphere.points_to_angles(sphere.angles_to_points(phi - TWO_PI)),
                               np.mod(phi, TWO_PI), atol=1e-12)


def test_harmonic_dimensions_and_gegenbauer_polynomials():
    np.testing.assert_array_equal(sphere.harmonic_dimension(4, 1), [1, 2, 2, 2, 2])
    np.testing.assert_array_equal(sphere.harmonic_dimension(4, 2), [1, 3, 5, 7, 9])
    np.testing.assert_array_equal(sphere.harmonic_dimension(4, 3), [1, 4, 9, 16, 25])
    # N_l = dim of homogeneous harmonic polynomials of degree l in d + 1 variables
    comb = math.comb
    for dim in (4, 5):
        expected = [comb(l + dim, dim) - (comb(l + dim - 2, dim) if l >= 2 else 0) for l in range(8)]
        np.testing.assert_array_equal(sphere.harmonic_dimension(7, dim), expected)
    t = np.linspace(-1.0, 1.0, 41)
    l = np.arange(13)[:, None]
    np.testing.assert_allclose(sphere.gegenbauer(12, 1, t), np.cos(l * np.arccos(t)), atol=1e-13)
    np.testing.assert_allclose(sphere.gegenbauer(12, 2, t), eval_legendre(l, t), atol=1e-13)
    np.testing.assert_allclose(sphere.gegenbauer(12, 4, t),
                               eval_gegenbauer(l, 1.5, t) / eval_gegenbauer(l, 1.5, 1.0), atol=1e-13)
    _, dp = sphere.gegenbauer(12, 3, t[1:-1], derivative=True)
    h = 1e-6
    fd = (sphere.gegenbauer(12, 3, t[1:-1] + h) - sphere.gegenbauer(12, 3, t[1:-1] - h)) / (2 * h)
    np.testing.assert_allclose(dp, fd, atol=1e-6 * np.abs(dp).max())


@pytest.mark.parametrize("dim, kappa", [(1, 2.0), (2, 5.0), (3, 0.7)])
def test_von_mises_fisher_sampler_mean_resultant(dim, kappa):
    eta = rotation(dim, 2)[:, 0]
    x = sphere.sample_von_mises_fisher(40000, eta, kappa, seed=9)
    assert np.max(np.abs(np.linalg.norm(x, axis=1) - 1.0)) < 1e-14
    cos = x @ eta
    nu = (dim - 1) / 2.0
    expected = iv(nu + 1.0, kappa) / iv(nu, kappa)       # A_{d+1}(kappa)
    assert abs(cos.mean() - expected) < 3 * cos.std() / math.sqrt(cos.size)
    # the orthogonal part has no preferred direction
    perp = x - cos[:, None] * eta
    assert np.all(np.abs(perp.mean(axis=0)) < 4 * perp.std(axis=0) / math.sqrt(cos.size) + 1e-12)


# -- the kernel ----------------------------------------------------------------------------------

@pytest.mark.parametrize("delta", [0.0, 0.4, 1.3, math.pi / 2, 2.2, 3.0, math.pi])
def test_circle_kernel_matches_quadrature_of_relu_products(delta):
    kernel = ReluKernel(1)
    a, b = 0.7, 0.7 + delta

    def integrand(t):
        return max(math.cos(t - a), 0.0) * max(math.cos(t - b), 0.0)

    kinks = sorted(np.mod([a - np.pi / 2, a + np.pi / 2, b - np.pi / 2, b + np.pi / 2], TWO_PI))
    value, _ = scipy.integrate.quad(integrand, 0.0, TWO_PI, points=kinks, epsabs=1e-15, epsrel=1e-14, limit=200)
    expected = value / TWO_PI
    th, thp = sphere.angles_to_points([a]), sphere.angles_to_points([b])
    assert abs(kernel(th, thp)[0] - expected) < 1e-10
    assert abs(kernel.profile_of_angle(delta) - expected) < 1e-10


@pytest.mark.parametrize("dim", [2, 3])
def test_kernel_matches_monte_carlo_on_spheres(dim):
    kernel = ReluKernel(dim)
    for i, delta in enumerate([0.0, 0.5, 1.4, 2.5, math.pi]):
        x = sphere.sample_uniform(200_000, dim, seed=100 * dim + i)   # independent samples per pair
        a, b = pair_at_angle(dim, delta, seed=i)
        samples = np.maximum(x @ a, 0.0) * np.maximum(x @ b, 0.0)
        se = samples.std() / math.sqrt(samples.size)
        assert abs(samples.mean() - kernel(a[None], b[None])[0]) < 3 * se + 1e-15
    assert kernel.profile(1.0) == pytest.approx(1.0 / (2 * (dim + 1)), abs=1e-15)
    # E relu(theta . x) = c_d, the root of the uniform potential
    assert abs(np.maximum(x[:, 0], 0.0).mean() - relu_mean(dim)) < 3 * x[:, 0].std() / math.sqrt(x.shape[0])


def test_circle_multiplier_matches_fft_of_the_kernel_and_math_md():
    n = 2**16
    phi = TWO_PI * np.arange(n) / n
    delta = np.abs(np.mod(phi + np.pi, TWO_PI) - np.pi)
    values = ((np.pi - delta) * np.cos(delta) + np.sin(delta)) / (4 * np.pi)   # MATH.md, d = 1
    coeffs = np.fft.rfft(values)[:40] / n
    assert np.max(np.abs(coeffs.imag)) < 1e-15
    l = np.arange(40)
    math_md = np.where(l == 0, 1 / np.pi**2, np.where(l == 1, 1 / 16,
                       np.where(l % 2 == 0, 1 / (np.pi**2 * np.maximum(l**2 - 1, 1) ** 2), 0.0)))
    multiplier = ReluKernel(1).circle_multiplier(l)
    np.testing.assert_allclose(coeffs.real, math_md, rtol=0, atol=1e-12)
    np.testing.assert_allclose(multiplier, math_md, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(ReluKernel(1).circle_multiplier(-l), multiplier)


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_zonal_coefficients_are_squares_of_relu_coefficients(dim):
    kernel = ReluKernel(dim)
    k_l = kernel.zonal_coefficients(30, quadrature=True)
    r_l = kernel.relu_coefficients(30)
    # Gauss-Legendre quadrature of ~300 terms: round-off ~1e-15 absolute
    np.testing.assert_allclose(k_l, r_l**2, atol=1e-14)
    assert np.max(np.abs(k_l[3::2])) < 1e-14                      # odd degrees >= 3 vanish
    assert abs(k_l[0] - relu_mean(dim) ** 2) < 1e-14              # the uniform potential
    # the expansion reproduces the profile: k(u) = sum N_l k_l P_l(u)
    u = np.linspace(-1, 1, 17)
    series = sphere.zonal_series(kernel.zonal_coefficients(400), dim, u)
    assert np.max(np.abs(series - kernel.profile(u))) < 3e-9
    if dim == 1:
        np.testing.assert_allclose(k_l, kernel.circle_multiplier(np.arange(31)), atol=1e-14)


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_kernel_gradient_matches_finite_differences_and_is_c1(dim):
    kernel = ReluKernel(dim)
    rng = np.random.default_rng(dim)
    for delta in [1e-7, 0.3, 1.7, math.pi - 1e-6, 3.0]:
        a, b = pair_at_angle(dim, delta, seed=int(10 * delta))
        v = sphere.tangent_project(a[None], rng.normal(size=(1, dim + 1)))[0]
        v /= np.linalg.norm(v)
        h = 1e-5
        ends = sphere.retract(np.stack([a + h * v, a - h * v]))
        plus, minus = kernel(ends, np.stack([b, b]))
        fd = (plus - minus) / (2 * h)
        grad = kernel.gradient(a[None], b[None])[0]
        assert abs(grad @ a) < 1e-15
        assert abs(grad @ v - fd) < 1e-8
        # |grad k| = (pi - delta) sin(delta) / (2 pi (d + 1)): continuous, zero at 0 and pi
        expected = (math.pi - delta) * math.sin(delta) / (2 * math.pi * (dim + 1))
        assert abs(np.linalg.norm(grad) - expected) < 1e-14
    same = kernel.gradient(a[None], a[None])
    opposite = kernel.gradient(a[None], -a[None])
    assert np.all(np.abs(same) < 1e-16) and np.all(np.abs(opposite) < 1e-16)


# -- targets ---------------------------------------------------------------------------------------

def test_von_mises_on_circle_two_ways_and_against_quadrature():
    kernel = ReluKernel(1)
    kappa, loc, mass = 2.5, 1.1, 0.8
    zonal = ZonalMeasure.von_mises_fisher(kernel, sphere.angles_to_points([loc])[0], kappa, mass)
    l = np.arange(60)
    series = CircleSeriesMeasure(kernel, mass * iv(l, kappa) / iv(0, kappa) * np.exp(-1j * l * loc))
    phi = np.linspace(0.0, TWO_PI, 23, endpoint=False)
    x = sphere.angles_to_points(phi)
    v1, g1 = zonal.potential(x)
    v2, g2 = series.potential(x)
    np.testing.assert_allclose(v1, v2, atol=1e-15)
    np.testing.assert_allclose(g1, g2, atol=1e-15)
    # direct quadrature of int k(phi - psi) rho(psi) dpsi / 2pi, rho = mass exp(kappa cos(psi - loc)) / I0
    psi = TWO_PI * np.arange(2048) / 2048
    rho = mass * np.exp(kappa * np.cos(psi - loc)) / iv(0, kappa)
    delta = np.abs(np.mod(phi[:, None] - psi[None, :] + np.pi, TWO_PI) - np.pi)
    direct = kernel.profile_of_angle(delta) @ rho / psi.size
    np.testing.assert_allclose(v1, direct, atol=1e-13)
    assert abs(zonal.self_energy - series.self_energy) < 1e-15
    assert abs(zonal.self_energy - rho @ direct_at(kernel, psi, rho) / psi.size) < 1e-12
    inputs = sphere.angles_to_points(phi)
    # f_nu(phi) = int_{|psi - phi| < pi/2} cos(phi - psi) rho(psi) dpsi / 2pi: smooth on the arc
    nodes, gl = np.polynomial.legendre.leggauss(60)
    arc = phi[:, None] + 0.5 * np.pi * nodes[None, :]
    rho_arc = mass * np.exp(kappa * np.cos(arc - loc)) / iv(0, kappa)
    relu_direct = (np.cos(phi[:, None] - arc) * rho_arc) @ gl * (0.5 * np.pi) / TWO_PI
    np.testing.assert_allclose(zonal.output(inputs), relu_direct, atol=1e-14)
    np.testing.assert_allclose(series.output(inputs), zonal.output(inputs), atol=1e-14)


def direct_at(kernel, psi, rho):
    delta = np.abs(np.mod(psi[:, None] - psi[None, :] + np.pi, TWO_PI) - np.pi)
    return kernel.profile_of_angle(delta) @ rho / psi.size


@pytest.mark.parametrize("dim, kappa", [(2, 4.0), (3, 1.5)])
def test_von_mises_fisher_target_against_monte_carlo(dim, kappa):
    kernel = ReluKernel(dim)
    eta = rotation(dim, 7)[:, 0]
    target = ZonalMeasure.von_mises_fisher(kernel, eta, kappa, mass=1.3)
    samples = sphere.sample_von_mises_fisher(200_000, eta, kappa, seed=3)
    points = sphere.sample_uniform(6, dim, seed=5)
    values, grad = target.potential(points)
    mc = 1.3 * kernel.matrix(points, samples)
    se = mc.std(axis=1) / math.sqrt(samples.shape[0])
    assert np.all(np.abs(values - mc.mean(axis=1)) < 3 * se)
    out = 1.3 * np.maximum(points @ samples.T, 0.0)
    assert np.all(np.abs(target.output(points) - out.mean(axis=1)) < 3 * out.std(axis=1) / math.sqrt(samples.shape[0]))
    pairs = 1.3**2 * kernel(samples[:100_000], samples[100_000:])
    assert abs(target.self_energy - pairs.mean()) < 3 * pairs.std() / math.sqrt(pairs.size)
    # the gradient is the tangent derivative of the potential
    rng = np.random.default_rng(0)
    v = sphere.tangent_project(points, rng.normal(size=points.shape))
    h = 1e-5
    fd = (target.potential(sphere.retract(points + h * v))[0] - target.potential(sphere.retract(points - h * v))[0]) / (2 * h)
    np.testing.assert_allclose(np.sum(grad * v, axis=1), fd, atol=1e-8)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_uniform_target_potential_is_the_constant_c_d_squared(dim):
    kernel = ReluKernel(dim)
    uniform = ZonalMeasure.uniform(kernel, mass=2.0)
    values, grad = uniform.potential(sphere.sample_uniform(9, dim, 0))
    np.testing.assert_allclose(values, 2.0 * relu_mean(dim) ** 2, rtol=1e-15)
    assert np.all(grad == 0.0)
    assert uniform.self_energy == pytest.approx(4.0 * relu_mean(dim) ** 2, rel=1e-15)
    np.testing.assert_allclose(uniform.output(sphere.sample_uniform(5, dim, 1)), 2.0 * relu_mean(dim), rtol=1e-14)
    # kappa -> 0 of the von Mises-Fisher target is the uniform one
    near = ZonalMeasure.von_mises_fisher(kernel, np.eye(dim + 1)[0], 1e-8, mass=2.0)
    assert abs(near.self_energy - uniform.self_energy) < 1e-8


def test_population_loss_is_half_mean_squared_output_gap():
    # MATH.md section 6: L(mu) = 1/2 E_x (f_mu - f_nu)^2, checked by Monte Carlo on S^2
    kernel = ReluKernel(2)
    theta, w = sphere.sample_uniform(5, 2, 1), np.array([0.3, 0.2, 0.5, 0.1, 0.4])
    y, u = sphere.sample_uniform(3, 2, 2), np.array([0.6, 0.7, 0.2])
    loss = population_loss(kernel, theta, w, (y, u))
    x = sphere.sample_uniform(400_000, 2, seed=8)
    gap2 = 0.5 * (np.maximum(x @ theta.T, 0) @ w - np.maximum(x @ y.T, 0) @ u) ** 2
    assert abs(loss - gap2.mean()) < 3 * gap2.std() / math.sqrt(gap2.size)


# -- potential sums --------------------------------------------------------------------------------

def naive_potential(kernel, targets, sources, charges):
    """Plain double loop with the angle form of the kernel and its gradient."""
    values = np.zeros(len(targets))
    grad = np.zeros_like(targets)
    for i, a in enumerate(targets):
        for b, q in zip(sources, charges):
            delta = sphere.geodesic_distance(a, b)
            values[i] += q * kernel.profile_of_angle(delta)
            direction = b - (a @ b) * a
            norm = np.linalg.norm(direction)
            if norm > 0:
                # d/ds k along the geodesic towards b is -dk/ddelta = (pi - delta) sin(delta) / c
                grad[i] += q * (math.pi - delta) * math.sin(delta) / kernel.scale * direction / norm
    return values, grad


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_dense_sums_match_naive_loop(dim):
    kernel = ReluKernel(dim)
    x = sphere.sample_uniform(40, dim, 1)
    y = np.concatenate([sphere.sample_uniform(30, dim, 2), x[:3], -x[3:5]])   # ties and antipodes
    q = np.random.default_rng(3).normal(size=y.shape[0])
    v_ref, g_ref = naive_potential(kernel, x, y, q)
    for memory in (1e3, 1e9):                          # one row per tile, and everything at once
        v, g = dense_potential(kernel, x, y, q, memory_bytes=memory)
        np.testing.assert_allclose(v, v_ref, atol=1e-14 * np.abs(v_ref).max())
        np.testing.assert_allclose(g, g_ref, atol=1e-13 * np.abs(g_ref).max())


@pytest.mark.parametrize("m, seed", [(7, 0), (500, 1), (3000, 2)])
def test_sorted_circle_sums_match_dense(m, seed):
    kernel = ReluKernel(1)
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0.0, TWO_PI, m)
    phi[: m // 5] = np.round(phi[: m // 5], 1)                       # exact ties
    phi[-2] = np.mod(phi[0] + np.pi, TWO_PI)                          # an antipodal pair
    phi[-1] = 0.0
    q = np.concatenate([np.full(m // 2, 1.0 / m), -rng.dirichlet(np.ones(m - m // 2)) / 2])
    targets = np.concatenate([phi, rng.uniform(-10.0, 10.0, 50)])     # unwrapped angles too
    x_t, x_s = sphere.angles_to_points(targets), sphere.angles_to_points(phi)
    v_dense, g_dense = dense_potential(kernel, x_t, x_s, q)
    v_sorted, slope = sorted_circle_potential(targets, phi, q)
    assert np.max(np.abs(v_sorted - v_dense)) < 1e-12 * np.abs(v_dense).max()
    g_sorted = slope[:, None] * np.stack([-np.sin(targets), np.cos(targets)], axis=1)
    assert np.max(np.abs(g_sorted - g_dense)) < 1e-12 * np.abs(g_dense).max()
    v_auto, g_auto = relu_potential(kernel, x_t, x_s, q)                 # auto = sorted on the circle
    np.testing.assert_allclose(v_auto, v_sorted, atol=1e-15 * np.abs(v_dense).max() * m)
    np.testing.assert_allclose(g_auto, g_sorted, atol=1e-13 * np.abs(g_dense).max())


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-20.0, 20.0), seed=st.integers(0, 10**6))
def test_sorted_sums_are_rotation_equivariant(shift, seed):
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0.0, TWO_PI, 60)
    q = rng.normal(size=60)
    v0, s0 = sorted_circle_potential(phi, phi, q)
    v1, s1 = sorted_circle_potential(phi + shift, phi + shift, q)
    scale = np.abs(q).sum()
    assert np.max(np.abs(v1 - v0)) < 1e-13 * scale and np.max(np.abs(s1 - s0)) < 1e-13 * scale


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), dim=st.integers(2, 4))
def test_dense_sums_are_rotation_equivariant(seed, dim):
    kernel = ReluKernel(dim)
    x = sphere.sample_uniform(20, dim, seed)
    q = np.random.default_rng(seed).normal(size=20)
    rot = rotation(dim, seed + 1)
    v0, g0 = dense_potential(kernel, x, x, q)
    v1, g1 = dense_potential(kernel, x @ rot.T, x @ rot.T, q)
    np.testing.assert_allclose(v1, v0, atol=1e-14 * np.abs(q).sum())
    np.testing.assert_allclose(g1, g0 @ rot.T, atol=1e-14 * np.abs(q).sum())


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        ReluKernel(0)
    with pytest.raises(ValueError, match=r"positions must have shape \(N, d \+ 1\)"):
        sphere.check_points(np.zeros(5))
    with pytest.raises(ValueError, match="summation='sorted' needs the circle"):
        relu_potential(ReluKernel(2), np.eye(3), np.eye(3), np.ones(3), method="sorted")
    with pytest.raises(ValueError, match="summation='fast' is not a ReLU summation"):
        relu_potential(ReluKernel(1), np.eye(2), np.eye(2), np.ones(2), method="fast")
    with pytest.raises(ValueError, match=r"charges must have shape \(M,\) = \(2,\)"):
        dense_potential(ReluKernel(1), np.eye(2), np.eye(2), np.ones(3))
    with pytest.raises(ValueError, match="circle_multiplier is for dim = 1"):
        ReluKernel(2).circle_multiplier(3)
    with pytest.raises(ValueError, match="kappa must be a finite number >= 0"):
        ZonalMeasure.von_mises_fisher(ReluKernel(2), [0, 0, 1], -1.0)
