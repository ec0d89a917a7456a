r"""Measures read from files: ``.npy`` grid values or particle positions, or a ``result.nc``.

Grid values become a :class:`~kmdflow.measures.grid.GridDensity` (``d = 1``) or
:class:`~kmdflow.measures.grid.GridDensityND` (divided by their mean), positions become
:class:`~kmdflow.measures.atoms.Atoms` (wrapped into ``[0, 2 pi)``, weights divided by their sum).
Conventions: :mod:`kmdflow.domains.torus`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kmdflow.measures.atoms import Atoms, atoms_from_raw
from kmdflow.measures.base import MeasureError, TorusDensity
from kmdflow.measures.grid import GridDensity, GridDensityND


def _resolve(path, base_dir) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def measure_from_file(path: str | Path, weights_path: str | Path | None = None,
                      base_dir: str | Path | None = None, dim: int = 1) -> TorusDensity | Atoms:
    """Read a measure on :math:`T^d` from a ``.npy`` array or a previous run's ``result.nc``.

    Parameters
    ----------
    path : str or Path
        ``.npy`` grid values, shape ``(n,) * d``, or particle positions, shape ``(N, d)``
        (positions win when both read, e.g. ``(2, 2)`` in ``d = 2``); or a ``.nc`` / ``.nc4`` /
        ``.h5`` / ``.hdf5`` result file (its last snapshot: ``density(snapshot_time, x[, y, z])``
        or ``positions(snapshot_time, particle, coord)`` with ``weights``).
    weights_path : str or Path, optional
        ``.npy`` particle weights, shape ``(N,)`` (positions only; default ``1/N``).
    base_dir : str or Path, optional
        Directory that relative paths are resolved against.
    dim : int
        Dimension ``d`` of the torus.

    Returns
    -------
    TorusDensity or Atoms
        A grid density for grid values, else :class:`Atoms` (positions ``(N,)`` for ``d = 1``,
        ``(N, d)`` otherwise).

    Raises
    ------
    MeasureError
        Missing or unreadable file, wrong shape or dtype (key ``"path"`` or ``"weights_path"``).
    """
    p = _resolve(path, base_dir)
    if not p.is_file():
        raise MeasureError("path", f"{str(p)!r} is not a file; check the path (relative paths "
                           "are resolved against the config's directory)")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        arr = _load_npy(p, "path")
        if arr.ndim == 2 and arr.shape[1] == dim and arr.shape[0] >= 1:
            weights = None
            if weights_path is not None:
                w = _load_npy(_resolve(weights_path, base_dir), "weights_path")
                if w.ndim != 1:
                    raise MeasureError("weights_path", f"array of shape {w.shape}: expected (N,)")
                weights = w
            return atoms_from_raw(arr[:, 0] if dim == 1 else arr, weights, "path", "weights_path")
        if arr.ndim == dim and len(set(arr.shape)) == 1:
            if weights_path is not None:
                raise MeasureError("weights_path", "only particle positions take weights; "
                                   f"{p.name} holds grid values {arr.shape}; remove weights_path")
            return _grid(arr, "path")
        grid_shape = "(n,)" if dim == 1 else f"(n,) * {dim}"
        raise MeasureError("path", f"{p.name} holds an array of shape {arr.shape}: expected grid "
                           f"values {grid_shape} or particle positions (N, {dim}) on T^{dim}")
    if suffix in (".nc", ".nc4", ".h5", ".hdf5"):
        if weights_path is not None:
            raise MeasureError("weights_path", "a result file carries its own weights; remove "
                               "weights_path")
        return _from_result(p, dim)
    raise MeasureError("path", f"{p.name}: unsupported file type {suffix!r}; use a .npy array "
                       "or a previous run's result.nc")


def _load_npy(path: Path, key: str) -> np.ndarray:
    if not path.is_file():
        raise MeasureError(key, f"{str(path)!r} is not a file; check the path")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise MeasureError(key, f"cannot read {path.name} as a .npy array ({err}); save it with "
                           "numpy.save") from None
    if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.integer)
                                               or np.issubdtype(arr.dtype, np.floating)):
        raise MeasureError(key, f"{path.name} holds {getattr(arr, 'dtype', type(arr))} data; "
                           "expected real numbers")
    return arr.astype(float)


def _grid(values: np.ndarray, key: str) -> GridDensity | GridDensityND:
    try:
        return GridDensity(values) if values.ndim == 1 else GridDensityND(values)
    except MeasureError as err:
        raise MeasureError(key, err.message) from None


def _from_result(path: Path, dim: int = 1) -> TorusDensity | Atoms:
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            if "density" in ds.variables:
                density = _last_snapshot(ds["density"])
                if density.ndim != dim:
                    raise MeasureError("path", f"density of shape {density.shape} in the last "
                                       f"snapshot: expected (n,) * {dim} (d = {dim})")
                return _grid(density, "path")
            if "positions" in ds.variables:
                positions = _last_snapshot(ds["positions"])
                weights = _last_snapshot(ds["weights"]) if "weights" in ds.variables else None
            else:
                raise MeasureError("path", f"{path.name} has neither 'density' nor 'positions'; "
                                   "give a result.nc written by kmdflow run")
    except MeasureError:
        raise
    except ImportError as err:
        raise MeasureError("path", f"reading {path.name} needs a NetCDF backend ({err}); "
                           "install h5py") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise MeasureError("path", f"cannot read {path.name} as NetCDF ({type(err).__name__}: "
                           f"{err}); give a result.nc written by kmdflow run") from None
    if dim == 1 and positions.ndim == 2 and positions.shape[1] == 1:
        positions = positions[:, 0]
    expected = (positions.shape[0],) if dim == 1 else (positions.shape[0], dim)
    if positions.shape != expected or positions.size == 0:
        raise MeasureError("path", f"positions of shape {positions.shape} in the last snapshot: "
                           f"expected (N, {dim}) (d = {dim})")
    if weights is not None and weights.shape != positions.shape[:1]:
        raise MeasureError("path", f"weights of shape {weights.shape} for {positions.shape[0]} "
                           "positions in the last snapshot")
    return atoms_from_raw(positions, weights, "path", "path")


def _last_snapshot(var) -> np.ndarray:
    """Values of ``var`` at the latest ``snapshot_time`` (all of it if it has no such dim)."""
    if "snapshot_time" in var.dims:
        index = -1
        if "snapshot_time" in var.coords and np.issubdtype(var["snapshot_time"].dtype, np.number):
            index = int(np.argmax(var["snapshot_time"].values))
        var = var.isel(snapshot_time=index)
    return np.asarray(var.values, dtype=float)
