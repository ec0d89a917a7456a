r"""Measures on the sphere ``S^d`` as configs describe them (unit vectors in ``R^(d+1)``).

Densities have mass 1 (w.r.t. the uniform probability ``sigma``). Atom weights are masses as given
(a teacher network's output weights, or the masses a WFR run ended with); without weights each of
``N`` atoms has mass ``1/N``. On the circle ``S^1`` densities are the torus densities of
:mod:`kmdflow.measures` in the angle ``phi`` (``theta = (cos phi, sin phi)``,
:func:`kmdflow.domains.sphere.angles_to_points`), so every torus kind, quantile placement and the
Fourier coefficients of the spectral method carry over. On ``S^d``, ``d >= 2``, the densities are
``uniform`` and ``von_mises`` (von Mises--Fisher, ``~ exp(kappa theta . eta)``), sampled i.i.d.
Conventions of the sphere: :mod:`kmdflow.domains.sphere`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmdflow.domains import sphere
from kmdflow.measures.base import MeasureError
from kmdflow.measures.placement import place_particles
from kmdflow.measures.registry import make_measure

__all__ = ["SPHERE_DENSITY_KINDS", "SphereAtoms", "SphereDensity", "place_on_sphere", "sphere_measure"]

#: Density kinds on ``S^d`` for ``d >= 2`` (on the circle every torus kind is a density).
SPHERE_DENSITY_KINDS = ("uniform", "von_mises")


@dataclass(frozen=True)
class SphereAtoms:
    """``mu = sum_j w_j delta_{theta_j}``: ``points (N, d+1)`` unit vectors, ``weights (N,)`` masses > 0."""

    points: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        x = np.asarray(self.points, dtype=float)
        w = np.asarray(self.weights, dtype=float).reshape(-1)
        if x.ndim != 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
            raise MeasureError("positions", f"expected finite positions of shape (N, d+1), got {x.shape}")
        scale = np.max(np.abs(x), axis=1)  # rows scaled first: no overflow or underflow in the norm
        if not np.all(scale > 0):
            raise MeasureError("positions", f"position {int(np.argmin(scale))} is the zero vector; "
                               "give nonzero vectors (they are normalised to the sphere)")
        x = x / scale[:, None]
        norms = np.linalg.norm(x, axis=1)
        if w.shape != (x.shape[0],) or not np.all(np.isfinite(w)) or not np.all(w > 0):
            raise MeasureError("weights", f"need {x.shape[0]} finite weights > 0 (one per position)")
        object.__setattr__(self, "points", x / norms[:, None])
        object.__setattr__(self, "weights", w)


@dataclass(frozen=True)
class SphereDensity:
    """``uniform`` (``kappa = 0``) or von Mises--Fisher density on ``S^d``: direction ``eta (d+1,)``."""

    dim: int
    direction: np.ndarray
    kappa: float = 0.0

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` i.i.d. points ``(n, d+1)`` (seeded)."""
        if self.kappa == 0:
            return sphere.sample_uniform(n, self.dim, seed)
        return sphere.sample_von_mises_fisher(n, self.direction, self.kappa, seed)

    def regularity(self) -> float:
        """Both densities are analytic: ``inf``."""
        return np.inf


def _north_pole(dim: int) -> np.ndarray:
    eta = np.zeros(dim + 1)
    eta[-1] = 1.0
    return eta


def _points(positions, dim: int) -> np.ndarray:
    """Config positions: ``(N, d+1)`` vectors, or on the circle also ``N`` angles."""
    x = np.asarray(positions, dtype=float)
    if dim == 1 and x.ndim == 1:
        return sphere.angles_to_points(x)
    return x


def sphere_measure(kind: str, params: dict, base_dir=None, dim: int = 1):
    """The measure of a validated ``[initial]``/``[target]`` table on ``S^d``.

    Returns
    -------
    TorusDensity (circle densities, in the angle), SphereDensity (``d >= 2``) or SphereAtoms
    """
    if kind == "particles":
        weights = params.get("weights")
        points = _points(params["positions"], dim)
        return SphereAtoms(points, np.full(points.shape[0], 1.0 / points.shape[0]) if weights is None else weights)
    if kind == "file":
        return _from_file(params["path"], params.get("weights_path"), base_dir, dim)
    if dim == 1:
        return make_measure(kind, params, base_dir=base_dir, dim=1)
    if kind == "uniform":
        return SphereDensity(dim, _north_pole(dim))
    if kind == "von_mises":
        loc = params.get("loc")
        direction = _north_pole(dim) if loc is None else np.asarray(loc, dtype=float)
        return SphereDensity(dim, direction, float(params["kappa"]))
    raise MeasureError("kind", f"{kind!r} is not a measure on S^{dim}; use one of "
                       f"{', '.join(SPHERE_DENSITY_KINDS)}, particles or file")


def _resolve(path, base_dir) -> Path:
    p = Path(path).expanduser()
    return Path(base_dir) / p if not p.is_absolute() and base_dir is not None else p


def _from_file(path, weights_path, base_dir, dim: int):
    p = _resolve(path, base_dir)
    if p.suffix.lower() == ".npy":
        values = np.load(p, allow_pickle=False)
        if values.ndim == 2 and values.shape[1] == dim + 1:
            weights = np.full(values.shape[0], 1.0 / values.shape[0]) if weights_path is None else \
                np.load(_resolve(weights_path, base_dir), allow_pickle=False)
            return SphereAtoms(values, weights)
    else:
        import xarray as xr

        with xr.open_dataset(p, decode_times=False) as ds:
            if "positions" in ds:
                return SphereAtoms(ds["positions"].values[-1], ds["weights"].values[-1])
    if dim == 1:  # a density on the circle (grid values or a spectral run's last snapshot)
        return make_measure("file", {"path": str(p), "weights_path": None}, base_dir=base_dir, dim=1)
    raise MeasureError("path", f"{p} holds no positions of shape (N, {dim + 1}) (unit vectors on S^{dim})")


def place_on_sphere(measure, n: int, placement: str = "random", seed: int = 0) -> SphereAtoms:
    """``n`` equal-weight atoms approximating a density (atoms are returned as they are).

    Circle densities use :func:`kmdflow.measures.place_particles` on the angle (``"quantile"``
    or ``"random"``); ``S^d`` densities are sampled i.i.d.
    """
    if isinstance(measure, SphereAtoms):
        return measure
    if isinstance(measure, SphereDensity):
        return SphereAtoms(measure.sample(n, seed), np.full(n, 1.0 / n))
    atoms = place_particles(measure, n, placement, seed)
    return SphereAtoms(sphere.angles_to_points(atoms.positions), atoms.weights)
