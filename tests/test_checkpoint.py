"""Checkpoints: a killed run resumes to the same result; SIGTERM stops cleanly with exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import xarray as xr

from kmdflow.experiments.config import load_config

# long enough (a few seconds) to be stopped half-way; saves every 0.5 time units
CONFIG = {"energy": {"s": 2.0}, "initial": {"kind": "von_mises", "kappa": 3.0, "loc": 1.0},
          "method": {"kind": "particles", "n": 20000, "integrator": "dopri5"},
          "time": {"t_end": 30.0, "n_saves": 61, "spacing": "linear", "rtol": 1e-10},
          "output": {"snapshots": 5, "checkpoint_every": 0.2}}


def write(tmp_path) -> str:
    path = tmp_path / "config.toml"
    path.write_text(load_config(CONFIG).to_toml())
    return str(path)


def start(config: str, out, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kmdflow", "run", config, "--out", str(out), "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cli(config: str, out, *extra) -> subprocess.CompletedProcess:
    """``kmdflow run CONFIG --out OUT [extra]`` to the end, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "kmdflow", "run", config, "--out", str(out), *extra],
                          capture_output=True, text=True)


def wait_for_saves(out, proc, saves: int, timeout: float = 120.0) -> None:
    """Wait until the run's checkpoint holds ``saves`` saved times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with np.load(out / "checkpoint.npz") as data:
                if data["times"].size >= saves:
                    return
        except (OSError, ValueError, KeyError):
            pass  # not written yet (renames are atomic, so never half a file)
        time.sleep(0.05)
    raise AssertionError("the run saved too slowly")


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    config = write(tmp_path)
    reference = run_cli(config, tmp_path / "ref", "--quiet")
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "killed"
    proc = start(config, out)
    wait_for_saves(out, proc, 10)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "result.nc").exists()  # it never finished
    resumed = run_cli(config, out, "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert not (out / "checkpoint.npz").exists()
    with xr.open_dataset(tmp_path / "ref" / "result.nc", engine="h5netcdf") as a, \
            xr.open_dataset(out / "result.nc", engine="h5netcdf") as b:
        np.testing.assert_array_equal(a["time"].values, b["time"].values)
        np.testing.assert_allclose(b["energy"].values, a["energy"].values, rtol=1e-12, atol=0)
        np.testing.assert_allclose(b["positions"].values, a["positions"].values, rtol=1e-12, atol=1e-14)
        assert b.attrs["steps"] == a.attrs["steps"]
        assert b.attrs["status"] == "completed"


def test_sigterm_saves_and_exits_130_then_resume_completes(tmp_path):
    config = write(tmp_path)
    out = tmp_path / "out"
    proc = start(config, out)
    wait_for_saves(out, proc, 5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        assert ds.attrs["status"] == "interrupted"
        assert 5 <= ds.sizes["time"] < 61
        assert np.all(np.diff(ds["energy"].values) < 0)
        assert ds["snapshot_time"].values[-1] == ds["time"].values[-1]
    resumed = run_cli(config, out, "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        assert ds.sizes["time"] == 61 and ds.attrs["status"] == "completed"


def test_resume_refuses_a_different_config(tmp_path):
    config = write(tmp_path)
    out = tmp_path / "out"
    proc = start(config, out)
    wait_for_saves(out, proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    other = tmp_path / "other.toml"
    other.write_text(load_config({**CONFIG, "energy": {"s": 3.0}}).to_toml())
    result = run_cli(str(other), out, "--resume")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "different config" in result.stderr
    assert os.path.exists(out / "checkpoint.npz")
