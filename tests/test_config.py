"""Tests of the config loader: defaults, validation messages, round trips, files, fuzzing.

Expected defaults and limits are taken from the issue's specification of the TOML keys, not from
the code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pickle
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmdflow.experiments.config import (
    Config,
    ConfigError,
    MeasureSpec,
    describe_file,
    dump_toml,
    load_config,
)

MODE = {"initial": {"kind": "mode"}}


def with_(base: dict, **tables) -> dict:
    """``base`` with the given tables merged in (one level deep)."""
    out = {k: dict(v) for k, v in base.items()}
    for name, table in tables.items():
        if isinstance(table, dict) and isinstance(out.get(name, {}), dict):
            out.setdefault(name, {}).update(table)
        else:
            out[name] = table
    return out


# ------------------------------------------------------------------------------------------
# defaults


def test_defaults_are_the_documented_ones():
    cfg = load_config(MODE)
    assert (cfg.domain.kind, cfg.domain.dim) == ("torus", 1)
    assert (cfg.energy.kernel, cfg.energy.s) == ("sobolev", 2.0)
    assert (cfg.geometry.kind, cfg.geometry.alpha, cfg.geometry.beta) == ("wasserstein", 2.0, 1.0)
    assert cfg.target == MeasureSpec("uniform", {})
    assert cfg.initial == MeasureSpec("mode", {"k": 1, "amplitude": 0.5})
    m = cfg.method
    assert (m.kind, m.n, m.integrator, m.summation, m.tol, m.placement, m.seed, m.dt) == (
        "spectral", 512, "auto", "auto", 1e-10, "quantile", 0, None)
    t = cfg.time
    assert (t.t_end, t.rtol, t.atol, t.n_saves, t.spacing, t.t_first) == (1e4, 1e-8, 0.0, 200, "log", None)
    assert (cfg.output.snapshots, cfg.output.checkpoint_every) == (20, 60.0)


@pytest.mark.parametrize("spec, params", [
    ({"kind": "uniform"}, {}),
    ({"kind": "mode"}, {"k": 1, "amplitude": 0.5}),
    ({"kind": "perturbation"}, {"amplitude": 0.3, "decay": 2.0, "seed": 0, "modes": 64}),
    ({"kind": "von_mises"}, {"loc": 0.0, "kappa": 1.0}),
    ({"kind": "indicator"}, {"start": 0.0, "stop": math.pi, "floor": 0.0}),
    ({"kind": "particles", "positions": [1.0, 2]}, {"positions": (1.0, 2.0), "weights": None}),
])
def test_measure_defaults(spec, params):
    method = {"kind": "particles"} if spec["kind"] == "particles" else {}
    cfg = load_config({"initial": spec, "method": method})
    assert cfg.initial.kind == spec["kind"]
    assert cfg.initial.params == params
    assert all(type(v) is type(params[k]) for k, v in cfg.initial.params.items())


def test_target_defaults_to_uniform_and_initial_kind_is_required():
    assert load_config(MODE).target.kind == "uniform"
    with pytest.raises(ConfigError) as err:
        load_config({"initial": {"amplitude": 0.1}})
    assert err.value.key == "initial.kind"
    with pytest.raises(ConfigError) as err:
        load_config({"time": {"t_end": 1.0}})
    assert err.value.key == "initial"


def test_mixture_components_are_weighted_specs():
    cfg = load_config({"initial": {"kind": "mixture", "components": [
        {"weight": 2, "kind": "von_mises", "kappa": 3.0}, {"weight": 0.5, "kind": "uniform"}]}})
    comps = cfg.initial.params["components"]
    assert comps == ((2.0, MeasureSpec("von_mises", {"loc": 0.0, "kappa": 3.0})),
                     (0.5, MeasureSpec("uniform", {})))


def test_mode_wave_vector_of_length_one_is_the_integer():
    assert load_config({"initial": {"kind": "mode", "k": [3]}}).initial.params["k"] == 3


# ------------------------------------------------------------------------------------------
# errors


def test_error_text_is_one_line_with_key_value_and_fix():
    with pytest.raises(ConfigError) as err:
        load_config(with_(MODE, time={"t_end": -1.0}))
    e = err.value
    assert e.key == "time.t_end"
    assert str(e).startswith("time.t_end = -1.0: must be > 0")
    assert "\n" not in str(e) and e.message in str(e)
    assert isinstance(e, ValueError)
    again = pickle.loads(pickle.dumps(e))
    assert (again.key, again.message, str(again)) == (e.key, e.message, str(e))
    keyless = ConfigError("a.toml", "no such\nfile")
    assert str(keyless) == "a.toml: no such file"
    assert str(pickle.loads(pickle.dumps(keyless))) == str(keyless)


# (tables, dotted key, regex the message must match)
BAD = [
    ({"time": {"t_ned": 10.0}}, "time.t_ned", "did you mean 't_end'"),
    ({"tiem": {"t_end": 1.0}}, "tiem", "did you mean 'time'"),
    ({"s": 2.0}, "s", "did you mean 'energy.s'"),
    ({"initial": {"kind": "von_mses"}}, "initial.kind", "did you mean 'von_mises'"),
    ({"initial": {"kind": "mode", "decay": 1.0}}, "initial.decay", "perturbation"),
    ({"domain": {"kind": "spere"}}, "domain.kind", "did you mean 'sphere'"),
    ({"domain": {"kind": "sphere", "dim": 2}}, "initial.kind", "not allowed on S\\^2"),
    ({"domain": {"kind": "sphere"}, "energy": {"kernel": "sobolev"}}, "energy.kernel", "on the sphere"),
    ({"domain": {"kind": "sphere"}, "energy": {"s": 2.5}}, "energy.s", "s = \\(d \\+ 3\\)/2 = 2"),
    ({"domain": {"kind": "sphere", "dim": 9}}, "domain.dim", "1 .. 8 on the sphere"),
    ({"method": {"kind": "network"}}, "method.kind", "a network lives on the sphere"),
    ({"method": {"batch": 16}}, "method.batch", "network training"),
    ({"domain": {"dim": 4}}, "domain.dim", "must be 1, 2 or 3"),
    ({"domain": {"dim": 0}}, "domain.dim", "must be 1, 2 or 3"),
    ({"energy": {"kernel": "relu"}}, "energy.kernel", "lives on the sphere"),
    ({"energy": {"kernel": "sobolv"}}, "energy.kernel", "did you mean 'sobolev'"),
    ({"energy": {"s": 0.0}}, "energy.s", "must be > 0"),
    ({"energy": {"s": -2.0}}, "energy.s", "must be > 0"),
    ({"energy": {"s": "2.0"}}, "energy.s", "expected a number > 0, got a string; remove the quotes"),
    ({"energy": {"s": [2.0]}}, "energy.s", "expected a number > 0, got an array"),
    ({"energy": {"s": True}}, "energy.s", "expected a number > 0, got a boolean"),
    ({"energy": {"s": math.nan}}, "energy.s", "finite"),
    ({"energy": {"s": 10**400}}, "energy.s", "too large"),
    ({"geometry": {"kind": "wfr"}}, "geometry.kind", "for the ReLU kernel on the sphere"),
    ({"geometry": {"beta": 0.0}}, "geometry.beta", "must be > 0"),
    ({"geometry": {"alpha": -1.0}}, "geometry.alpha", "must be >= 0"),
    ({"method": {"kind": "grid"}}, "method.kind", "choose one of"),
    ({"method": {"n": 513}}, "method.n", "even"),
    ({"method": {"n": 6}}, "method.n", "8 <= n"),
    ({"method": {"n": 2**20 + 2}}, "method.n", "2\\^20"),
    ({"method": {"n": 2**40}}, "method.n", "2\\^20"),
    ({"method": {"n": 512.0}}, "method.n", "expected an integer >= 1, got a float; write a whole"),
    ({"method": {"n": True}}, "method.n", "expected an integer >= 1, got a boolean"),
    ({"method": {"kind": "particles", "n": 0}}, "method.n", ">= 1"),
    ({"method": {"kind": "particles", "n": 10**7 + 1}}, "method.n", "10\\^7"),
    ({"method": {"integrator": ""}}, "method.integrator", "must not be empty"),
    ({"method": {"integrator": 4}}, "method.integrator", "expected a string"),
    ({"method": {"summation": "fft"}}, "method.summation", "choose one of"),
    ({"method": {"tol": 1.0}}, "method.tol", "< 1"),
    ({"method": {"tol": 0.0}}, "method.tol", "> 0"),
    ({"method": {"placement": "grid"}}, "method.placement", "choose one of"),
    ({"method": {"seed": -1}}, "method.seed", ">= 0"),
    ({"method": {"dt": 0.0}}, "method.dt", "> 0"),
    ({"time": {"t_end": 0.0}}, "time.t_end", "> 0"),
    ({"time": {"t_end": math.inf}}, "time.t_end", "finite"),
    ({"time": {"t_end": "1e4"}}, "time.t_end", "remove the quotes"),
    ({"time": {"rtol": 1.0}}, "time.rtol", "< 1"),
    ({"time": {"atol": -1e-12}}, "time.atol", ">= 0"),
    ({"time": {"n_saves": 1}}, "time.n_saves", ">= 2"),
    ({"time": {"n_saves": 10**6 + 1}}, "time.n_saves", "<= 1000000"),
    ({"time": {"spacing": "logarithmic"}}, "time.spacing", "choose one of"),
    ({"time": {"t_first": 0.0}}, "time.t_first", "> 0"),
    ({"time": {"t_end": 10.0, "t_first": 10.0}}, "time.t_first", "< time.t_end"),
    ({"time": {"spacing": "linear", "t_first": 1.0}}, "time.t_first", "only used with spacing"),
    ({"output": {"snapshots": 1}}, "output.snapshots", ">= 2"),
    ({"output": {"snapshots": 10**4 + 1}}, "output.snapshots", "<= 10000"),
    ({"output": {"checkpoint_every": 0.0}}, "output.checkpoint_every", "> 0"),
    ({"time": 3.0}, "time", "expected a table"),
    ({"initial": {"kind": "mode", "amplitude": 1.5}}, "initial.amplitude", "negative"),
    ({"initial": {"kind": "mode", "amplitude": -1.01}}, "initial.amplitude", ">= -1"),
    ({"initial": {"kind": "mode", "k": 0}}, "initial.k", ">= 1"),
    ({"initial": {"kind": "mode", "k": [1, 2]}}, "initial.k", "one entry"),
    ({"initial": {"kind": "perturbation", "amplitude": 1.2}}, "initial.amplitude", "<= 1"),
    ({"initial": {"kind": "perturbation", "decay": 0.0}}, "initial.decay", "> 0"),
    ({"initial": {"kind": "perturbation", "seed": -3}}, "initial.seed", ">= 0"),
    ({"initial": {"kind": "perturbation", "modes": 100_001}}, "initial.modes", "<= 100000"),
    ({"initial": {"kind": "von_mises", "kappa": 700.5}}, "initial.kappa", "<= 700"),
    ({"initial": {"kind": "von_mises", "kappa": -1.0}}, "initial.kappa", ">= 0"),
    ({"initial": {"kind": "indicator", "start": 1.0, "stop": 1.0}}, "initial.stop", "length"),
    ({"initial": {"kind": "indicator", "start": 0.0, "stop": 2 * math.pi}}, "initial.stop", "uniform"),
    ({"initial": {"kind": "indicator", "floor": 1.0}}, "initial.floor", "< 1"),
    ({"initial": {"kind": "mixture", "components": []}}, "initial.components", "empty"),
    ({"initial": {"kind": "mixture"}}, "initial.components", "missing"),
    ({"initial": {"kind": "mixture", "components": [{"kind": "mode"}]}},
     "initial.components[0].weight", "missing"),
    ({"initial": {"kind": "mixture", "components": [{"weight": 0.0, "kind": "mode"}]}},
     "initial.components[0].weight", "> 0"),
    ({"initial": {"kind": "mixture", "components": [{"weight": 1.0, "kind": "particles"}]}},
     "initial.components[0].kind", "not allowed here"),
    ({"initial": {"kind": "mixture", "components": [{"weight": 1.0, "kind": "mixture"}]}},
     "initial.components[0].kind", "not allowed here"),
    ({"initial": {"kind": "mixture", "components": [{"weight": 1.0, "kind": "mode", "kapa": 1}]}},
     "initial.components[0].kapa", "unknown key"),
    ({"initial": {"kind": "particles", "positions": [0.5, 1.0]}}, "initial.kind",
     'method.kind = "particles"'),
    ({"initial": {"kind": "particles", "positions": [0.5, math.nan]}, "method": {"kind": "particles"}},
     "initial.positions[1]", "finite"),
    ({"initial": {"kind": "particles", "positions": []}, "method": {"kind": "particles"}},
     "initial.positions", "empty"),
    ({"initial": {"kind": "particles"}, "method": {"kind": "particles"}}, "initial.positions", "missing"),
    ({"initial": {"kind": "particles", "positions": [0.5, 1.0], "weights": [1.0]},
      "method": {"kind": "particles"}}, "initial.weights", "one weight per particle"),
    ({"initial": {"kind": "particles", "positions": [0.5, 1.0], "weights": [1.0, 0.0]},
      "method": {"kind": "particles"}}, "initial.weights[1]", "> 0"),
    ({"initial": {"kind": "particles", "positions": [0.5, 1.0]}, "method": {"kind": "particles", "n": 3}},
     "method.n", "2 particles"),
    ({"method": {"kind": "particles"}, "energy": {"s": 0.5}}, "energy.s", "s > 0.5"),
    ({"target": {"kind": "particles", "positions": [1.0]}, "energy": {"s": 0.4}}, "energy.s", "s > 0.5"),
    ({"initial": {"kind": "file", "path": "surely_missing_file.npy"}}, "initial.path", "no such file"),
    ({"initial": {"kind": "file"}}, "initial.path", "missing"),
    ({"target": {"kind": "uniform", "loc": 1.0}}, "target.loc", "von_mises"),
    ({"target": {"kind": 3}}, "target.kind", "expected a string"),
]


@pytest.mark.parametrize("tables, key, pattern", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_config_names_the_key(tables, key, pattern):
    raw = with_(MODE, **tables) if "initial" not in tables else {**MODE, **tables}
    with pytest.raises(ConfigError, match=pattern) as err:
        load_config(raw)
    assert err.value.key == key
    text = str(err.value)
    assert text.startswith(key) and "\n" not in text


# (tables that must load, check on the loaded config)
GOOD_EDGES = [
    ({"energy": {"s": 1e-3}}, lambda c: c.energy.s == 1e-3),
    ({"energy": {"s": 3}}, lambda c: c.energy.s == 3.0 and isinstance(c.energy.s, float)),
    ({"method": {"n": 8}}, lambda c: c.method.n == 8),
    ({"method": {"n": 2**20}}, lambda c: c.method.n == 2**20),
    ({"method": {"kind": "particles", "n": 1}}, lambda c: c.method.n == 1),
    ({"method": {"kind": "particles", "n": 10**7}}, lambda c: c.method.n == 10**7),
    ({"method": {"dt": 0.5, "integrator": "rk4"}}, lambda c: c.method.dt == 0.5),
    ({"time": {"t_end": 10.0, "t_first": 9.999}}, lambda c: c.time.t_first == 9.999),
    ({"time": {"n_saves": 2, "spacing": "linear"}}, lambda c: c.time.n_saves == 2),
    ({"output": {"snapshots": 10**4}}, lambda c: c.output.snapshots == 10**4),
    ({"initial": {"kind": "mode", "amplitude": 1.0}}, lambda c: c.initial.params["amplitude"] == 1.0),
    ({"initial": {"kind": "mode", "amplitude": -1}}, lambda c: c.initial.params["amplitude"] == -1.0),
    ({"initial": {"kind": "von_mises", "kappa": 700}}, lambda c: c.initial.params["kappa"] == 700.0),
    ({"initial": {"kind": "von_mises", "kappa": 0}}, lambda c: c.initial.params["kappa"] == 0.0),
    ({"initial": {"kind": "indicator", "start": 5.0, "stop": 1.0, "floor": 0.2}},  # wraps through 0
     lambda c: c.initial.params["stop"] == 1.0),
    ({"initial": {"kind": "perturbation", "modes": 100_000, "amplitude": 1}},
     lambda c: c.initial.params["modes"] == 100_000),
    ({"initial": {"kind": "mode"}, "energy": {"s": 0.6}, "method": {"kind": "particles"}},
     lambda c: c.method.kind == "particles"),
    ({"target": {"kind": "particles", "positions": [1.0, 2.0]}}, lambda c: c.target.kind == "particles"),
    ({"geometry": {"alpha": 0.0, "beta": 0.5}}, lambda c: c.geometry.beta == 0.5),
    ({"method": {"integrator": "anything-the-registry-decides"}},
     lambda c: c.method.integrator == "anything-the-registry-decides"),
]


@pytest.mark.parametrize("tables, check", GOOD_EDGES)
def test_edge_values_are_accepted(tables, check):
    raw = with_(MODE, **tables) if "initial" not in tables else {**MODE, **tables}
    assert check(load_config(raw))


def test_particles_method_takes_n_from_the_data():
    positions = [0.1, 0.7, 2.0, 4.5, 6.0]
    cfg = load_config({"initial": {"kind": "particles", "positions": positions},
                       "method": {"kind": "particles"}})
    assert cfg.method.n == len(positions)
    same = load_config({"initial": {"kind": "particles", "positions": positions},
                        "method": {"kind": "particles", "n": 5}})
    assert same == cfg


def test_notes_flag_s_below_one_only():
    assert load_config(MODE).notes() == []
    notes = load_config(with_(MODE, energy={"s": 0.75})).notes()
    assert len(notes) == 1 and "energy.s" in notes[0] and "theory" in notes[0]


# ------------------------------------------------------------------------------------------
# TOML files, round trips, hashing


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_toml_reports_the_file_and_position(tmp_path):
    path = write(tmp_path / "bad.toml", '[initial]\nkind = "mode"\namplitude = = 0.2\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == str(path)
    assert "line 3" in err.value.message and "column" in err.value.message
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent.toml", "no such file"),
    (lambda p: p, "is a directory"),
    (lambda p: (p / "latin.toml", (p / "latin.toml").write_bytes(b'[initial]\nkind = "\xe9"\n'))[0],
     "not UTF-8"),
])
def test_unreadable_config_files(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert err.value.key == str(path)


def rich_configs(data_dir: Path) -> list[dict]:
    """Configs covering every measure kind and every optional key."""
    np.save(data_dir / "rho.npy", 1.0 + 0.5 * np.cos(np.arange(64) * 2 * np.pi / 64))
    np.save(data_dir / "x.npy", np.linspace(0.1, 6.0, 7)[:, None])
    np.save(data_dir / "w.npy", np.full(7, 1.0 / 7))
    return [
        MODE,
        {"initial": {"kind": "perturbation", "amplitude": 0.9, "decay": 1.5, "seed": 4, "modes": 128},
         "target": {"kind": "von_mises", "loc": 1.0, "kappa": 4.0},
         "energy": {"s": 1.5}, "time": {"t_end": 1e6, "t_first": 1e-2, "atol": 1e-14},
         "method": {"n": 1024, "integrator": "etdrk4", "dt": 0.25}, "output": {"snapshots": 7}},
        {"initial": {"kind": "mixture", "components": [
            {"weight": 0.25, "kind": "indicator", "start": 5.5, "stop": 0.5, "floor": 0.1},
            {"weight": 0.75, "kind": "mode", "k": 3, "amplitude": -0.2}]},
         "target": {"kind": "file", "path": "rho.npy"}},
        {"initial": {"kind": "particles", "positions": [0.0, 1.5, 3.25, 6.0], "weights": [1, 2, 3, 4]},
         "target": {"kind": "particles", "positions": [0.5, 2.5]},
         "method": {"kind": "particles", "summation": "direct", "placement": "random", "seed": 9}},
        {"initial": {"kind": "file", "path": "x.npy", "weights_path": "w.npy"},
         "method": {"kind": "particles", "tol": 1e-6}, "time": {"spacing": "linear", "n_saves": 11}},
    ]


def test_round_trip_through_toml_and_dict(tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    for i, raw in enumerate(rich_configs(tmp_path / "run")):
        first = load_config(write(tmp_path / "run" / f"c{i}.toml", dump_toml(raw)))
        again_toml = load_config(write(tmp_path / "elsewhere" / f"c{i}.toml", first.to_toml()))
        monkeypatch.chdir(tmp_path / "elsewhere")
        again_dict = load_config(first.to_dict())
        assert again_toml == first and again_dict == first
        assert again_toml.hash() == first.hash() == again_dict.hash()
        assert again_toml.to_toml() == first.to_toml()
        parsed = tomllib.loads(first.to_toml())
        expected = {t: {k: v for k, v in table.items() if v is not None}
                    for t, table in first.to_dict().items()}
        assert parsed == expected


def test_to_dict_has_every_key_and_defaults():
    d = load_config(MODE).to_dict()
    assert list(d) == ["domain", "energy", "geometry", "target", "initial", "method", "time", "output"]
    assert set(d["method"]) == {"kind", "n", "integrator", "summation", "tol", "placement", "seed", "dt", "modes", "batch"}
    assert set(d["time"]) == {"t_end", "rtol", "atol", "n_saves", "spacing", "t_first"}
    assert d["initial"] == {"kind": "mode", "k": 1, "amplitude": 0.5}
    assert d["method"]["dt"] is None and d["time"]["t_first"] is None


def test_hash_is_sha256_of_the_toml_and_tracks_content():
    cfg = load_config(MODE)
    assert cfg.hash() == hashlib.sha256(cfg.to_toml().encode()).hexdigest()
    assert len(cfg.hash()) == 64
    changed = load_config(with_(MODE, energy={"s": 2.5}))
    assert changed.hash() != cfg.hash() and changed != cfg
    moved = dataclasses.replace(cfg, source_dir=Path("/somewhere"))
    assert moved == cfg and moved.hash() == cfg.hash()
    assert len({cfg, moved, changed}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.energy.s = 3.0  # type: ignore[misc]


def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    data = tmp_path / "project" / "data"
    data.mkdir(parents=True)
    np.save(data / "rho.npy", np.ones(32))
    path = write(tmp_path / "project" / "cfg.toml", '[initial]\nkind = "file"\npath = "data/rho.npy"\n')
    monkeypatch.chdir(tmp_path)  # a different working directory must not matter
    cfg = load_config(path)
    assert Path(cfg.initial.params["path"]) == (data / "rho.npy").resolve()
    assert Path(cfg.initial.params["path"]).is_absolute()
    assert cfg.source_dir == path.parent.resolve()
    as_dict = load_config({"initial": {"kind": "file", "path": "data/rho.npy"}},
                          base_dir=tmp_path / "project")
    assert as_dict == cfg
    with pytest.raises(ConfigError, match="no such file") as err:
        load_config({"initial": {"kind": "file", "path": "data/rho.npy"}})  # cwd = tmp_path
    assert err.value.key == "initial.path"


def test_toml_writer_escapes_strings_and_writes_table_arrays(tmp_path):
    odd = tmp_path / 'we"ird \\ näme\t.npy'
    np.save(odd, np.ones(16))
    cfg = load_config({"target": {"kind": "file", "path": str(odd)}, **MODE})
    assert load_config(tomllib.loads(cfg.to_toml())) == cfg
    doc = {"a": {"x": 1, "y": [1.5, -2.0], "s": 'q"\\\n\x01', "t": True,
                 "rows": [{"k": 1, "sub": {"z": "é"}}, {"k": 2}], "empty": []},
           "b": {"inf": math.inf, "big": 10**30, "tiny": 5e-324}}
    assert tomllib.loads(dump_toml(doc)) == doc


# ------------------------------------------------------------------------------------------
# measure files


def test_file_kinds_and_the_spectral_cross_check(tmp_path):
    np.save(tmp_path / "rho.npy", np.linspace(0.5, 1.5, 64))
    np.save(tmp_path / "x.npy", np.array([[0.5], [1.0], [4.0]]))
    np.save(tmp_path / "w.npy", np.array([0.2, 0.3, 0.5]))
    assert describe_file(tmp_path / "rho.npy") == ("density", 64)
    assert describe_file(tmp_path / "x.npy") == ("positions", 3)
    base = {"base_dir": tmp_path}
    dens = load_config({"initial": {"kind": "file", "path": "rho.npy"}}, **base)
    assert dens.method.kind == "spectral" and dens.method.n == 512
    with pytest.raises(ConfigError, match='method.kind = "particles"') as err:
        load_config({"initial": {"kind": "file", "path": "x.npy"}}, **base)
    assert err.value.key == "initial.kind"
    atoms = load_config({"initial": {"kind": "file", "path": "x.npy", "weights_path": "w.npy"},
                         "method": {"kind": "particles"}}, **base)
    assert atoms.method.n == 3
    with pytest.raises(ConfigError) as err:
        load_config({"initial": {"kind": "file", "path": "x.npy"}, "method": {"kind": "particles", "n": 4}},
                    **base)
    assert err.value.key == "method.n"
    with pytest.raises(ConfigError) as err:
        load_config({"initial": {"kind": "file", "path": "rho.npy", "weights_path": "w.npy"}}, **base)
    assert err.value.key == "initial.weights_path"


@pytest.mark.parametrize("array, message", [
    (np.ones((4, 4)), "shape"),
    (np.array([1.0, -0.5, 1.0]), ">= 0"),
    (np.array([1.0, np.nan, 1.0]), "finite"),
    (np.array([[0.5], [np.inf]]), "finite"),
    (np.array(["a", "b"]), "dtype"),
])
def test_bad_measure_files(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ConfigError, match=message) as err:
        load_config({"initial": {"kind": "file", "path": "bad.npy"}, "method": {"kind": "particles"}},
                    base_dir=tmp_path)
    assert err.value.key == "initial.path"


def test_weights_file_must_match(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[0.5], [1.0], [4.0]]))
    np.save(tmp_path / "w.npy", np.array([0.5, 0.5]))
    with pytest.raises(ConfigError, match="3 real weights") as err:
        load_config({"initial": {"kind": "file", "path": "x.npy", "weights_path": "w.npy"},
                     "method": {"kind": "particles"}}, base_dir=tmp_path)
    assert err.value.key == "initial.weights_path"


def test_result_file_is_read_as_its_last_snapshot_kind(tmp_path):
    import xarray as xr
    positions = np.zeros((2, 5, 1))
    xr.Dataset({"positions": (("snapshot_time", "particle", "coord"), positions)}).to_netcdf(
        tmp_path / "result.nc", engine="scipy")
    xr.Dataset({"density": (("snapshot_time", "x"), np.ones((3, 16)))}).to_netcdf(tmp_path / "grid.nc",
                                                                                 engine="scipy")
    assert describe_file(tmp_path / "grid.nc") == ("density", 16)
    assert describe_file(tmp_path / "result.nc") == ("positions", 5)
    cfg = load_config({"initial": {"kind": "file", "path": str(tmp_path / "result.nc")},
                       "method": {"kind": "particles"}})
    assert cfg.method.n == 5
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    with pytest.raises(ConfigError, match="result.nc"):
        load_config({"initial": {"kind": "file", "path": str(tmp_path / "junk.nc")}})


def test_source_types():
    cfg = load_config(MODE)
    assert load_config(cfg) is cfg
    with pytest.raises(TypeError, match="source"):
        load_config(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# fuzzing: anything TOML-shaped either loads or raises ConfigError


TABLES = ["domain", "energy", "geometry", "target", "initial", "method", "time", "output"]
KEYS = ["kind", "dim", "kernel", "s", "alpha", "beta", "n", "integrator", "summation", "tol",
        "placement", "seed", "dt", "t_end", "rtol", "atol", "n_saves", "spacing", "t_first",
        "snapshots", "checkpoint_every", "k", "amplitude", "decay", "modes", "loc", "kappa",
        "start", "stop", "floor", "components", "weight", "positions", "weights", "path",
        "weights_path"]
WORDS = ["torus", "sphere", "sobolev", "relu", "wasserstein", "wfr", "uniform", "mode",
         "perturbation", "von_mises", "mixture", "indicator", "particles", "file", "spectral",
         "auto", "sorted", "nufft", "direct", "quantile", "random", "log", "linear", ".", "x.npy",
         "sobol"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 1100), st.integers(),
                    st.floats(), st.text(max_size=6), st.sampled_from(WORDS))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=5))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(keys, inner, max_size=4)),
                      max_leaves=10)
tables = st.dictionaries(keys, values, max_size=6)
VALID_INITIAL = {kind: {"kind": kind} for kind in WORDS[6:12]}
VALID_INITIAL["mixture"] = {"kind": "mixture", "components": [{"weight": 1.0, "kind": "mode"}]}
VALID_INITIAL["particles"] = {"kind": "particles", "positions": [1.0, 2.0]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(st.sampled_from(TABLES), st.text(max_size=4)), values, max_size=5))
def test_fuzz_random_documents(raw):
    try:
        assert isinstance(load_config(raw), Config)
    except ConfigError as err:
        assert "\n" not in str(err) and err.key


OWN_KEYS = {"domain": ["kind", "dim"], "energy": ["kernel", "s"], "geometry": ["kind", "alpha", "beta"],
            "method": KEYS[6:13], "time": KEYS[13:19], "output": KEYS[19:21],
            "target": ["kind", *KEYS[21:]], "initial": KEYS[21:]}
own_table = st.sampled_from(TABLES).flatmap(lambda name: st.tuples(st.just(name), st.dictionaries(
    st.one_of(st.sampled_from(OWN_KEYS[name]), st.text(max_size=3)), values, max_size=3)))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(VALID_INITIAL)), st.lists(own_table, max_size=3))
def test_fuzz_perturbed_valid_documents(kind, overrides):
    raw = {"initial": dict(VALID_INITIAL[kind])}
    for name, table in overrides:
        raw.setdefault(name, {}).update(table)
    try:
        cfg = load_config(raw)
    except ConfigError as err:
        assert "\n" not in str(err) and err.key
    else:
        assert load_config(tomllib.loads(cfg.to_toml())) == cfg


# ------------------------------------------------------------------------------------------
# docs/config-reference.md agrees with the loader

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "config-reference.md"


def reference_tables() -> list[tuple[str, list[str], list[list[str]]]]:
    """``(heading, header cells, rows)`` of every markdown table in the reference."""
    out, heading, current = [], "", None
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:]
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if current is None:
            current = (heading, cells, [])
            out.append(current)
        elif not set(line) <= set("|-"):
            current[2].append(cells)
    return out


def reference_rows() -> list[tuple[str, str | None, str, str, str, str]]:
    """``(table, kind, key, type, default, allowed)`` of every documented key."""
    rows, kind = [], None
    for heading, header, body in reference_tables():
        if header[:2] == ["key", "type"]:
            table = re.search(r"`\[(\w+)\]`", heading).group(1)
            rows += [(table, None, *cells[:4]) for cells in body]
        elif header[:2] == ["kind", "key"]:
            for cells in body:
                kind = cells[0].strip("`") or kind
                if cells[1] != "—":
                    rows.append(("initial", kind, *cells[1:5]))
    return rows


def doc_value(cell: str):
    """A default cell as a Python value: ``None`` when unset, ``"required"`` when required."""
    if cell.startswith("unset") or cell == "required":
        return None if cell.startswith("unset") else "required"
    text = re.match(r"`([^`]*)`", cell).group(1)
    return math.pi if text == "pi" else tomllib.loads(f"v = {text}")["v"]


#: The measure kinds of the issue and the keys each one must be given.
MEASURE_REQUIRED = {"uniform": (), "mode": (), "perturbation": (), "von_mises": (),
                    "mixture": ("components",), "indicator": (), "particles": ("positions",),
                    "file": ("path",)}


def measure_document(kind: str, data_dir: Path, **keys) -> dict:
    """A valid config whose ``[initial]`` has ``kind``, its required keys and ``keys``."""
    np.save(data_dir / "values.npy", np.ones(8))
    given = {"components": [{"weight": 1.0, "kind": "uniform"}], "positions": [1.0, 2.0],
             "path": str(data_dir / "values.npy")}
    table = {"kind": kind, **{k: given[k] for k in MEASURE_REQUIRED[kind]}, **keys}
    return {"initial": table, "method": {"kind": "particles"} if kind == "particles" else {}}


def test_reference_lists_every_key_with_the_loaders_default(tmp_path):
    rows = reference_rows()
    plain = {(t, key.strip("`")): doc_value(default) for t, kind, key, _, default, _ in rows if kind is None}
    resolved = load_config({"initial": {"kind": "uniform"}}).to_dict()
    assert set(plain) == {(t, k) for t, table in resolved.items() if t not in ("initial", "target")
                          for k in table}
    for (table, key), value in plain.items():
        assert resolved[table][key] == value, f"{table}.{key}"
    documented_kinds = {kind for _, kind, *_ in rows if kind} | {"uniform"}
    assert documented_kinds == set(MEASURE_REQUIRED)
    for kind in sorted(documented_kinds):
        keys = {key.strip("`"): doc_value(default) for _, k, key, _, default, _ in rows if k == kind}
        params = load_config(measure_document(kind, tmp_path)).initial.params
        assert set(keys) == set(params), kind
        for key, value in keys.items():
            if value == "required":
                document = measure_document(kind, tmp_path)
                del document["initial"][key]
                with pytest.raises(ConfigError, match="missing"):
                    load_config(document)
            else:
                assert params[key] == value, f"{kind}.{key}"


def documented_bounds():
    """``(table, kind, key, is_int, lo, lo_closed, hi, hi_closed)`` for the plain numeric ranges."""
    number = r"(-?\d+(?:\^\d+)?)"
    out = []
    for table, kind, key, kind_type, _, allowed in reference_rows():
        match = re.match(r"`(?:(>=|>) " + number + r"|([\[(])" + number + ", " + number + r"([\])]))`",
                         allowed)
        if match is None or "array" in kind_type or "cross-checks" in allowed:
            continue
        value = [None if g is None else int(g.split("^")[0]) ** int(g.split("^")[1]) if "^" in g
                 else g for g in match.groups()]
        if value[0]:
            bounds = (float(value[1]), value[0] == ">=", None, False)
        else:
            bounds = (float(value[3]), value[2] == "[", float(value[4]), value[5] == "]")
        out.append((table, kind, key.strip("`"), kind_type.startswith("integer"), *bounds))
    return out


def test_reference_ranges_are_the_loaders(tmp_path):
    checked = documented_bounds()
    assert len(checked) >= 20  # every numeric key of the reference with a plain range

    for table, kind, key, is_int, lo, lo_closed, hi, hi_closed in checked:
        def accepted(value):
            document = (measure_document(kind, tmp_path, **{key: value}) if kind
                        else {"initial": {"kind": "uniform"}, table: {key: value}})
            try:
                load_config(document)
            except ConfigError as err:
                assert err.key.endswith(key), err
                return False
            return True

        def beside(x, up):
            if is_int:
                return int(x) + (1 if up else -1)
            return float(np.nextafter(x, np.inf if up else -np.inf))

        name = f"{kind or table}.{key}"
        edge = int(lo) if is_int else lo
        assert accepted(edge) == lo_closed, name
        assert not accepted(beside(lo, up=False)), name
        assert accepted(beside(lo, up=True)), name
        if hi is not None:
            edge = int(hi) if is_int else hi
            assert accepted(edge) == hi_closed, name
            assert not accepted(beside(hi, up=True)), name
            assert accepted(beside(hi, up=False)), name
