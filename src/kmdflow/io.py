"""Writing results: ``result.nc`` (xarray, h5netcdf) and ``summary.json``, always atomically.

A file is written to a temporary name in the same folder and renamed over the target, so a reader
never sees half a file and an interrupted write leaves the previous version intact.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import xarray as xr

from kmdflow.domains import torus


def trajectory_dataset(traj, representation: str, attrs: dict) -> xr.Dataset:
    """The dataset of a run (the layout of DESIGN.md section 2).

    Parameters
    ----------
    traj : kmdflow.solve.Trajectory
        Saved series and snapshots.
    representation : {"grid", "particles"}
        Decides the snapshot variables: ``density(snapshot_time, x[, y, z])`` or
        ``positions(snapshot_time, particle, coord)`` and ``weights(snapshot_time, particle)``.
    attrs : dict
        Global attributes (config TOML text, version, status, ...).
    """
    data_vars = {name: (("time",), np.asarray(values)) for name, values in traj.series.items()}
    coords = {"time": np.asarray(traj.times), "snapshot_time": np.asarray(traj.snapshot_times)}
    if representation == "grid":
        density = np.stack(traj.snapshots["density"])
        axes = ("x", "y", "z")[: density.ndim - 1]
        for axis in axes:
            coords[axis] = torus.grid(density.shape[-1])
        data_vars["density"] = (("snapshot_time", *axes), density)
    else:
        data_vars["positions"] = (("snapshot_time", "particle", "coord"), np.stack(traj.snapshots["positions"]))
        data_vars["weights"] = (("snapshot_time", "particle"), np.stack(traj.snapshots["weights"]))
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update({key: _attr_value(value) for key, value in attrs.items()})
    return ds


def _attr_value(value):
    if value is None:
        return np.nan  # a missing number (e.g. no fitted rate); strings stay strings
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return value


def _atomic_target(path: Path) -> Path:
    """A temporary name beside ``path`` (same file system, so the final rename is atomic).

    Created by the writer itself, so the file gets the user's usual permissions (umask).
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_dataset(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` as NetCDF4 (h5netcdf engine) atomically."""
    tmp = _atomic_target(path)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(text: str, path: Path) -> None:
    """Write ``text`` atomically."""
    tmp = _atomic_target(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False) + "\n", path)


def _finite(value):
    """``NaN``/``inf`` floats become ``None`` (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_result(path: Path) -> xr.Dataset:
    """Open a ``result.nc`` fully into memory (the file is closed on return)."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def write_checkpoint(state: dict, path: Path, config_hash: str) -> None:
    """Write a run's complete state (:func:`kmdflow.solve.simulate`'s ``checkpoint``) atomically.

    ``.npz`` without pickles: the state ``y``, time, next save index, the step controller (and
    the integrator's step memory, :meth:`kmdflow.integrators.Stepper.checkpoint`), wall seconds,
    every saved series and snapshot, and the hash of the config it belongs to.
    """
    traj = state["trajectory"]
    arrays = {"y": np.asarray(state["y"]), "t": state["t"], "index": state["index"],
              "wall_seconds": state["wall_seconds"], "config_hash": np.array(config_hash),
              "times": np.asarray(traj.times, dtype=float),
              "snapshot_times": np.asarray(traj.snapshot_times, dtype=float),
              "step_energies": np.asarray(traj.step_energies, dtype=float)}
    arrays.update({f"stepper.{k}": v for k, v in state["stepper"].items()})
    arrays.update({f"series.{k}": np.asarray(v, dtype=float) for k, v in traj.series.items()})
    arrays.update({f"snapshot.{k}": np.stack(v) for k, v in traj.snapshots.items() if v})
    tmp = _atomic_target(path)
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_checkpoint(path: Path) -> tuple[dict, str]:
    """The state written by :func:`write_checkpoint` and its config hash."""
    from kmdflow.solve import Trajectory

    with np.load(path, allow_pickle=False) as data:
        fields = {key: data[key] for key in data.files}
    traj = Trajectory(times=fields["times"].tolist(), snapshot_times=fields["snapshot_times"].tolist(),
                      step_energies=fields["step_energies"].tolist())
    traj.series = {k[7:]: v.tolist() for k, v in fields.items() if k.startswith("series.")}
    traj.snapshots = {k[9:]: list(v) for k, v in fields.items() if k.startswith("snapshot.")}
    state = {"y": fields["y"], "t": float(fields["t"]), "index": int(fields["index"]),
             "wall_seconds": float(fields["wall_seconds"]), "trajectory": traj,
             "stepper": {k[8:]: v.item() if v.ndim == 0 else v for k, v in fields.items()
                         if k.startswith("stepper.")}}
    return state, str(fields["config_hash"])
