"""Measures, sampling and config on T^2 and T^3 (kmdflow.measures, d >= 2).

Expected values are derived independently of the code under test: FFTs of sampled values on a
fine grid, adaptive quadrature, closed forms written out here, lattice counts, empirical moments
of samples against exact Fourier coefficients, scipy's discrepancy.
"""

from __future__ import annotations

import tomllib
import warnings

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize
from scipy.stats import qmc

from kmdflow.cli import main
from kmdflow.domains.torus import grid_nd, resize_spectrum, to_fourier_nd
from kmdflow.experiments.config import ConfigError, load_config
from kmdflow.measures import (
    Atoms,
    Box,
    DensityND,
    GridDensityND,
    MeasureError,
    ModeND,
    PerturbationND,
    UniformND,
    VonMises,
    VonMisesND,
    make_measure,
    place_particles,
    trig,
)

TWO_PI = 2 * np.pi

KINDS = {
    2: {
        "uniform": ("uniform", {}),
        "mode": ("mode", {"k": [2, -3], "amplitude": -0.7}),
        "perturbation": ("perturbation", {"amplitude": 0.6, "decay": 1.5, "seed": 7, "modes": 10}),
        "von_mises": ("von_mises", {"loc": [1.0, 4.0], "kappa": 3.0}),
        "mixture": ("mixture", {"components": [
            (1.0, ("von_mises", {"loc": 2.0, "kappa": 2.0})),
            (3.0, ("mode", {"k": [1, 2], "amplitude": 0.5}))]}),
    },
    3: {
        "uniform": ("uniform", {}),
        "mode": ("mode", {"k": [1, -2, 3], "amplitude": 0.8}),
        "perturbation": ("perturbation", {"amplitude": 0.5, "decay": 2.0, "seed": 3, "modes": 4}),
        "von_mises": ("von_mises", {"loc": [1.0, 2.0, 5.0], "kappa": 2.0}),
        "mixture": ("mixture", {"components": [
            (1.0, ("von_mises", {"loc": 0.5, "kappa": 1.5})),
            (1.0, ("perturbation", {"amplitude": 0.9, "decay": 1.0, "seed": 1, "modes": 3}))]}),
    },
}
BOXES = {
    2: ("indicator", {"start": [5.0, 1.0], "stop": [1.0, 2.5], "floor": 0.2}),
    3: ("indicator", {"start": [0.5, 1.0, 4.0], "stop": [2.0, 2.5, 1.0], "floor": 0.0}),
}
SMOOTH_CASES = [(d, name) for d in (2, 3) for name in KINDS[d]]
ALL_CASES = SMOOTH_CASES + [(2, "box"), (3, "box")]


def build(dim, name):
    kind, params = BOXES[dim] if name == "box" else KINDS[dim][name]
    return make_measure(kind, params, dim=dim)


def grid_points(n, dim):
    return np.stack(grid_nd(n, dim), axis=-1)


def coefficient(layout, k, n):
    """``mu_hat(k)`` read from a one-sided layout (the mirror image for ``k_d < 0``)."""
    k = np.asarray(k)
    if k[-1] < 0:
        k = -k
        return np.conj(layout[tuple(np.mod(k[:-1], n)) + (k[-1],)])
    return layout[tuple(np.mod(k[:-1], n)) + (k[-1],)]


def moments_agree(x, layout, n, wavevectors, sigmas=4.0):
    """Empirical ``mean(exp(-i k.X))`` vs ``mu_hat(k)``, within ``sigmas`` standard errors."""
    for k in wavevectors:
        phase = x @ np.asarray(k, dtype=float)
        exact = coefficient(layout, k, n)
        for sample, target in ((np.cos(phase), exact.real), (np.sin(phase), -exact.imag)):
            error = sigmas * sample.std() / np.sqrt(sample.size) + 1e-12
            if abs(sample.mean() - target) > error:
                return False
    return True


# --------------------------------------------------------------- Fourier coefficients and mass


@pytest.mark.parametrize("dim, name", SMOOTH_CASES)
def test_fourier_nd_matches_fft_of_values(dim, name):
    density = build(dim, name)
    fine, small = (64, 16) if dim == 2 else (32, 8)  # fine grids far above every bandwidth used
    from_values = to_fourier_nd(density.values(grid_points(fine, dim)))
    exact = density.fourier_nd(small)
    assert exact.shape == (small,) * (dim - 1) + (small // 2 + 1,)
    np.testing.assert_allclose(exact, resize_spectrum(from_values, small), atol=1e-13)
    assert np.all(exact[..., small // 2] == 0) and np.all(exact[small // 2] == 0)  # Nyquist planes


def box_factor(k, a, b):
    """(1/2pi) int_arc e^{-ikx} dx over the arc from a counter-clockwise to b, by quadrature."""
    length = np.mod(b - a, TWO_PI)
    re = integrate.quad(lambda x: np.cos(k * x), a, a + length, epsabs=1e-14, limit=200)[0]
    im = integrate.quad(lambda x: -np.sin(k * x), a, a + length, epsabs=1e-14, limit=200)[0]
    return (re + 1j * im) / TWO_PI


@pytest.mark.parametrize("dim", [2, 3])
def test_box_fourier_values_and_level(dim):
    _, params = BOXES[dim]
    box = build(dim, "box")
    a, b, floor = np.array(params["start"]), np.array(params["stop"]), params["floor"]
    lengths = np.mod(b - a, TWO_PI)
    level = floor + (1 - floor) * TWO_PI ** dim / np.prod(lengths)
    assert box.level == pytest.approx(level, rel=1e-14)
    assert (box.min_value(), box.max_value(), box.regularity()) == (floor, pytest.approx(level), 0.5)
    n = 8
    layout = box.fourier_nd(n)
    for k in [(0,) * dim, (1,) + (0,) * (dim - 1), (2, -1) + (3,) * (dim - 2), (-3,) + (1,) * (dim - 1)]:
        expected = (level - floor) * np.prod([box_factor(ki, ai, bi) for ki, ai, bi in zip(k, a, b)])
        expected += floor if not any(k) else 0.0
        assert coefficient(layout, k, n) == pytest.approx(expected, abs=1e-13), k
    inside = np.mod(a + 0.5 * lengths, TWO_PI)
    outside = np.mod(a - 0.1, TWO_PI)
    assert box.values(inside) == pytest.approx(level)
    assert box.values(outside) == floor


@pytest.mark.parametrize("dim, name", ALL_CASES)
def test_mass_is_one(dim, name):
    density = build(dim, name)
    assert density.fourier_nd(8).flat[0] == pytest.approx(1.0, abs=1e-15)
    assert density.dim == dim and isinstance(density, DensityND)
    if name != "box":  # the trapezoid rule is exact for band-limited data (to round-off)
        assert density.values(grid_points(32, dim)).mean() == pytest.approx(1.0, abs=1e-12)


def test_grid_density_round_trip_keeps_nyquist_content(tmp_path):
    n = 16
    x, y = grid_nd(n, 2)
    data = 3.0 * (1 + 0.4 * np.cos(x) * np.sin(2 * y) + 0.1 * np.cos(8 * x) + 0.05 * np.cos(8 * y))
    np.save(tmp_path / "rho.npy", data)
    density = make_measure("file", {"path": "rho.npy"}, base_dir=tmp_path, dim=2)
    assert isinstance(density, GridDensityND) and density.regularity() is None
    np.testing.assert_allclose(density.values(np.stack([x, y], -1)), data / 3.0, atol=1e-14)
    layout = density.fourier_nd(n)
    assert coefficient(layout, (1, 2), n) == pytest.approx(0.4 / (4j), abs=1e-15)
    assert coefficient(layout, (1, -2), n) == pytest.approx(-0.4 / (4j), abs=1e-15)
    assert np.all(layout[n // 2] == 0)  # the Nyquist plane of the layout
    bigger = density.fourier_nd(2 * n)  # the interpolant shares cos(8x) between k = +-8
    assert coefficient(bigger, (8, 0), 2 * n) == pytest.approx(0.05, abs=1e-15)

    def closed_form(p):  # the interpolant is this trigonometric polynomial itself
        return 1 + 0.4 * np.cos(p[..., 0]) * np.sin(2 * p[..., 1]) + 0.1 * np.cos(8 * p[..., 0]) \
            + 0.05 * np.cos(8 * p[..., 1])

    fine = grid_points(512, 2)
    start = fine.reshape(-1, 2)[np.argmin(closed_form(fine))]
    lowest = optimize.minimize(closed_form, start, method="Nelder-Mead",
                               options={"xatol": 1e-10, "fatol": 1e-15}).fun
    assert density.min_value() == pytest.approx(lowest, abs=1e-10)


# -------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("method", ["random", "sobol"])
@pytest.mark.parametrize("dim, name", ALL_CASES)
def test_samples_reproduce_the_fourier_coefficients(dim, name, method):
    density = build(dim, name)
    x = density.sample(2000, 11, method)
    assert x.shape == (2000, dim) and np.all((x >= 0) & (x < TWO_PI))
    n = 8
    layout = density.fourier_nd(n)
    ks = [(1, 0), (0, 1), (1, 1), (1, -1), (2, -3), (1, 2)] if dim == 2 else \
        [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, -2, 3), (1, 1, -1)]
    assert moments_agree(x, layout, n, ks)
    np.testing.assert_array_equal(x, density.sample(2000, 11, method))  # reproducible


def test_moment_check_has_power():
    density = build(2, "mode")  # 1 - 0.7 cos(2x - 3y): uniform samples must fail
    uniform = UniformND(2).sample(2000, 0, "random")
    assert not moments_agree(uniform, density.fourier_nd(8), 8, [(2, -3)])


def test_conditional_inverse_solves_the_conditional_cdfs():
    density = build(2, "perturbation")
    u = np.array([[0.1, 0.9], [0.5, 0.5], [0.93, 0.02]])
    x = density.transform(u)
    y = TWO_PI * np.arange(64) / 64  # trapezoid on 64 points: exact for |k| <= 10

    def marginal(s):
        return density.values(np.column_stack([np.full(64, s), y])).mean()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for (u1, u2), (x1, x2) in zip(u, x):
            first = integrate.quad(marginal, 0.0, x1, epsabs=1e-13, limit=200)[0] / TWO_PI
            def line(t, x1=x1):
                return float(density.values(np.array([x1, t])))

            second = integrate.quad(line, 0.0, x2, epsabs=1e-13, limit=200)[0] / (TWO_PI * marginal(x1))
            assert first == pytest.approx(u1, abs=1e-10)
            assert second == pytest.approx(u2, abs=1e-10)


def test_product_transform_is_the_inverse_cdf_per_axis():
    density = VonMisesND((1.0, 5.0, 3.0), 4.0)
    u = qmc.Sobol(3, seed=1).random(64)
    x = density.transform(u)
    for i, loc in enumerate(density.loc):
        np.testing.assert_allclose(VonMises(loc, 4.0).cdf(x[:, i]), u[:, i], atol=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_sobol_points_have_lower_discrepancy(dim):
    uniform = UniformND(dim)
    sobol = qmc.discrepancy(uniform.sample(1024, 5, "sobol") / TWO_PI)
    random = qmc.discrepancy(uniform.sample(1024, 5, "random") / TWO_PI)
    assert sobol < 0.2 * random


def test_mixture_spends_one_uniform_on_the_component():
    density = build(2, "mixture")
    assert density.n_uniforms == 3
    u = np.array([[0.2, 0.3, 0.4], [0.9, 0.3, 0.4]])  # weights 1/4 (von Mises), 3/4 (mode)
    x = density.transform(u)
    np.testing.assert_array_equal(x[0], density.components[0].transform(u[:1, 1:])[0])
    np.testing.assert_array_equal(x[1], density.components[1].transform(u[1:, 1:])[0])


def test_box_samples_stay_in_the_box_without_floor():
    box = build(3, "box")
    x = box.sample(4096, 2, "sobol")
    assert np.all(box.values(x) == box.level)


def test_place_particles_in_two_dimensions():
    density = build(2, "von_mises")
    atoms = place_particles(density, 256, "sobol", 4)
    assert isinstance(atoms, Atoms) and atoms.positions.shape == (256, 2) and atoms.dim == 2
    np.testing.assert_allclose(atoms.weights, 1 / 256, rtol=1e-15)
    np.testing.assert_array_equal(atoms.positions, density.sample(256, 4, "sobol"))
    other = place_particles(density, 256, "random", 4)
    assert not np.allclose(other.positions, atoms.positions)
    with pytest.raises(MeasureError, match="'quantile' is for d = 1 only.*'random' or 'sobol'") as err:
        place_particles(density, 10, "quantile")
    assert err.value.key == "placement"


def test_nufft_and_direct_evaluation_agree(monkeypatch):
    series = build(2, "perturbation").series
    x = np.random.default_rng(0).uniform(-10, 10, (3000, 2))
    monkeypatch.setattr(trig, "DIRECT_WORK", 0)
    assert series._use_nufft(x.shape[0])
    fast = series.evaluate(x)
    monkeypatch.setattr(trig, "DIRECT_WORK", 10**12)
    assert not series._use_nufft(x.shape[0])
    np.testing.assert_allclose(fast, series.evaluate(x), atol=1e-12)


# ---------------------------------------------------------------------------- perturbation


def lattice_ball(radius, dim):
    r = np.arange(-radius, radius + 1)
    k = np.stack(np.meshgrid(*[r] * dim, indexing="ij"), -1).reshape(-1, dim)
    norm2 = (k ** 2).sum(1)
    return k[(norm2 >= 1) & (norm2 <= radius ** 2)]


@pytest.mark.parametrize("dim, modes", [(2, 9), (3, 4)])
def test_perturbation_spectrum_phases_and_normalisation(dim, modes):
    amplitude, decay, seed = 0.7, 1.25, 5
    density = PerturbationND(amplitude, decay, seed, modes, dim)
    n = 2 * modes + 2
    layout = density.fourier_nd(n)
    ball = lattice_ball(modes, dim)
    stored = [k for k in ball if k[-1] >= 0]
    assert np.count_nonzero(layout) == len(stored) + 1  # k = 0 and the ball, nothing else
    size = np.array([abs(coefficient(layout, k, n)) for k in ball])
    norms = np.sqrt((ball ** 2).sum(1))
    np.testing.assert_allclose(size * norms ** decay, amplitude / (2 * density.g_sup), rtol=1e-12)
    # the first phases go, in order, to the unit vectors with the first non-zero entry last
    phases = np.random.default_rng(seed).uniform(0, TWO_PI, len(ball) // 2)
    units = [tuple(int(i == j) for j in range(dim)) for i in range(dim - 1, -1, -1)]
    for phase, k in zip(phases, units):
        assert np.angle(coefficient(layout, k, n)) == pytest.approx(np.angle(np.exp(1j * phase)))
    assert density.regularity() == decay - dim / 2


def test_perturbation_does_not_depend_on_the_grid_or_on_more_modes():
    small = PerturbationND(0.4, 2.0, 1, 6, 2)
    large = PerturbationND(0.4, 2.0, 1, 10, 2)
    a, b = small.fourier_nd(16), small.fourier_nd(64)
    np.testing.assert_array_equal(a, resize_spectrum(b, 16))
    np.testing.assert_array_equal(a, PerturbationND(0.4, 2.0, 1, 6, 2).fourier_nd(16))
    ratio = np.array([coefficient(large.fourier_nd(32), k, 32) / coefficient(small.fourier_nd(32), k, 32)
                      for k in lattice_ball(6, 2)])
    np.testing.assert_allclose(ratio, small.g_sup / large.g_sup, rtol=1e-12)  # same phases


@pytest.mark.parametrize("dim, modes", [(2, 12), (3, 3)])
def test_perturbation_sup_norm_is_the_amplitude(dim, modes):
    amplitude = 0.8
    density = PerturbationND(amplitude, 1.0, 2, modes, dim)
    n = 256 if dim == 2 else 48
    points = grid_points(n, dim).reshape(-1, dim)
    dev = np.abs(density.values(points) - 1)
    assert dev.max() <= amplitude * (1 + 1e-12)
    start = points[np.argmax(dev)]
    res = optimize.minimize(lambda y: -abs(float(density.values(y)) - 1), start, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 4000})
    assert -res.fun == pytest.approx(amplitude, abs=1e-9)
    assert max(1 - density.min_value(), density.max_value() - 1) == pytest.approx(amplitude, abs=1e-12)


# ------------------------------------------------------------------------ extrema, regularity


@pytest.mark.parametrize("dim, name", SMOOTH_CASES)
def test_min_max_against_dense_sampling(dim, name):
    density = build(dim, name)
    n = 96 if dim == 2 else 32
    points = grid_points(n, dim).reshape(-1, dim)
    v = density.values(points)
    lo, hi = density.min_value(), density.max_value()
    assert lo <= v.min() + 1e-12 and hi >= v.max() - 1e-12
    for sign, reported in ((1.0, lo), (-1.0, hi)):  # polish the best sample independently
        res = optimize.minimize(lambda y, sign=sign: sign * float(density.values(y)), points[np.argmin(sign * v)],
                                method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14,
                                                               "maxiter": 4000})
        assert reported == pytest.approx(sign * res.fun, rel=1e-9, abs=1e-12)


def test_mixture_with_a_box_extrema():
    box = {"start": [5.0, 1.0], "stop": [1.0, 2.5], "floor": 0.0}
    mixed = make_measure("mixture", {"components": [(1.0, ("indicator", box)),
                                                    (1.0, ("mode", {"k": [1, 0], "amplitude": 0.6}))]},
                         dim=2)
    level = TWO_PI ** 2 / ((1.0 + TWO_PI - 5.0) * 1.5)
    # cos(x_1) peaks at x_1 = 0, inside the box's first arc; its minimum x_1 = pi is outside
    assert mixed.max_value() == pytest.approx(0.5 * level + 0.5 * 1.6, rel=1e-9)
    assert mixed.min_value() == pytest.approx(0.5 * 0.4, rel=1e-9)
    inside = np.mean(mixed.components[0].values(mixed.sample(4000, 1, "sobol")) > 0)
    # mass of the box: 1/2 (the box part) + 1/2 int_box (1 + 0.6 cos x_1) dx / (2 pi)^2
    mode_mass = 1.5 * ((1.0 + TWO_PI - 5.0) + 0.6 * (np.sin(1.0) - np.sin(5.0))) / TWO_PI ** 2
    assert inside == pytest.approx(0.5 + 0.5 * mode_mass, abs=0.01)


def test_closed_form_extrema_and_regularity():
    mode = ModeND((3, 1), -0.4)
    assert (mode.min_value(), mode.max_value(), mode.regularity()) == (0.6, 1.4, np.inf)
    vm = VonMisesND((0.0, 1.0), 2.0)
    one = VonMises(0.0, 2.0)
    assert vm.max_value() == pytest.approx(one.max_value() ** 2)
    assert vm.min_value() == pytest.approx(one.min_value() ** 2)
    assert UniformND(3).regularity() == np.inf and vm.regularity() == np.inf
    assert build(2, "mixture").regularity() == np.inf
    wavy = {"amplitude": 0.3, "decay": 2.5, "seed": 0, "modes": 4}
    mixed = make_measure("mixture", {"components": [(1.0, ("perturbation", wavy)),
                                                    (1.0, ("indicator", {"start": 0, "stop": 3}))]},
                         dim=3)
    assert mixed.regularity() == 0.5 and Box((0, 0), (1, 1)).regularity() == 0.5
    assert make_measure("perturbation", {"amplitude": 0.1, "decay": 2.5, "seed": 0, "modes": 5},
                        dim=2).regularity() == 1.5


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-4, 4), min_size=2, max_size=3).filter(any), st.floats(-1, 1))
def test_mode_has_exactly_two_coefficients(k, amplitude):
    density = ModeND(tuple(k), amplitude)
    layout = density.fourier_nd(10)
    expected = np.zeros_like(layout)
    expected.flat[0] = 1
    for sign in (1, -1):  # 1 + a cos(k.x) = 1 + a/2 e^{ik.x} + a/2 e^{-ik.x}; stored: last entry >= 0
        v = sign * np.array(k)
        if v[-1] >= 0:
            expected[tuple(np.mod(v[:-1], 10)) + (v[-1],)] += amplitude / 2
    np.testing.assert_allclose(layout, expected, atol=1e-16)
    x = np.random.default_rng(0).uniform(0, TWO_PI, (5, len(k)))
    np.testing.assert_allclose(density.values(x), 1 + amplitude * np.cos(x @ np.array(k)), atol=1e-14)


# ----------------------------------------------------------------------------- atoms, files


def test_atoms_in_two_dimensions():
    x = np.random.default_rng(1).uniform(0, TWO_PI, (50, 2))
    w = np.random.default_rng(2).uniform(0.5, 1.5, 50)
    atoms = make_measure("particles", {"positions": (x - TWO_PI).tolist(), "weights": w}, dim=2)
    np.testing.assert_allclose(atoms.positions, x, atol=1e-14)
    np.testing.assert_allclose(atoms.weights, w / w.sum())
    n = 8
    layout = atoms.fourier_nd(n)
    for k in [(0, 0), (1, 0), (3, 2), (-2, 1), (1, -3)]:
        direct = np.sum(atoms.weights * np.exp(-1j * (atoms.positions @ np.array(k))))
        assert coefficient(layout, k, n) == pytest.approx(direct, abs=1e-12)
    assert np.all(layout[n // 2] == 0) and np.all(layout[:, n // 2] == 0)
    with pytest.raises(MeasureError, match="fourier_nd"):
        atoms.fourier(4)


def test_npy_and_result_files_in_two_dimensions(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[0.5, 1.0], [-1.0, 7.0], [2.0, 3.0]]))
    np.save(tmp_path / "w.npy", np.array([1.0, 1.0, 2.0]))
    atoms = make_measure("file", {"path": "x.npy", "weights_path": "w.npy"}, base_dir=tmp_path, dim=2)
    np.testing.assert_allclose(atoms.positions, [[0.5, 1.0], [TWO_PI - 1, 7 - TWO_PI], [2.0, 3.0]])
    np.testing.assert_allclose(atoms.weights, [0.25, 0.25, 0.5])
    n = 8
    x, y = grid_nd(n, 2)
    density = np.stack([1 + c * np.cos(x + y) for c in (0.5, 0.2)])
    xr.Dataset({"density": (("snapshot_time", "x", "y"), density)},
               coords={"snapshot_time": [0.0, 1.0]}).to_netcdf(tmp_path / "grid.nc", engine="h5netcdf")
    grid = make_measure("file", {"path": "grid.nc"}, base_dir=tmp_path, dim=2)
    assert coefficient(grid.fourier_nd(n), (1, 1), n) == pytest.approx(0.1, abs=1e-15)
    pos = np.random.default_rng(0).uniform(0, TWO_PI, (2, 4, 2))
    xr.Dataset({"positions": (("snapshot_time", "particle", "coord"), pos),
                "weights": (("snapshot_time", "particle"), np.full((2, 4), 0.25))},
               coords={"snapshot_time": [0.0, 2.0]}).to_netcdf(tmp_path / "atoms.nc", engine="h5netcdf")
    np.testing.assert_allclose(make_measure("file", {"path": "atoms.nc"}, base_dir=tmp_path,
                                            dim=2).positions, pos[1])
    for name, dim in (("grid.nc", 3), ("atoms.nc", 3), ("x.npy", 3)):
        with pytest.raises(MeasureError) as err:
            make_measure("file", {"path": name}, base_dir=tmp_path, dim=dim)
        message = str(err.value)
        assert err.value.key == "path" and ("(N, 3)" in message or "(n,) * 3" in message), message
    cfg = load_config({"domain": {"dim": 2}, "initial": {"kind": "file", "path": "atoms.nc"},
                       "method": {"kind": "particles"}, "energy": {"s": 1.5}}, base_dir=tmp_path)
    assert cfg.method.n == 4
    with pytest.raises(ConfigError, match="2 coordinates; d = 3 needs 3") as err:
        load_config({"domain": {"dim": 3}, "initial": {"kind": "file", "path": "atoms.nc"},
                     "method": {"kind": "particles"}, "energy": {"s": 2.0}}, base_dir=tmp_path)
    assert err.value.key == "initial.path"
    with pytest.raises(ConfigError, match="density on 2 axes") as err:
        load_config({"domain": {"dim": 1}, "initial": {"kind": "file", "path": "grid.nc"}},
                    base_dir=tmp_path)


@pytest.mark.parametrize("kind, params, dim, key, match", [
    ("mode", {"k": [1, 2, 3], "amplitude": 0.5}, 2, "k", "list of 2 integers"),
    ("mode", {"k": [0, 0], "amplitude": 0.5}, 2, "k", "must not be zero"),
    ("mode", {"k": 1, "amplitude": 0.5}, 3, "k", "list of 3 integers"),
    ("von_mises", {"loc": [1.0, 2.0], "kappa": 1.0}, 3, "loc", "3 numbers"),
    ("indicator", {"start": [0.0, 1.0], "stop": [1.0, 1.0]}, 2, "stop[1]", "empty or the whole"),
    ("particles", {"positions": [[0.1, 0.2, 0.3]]}, 2, "positions", "2 numbers each"),
    ("perturbation", {"amplitude": 0.1, "decay": 1.0, "seed": 0, "modes": 65}, 3, "modes", "at most"),
    ("uniform", {}, 4, "dim", "must be 1, 2 or 3"),
])
def test_make_measure_errors_name_the_key(kind, params, dim, key, match):
    with pytest.raises(MeasureError, match=match) as err:
        make_measure(kind, params, dim=dim)
    assert err.value.key == key and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------- config


CONFIGS = {
    2: {"domain": {"dim": 2}, "energy": {"s": 1.5},
        "initial": {"kind": "mixture", "components": [
            {"weight": 1.0, "kind": "von_mises", "loc": [1.0, 2.0], "kappa": 3.0},
            {"weight": 2.0, "kind": "indicator", "start": [0.0, 1.0], "stop": 3.0, "floor": 0.1}]},
        "target": {"kind": "mode", "k": [1, -1], "amplitude": 0.2},
        "method": {"kind": "spectral", "n": 64}},
    3: {"domain": {"dim": 3}, "energy": {"s": 2.0},
        "initial": {"kind": "particles", "positions": [[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]]},
        "target": {"kind": "perturbation", "modes": 5},
        "method": {"kind": "particles", "placement": "random", "seed": 4}},
}


@pytest.mark.parametrize("dim", [2, 3])
def test_config_round_trip_and_measures(dim):
    cfg = load_config(CONFIGS[dim])
    assert cfg.domain.dim == dim
    again = load_config(tomllib.loads(cfg.to_toml()))
    assert again == cfg and again.hash() == cfg.hash()
    for spec in (cfg.initial, cfg.target):
        measure = make_measure(spec.kind, spec.params, dim=dim)
        assert measure.dim == dim
    defaults = load_config({"domain": {"dim": dim}, "initial": {"kind": "mode"}})
    assert defaults.method.placement == "sobol"
    assert defaults.initial.params["k"] == (1,) + (0,) * (dim - 1)
    assert defaults.method.n == (512 if dim == 2 else 128)
    assert load_config({"initial": {"kind": "mode"}}).method.placement == "quantile"


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, key", [
    ('[domain]\ndim = 2\n[initial]\nkind = "mode"\nk = [1, 2, 3]\n', "initial.k"),
    ('[domain]\ndim = 3\n[initial]\nkind = "mode"\nk = 2\n', "initial.k"),
    ('[domain]\ndim = 3\n[initial]\nkind = "von_mises"\nloc = [1.0, 2.0]\n', "initial.loc"),
    (('[domain]\ndim = 2\n[energy]\ns = 1.5\n[initial]\nkind = "particles"\n'
      'positions = [[0.5, 1.0], [1.0]]\n[method]\nkind = "particles"\n'), "initial.positions[1]"),
    (('[domain]\ndim = 2\n[energy]\ns = 1.5\n[initial]\nkind = "uniform"\n'
      '[method]\nkind = "particles"\nplacement = "quantile"\n'), "method.placement"),
    ('[domain]\ndim = 3\n[initial]\nkind = "uniform"\n[method]\nn = 512\n', "method.n"),
    ('[domain]\ndim = 2\n[initial]\nkind = "uniform"\n[method]\nn = 2048\n', "method.n"),
    ('[domain]\ndim = 2\n[initial]\nkind = "indicator"\nstart = [0.0, 1.0]\nstop = [1.0, 1.0]\n',
     "initial.stop"),
    ('[domain]\ndim = 3\n[initial]\nkind = "perturbation"\nmodes = 100\n', "initial.modes"),
    ('[domain]\ndim = 2\n[energy]\ns = 1.0\n[initial]\nkind = "uniform"\n[method]\nkind = "particles"\n',
     "energy.s"),
    ('[domain]\ndim = 4\n[initial]\nkind = "uniform"\n', "domain.dim"),
    (('[domain]\ndim = 2\n[initial]\nkind = "mixture"\n[[initial.components]]\nweight = 1.0\n'
      'kind = "mode"\nk = [1]\n'), "initial.components[0].k"),
])
def test_bad_dimension_configs_exit_2_with_one_line(tmp_path, capsys, text, key):
    path = write(tmp_path, text)
    with pytest.raises(SystemExit) as exc:
        main(["check", str(path)])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}") and "Traceback" not in err


def test_config_and_measures_share_the_limits():
    from kmdflow.experiments.config_schema import MAX_PERTURBATION_MODES
    from kmdflow.measures.analytic_nd import MAX_MODES_ND

    for dim, limit in MAX_MODES_ND.items():
        assert MAX_PERTURBATION_MODES[dim] == limit
        load_config({"domain": {"dim": dim}, "initial": {"kind": "perturbation", "modes": limit}})
        with pytest.raises(MeasureError, match="at most"):
            PerturbationND(0.1, 1.0, 0, limit + 1, dim)
