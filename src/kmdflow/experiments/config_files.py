"""Measure files named by a config (``kind = "file"``): resolve the path, say what the file holds.

The checks run when the config is loaded, so that a bad file is reported as a
:class:`~kmdflow.experiments.config_values.ConfigError` naming its key before anything is computed;
:mod:`kmdflow.measures.files` reads the data later. NumPy and xarray are imported only when a file
is inspected, so that ``kmdflow check`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

from kmdflow.experiments.config_values import ConfigError

__all__ = ["RESULT_SUFFIXES", "check_weights_file", "describe_file", "existing_file"]

#: File suffixes read as a previous run's result (NetCDF4 / HDF5).
RESULT_SUFFIXES = (".nc", ".nc4", ".h5", ".hdf5")


def existing_file(key: str, value: str, base_dir: Path) -> Path:
    """The absolute path of an existing file (``~`` expanded, relative to ``base_dir``)."""
    try:
        path = Path(os.path.expanduser(value))
        path = (path if path.is_absolute() else base_dir / path).resolve()
        found = path.is_file()
    except (OSError, ValueError, RuntimeError) as err:
        raise ConfigError(key, f"is not a usable path ({err}); check the path", value) from None
    if not found:
        what = "is a directory, not a file" if path.is_dir() else "no such file"
        raise ConfigError(key, f"{what}: {path}; check the path (relative paths start at "
                          f"{base_dir})", value)
    return path


def describe_file(path: Path, dim: int = 1, key: str = "path", coords: int | None = None
                  ) -> tuple[str, int]:
    """Say what a measure file holds, checking it can serve as one.

    Parameters
    ----------
    path : Path
        A ``.npy`` array (grid density values of shape ``(n,)*dim``, or particle positions of
        shape ``(N, dim)``) or a previous run's ``result.nc`` (its last snapshot).
    dim : int
        Dimension of the torus (or sphere).
    key : str
        Dotted key reported in errors.
    coords : int, optional
        Coordinates of a position: ``dim`` on the torus (default), ``dim + 1`` on the sphere.

    Returns
    -------
    (content, size) : (str, int)
        ``("density", n)`` or ``("positions", N)``.

    Raises
    ------
    ConfigError
        Unreadable file, wrong shape or dtype, non-finite values, a negative or zero density.
    """
    coords = dim if coords is None else coords
    suffix = path.suffix.lower()
    if suffix in RESULT_SUFFIXES:
        return _describe_result_file(path, key, dim, coords)
    if suffix != ".npy":
        raise ConfigError(key, f"{path.name} is neither a .npy array nor a result.nc file "
                          f"({', '.join(RESULT_SUFFIXES)})", str(path))
    import numpy as np

    values = _open_npy(key, path)
    if values.dtype.kind not in "fiu":
        raise ConfigError(key, f"holds dtype {values.dtype}; expected real numbers", str(path))
    if values.ndim == 2 and values.shape[1] == coords and values.shape[0] >= 1:
        if not np.isfinite(values).all():
            raise ConfigError(key, "particle positions must be finite", str(path))
        return "positions", int(values.shape[0])
    if values.ndim == dim and len(set(values.shape)) == 1 and values.shape[0] >= 2:
        if not np.isfinite(values).all() or (values < 0).any() or not values.sum() > 0:
            raise ConfigError(key, "density values must be finite and >= 0 with positive mass", str(path))
        return "density", int(values.shape[0])
    raise ConfigError(key, f"has shape {values.shape}; expected a density of shape (n,)*{dim} or "
                      f"particle positions of shape (N, {coords})", str(path))


def _describe_result_file(path: Path, key: str, dim: int, coords: int) -> tuple[str, int]:
    try:
        import xarray

        with xarray.open_dataset(path, decode_times=False) as dataset:
            shapes = {name: var.shape for name, var in dataset.data_vars.items()}
            axes = {name: var.dims for name, var in dataset.data_vars.items()}
    except Exception as err:  # any reader failure means: not a usable result file
        raise ConfigError(key, f"cannot be read as a result.nc file ({type(err).__name__}: {err})",
                          str(path)) from None
    if "positions" in shapes and len(shapes["positions"]) == 3:
        if shapes["positions"][2] != coords:
            raise ConfigError(key, f"holds positions with {shapes['positions'][2]} coordinates; "
                              f"d = {dim} needs {coords} (set domain to match the run)", str(path))
        return "positions", int(shapes["positions"][1])
    if "density" in shapes and len(shapes["density"]) >= 2:
        spatial = [a for a in axes["density"] if a != "snapshot_time"]
        if len(spatial) != dim:
            raise ConfigError(key, f"holds a density on {len(spatial)} axes ({', '.join(spatial)}); "
                              f"d = {dim} needs {dim} (set domain.dim to match the run)", str(path))
        return "density", int(shapes["density"][-1])
    raise ConfigError(key, "holds neither positions nor density; pass the result.nc of a kmdflow run",
                      str(path))


def check_weights_file(key: str, path: Path, count: int) -> None:
    """Check a ``.npy`` file of ``count`` particle weights: shape ``(count,)``, finite, > 0."""
    import numpy as np

    weights = _open_npy(key, path)
    if weights.dtype.kind not in "fiu" or weights.shape != (count,):
        raise ConfigError(key, f"must hold {count} real weights (shape ({count},)), found dtype "
                          f"{weights.dtype} and shape {weights.shape}", str(path))
    if not (np.isfinite(weights).all() and (weights > 0).all()):
        raise ConfigError(key, "weights must be finite and > 0", str(path))


def _open_npy(key: str, path: Path):
    """The array in a ``.npy`` file, memory-mapped (nothing is read until used)."""
    import numpy as np

    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ConfigError(key, f"cannot be read as a .npy array ({err})", str(path)) from None
