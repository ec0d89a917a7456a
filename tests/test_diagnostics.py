"""Diagnostics: Sobolev norms, circle W2, regularity estimates, against independent answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import linear_sum_assignment, linprog
from scipy.special import zeta

from kmdflow.diagnostics.norms import grid_sobolev_norm, particle_sobolev_norm
from kmdflow.diagnostics.rates import predict_rate
from kmdflow.diagnostics.regularity import estimate_regularity
from kmdflow.diagnostics.wasserstein import circle_transport, shift_cost, wasserstein2
from kmdflow.domains.torus import grid, to_fourier
from kmdflow.measures import Atoms, Uniform, make_measure, place_particles

TWO_PI = 2.0 * np.pi


# ----------------------------------------------------------------------------- references

def trig_poly(rng, n_modes):
    """Random real trigonometric polynomial: f, f' as callables and its one-sided coefficients."""
    a = rng.normal(size=n_modes)
    b = rng.normal(size=n_modes)
    k = np.arange(1, n_modes + 1)

    def f(x):
        x = np.asarray(x, dtype=float)[..., None]
        return np.sum(a * np.cos(k * x) + b * np.sin(k * x), axis=-1)

    def df(x):
        x = np.asarray(x, dtype=float)[..., None]
        return np.sum(k * (-a * np.sin(k * x) + b * np.cos(k * x)), axis=-1)

    coeffs = np.zeros(n_modes + 1, dtype=complex)
    coeffs[1:] = 0.5 * (a - 1j * b)           # a cos + b sin = Re((a - ib) e^{ikx})
    return f, df, coeffs


def periodic_sq_dist(x, y):
    d = np.abs(np.subtract.outer(x, y)) % TWO_PI
    return np.minimum(d, TWO_PI - d) ** 2


def lp_w2_squared(x, w, y, u):
    """Discrete optimal transport by linear programming (the slow reference)."""
    n, m = x.size, y.size
    cost = periodic_sq_dist(x, y).ravel()
    rows = np.kron(np.eye(n), np.ones(m))
    cols = np.kron(np.ones(n), np.eye(m))
    res = linprog(cost, A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([w, u]),
                  bounds=(0, None), method="highs")
    assert res.status == 0
    return res.fun


def bernoulli_kernel(s: int, x):
    """K_1, K_2 of MATH.md section 2 on [0, 2 pi) (closed forms)."""
    x = np.mod(x, TWO_PI)
    if s == 1:
        return np.pi ** 2 / 3 - np.pi * x + x ** 2 / 2
    return np.pi ** 4 / 45 - np.pi ** 2 * x ** 2 / 6 + np.pi * x ** 3 / 6 - x ** 4 / 24


def slow_coefficients(x, w, n_modes):
    k = np.arange(1, n_modes + 1)
    return np.exp(-1j * np.outer(k, x)) @ w


def random_atoms(rng, n):
    return Atoms(rng.uniform(0.0, TWO_PI, n), rng.dirichlet(np.ones(n)))


# ----------------------------------------------------------------------------- grid norms

@pytest.mark.parametrize("seed", [0, 1])
def test_grid_norm_is_parseval_against_quadrature(seed):
    f, df, coeffs = trig_poly(np.random.default_rng(seed), 6)
    for q, g in ((0.0, f), (1.0, df)):
        exact = math.sqrt(quad(lambda t: g(t) ** 2, 0.0, TWO_PI, limit=200)[0] / TWO_PI)
        assert grid_sobolev_norm(coeffs, q) == pytest.approx(exact, rel=1e-12)
        # and from grid samples through the project's FFT convention
        sampled = to_fourier(f(grid(64)))
        assert grid_sobolev_norm(sampled, q) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("q", [-2.5, -1.0, 0.0, 0.5, 3.0])
@pytest.mark.parametrize("k", [1, 7])
def test_grid_norm_of_single_mode(q, k):
    amplitude, phase = 0.3, 1.1                       # f = A cos(k x + phase)
    coeffs = np.zeros(16, dtype=complex)
    coeffs[k] = 0.5 * amplitude * np.exp(1j * phase)
    coeffs[0] = 5.0                                    # the mass mode is ignored
    expected = amplitude * k ** q / math.sqrt(2)
    assert grid_sobolev_norm(coeffs, q) == pytest.approx(expected, rel=1e-14)


def test_grid_norm_batches_and_keeps_tiny_deviations():
    rng = np.random.default_rng(3)
    c = rng.normal(size=(3, 20)) + 1j * rng.normal(size=(3, 20))
    batched = grid_sobolev_norm(c, -1.5)
    assert batched.shape == (3,)
    for i in range(3):
        assert batched[i] == grid_sobolev_norm(c[i], -1.5)
    expected = 1e-200 * grid_sobolev_norm(c[0], 2.0)
    assert grid_sobolev_norm(1e-200 * c[0], 2.0) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="q="):
        grid_sobolev_norm(c[0], float("nan"))
    with pytest.raises(ValueError, match="shape"):
        grid_sobolev_norm(np.array(1.0), 0.0)


# ------------------------------------------------------------------------- particle norms

@pytest.mark.parametrize("q", [-1.0, -2.0, -3.0, -1.5, -1.25, -0.75])
def test_particle_norm_of_equispaced_particles(q):
    n = 37
    x = TWO_PI * (np.arange(n) + 0.3) / n
    w = np.full(n, 1.0 / n)
    expected = math.sqrt(2.0 * zeta(-2.0 * q)) * n ** q
    assert particle_sobolev_norm(x, w, "uniform", q) == pytest.approx(expected, rel=1e-10)
    if q == -1.0:
        value = particle_sobolev_norm(x, w, Uniform(), q, method="cdf")
        assert value == pytest.approx(expected, rel=1e-12)
    if q <= -1.5:
        tol = {-1.5: 1e-12, -2.0: 1e-16, -3.0: 1e-20}[q]        # absolute, on the square
        value = particle_sobolev_norm(x, w, Uniform(), q, tol=tol, method="fourier")
        assert abs(value ** 2 - expected ** 2) <= tol + 1e-12 * expected ** 2


@pytest.mark.parametrize("q", [-1.5, -2.0, -2.5, -3.0])
@pytest.mark.parametrize("target_kind", ["uniform", "atoms", "von_mises", "indicator"])
def test_particle_norm_against_slow_fourier_sum(q, target_kind):
    rng = np.random.default_rng(11)
    x = rng.uniform(0.0, TWO_PI, 15)
    w = rng.dirichlet(np.ones(15))
    n_slow = 20000
    diff = slow_coefficients(x, w, n_slow)
    if target_kind == "uniform":
        target = "uniform"
    elif target_kind == "atoms":
        target = random_atoms(rng, 9)
        diff -= slow_coefficients(target.positions, target.weights, n_slow)
    else:
        params = ({"loc": 2.0, "kappa": 3.0} if target_kind == "von_mises"
                  else {"start": 5.0, "stop": 1.0, "floor": 0.2})
        target = make_measure(target_kind, params)
        diff -= target.fourier(n_slow + 1)[1:]
    k = np.arange(1, n_slow + 1)
    partial = 2.0 * np.sum(k ** (2 * q) * np.abs(diff) ** 2)
    tail_bound = 2.0 * 2.0 ** 2 * zeta(-2.0 * q, n_slow + 1)   # |m_hat| <= 2
    tol = 1e-12
    value = particle_sobolev_norm(x, w, target, q, tol=tol) ** 2
    assert partial - 1e-12 <= value <= partial + tail_bound + tol + 1e-12


def test_particle_h1_norm_against_kernel_pair_sums():
    """q = -1: exact (uniform, atoms) and cdf (densities) routes vs pair sums of K_1."""
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, TWO_PI, 12)
    w = rng.dirichlet(np.ones(12))

    def pair(pos, charges, s=1):
        return float(charges @ bernoulli_kernel(s, np.subtract.outer(pos, pos)) @ charges)

    # uniform target: the uniform part has no k != 0 modes, so ||mu - U||^2 = pair sum of mu
    assert particle_sobolev_norm(x, w, "uniform", -1.0) ** 2 == pytest.approx(pair(x, w), rel=1e-12)
    assert particle_sobolev_norm(x, w, Uniform(), -1.0) ** 2 == pytest.approx(pair(x, w), rel=1e-12)
    # atoms target, s = 1 and s = 2
    nu = random_atoms(rng, 7)
    pos = np.concatenate([x, nu.positions])
    charges = np.concatenate([w, -nu.weights])
    for s in (1, 2):
        value = particle_sobolev_norm(x, w, nu, -float(s))
        assert value ** 2 == pytest.approx(pair(pos, charges, s), rel=1e-11)
    # density targets: ||mu - nu||^2 = ||mu - U||^2 - 2 <mu - U, nu - U> + ||nu - U||^2
    n_slow = 20000
    k = np.arange(1, n_slow + 1)
    mu_hat = slow_coefficients(x, w, n_slow)
    for kind, params in (("mode", {"k": 3, "amplitude": 0.7}),
                         ("von_mises", {"loc": 1.0, "kappa": 4.0}),
                         ("indicator", {"start": 1.0, "stop": 2.5, "floor": 0.1})):
        nu = make_measure(kind, params)
        nu_hat = nu.fourier(n_slow + 1)[1:]
        cross = 2.0 * np.sum(np.real(mu_hat * np.conj(nu_hat)) / k ** 2)
        self_term = 2.0 * np.sum(np.abs(nu_hat) ** 2 / k ** 2)
        expected = pair(x, w) - 2.0 * cross + self_term
        # truncation: |nu_hat(k)| <= (c - floor) / (pi k) for the patch, so terms ~ k^-3
        assert particle_sobolev_norm(x, w, nu, -1.0) ** 2 == pytest.approx(expected, abs=1e-8)


def test_particle_norm_routes_agree():
    rng = np.random.default_rng(8)
    x = rng.uniform(-10.0, 10.0, 40)                   # any reals: wrapped
    w = np.full(40, 1.0 / 40)
    nu = random_atoms(rng, 25)
    for target in ("uniform", nu):
        exact = particle_sobolev_norm(x, w, target, -2.0, method="exact")
        fourier = particle_sobolev_norm(x, w, target, -2.0, tol=1e-14, method="fourier")
        assert abs(fourier ** 2 - exact ** 2) <= 1e-14 + 1e-13 * exact ** 2
        pair = particle_sobolev_norm(x, w, target, -1.75, method="pair")
        fourier = particle_sobolev_norm(x, w, target, -1.75, tol=1e-11, method="fourier")
        assert abs(fourier ** 2 - pair ** 2) <= 1e-11 + 1e-14


def test_particle_norm_errors_name_the_argument():
    x, w = np.array([0.1, 2.0]), np.array([0.5, 0.5])
    with pytest.raises(ValueError, match=r"q=-0\.5.*q < -1/2"):
        particle_sobolev_norm(x, w, "uniform", -0.5)
    with pytest.raises(ValueError, match="tol="):
        particle_sobolev_norm(x, w, "uniform", -1.0, tol=0.0)
    with pytest.raises(ValueError, match="method="):
        particle_sobolev_norm(x, w, "uniform", -1.0, method="fast")
    with pytest.raises(ValueError, match="target="):
        particle_sobolev_norm(x, w, "gaussian", -1.0)
    with pytest.raises(ValueError, match="weights"):
        particle_sobolev_norm(x, w[:1], "uniform", -1.0)
    with pytest.raises(ValueError, match="method='exact'"):
        particle_sobolev_norm(x, w, Uniform(), -2.0, method="exact")
    with pytest.raises(ValueError, match="pass tol >="):
        particle_sobolev_norm(x, w, Uniform(), -0.6)


# ------------------------------------------------------------------------------------- W2

@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_w2_equal_weights_matches_assignment(n):
    rng = np.random.default_rng(n)
    for _ in range(4):
        x, y = rng.uniform(0.0, TWO_PI, n), rng.uniform(0.0, TWO_PI, n)
        cost = periodic_sq_dist(x, y)
        rows, cols = linear_sum_assignment(cost)
        w = np.full(n, 1.0 / n)
        value = circle_transport(Atoms(x, w), Atoms(y, w)).cost
        assert value == pytest.approx(cost[rows, cols].mean(), abs=1e-13)


def test_w2_general_weights_and_sizes_match_linear_program():
    rng = np.random.default_rng(21)
    for n, m in ((1, 4), (3, 5), (6, 2), (7, 7)):
        mu, nu = random_atoms(rng, n), random_atoms(rng, m)
        expected = lp_w2_squared(mu.positions, mu.weights, nu.positions, nu.weights)
        assert circle_transport(mu, nu).cost == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("x,y", [(0.1, 0.4), (0.2, 6.1), (1.0, 1.0 + np.pi - 1e-3),
                                 (3.0, 3.0 + np.pi + 1e-3), (6.2, 3.0)])
def test_w2_two_diracs_is_the_geodesic_distance(x, y):
    d = abs(x - y) % TWO_PI
    assert wasserstein2(Atoms([x], [1.0]), Atoms([y % TWO_PI], [1.0])) == pytest.approx(
        min(d, TWO_PI - d), abs=1e-14)


def test_w2_of_a_rotation():
    rng = np.random.default_rng(4)
    # supported in an arc of length 1 (across 0): with |a| <= 1 every pair is within pi, the
    # circle is a line there and W2 = |a|
    x = np.mod(rng.uniform(-0.5, 0.5, 9), TWO_PI)
    w = rng.dirichlet(np.ones(9))
    for a in (-1.0, -0.3, 0.05, 0.7, 1.0):
        shifted = Atoms(np.mod(x + a, TWO_PI), w)
        assert wasserstein2(Atoms(x, w), shifted) == pytest.approx(abs(a), rel=1e-12)
    # two antipodal atoms: W2 = |a| for |a| <= pi/2
    pair = Atoms([0.5, 0.5 + np.pi], [0.5, 0.5])
    for a in (0.2, 1.0, np.pi / 2):
        assert wasserstein2(pair, Atoms(np.mod(pair.positions + a, TWO_PI), [0.5, 0.5])) == \
            pytest.approx(a, rel=1e-12)
    # equispaced atoms shifted by |a| <= pi/N: each atom moves by a; the uniform measure: 0
    n = 12
    equi = Atoms(TWO_PI * np.arange(n) / n, np.full(n, 1.0 / n))
    for a in (0.1, np.pi / n):
        assert wasserstein2(equi, Atoms(np.mod(equi.positions + a, TWO_PI), equi.weights)) == \
            pytest.approx(a, rel=1e-12)
    # rotating the atoms does not change the distance to the (rotation invariant) uniform
    base = wasserstein2(Atoms(x, w), "uniform")
    for a in (0.3, 2.0, 5.0):
        value = wasserstein2(Atoms(np.mod(x + a, TWO_PI), w), Uniform())
        assert value == pytest.approx(base, rel=1e-11)


@pytest.mark.parametrize("kind,params", [("von_mises", {"loc": 6.0, "kappa": 30.0}),
                                         ("indicator", {"start": 5.0, "stop": 1.0}),
                                         ("perturbation", {"amplitude": 0.9, "decay": 1.0,
                                                           "seed": 4, "modes": 300})])
def test_w2_of_one_atom_and_a_density(kind, params):
    """A Dirac has one coupling: W2(delta_x, nu)^2 = int d(x, y)^2 dnu(y), by adaptive quadrature."""
    density = make_measure(kind, params)
    for x0 in (0.3, 3.0, 6.0):
        def integrand(y):
            d = abs(y - x0) % TWO_PI
            return min(d, TWO_PI - d) ** 2 * density.values(np.array([y]))[0] / TWO_PI
        kinks = sorted({x0, (x0 + np.pi) % TWO_PI, *np.asarray(density.breakpoints).tolist()})
        expected = quad(integrand, 0.0, TWO_PI, points=kinks, limit=2000, epsabs=1e-14,
                        epsrel=1e-13)[0]
        assert circle_transport(Atoms([x0], [1.0]), density).cost == pytest.approx(expected,
                                                                                   abs=1e-13)


def test_w2_to_uniform_closed_form():
    """Uniform target: B(u + t) = 2 pi (u + t), so W2^2 = Var_u(A(u) - 2 pi u), exactly."""
    rng = np.random.default_rng(9)
    for n in (1, 4, 30):
        mu = random_atoms(rng, n)
        order = np.argsort(mu.positions)
        x, w = mu.positions[order], mu.weights[order]
        hi = np.cumsum(w)
        lo = hi - w
        first = np.sum(x * w - np.pi * (hi ** 2 - lo ** 2))              # int (A - 2 pi u)
        second = np.sum(((x - TWO_PI * lo) ** 3 - (x - TWO_PI * hi) ** 3) / (3 * TWO_PI))
        assert circle_transport(mu, "uniform").cost == pytest.approx(second - first ** 2, rel=1e-11)


@pytest.mark.parametrize("kind,params", [("von_mises", {"loc": 1.0, "kappa": 1.0}),
                                         ("mode", {"k": 2, "amplitude": 0.5})])
def test_w2_of_quantile_particles_decays_like_one_over_n(kind, params):
    """W2(quantile particles, rho) N -> 2 pi (mean(1/rho) / 12)^(1/2), with O(N^-2) error.

    Each atom sits at the middle quantile of its cell of mass 1/N, where the quantile function
    is locally linear with slope 2 pi / rho: the cost is sum_i (2 pi / rho_i)^2 / (12 N^3).
    """
    density = make_measure(kind, params)
    mean_inverse = quad(lambda t: 1.0 / density.values(np.array([t]))[0], 0, TWO_PI,
                        limit=200)[0] / TWO_PI
    limit = TWO_PI * math.sqrt(mean_inverse / 12.0)
    errors = []
    for n in (50, 100, 200, 400):
        atoms = place_particles(density, n)
        errors.append(abs(n * wasserstein2(atoms, density) / limit - 1.0))
        assert errors[-1] < 1.0 / n ** 2
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 1.8)                       # second order


def test_w2_to_density_agrees_with_fine_discretisation():
    """|W2(mu, nu) - W2(mu, nu_M)| <= W2(nu, nu_M) (triangle inequality)."""
    rng = np.random.default_rng(2)
    mu = random_atoms(rng, 20)
    m = 4000
    equi = Atoms(TWO_PI * (np.arange(m) + 0.5) / m, np.full(m, 1.0 / m))
    gap = np.pi / (math.sqrt(3.0) * m)                  # W2(U, equispaced M), closed form
    assert wasserstein2(equi, "uniform") == pytest.approx(gap, rel=1e-10)
    assert abs(wasserstein2(mu, "uniform") - wasserstein2(mu, equi)) <= gap + 1e-12
    patch = make_measure("indicator", {"start": 5.0, "stop": 1.0, "floor": 0.2})
    fine = place_particles(patch, m)
    bound = wasserstein2(fine, patch)
    # the 1/N law of the next test, with mean(1/rho) of the patch in closed form
    mean_inverse = (patch.length / patch.level + (TWO_PI - patch.length) / patch.floor) / TWO_PI
    assert bound * m == pytest.approx(TWO_PI * math.sqrt(mean_inverse / 12.0), rel=1e-3)
    assert abs(wasserstein2(mu, patch) - wasserstein2(mu, fine)) <= bound + 1e-12


def test_w2_symmetric_zero_iff_equal_and_convex_shift_cost():
    rng = np.random.default_rng(6)
    mu, nu = random_atoms(rng, 8), random_atoms(rng, 5)
    density = make_measure("von_mises", {"loc": 4.0, "kappa": 2.0})
    assert wasserstein2(mu, nu) == wasserstein2(nu, mu)
    assert wasserstein2(density, mu) == wasserstein2(mu, density)
    assert circle_transport(density, mu).shift == -circle_transport(mu, density).shift
    assert wasserstein2(mu, mu) == 0.0
    moved = mu.positions.copy()
    moved[0] += 1e-7
    value = wasserstein2(mu, Atoms(moved, mu.weights))
    assert value == pytest.approx(math.sqrt(mu.weights[0]) * 1e-7, rel=1e-6)
    # J(theta) is convex, its minimum is W2^2 and is attained at the reported shift
    for other in (nu, density):
        thetas = np.linspace(-2.0, 2.0, 801)
        costs = np.array([shift_cost(mu, other, t) for t in thetas])
        assert np.all(np.diff(costs, 2) >= -1e-12)
        best = circle_transport(mu, other)
        assert costs.min() >= best.cost - 1e-13
        assert shift_cost(mu, other, best.shift) == pytest.approx(best.cost, abs=1e-14)
    with pytest.raises(ValueError, match="both densities"):
        wasserstein2(density, "uniform")
    with pytest.raises(ValueError, match="not a measure"):
        wasserstein2(mu, np.array([1.0]))


atom_sets = st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0.0, 6.28), min_size=n, max_size=n),
    st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n)))


def as_atoms(data):
    x, w = (np.array(v) for v in data)
    return Atoms(x, w / w.sum())


@settings(max_examples=40, deadline=None)
@given(atom_sets, atom_sets, atom_sets)
def test_w2_triangle_inequality(a, b, c):
    a, b, c = as_atoms(a), as_atoms(b), as_atoms(c)
    assert wasserstein2(a, c) <= wasserstein2(a, b) + wasserstein2(b, c) + 1e-12
    assert wasserstein2(a, "uniform") <= wasserstein2(a, b) + wasserstein2(b, "uniform") + 1e-12
    assert 0.0 <= wasserstein2(a, b) <= np.pi


# ------------------------------------------------------------------------------ regularity

@pytest.mark.parametrize("a", [1.5, 2.0, 3.0])
def test_regularity_of_power_law_coefficients(a):
    rng = np.random.default_rng(int(10 * a))
    k = np.arange(1024, dtype=float)
    coeffs = np.zeros(1024, dtype=complex)
    coeffs[1:] = k[1:] ** -a * np.exp(2j * np.pi * rng.random(1023))
    est = estimate_regularity(coeffs)
    assert not est.smooth
    assert est.decay == pytest.approx(a, abs=1e-6)
    assert est.regularity == pytest.approx(a - 0.5, abs=1e-6)
    # noisy magnitudes (complex Gaussian factors): the tail sums average them out
    for seed in range(3):
        noise = np.random.default_rng(seed)
        k = np.arange(4096, dtype=float)
        noisy = np.zeros(4096, dtype=complex)
        factors = (noise.normal(size=4095) + 1j * noise.normal(size=4095)) / math.sqrt(2)
        noisy[1:] = k[1:] ** -a * factors
        est = estimate_regularity(noisy)
        assert not est.smooth
        assert abs(est.decay - a) < 0.05
        assert 0.0 < est.uncertainty < 0.1


@pytest.mark.parametrize("decay", [1.5, 2.0, 3.0])
def test_regularity_of_perturbation_densities(decay):
    density = make_measure("perturbation",
                           {"amplitude": 0.4, "decay": decay, "seed": 2, "modes": 200})
    for coeffs in (density.fourier(1024), to_fourier(density.values(grid(512)) - 1.0)):
        est = estimate_regularity(coeffs)
        assert est.regularity == pytest.approx(density.regularity(), abs=0.05)
    assert predict_rate(2.0, est.regularity, 0.5, True).kind == "power"


def test_regularity_of_a_patch_is_one_half():
    density = make_measure("indicator", {"start": 1.0, "stop": 2.5, "floor": 0.2})
    est = estimate_regularity(density.fourier(4096))
    assert est.regularity == pytest.approx(density.regularity(), abs=0.05)
    # a smooth bump added to the patch changes the low modes, not the asymptotics
    mixture = make_measure("mixture", {"components": [
        (0.5, ("indicator", {"start": 1.0, "stop": 2.0})),
        (0.5, ("von_mises", {"loc": 1.0, "kappa": 50.0}))]})
    est = estimate_regularity(mixture.fourier(4096))
    assert not est.smooth and abs(est.regularity - 0.5) < 0.2


@pytest.mark.parametrize("kappa", [0.5, 2.0, 20.0, 200.0])
def test_von_mises_coefficients_are_flagged_smooth(kappa):
    density = make_measure("von_mises", {"loc": 1.0, "kappa": kappa})
    for coeffs in (density.fourier(512), to_fourier(density.values(grid(1024)))):
        est = estimate_regularity(coeffs)
        assert est.smooth and math.isinf(est.regularity)
    assert predict_rate(2.0, est.regularity, 0.5, True).kind == "super-polynomial"


def test_other_smooth_spectra_and_errors():
    k = np.arange(1024, dtype=float)
    assert estimate_regularity(0.9 ** k).smooth                      # geometric
    assert estimate_regularity(np.exp(-np.sqrt(k))).smooth            # faster than any power
    assert estimate_regularity(make_measure("mode", {"k": 3, "amplitude": 0.5}).fourier(64)).smooth
    assert not estimate_regularity((k + 1.0) ** -2.5).smooth
    with pytest.raises(ValueError, match="k_min"):
        estimate_regularity(0.9 ** k, k_min=0)
    with pytest.raises(ValueError, match="k_max"):
        estimate_regularity(0.9 ** k, k_min=5, k_max=3)
    with pytest.raises(ValueError, match="coeffs"):
        estimate_regularity(np.ones((2, 3)))
