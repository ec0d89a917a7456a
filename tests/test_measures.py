"""Measure families, files and particle placement on T^1 (kmdflow.measures).

Every expected value is derived independently of the code under test: adaptive quadrature of the
density, direct trigonometric sums, scipy's von Mises, brentq on the cdf, closed forms by hand.
"""

from __future__ import annotations

import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from kmdflow.measures import (
    Atoms,
    GridDensity,
    MeasureError,
    Mixture,
    Uniform,
    inverse_cdf,
    make_measure,
    place_particles,
    quantile_positions,
    random_positions,
)

TWO_PI = 2 * np.pi

SMOOTH = {
    "uniform": ("uniform", {}),
    "mode": ("mode", {"k": 3, "amplitude": -0.7}),
    "perturbation": ("perturbation", {"amplitude": 0.6, "decay": 1.5, "seed": 7, "modes": 48}),
    "von_mises": ("von_mises", {"loc": 1.0, "kappa": 4.0}),
    "von_mises_sharp": ("von_mises", {"loc": 4.0, "kappa": 200.0}),
    "mixture": ("mixture", {"components": [(1.0, ("von_mises", {"loc": 2.0, "kappa": 9.0})),
                                           (3.0, ("mode", {"k": 2, "amplitude": 0.5}))]}),
}
ROUGH = {
    "indicator_vacuum": ("indicator", {"start": 5.0, "stop": 1.0, "floor": 0.0}),
    "indicator_floor": ("indicator", {"start": 1.0, "stop": 2.5, "floor": 0.3}),
    "mixture_patch": ("mixture", {"components": [(0.3, ("von_mises", {"loc": 1.0, "kappa": 10.0})),
                                                 (0.7, ("indicator", {"start": 2.0, "stop": 4.0,
                                                                      "floor": 0.0}))]}),
}


def build(name):
    kind, params = {**SMOOTH, **ROUGH}[name]
    return make_measure(kind, params)


def grid_density(n):
    x = TWO_PI * np.arange(n) / n
    return GridDensity(2.0 + np.cos(x) + 0.4 * np.sin(3 * x) + 0.3 * np.cos(n // 2 * x))


def quad(f, a, b, points=()):
    inner = [p for p in points if a < p < b]
    with warnings.catch_warnings():  # asking for round-off accuracy; the asserts judge it
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(f, a, b, points=inner or None, limit=400, epsabs=1e-15, epsrel=1e-14)
    return value


ALL = [*SMOOTH, *ROUGH]


# ------------------------------------------------------------------------ Fourier and mass


@pytest.mark.parametrize("name", list(SMOOTH))
def test_fourier_matches_fft_of_values(name):
    density = build(name)
    n = 4096  # far above every bandwidth here: aliasing is below round-off
    x = TWO_PI * np.arange(n) / n
    fft = np.fft.rfft(density.values(x)) / n
    np.testing.assert_allclose(density.fourier(300), fft[:300], rtol=0, atol=1e-12)
    assert density.fourier(1)[0] == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("n", [16, 15])
def test_grid_density_fourier_matches_fft_of_its_interpolant(n):
    density = grid_density(n)
    m = 1024
    x = TWO_PI * np.arange(m) / m
    fft = np.fft.rfft(density.values(x)) / m
    np.testing.assert_allclose(density.fourier(40), fft[:40], rtol=0, atol=1e-13)
    # the interpolant passes through the normalised data (mean 2 -> divided by 2)
    xg = TWO_PI * np.arange(n) / n
    data = (2.0 + np.cos(xg) + 0.4 * np.sin(3 * xg) + 0.3 * np.cos(n // 2 * xg)) / 2.0
    np.testing.assert_allclose(density.values(xg), data, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", list(ROUGH))
def test_rough_fourier_against_quadrature(name):
    density = build(name)
    coeffs = density.fourier(25)
    points = list(density.breakpoints)
    for k in [0, 1, 2, 5, 24]:
        re = quad(lambda t: np.cos(k * t) * density.values(np.array(t)), 0, TWO_PI, points)
        im = -quad(lambda t: np.sin(k * t) * density.values(np.array(t)), 0, TWO_PI, points)
        assert abs(coeffs[k] - (re + 1j * im) / TWO_PI) < 1e-12
    # and the fine-grid FFT converges to it at the O(1/n) rate of a jump
    n = 1 << 16
    fft = np.fft.rfft(density.values(TWO_PI * np.arange(n) / n)) / n
    assert np.abs(fft[:25] - coeffs).max() < 4.0 / n


@pytest.mark.parametrize("name", ALL)
def test_mass_is_one(name):
    density = build(name)
    assert density.fourier(3)[0] == pytest.approx(1.0, abs=1e-15)
    mass = quad(lambda t: density.values(np.array(t)), 0, TWO_PI, list(density.breakpoints))
    assert mass / TWO_PI == pytest.approx(1.0, abs=1e-12)


# -------------------------------------------------------------------------------- cdf


@pytest.mark.parametrize("name", ALL)
def test_cdf_against_quadrature(name):
    density = build(name)
    xs = np.array([0.3, 1.0, 1.7, 2.2, 3.1, 4.0, 4.9, 5.5, 6.2])
    expected = [quad(lambda t: density.values(np.array(t)), 0, x, list(density.breakpoints)) / TWO_PI
                for x in xs]
    np.testing.assert_allclose(density.cdf(xs), expected, rtol=0, atol=1e-12)
    assert density.cdf(np.array(0.0)) == 0.0
    assert density.cdf(np.array(TWO_PI)) == 1.0
    fine = np.linspace(0, TWO_PI, 20001)
    assert np.all(np.diff(density.cdf(fine)) >= -1e-15)
    np.testing.assert_allclose(density.cdf(xs + TWO_PI), density.cdf(xs) + 1.0, atol=1e-14)


def test_grid_density_cdf_against_quadrature():
    density = grid_density(16)
    xs = np.array([0.5, 2.0, 3.3, 6.0])
    expected = [quad(lambda t: density.values(np.array(t)), 0, x) / TWO_PI for x in xs]
    np.testing.assert_allclose(density.cdf(xs), expected, rtol=0, atol=1e-13)
    assert density.cdf(np.array(TWO_PI)) == 1.0


# ------------------------------------------------------------------------- placement


def test_uniform_quantiles_are_the_midpoint_grid():
    n = 1000
    j = np.arange(1, n + 1)
    x = quantile_positions(Uniform(), n)
    np.testing.assert_array_max_ulp(x, TWO_PI * (j - 0.5) / n, maxulp=2)  # exact up to two roundings
    np.testing.assert_allclose(Uniform().cdf(x), (j - 0.5) / n, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ALL)
def test_quantiles_invert_the_cdf(name):
    density = build(name)
    n = 20000
    u = (np.arange(n) + 0.5) / n
    x = quantile_positions(density, n)
    assert x.shape == (n,) and np.all((x >= 0) & (x < TWO_PI)) and np.all(np.diff(x) >= 0)
    assert np.abs(density.cdf(x) - u).max() < 1e-13
    # slow reference: brentq on the cdf, where the density is not tiny (well-conditioned)
    for j in np.linspace(0, n - 1, 40).astype(int):
        if density.values(np.array(x[j])) < 1e-3:
            continue
        ref = optimize.brentq(lambda t: float(density.cdf(np.array(t))) - u[j], 0, TWO_PI,
                              xtol=1e-15, rtol=8.9e-16)
        assert abs(x[j] - ref) < 1e-13


def test_quantiles_of_a_narrow_von_mises_are_symmetric_about_the_mode():
    density = make_measure("von_mises", {"loc": np.pi, "kappa": 700.0})
    n = 10001  # odd: the middle quantile is the median, pi by symmetry
    x = quantile_positions(density, n)
    assert x[n // 2] == pytest.approx(np.pi, abs=1e-13)
    np.testing.assert_allclose(x - np.pi, -(x[::-1] - np.pi), atol=1e-12)
    assert np.all(np.isfinite(x)) and np.all(np.diff(x) > 0)


@pytest.mark.parametrize("name", ["uniform", "von_mises", "perturbation", "mixture_patch"])
def test_random_positions_follow_the_density(name):
    density = build(name)
    x = random_positions(density, 20000, seed=3)
    assert np.all((x >= 0) & (x < TWO_PI))
    assert stats.kstest(x, density.cdf).pvalue > 1e-3
    np.testing.assert_array_equal(x, random_positions(density, 20000, seed=3))
    assert not np.array_equal(x, random_positions(density, 20000, seed=4))


def test_ks_test_has_power():
    x = random_positions(build("von_mises"), 20000, seed=3)
    assert stats.kstest(x, Uniform().cdf).pvalue < 1e-6


@pytest.mark.parametrize("name", ["indicator_vacuum", "indicator_floor"])
def test_indicator_quantiles(name):
    density = build(name)
    a, length = density.a, density.length
    if density.floor == 0:
        for x in (quantile_positions(density, 5000), random_positions(density, 5000, seed=1)):
            assert np.all(np.mod(x - a, TWO_PI) <= length)
    u = np.linspace(0, 1, 301)
    ref = [optimize.brentq(lambda t: float(density.cdf(np.array(t))) - v, 0, TWO_PI, xtol=1e-15)
           if 0 < v < 1 else None for v in u]
    x = inverse_cdf(density, u)
    for xi, r in zip(x, ref):
        if r is not None:
            assert abs(xi - r) < 1e-13
    assert x[0] == 0.0


def test_indicator_level_min_max_and_regularity():
    density = make_measure("indicator", {"start": 1.0, "stop": 2.5, "floor": 0.3})
    inside = (2 * np.pi - 0.3 * (2 * np.pi - 1.5)) / 1.5  # mass 1 by hand
    assert density.max_value() == pytest.approx(inside, rel=1e-15)
    assert density.min_value() == 0.3
    assert density.regularity() == 0.5
    np.testing.assert_allclose(density.values(np.array([0.5, 1.7, 3.0])), [0.3, inside, 0.3])


@pytest.mark.parametrize("name", ALL)
def test_d_independent_interface_on_the_circle(name):
    density = build(name)
    assert density.dim == 1
    layout = density.fourier_nd(16)  # (n // 2 + 1,), Nyquist zero, the rest exact
    assert layout.shape == (9,) and layout[8] == 0
    np.testing.assert_array_equal(layout[:8], density.fourier(8))
    u = stats.qmc.Sobol(1, seed=np.random.default_rng(3)).random(64)[:, 0]
    sobol = density.sample(64, 3, "sobol")  # the same scrambled Sobol' points through F^-1
    np.testing.assert_allclose(density.cdf(sobol), u, atol=1e-12)
    np.testing.assert_array_equal(density.sample(50, 9, "random"), random_positions(density, 50, 9))


def test_place_particles():
    atoms = place_particles(build("mode"), 64, "quantile", 0)
    assert isinstance(atoms, Atoms) and atoms.size == 64
    np.testing.assert_allclose(atoms.weights, 1 / 64, rtol=1e-15)
    rnd = place_particles(build("mode"), 64, "random", 5)
    np.testing.assert_array_equal(rnd.positions, random_positions(build("mode"), 64, 5))
    with pytest.raises(MeasureError, match="placement.*quantile, random, sobol"):
        place_particles(build("mode"), 64, "grid", 0)
    sobol = place_particles(build("mode"), 64, "sobol", 2)
    np.testing.assert_array_equal(sobol.positions, build("mode").sample(64, 2, "sobol"))
    with pytest.raises(MeasureError, match="n = 0"):
        place_particles(build("mode"), 0)
    with pytest.raises(MeasureError, match="atoms are used as they are"):
        place_particles(atoms, 10)


def test_million_quantiles_are_fast():
    density = build("perturbation")
    density.fourier(1)  # the one-time normalisation is not part of the placement
    start = time.perf_counter()
    x = quantile_positions(density, 10**6)
    elapsed = time.perf_counter() - start
    assert x.size == 10**6
    assert elapsed < 2.0, f"{elapsed:.2f} s"


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["mode", "von_mises", "indicator"]),
       p1=st.floats(0.0, 6.0), p2=st.floats(0.05, 0.95), seed=st.integers(0, 10**6))
def test_inverse_cdf_round_trip(kind, p1, p2, seed):
    params = {"mode": {"k": 1 + int(p1), "amplitude": p2},
              "von_mises": {"loc": p1, "kappa": 30 * p2},
              "indicator": {"start": p1, "stop": p1 + 6 * p2, "floor": p2 / 2}}[kind]
    density = make_measure(kind, params)
    x = np.random.default_rng(seed).uniform(0, TWO_PI, 64)
    x = x[density.values(x) > 1e-2]
    np.testing.assert_allclose(inverse_cdf(density, density.cdf(x)), x, atol=1e-12)


# ---------------------------------------------------------------- perturbation details


def direct_g(params, x):
    """g(x) = sum_k k^-decay cos(k x + phi_k), summed term by term."""
    k = np.arange(1, params["modes"] + 1)
    phases = np.random.default_rng(params["seed"]).uniform(0, TWO_PI, params["modes"])
    return np.cos(np.outer(x, k) + phases) @ k ** (-params["decay"])


def test_perturbation_is_resolution_independent():
    params = SMOOTH["perturbation"][1]
    first, second = make_measure("perturbation", params), make_measure("perturbation", params)
    np.testing.assert_array_equal(first.fourier(16), second.fourier(1 << 14)[:16])
    x = np.linspace(0, TWO_PI, 777)
    np.testing.assert_array_equal(first.values(x), second.values(x))


@pytest.mark.parametrize("amplitude", [0.6, -0.6])
def test_perturbation_sup_norm_and_extrema(amplitude):
    params = {**SMOOTH["perturbation"][1], "amplitude": amplitude}
    density = make_measure("perturbation", params)
    # independent: dense direct sum, then bounded Brent refinement of both extrema
    x = np.linspace(0, TWO_PI, 1 << 14, endpoint=False)
    g = direct_g(params, x)

    def refined(sign):
        i = np.argmax(sign * g)
        res = optimize.minimize_scalar(lambda t: -sign * direct_g(params, np.array([t]))[0],
                                       bounds=(x[i] - 1e-3, x[i] + 1e-3), method="bounded",
                                       options={"xatol": 1e-12})
        return -sign * res.fun

    g_max, g_min = max(refined(1), g.max()), min(refined(-1), g.min())
    sup = max(g_max, -g_min)
    a = params["amplitude"]
    deviation = max(abs(density.max_value() - 1), abs(density.min_value() - 1))
    assert deviation == pytest.approx(abs(a), abs=1e-15)  # max|f| = |amplitude| exactly
    high, low = (g_max, g_min) if a > 0 else (g_min, g_max)
    assert density.max_value() == pytest.approx(1 + a * high / sup, abs=1e-12)
    assert density.min_value() == pytest.approx(1 + a * low / sup, abs=1e-12)
    np.testing.assert_allclose(density.values(x), 1 + a * g / sup, rtol=0, atol=1e-13)
    assert np.abs(density.values(x) - 1).max() <= abs(a) * (1 + 1e-14)


def test_perturbation_spectrum_decays_as_a_power():
    params = SMOOTH["perturbation"][1]
    density = make_measure("perturbation", params)
    coeffs = density.fourier(80)
    k = np.arange(1, params["modes"] + 1)
    scaled = np.abs(coeffs[1:params["modes"] + 1]) * k ** params["decay"]
    np.testing.assert_allclose(scaled, scaled[0], rtol=1e-13)
    assert np.all(coeffs[params["modes"] + 1:] == 0)
    phases = np.random.default_rng(params["seed"]).uniform(0, TWO_PI, params["modes"])
    np.testing.assert_allclose(np.exp(1j * np.angle(coeffs[1:params["modes"] + 1])),
                               np.exp(1j * phases), atol=1e-13)
    assert density.regularity() == pytest.approx(params["decay"] - 0.5)


# ---------------------------------------------------------------------- von Mises, etc.


@pytest.mark.parametrize("kappa", [0.0, 3.0, 80.0])
def test_von_mises_against_scipy(kappa):
    density = make_measure("von_mises", {"loc": 2.5, "kappa": kappa})
    x = np.linspace(0, TWO_PI, 1001)
    expected = TWO_PI * stats.vonmises.pdf(x, kappa, loc=2.5)
    np.testing.assert_allclose(density.values(x), expected, rtol=1e-12, atol=1e-300)
    assert density.max_value() == pytest.approx(TWO_PI * stats.vonmises.pdf(2.5, kappa, loc=2.5),
                                                rel=1e-12)
    assert density.min_value() == pytest.approx(TWO_PI * stats.vonmises.pdf(2.5 + np.pi, kappa,
                                                                             loc=2.5), rel=1e-10)
    assert density.regularity() == np.inf


@pytest.mark.parametrize("name", ["mode", "mixture", "mixture_patch"])
def test_min_max_against_dense_sampling(name):
    density = build(name)
    x = np.linspace(0, TWO_PI, 200001)
    edges = density.breakpoints
    x = np.concatenate([x, edges, edges - 1e-13, edges + 1e-13])
    v = density.values(x)
    assert density.min_value() <= v.min() + 1e-14 and density.min_value() >= v.min() - 1e-8
    assert density.max_value() >= v.max() - 1e-14 and density.max_value() <= v.max() + 1e-8


def test_mixture_combines_components():
    vm = make_measure("von_mises", {"loc": 2.0, "kappa": 9.0})
    mode = make_measure("mode", {"k": 2, "amplitude": 0.5})
    spec = SimpleNamespace(kind="mode", params={"k": 2, "amplitude": 0.5})
    mixtures = [
        make_measure("mixture", {"components": [(2.0, ("von_mises", {"loc": 2.0, "kappa": 9.0})),
                                                (6.0, spec)]}),
        make_measure("mixture", {"components": [{"weight": 2, "kind": "von_mises", "loc": 2.0,
                                                 "kappa": 9.0},
                                                {"weight": 6, "kind": "mode", "k": 2,
                                                 "amplitude": 0.5}]}),
    ]
    x = np.linspace(0, TWO_PI, 50)
    for mix in mixtures:
        assert mix.weights == (0.25, 0.75)
        np.testing.assert_allclose(mix.values(x), 0.25 * vm.values(x) + 0.75 * mode.values(x),
                                   rtol=1e-14)
        np.testing.assert_allclose(mix.fourier(10), 0.25 * vm.fourier(10) + 0.75 * mode.fourier(10),
                                   atol=1e-16)
    assert Mixture((1.0, 1.0), (build("perturbation"), build("indicator_floor"))).regularity() == 0.5
    with pytest.raises(MeasureError, match=r"components\[1\]\.kind.*densities only"):
        make_measure("mixture", {"components": [(1.0, ("uniform", {})),
                                                (1.0, ("particles", {"positions": [1.0]}))]})
    with pytest.raises(MeasureError, match=r"components\[0\]\.kappa"):
        make_measure("mixture", {"components": [(1.0, ("von_mises", {"loc": 0.0, "kappa": -1}))]})


def test_regularity_values():
    assert build("uniform").regularity() == np.inf
    assert build("mode").regularity() == np.inf
    assert build("mixture_patch").regularity() == 0.5
    assert grid_density(8).regularity() is None


# ------------------------------------------------------------------------ atoms, errors


def test_particles_kind_and_atoms():
    atoms = make_measure("particles", {"positions": [-0.5, 7.0, 1.0], "weights": [1.0, 2.0, 1.0]})
    np.testing.assert_allclose(atoms.positions, [TWO_PI - 0.5, 7.0 - TWO_PI, 1.0], atol=1e-15)
    np.testing.assert_allclose(atoms.weights, [0.25, 0.5, 0.25])
    expected = sum(w * np.exp(-1j * np.arange(4) * p) for w, p in zip(atoms.weights, atoms.positions))
    np.testing.assert_allclose(atoms.fourier(4), expected, atol=1e-15)
    default = make_measure("particles", {"positions": [0.1, 0.2]})
    np.testing.assert_array_equal(default.weights, [0.5, 0.5])
    with pytest.raises(MeasureError, match="weights: weights must be positive"):
        make_measure("particles", {"positions": [0.1, 0.2], "weights": [1.0, 0.0]})
    with pytest.raises(MeasureError, match="one weight per position"):
        make_measure("particles", {"positions": [0.1, 0.2], "weights": [1.0]})
    with pytest.raises(MeasureError, match=r"positions.*\[0, 2 pi\)"):
        Atoms(np.array([7.0]), np.array([1.0]))


def test_make_measure_errors_name_the_key():
    with pytest.raises(MeasureError, match="kind: 'gauss' is not a measure kind") as err:
        make_measure("gauss", {})
    assert err.value.key == "kind"
    with pytest.raises(MeasureError, match="kapa: not a parameter of kind 'von_mises'"):
        make_measure("von_mises", {"loc": 0.0, "kapa": 1.0})
    with pytest.raises(MeasureError, match="kappa: missing"):
        make_measure("von_mises", {"loc": 0.0})
    with pytest.raises(MeasureError, match="kappa: missing"):
        make_measure("von_mises", {"loc": 0.0, "kappa": None})
    with pytest.raises(MeasureError, match="kind: params say kind = 'mode'"):
        make_measure("von_mises", {"kind": "mode", "loc": 0.0, "kappa": 1.0})
    with pytest.raises(MeasureError, match="k = 2.5: expected an integer"):
        make_measure("mode", {"k": 2.5, "amplitude": 0.1})
    with pytest.raises(MeasureError, match=r"amplitude = 1.5: \|amplitude\| must be <= 1") as err:
        make_measure("mode", {"k": 1, "amplitude": 1.5})
    assert err.value.key == "amplitude" and "\n" not in str(err.value)
    with pytest.raises(MeasureError, match="stop.*empty or the whole circle"):
        make_measure("indicator", {"start": 1.0, "stop": 1.0 + TWO_PI})


# ------------------------------------------------------------------------------ files


def test_npy_grid_round_trip(tmp_path):
    n = 32
    x = TWO_PI * np.arange(n) / n
    np.save(tmp_path / "rho.npy", 3.0 * (1 + 0.5 * np.cos(x) + 0.2 * np.sin(2 * x)))
    density = make_measure("file", {"path": "rho.npy"}, base_dir=tmp_path)
    assert isinstance(density, GridDensity)
    # 1 + 0.5 cos x + 0.2 sin 2x: c_1 = 0.25, c_2 = 0.2 / (2i) = -0.1i
    np.testing.assert_allclose(density.fourier(4), [1.0, 0.25, -0.1j, 0.0], atol=1e-15)
    np.testing.assert_allclose(density.values(np.array([0.3])), 1 + 0.5 * np.cos(0.3)
                               + 0.2 * np.sin(0.6), atol=1e-14)
    assert density.min_value() == pytest.approx(
        1 + min(0.5 * np.cos(t) + 0.2 * np.sin(2 * t) for t in np.linspace(0, TWO_PI, 200001)),
        abs=1e-9)


def test_npy_positions_round_trip(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[0.5], [-1.0], [7.0]]))
    np.save(tmp_path / "w.npy", np.array([1.0, 1.0, 2.0]))
    atoms = make_measure("file", {"path": str(tmp_path / "x.npy"), "weights_path": "w.npy"},
                         base_dir=tmp_path)
    np.testing.assert_allclose(atoms.positions, [0.5, TWO_PI - 1.0, 7.0 - TWO_PI], atol=1e-15)
    np.testing.assert_allclose(atoms.weights, [0.25, 0.25, 0.5])
    plain = make_measure("file", {"path": str(tmp_path / "x.npy")})
    np.testing.assert_allclose(plain.weights, 1 / 3)


def test_result_nc_round_trip(tmp_path):
    n, times = 16, [0.0, 5.0, 1.0]  # the last snapshot is the latest time, wherever it is stored
    x = TWO_PI * np.arange(n) / n
    density = np.stack([1 + c * np.cos(x) for c in (0.5, 0.1, 0.3)])
    xr.Dataset({"density": (("snapshot_time", "x"), density)},
               coords={"snapshot_time": times, "x": x}).to_netcdf(tmp_path / "grid.nc",
                                                                  engine="h5netcdf")
    grid = make_measure("file", {"path": str(tmp_path / "grid.nc")})
    np.testing.assert_allclose(grid.fourier(3), [1.0, 0.05, 0.0], atol=1e-15)

    pos = np.array([[[0.1], [0.2]], [[1.0], [2.0]]])
    w = np.array([[0.5, 0.5], [0.3, 0.7]])
    xr.Dataset({"positions": (("snapshot_time", "particle", "coord"), pos),
                "weights": (("snapshot_time", "particle"), w)},
               coords={"snapshot_time": [0.0, 2.0]}).to_netcdf(tmp_path / "atoms.nc",
                                                               engine="h5netcdf")
    atoms = make_measure("file", {"path": str(tmp_path / "atoms.nc")})
    np.testing.assert_allclose(atoms.positions, [1.0, 2.0])
    np.testing.assert_allclose(atoms.weights, [0.3, 0.7])


@pytest.mark.parametrize("content, match", [
    (np.array([1.0, np.nan, 1.0]), "NaN or infinite"),
    (np.array([1.0, -0.5, 2.0]), "negative density values"),
    (np.zeros(8), "cannot be normalised"),
    (np.ones((4, 2)), r"shape \(4, 2\): expected grid values \(n,\) or particle positions \(N, 1\)"),
    (np.ones((2, 2, 2)), r"shape \(2, 2, 2\)"),
    (np.array(["a", "b"]), "expected real numbers"),
    (np.array([[np.nan], [1.0]]), "NaN or infinite positions"),
])
def test_bad_npy_files(tmp_path, content, match):
    np.save(tmp_path / "bad.npy", content)
    with pytest.raises(MeasureError, match=match) as err:
        make_measure("file", {"path": str(tmp_path / "bad.npy")})
    assert err.value.key == "path" and "\n" not in str(err.value)


def assert_measure_errors(cases, base_dir):
    for params, key, match in cases:
        with pytest.raises(MeasureError, match=match) as err:
            make_measure("file", params, base_dir=base_dir)
        assert err.value.key == key and "\n" not in str(err.value)


def test_unreadable_files(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not an array at all")
    (tmp_path / "data.csv").write_text("1,2,3")
    np.save(tmp_path / "grid.npy", np.ones(8))
    np.save(tmp_path / "x.npy", np.ones((3, 1)))
    np.save(tmp_path / "w.npy", np.array([1.0, -1.0, 1.0]))
    assert_measure_errors([
        ({"path": "missing.npy"}, "path", "is not a file"),
        ({"path": "junk.npy"}, "path", "cannot read junk.npy as a .npy array"),
        ({"path": "data.csv"}, "path", "unsupported file type '.csv'"),
        ({"path": "grid.npy", "weights_path": "w.npy"}, "weights_path", "only particle positions"),
        ({"path": "x.npy", "weights_path": "w.npy"}, "weights_path", "must be positive"),
        ({"path": "x.npy", "weights_path": "nowhere.npy"}, "weights_path", "is not a file"),
    ], tmp_path)


def test_unreadable_result_files(tmp_path):
    (tmp_path / "junk.nc").write_bytes(b"not netcdf either")
    xr.Dataset({"energy": ("time", [1.0])}).to_netcdf(tmp_path / "empty.nc", engine="h5netcdf")
    xr.Dataset({"positions": (("snapshot_time", "particle", "coord"), np.ones((1, 3, 2)))}).to_netcdf(
        tmp_path / "torus2.nc", engine="h5netcdf")
    np.save(tmp_path / "w.npy", np.ones(3))
    assert_measure_errors([
        ({"path": "junk.nc"}, "path", "cannot read junk.nc as NetCDF"),
        ({"path": "empty.nc"}, "path", "neither 'density' nor 'positions'"),
        ({"path": "torus2.nc"}, "path", r"positions of shape \(3, 2\).*expected \(N, 1\)"),
        ({"path": "empty.nc", "weights_path": "w.npy"}, "weights_path", "carries its own weights"),
    ], tmp_path)
