"""Every config under examples/ runs as written (shrunk to smoke size) and gives a sane flow."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from kmdflow.cli import execute
from kmdflow.experiments.config import load_config

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))


def test_there_are_enough_examples():
    kinds = {(tomllib.loads(p.read_text()).get("method", {}).get("kind", "spectral")) for p in EXAMPLES}
    domains = {tomllib.loads(p.read_text()).get("domain", {}).get("kind", "torus") for p in EXAMPLES}
    assert len(EXAMPLES) >= 5 and kinds == {"spectral", "particles", "network"}
    assert domains == {"torus", "sphere"}


def smoke_size(config: dict) -> dict:
    """The same config with a small resolution and a short horizon."""
    method = config.setdefault("method", {})
    if method.get("kind", "spectral") == "spectral":
        method["n"] = min(method.get("n", 512), 64)
    elif "n" in method:
        method["n"] = min(method["n"], 256)
    time = config.setdefault("time", {})
    time["t_end"] = min(time.get("t_end", 1e4), 2.0)
    time["n_saves"] = 12
    time.pop("t_first", None)
    return config


def write_toml(config: dict, path: Path) -> None:
    path.write_text(load_config(config).to_toml())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_as_written_at_smoke_size(example, tmp_path):
    assert execute(["check", str(example)]) == 0
    config = smoke_size(tomllib.loads(example.read_text()))
    path = tmp_path / example.name
    write_toml(config, path)
    out = tmp_path / "out"
    assert execute(["run", str(path), "--out", str(out), "--quiet"]) == 0
    for name in ("result.nc", "summary.json", "energy.png", "state.png"):
        assert (out / name).stat().st_size > 0
    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        energy = ds["energy"].values
        mass = ds["mass"].values
        geometry = load_config(tomllib.loads(ds.attrs["config"])).geometry.kind
        assert ds.attrs["status"] == "completed"
        assert ds["time"].values[-1] == pytest.approx(config["time"]["t_end"])
        assert ds["snapshot_time"].values[0] == 0.0
        assert ds["snapshot_time"].values[-1] == ds["time"].values[-1]
    assert energy[-1] < energy[0]
    assert np.all(np.diff(energy) <= 1e-12 * energy[0])
    if geometry == "wasserstein":  # the Fisher-Rao part of WFR changes the mass
        assert np.max(np.abs(mass - mass[0])) < 1e-12
