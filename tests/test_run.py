"""`kmdflow.run` / `kmdflow run`: outputs, summaries, rates, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import kmdflow
from kmdflow.cli import execute
from kmdflow.domains import torus


def perturbation_config(**method):
    return {"energy": {"s": 2.0},
            "initial": {"kind": "perturbation", "amplitude": 0.05, "decay": 2.0, "modes": 255},
            "method": {"kind": "spectral", "n": 512, **method},
            "time": {"t_end": 2e4, "n_saves": 120}}


def test_python_api_returns_the_dataset_and_writes_the_same_file(tmp_path):
    ds = kmdflow.run(perturbation_config(), out=tmp_path / "run")
    with xr.open_dataset(tmp_path / "run" / "result.nc", engine="h5netcdf") as saved:
        np.testing.assert_array_equal(saved["energy"].values, ds["energy"].values)
        assert saved.attrs["config"] == ds.attrs["config"]
    assert set(ds["density"].dims) == {"snapshot_time", "x"}
    for key in ("kmdflow_version", "config_hash", "platform", "numpy_version", "scipy_version",
                "finufft_version", "git_commit", "seed", "status", "wall_seconds", "steps"):
        assert key in ds.attrs, key
    assert ds["snapshot_time"].values[0] == 0 and ds["snapshot_time"].values[-1] == ds["time"].values[-1]


def test_summary_reports_prediction_and_a_fit_that_matches_it(tmp_path):
    execute(["run", _write(tmp_path, perturbation_config()), "--out", str(tmp_path / "out"), "--quiet"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    predicted = summary["predicted_rate"]
    assert predicted["kind"] == "power" and predicted["r"] == pytest.approx(1.5)
    assert predicted["value"] == pytest.approx(-(1.5 + 2.0) / (2.0 - 1.0))
    fitted = summary["fitted_rate"]
    assert fitted["value"] == pytest.approx(predicted["value"], rel=0.05)
    assert 0 < fitted["t_start"] < fitted["t_stop"] <= 2e4
    assert summary["integrator"] == "etdrk4" and summary["status"] == "completed"


def test_regularity_of_file_data_is_estimated_from_its_fourier_decay(tmp_path):
    # the same perturbation, given as grid values in a .npy file: its family is unknown
    rng = np.random.default_rng(5)
    k = np.arange(1, 2048)
    coeffs = np.zeros(4096, dtype=complex)
    coeffs[0] = 1.0
    coeffs[1:2048] = 0.02 * k**-2.5 * np.exp(2j * np.pi * rng.random(k.size))
    np.save(tmp_path / "rho0.npy", torus.from_fourier(coeffs, 8192))
    config = {"energy": {"s": 2.0}, "initial": {"kind": "file", "path": str(tmp_path / "rho0.npy")},
              "method": {"kind": "spectral", "n": 256}, "time": {"t_end": 10.0, "n_saves": 10}}
    ds = kmdflow.run(config)
    assert ds.attrs["predicted_rate_kind"] == "power"
    assert ds.attrs["predicted_rate"] == pytest.approx(-(2.0 + 2.0), abs=0.1)  # r = 2.5 - 1/2


def test_numerical_failure_keeps_results_and_exits_3(tmp_path):
    # explicit Euler far beyond its stability limit: the state blows up
    config = {"energy": {"s": 0.25}, "initial": {"kind": "mode", "k": 3, "amplitude": 0.2},
              "method": {"kind": "spectral", "n": 64, "integrator": "euler", "dt": 5.0},
              "time": {"t_end": 1e4, "n_saves": 50, "spacing": "linear"}}
    out = tmp_path / "out"
    assert execute(["run", _write(tmp_path, config), "--out", str(out), "--quiet"]) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith("failed:")
    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        assert ds.attrs["status"] == summary["status"]
        assert ds.sizes["time"] >= 1 and np.all(np.isfinite(ds["energy"].values))
        assert ds["snapshot_time"].values[-1] == ds["time"].values[-1]


def _write(tmp_path, config) -> str:
    from kmdflow.experiments.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(load_config(config).to_toml())
    return str(path)


def test_plot_redraws_pictures_from_saved_files_only(tmp_path):
    out = tmp_path / "out"
    config = {"energy": {"s": 1.0}, "initial": {"kind": "von_mises", "kappa": 2.0},
              "method": {"kind": "particles", "n": 300}, "time": {"t_end": 3.0, "n_saves": 20}}
    assert execute(["run", _write(tmp_path, config), "--out", str(out), "--quiet"]) == 0
    before = {name: (out / name).stat().st_size for name in ("energy.png", "state.png")}
    for name in before:
        (out / name).unlink()
    (tmp_path / "config.toml").unlink()  # the pictures must come from result.nc and summary.json
    assert execute(["plot", str(out), "--animate"]) == 0
    for name, size in before.items():
        assert abs((out / name).stat().st_size - size) < 0.05 * size
    from PIL import Image

    with Image.open(out / "animation.gif") as gif:
        assert gif.n_frames == 20  # one frame per snapshot (output.snapshots = 20 by default)


def test_negative_density_is_a_numerical_failure():
    # rk4 beyond its stability limit for s = 1/2 (mode k decays at rate k): high modes grow and the
    # density goes negative before anything overflows
    config = {"energy": {"s": 0.5}, "initial": {"kind": "mode", "k": 3, "amplitude": 0.9},
              "method": {"n": 32, "integrator": "rk4", "dt": 0.2},
              "time": {"t_end": 50.0, "n_saves": 251, "spacing": "linear"}}
    ds = kmdflow.run(config)
    assert ds.attrs["status"].startswith("failed: density fell to")
    assert np.all(ds["min_density"].values >= 0)  # the saved part is the valid part
    assert ds["time"].values[-1] < 50.0
