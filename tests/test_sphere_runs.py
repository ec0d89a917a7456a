"""Runs on the sphere from configs: ReLU kernel, WFR particles, spectral circle, network GD and SGD."""

from __future__ import annotations

import numpy as np
import pytest

from kmdflow.domains import sphere
from kmdflow.experiments.build import build_problem
from kmdflow.experiments.config import ConfigError, load_config
from kmdflow.experiments.run import run_config
from kmdflow.kernels.relu import ReluKernel, ZonalMeasure, population_loss
from kmdflow.network import gradient_descent

PERTURBED = {"kind": "perturbation", "amplitude": 0.3, "decay": 2.0, "modes": 32, "seed": 1}


def circle(method: dict, t_end: float = 2.0, n_saves: int = 11, **tables) -> dict:
    return {"domain": {"kind": "sphere", "dim": 1}, "initial": PERTURBED, "method": method,
            "time": {"t_end": t_end, "n_saves": n_saves, "spacing": "linear", "rtol": 1e-10}, **tables}


# -- the loader ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_sphere_defaults_are_the_network_case(dim):
    config = load_config({"domain": {"kind": "sphere", "dim": dim}, "initial": {"kind": "uniform"},
                          "method": {"kind": "particles", "n": 8}})
    assert config.energy.kernel == "relu" and config.energy.s == (dim + 3) / 2
    assert (config.geometry.kind, config.geometry.alpha, config.geometry.beta) == ("wfr", 2.0, 1.0)
    assert config.method.placement == ("quantile" if dim == 1 else "random")
    assert load_config(config.to_dict()) == config and load_config(config.to_dict()).hash() == config.hash()


def test_circle_von_mises_direction_is_its_angle():
    """On the circle loc may be a 2-vector: the same run as its angle (stored resolved)."""
    runs = []
    for loc in ([0.0, 2.0], 0.5 * np.pi):
        cfg = circle({"kind": "particles", "n": 64}, initial={"kind": "von_mises", "loc": loc, "kappa": 1.5})
        assert load_config(cfg).initial.params["loc"] == pytest.approx(0.5 * np.pi)
        runs.append(run_config(cfg)["energy"].values)
    assert np.array_equal(*runs)
    summary = build_problem(load_config(circle({"kind": "particles", "n": 8}))).summation
    assert summary == "sorted"


BAD_SPHERE = [
    ({"method": {"kind": "spectral"}, "domain": {"kind": "sphere", "dim": 2}}, "method.kind", "circle"),
    ({"method": {"kind": "particles", "placement": "sobol"}}, "method.placement", "quantile"),
    ({"method": {"kind": "particles", "summation": "nufft"}}, "method.summation", "sorted"),
    ({"method": {"kind": "particles", "summation": "sorted"}, "domain": {"kind": "sphere", "dim": 2}},
     "method.summation", "the circle only"),
    ({"method": {"kind": "particles", "batch": 8}}, "method.batch", "network"),
    ({"method": {"kind": "particles", "modes": 8}}, "method.modes", "T\\^2"),
    ({"method": {"kind": "network", "dt": 0.1}, "geometry": {"kind": "wasserstein"}}, "geometry", "alpha = 2"),
    ({"method": {"kind": "network", "dt": 0.1}, "geometry": {"alpha": 1.0}}, "geometry", "alpha = 2"),
    ({"domain": {"kind": "sphere", "dim": 2}, "initial": {"kind": "von_mises", "loc": [1.0, 0.0]}},
     "initial.loc", "3 numbers"),
    ({"domain": {"kind": "sphere", "dim": 2},
      "initial": {"kind": "particles", "positions": [[1.0, 0.0, 0.0], [0.0, 0.0]]}},
     "initial.positions[1]", "3 numbers"),
    ({"initial": {"kind": "particles", "positions": [[0.0, 0.0]]}}, "initial.positions[0]", "zero vector"),
]


@pytest.mark.parametrize("tables, key, pattern", BAD_SPHERE, ids=[b[1] + str(i) for i, b in enumerate(BAD_SPHERE)])
def test_bad_sphere_configs_name_the_key(tables, key, pattern):
    raw = {"domain": {"kind": "sphere", "dim": 1}, "initial": {"kind": "uniform"}, **tables}
    with pytest.raises(ConfigError, match=pattern) as err:
        load_config(raw)
    assert err.value.key == key and "\n" not in str(err.value)


@pytest.mark.parametrize("method, key", [({"kind": "network"}, "method.dt"),
                                         ({"kind": "network", "dt": 0.1, "batch": 4, "integrator": "rk4"},
                                          "method.integrator"),
                                         ({"kind": "particles", "integrator": "etdrk4"}, "method.integrator")])
def test_build_errors_name_the_key(method, key):
    with pytest.raises(ConfigError) as err:
        build_problem(load_config(circle(method)))
    assert err.value.key == key


# -- three discretisations of one flow on the circle ---------------------------------------------
def test_particles_spectral_and_network_agree_on_the_circle():
    """WFR particles (m = 2048) vs spectral (n = 256): the same loss to 1e-6; GD with lr = 0.01 is the
    Euler scheme of the flow, its gap O(lr); with the Wasserstein geometry the mass is conserved."""
    loss = {}
    for name, method in {"particles": {"kind": "particles", "n": 2048},
                         "spectral": {"kind": "spectral", "n": 256},
                         "gd": {"kind": "network", "n": 2048, "dt": 0.01}}.items():
        ds = run_config(circle(method))
        assert ds.attrs["status"] == "completed"
        loss[name] = ds["energy"].values
        assert np.all(np.diff(loss[name]) < 0)
        if "positions" in ds:
            norms = np.linalg.norm(ds["positions"].values, axis=-1)
            assert np.max(np.abs(norms - 1)) < 1e-12 and np.all(ds["weights"].values > 0)
    assert np.max(np.abs(loss["particles"] / loss["spectral"] - 1)) < 1e-6
    gap = np.max(np.abs(loss["gd"] / loss["particles"] - 1))
    assert 1e-5 < gap < 0.02  # O(lr), and not zero (a different scheme)
    ds = run_config(circle({"kind": "particles", "n": 256}, geometry={"kind": "wasserstein"}))
    assert np.ptp(ds["mass"].values) < 1e-12 and ds["energy"].values[-1] < ds["energy"].values[0]


def test_network_run_is_gradient_descent_exactly():
    """method.kind = "network" steps (a, w) <- (a, w) - dt m grad L: the Python API gives the same network."""
    dt, steps, width = 0.05, 20, 64
    ds = run_config(circle({"kind": "network", "n": width, "dt": dt}, t_end=dt * steps, n_saves=5))
    problem = build_problem(load_config(circle({"kind": "network", "n": width, "dt": dt}, t_end=dt * steps)))
    start = problem.flow.network(problem.flow.initial_state())
    target = ZonalMeasure.uniform(ReluKernel(1))
    net, times, losses = gradient_descent(ReluKernel(1), start, target, lr=dt, steps=steps, record_every=steps)
    theta, weights = net.measure()
    assert np.allclose(ds["positions"].values[-1], theta, atol=1e-12, rtol=0)
    assert np.allclose(ds["weights"].values[-1], weights, atol=1e-14, rtol=1e-12)
    assert ds["energy"].values[-1] == pytest.approx(losses[-1], rel=1e-10)
    assert ds["time"].values[-1] == pytest.approx(times[-1])


def test_network_save_times_are_whole_steps():
    problem = build_problem(load_config(circle({"kind": "network", "n": 8, "dt": 0.3}, t_end=2.0, n_saves=9)))
    steps = problem.times / 0.3
    assert np.allclose(steps, np.round(steps)) and problem.times[-1] == pytest.approx(2.1)
    assert any("whole steps" in note for note in problem.notes)


def test_sgd_run_is_reproducible_resumable_and_tracks_gd(tmp_path):
    """Minibatch SGD: the same seed gives the same run; a run stopped and resumed ends identically; its
    loss stays within a few times its own noise of the population GD curve."""
    cfg = circle({"kind": "network", "n": 128, "dt": 0.02, "batch": 64, "seed": 3}, t_end=2.0, n_saves=6)
    first, second = run_config(cfg), run_config(cfg)
    assert np.array_equal(first["energy"].values, second["energy"].values)
    calls = {"n": 0}

    def stop_after_40_steps():  # mid-interval: between two save times
        calls["n"] += 1
        return calls["n"] == 40

    from kmdflow.experiments import run as run_module

    class Stopper:
        def __init__(self, enabled):
            pass

        def __enter__(self):
            return stop_after_40_steps

        def __exit__(self, *exc):
            return False

    original = run_module._StopOnSignal
    run_module._StopOnSignal = Stopper
    try:
        partial = run_config(cfg, tmp_path / "run")
    finally:
        run_module._StopOnSignal = original
    assert partial.attrs["status"] == "interrupted"
    resumed = run_config(cfg, tmp_path / "run", resume=True)
    assert resumed.attrs["status"] == "completed"
    assert np.array_equal(resumed["energy"].values, first["energy"].values)
    gd = run_config(circle({"kind": "network", "n": 128, "dt": 0.02, "seed": 3}, t_end=2.0, n_saves=6))
    others = [run_config(circle({"kind": "network", "n": 128, "dt": 0.02, "batch": 64, "seed": seed},
                                t_end=2.0, n_saves=6))["energy"].values for seed in range(4, 8)]
    spread = np.std(np.array(others + [first["energy"].values]), axis=0)[1:]
    deviation = np.abs(first["energy"].values - gd["energy"].values)[1:]
    assert np.all(deviation <= 4 * spread + 1e-3 * gd["energy"].values[1:])


# -- the loss exponent on the circle --------------------------------------------------------------
def test_loss_exponent_matches_minus_r_plus_2_on_the_circle():
    """Uniform teacher, perturbation with decay a: fitted exponent vs -(r* + 2), r* = a - 1/2."""
    ds = run_config({"domain": {"kind": "sphere"},
                     "initial": {"kind": "perturbation", "amplitude": 0.05, "decay": 2.0, "modes": 511},
                     "method": {"kind": "spectral", "n": 1024}, "time": {"t_end": 1e5}})
    assert ds.attrs["predicted_rate"] == -3.5
    assert abs(ds.attrs["fitted_rate"] / -3.5 - 1) < 0.05


# -- S^2 and S^3: teacher neurons, von Mises-Fisher teachers, files ------------------------------
def test_s2_particles_learn_teacher_neurons_and_keep_the_dissipation_identity():
    teacher = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, -1.0]]
    cfg = {"domain": {"kind": "sphere", "dim": 2}, "initial": {"kind": "uniform"},
           "target": {"kind": "particles", "positions": teacher, "weights": [1.0, 2.0, 1.0]},
           "method": {"kind": "particles", "n": 200, "seed": 2},
           "time": {"t_end": 4.0, "n_saves": 401, "spacing": "linear", "rtol": 1e-10}}
    ds = run_config(cfg)
    e, t = ds["energy"].values, ds["time"].values
    assert np.all(np.diff(e) < 0) and e[-1] < 0.5 * e[0]
    assert ds["mass"].values[-1] > 2.0  # the WFR flow grows the mass 1 towards the teacher's 4
    # dE/dt = -D: the trapezoid rule on the saved dissipation integrates the loss drop
    drop = e[0] - e[-1]
    integral = np.sum(0.5 * (ds["dissipation"].values[1:] + ds["dissipation"].values[:-1]) * np.diff(t))
    assert integral == pytest.approx(drop, rel=1e-4)
    # the loss of the final measure, recomputed by dense kernel matrices
    positions, weights = ds["positions"].values[-1], ds["weights"].values[-1]
    y = sphere.retract(np.array(teacher))
    reference = population_loss(ReluKernel(2), positions, weights, (y, np.array([1.0, 2.0, 1.0])))
    assert e[-1] == pytest.approx(reference, rel=1e-10)


def test_s3_von_mises_fisher_teacher_and_file_input(tmp_path):
    """The loss with a von Mises-Fisher teacher matches the dense reference; a result.nc and an .npy of
    unit vectors (with weights) restart the run where it ended."""
    cfg = {"domain": {"kind": "sphere", "dim": 3},
           "initial": {"kind": "von_mises", "loc": [0.0, 1.0, 0.0, 0.0], "kappa": 3.0},
           "target": {"kind": "von_mises", "loc": [1.0, 0.0, 0.0, 0.0], "kappa": 2.0},
           "method": {"kind": "particles", "n": 150}, "time": {"t_end": 1.0, "n_saves": 5}}
    ds = run_config(cfg, tmp_path / "first")
    assert ds["positions"].shape == (ds.sizes["snapshot_time"], 150, 4)
    kernel = ReluKernel(3)
    target = ZonalMeasure.von_mises_fisher(kernel, [1.0, 0.0, 0.0, 0.0], 2.0)
    positions, weights = ds["positions"].values[-1], ds["weights"].values[-1]
    assert ds["energy"].values[-1] == pytest.approx(population_loss(kernel, positions, weights, target), rel=1e-9)
    # continue from the result file, and from an .npy of the same points
    np.save(tmp_path / "points.npy", positions)
    np.save(tmp_path / "weights.npy", weights)
    for initial in ({"kind": "file", "path": str(tmp_path / "first" / "result.nc")},
                    {"kind": "file", "path": str(tmp_path / "points.npy"),
                     "weights_path": str(tmp_path / "weights.npy")}):
        again = run_config({**cfg, "initial": initial, "method": {"kind": "particles"}})
        assert again["energy"].values[0] == pytest.approx(ds["energy"].values[-1], rel=1e-12)
    np.save(tmp_path / "grid.npy", np.ones((8, 8)))
    for name in ("points.npy", "grid.npy"):  # (N, 4) vectors on S^2; grid values on any S^d, d >= 2
        with pytest.raises(ConfigError) as err:
            load_config({**cfg, "domain": {"kind": "sphere", "dim": 2}, "target": {"kind": "uniform"},
                         "initial": {"kind": "file", "path": str(tmp_path / name)}})
        assert err.value.key == "initial.path"


def test_sphere_pictures_are_drawn(tmp_path):
    """state.png of circle and S^2 runs, and an animation, from the saved results."""
    from kmdflow.plotting import plot_run

    run_config(circle({"kind": "network", "n": 32, "dt": 0.1}, t_end=1.0), tmp_path / "c")
    run_config({"domain": {"kind": "sphere", "dim": 2}, "initial": {"kind": "uniform"},
                "method": {"kind": "particles", "n": 50}, "time": {"t_end": 1.0, "n_saves": 4}}, tmp_path / "s")
    for folder in ("c", "s"):
        paths = plot_run(tmp_path / folder, animate=True)
        assert [p.name for p in paths] == ["energy.png", "state.png", "animation.gif"]
        assert all(p.stat().st_size > 2000 for p in paths)


@pytest.mark.parametrize("target", [{"kind": "particles", "positions": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                                     "weights": [0.5, 1.5]},
                                    {"kind": "von_mises", "loc": [0.0, 0.0, 1.0], "kappa": 4.0}])
def test_network_loss_and_dissipation_on_s2(target):
    """The network's saved loss is the dense-kernel loss of its measure, and the loss drop is the
    time integral of the saved dissipation m |grad L|^2 (to O(dt) for gradient descent)."""
    cfg = {"domain": {"kind": "sphere", "dim": 2}, "initial": {"kind": "uniform"}, "target": target,
           "method": {"kind": "network", "n": 60, "dt": 0.002, "seed": 5},
           "time": {"t_end": 2.0, "n_saves": 101, "spacing": "linear"}, "output": {"snapshots": 2}}
    ds = run_config(cfg)
    kernel = ReluKernel(2)
    teacher = build_problem(load_config(cfg)).flow.target
    reference = population_loss(kernel, ds["positions"].values[-1], ds["weights"].values[-1], teacher)
    e = ds["energy"].values
    assert e[-1] == pytest.approx(reference, rel=1e-10) and e[-1] < e[0]
    d, t = ds["dissipation"].values, ds["time"].values
    integral = np.sum(0.5 * (d[1:] + d[:-1]) * np.diff(t))
    assert integral == pytest.approx(e[0] - e[-1], rel=5e-4)  # measured 2e-5, 9e-5: O(dt)


@pytest.mark.parametrize("n", [64, 63])
def test_circle_floor_is_the_loss_of_equispaced_neurons(n):
    """The floor reported for circle particles is the loss of n equispaced equal atoms against the
    uniform teacher, recomputed here by dense kernel matrices (odd n: odd multiples are invisible)."""
    problem = build_problem(load_config(circle({"kind": "particles", "n": n})))
    points = sphere.angles_to_points(2 * np.pi * np.arange(n) / n)
    kernel = ReluKernel(1)
    loss = population_loss(kernel, points, np.full(n, 1.0 / n), ZonalMeasure.uniform(kernel))
    assert problem.floor == pytest.approx(loss, rel=1e-9)


def test_sphere_summation_is_reported_by_its_config_name():
    for dim, expected in ((1, "sorted"), (2, "direct")):
        cfg = {"domain": {"kind": "sphere", "dim": dim}, "initial": {"kind": "uniform"},
               "method": {"kind": "particles", "n": 8}}
        problem = build_problem(load_config(cfg))
        assert problem.summation == expected
        load_config({**cfg, "method": {**cfg["method"], "summation": problem.summation}})


def test_extreme_and_bad_positions(tmp_path):
    """Huge and tiny vectors are normalised without overflow; a zero row in a file or a negative
    weight in a result file is reported under the file's key."""
    cfg = {"domain": {"kind": "sphere", "dim": 2}, "initial": {"kind": "uniform"},
           "method": {"kind": "particles", "n": 8}, "time": {"t_end": 0.1, "n_saves": 3}}
    for scale in (1e200, 1e-200):
        target = {"kind": "particles", "positions": [[scale, scale, 0.0], [0.0, 0.0, 1.0]]}
        problem = build_problem(load_config({**cfg, "target": target}))
        assert np.allclose(problem.flow.target.positions[0], [2**-0.5, 2**-0.5, 0.0], rtol=0, atol=1e-15)
    np.save(tmp_path / "zero.npy", np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ConfigError) as err:
        build_problem(load_config({**cfg, "target": {"kind": "file", "path": str(tmp_path / "zero.npy")}}))
    assert err.value.key == "target.path" and "zero vector" in str(err.value)


def test_network_overshooting_dt_fails_cleanly(tmp_path):
    """A learning rate so large that output weights cross 0: status failed, one line, data kept."""
    cfg = circle({"kind": "network", "n": 16, "dt": 20.0}, t_end=200.0, n_saves=11,
                 initial={"kind": "von_mises", "kappa": 5.0},
                 target={"kind": "particles", "positions": [np.pi], "weights": [5.0]})
    ds = run_config(cfg, tmp_path / "run")
    assert ds.attrs["status"].startswith("failed") and "lower method.dt" in ds.attrs["status"]
    assert np.all(ds["weights"].values > 0) and ds.sizes["time"] >= 1


def test_torus_state_picture_draws_the_target(tmp_path):
    """The 1-D state picture reads the target back from the saved config (regression)."""
    from scipy.special import i0

    from kmdflow.plotting import _target_density

    ds = run_config({"initial": {"kind": "uniform"}, "target": {"kind": "von_mises", "loc": 1.0, "kappa": 2.0},
                     "method": {"kind": "spectral", "n": 32}, "time": {"t_end": 0.1, "n_saves": 3}})
    x, values = _target_density(ds)
    assert np.allclose(values, np.exp(2.0 * np.cos(x - 1.0)) / i0(2.0), rtol=1e-12)
