r"""Build a measure from a config's kind and parameters: :func:`make_measure`, :data:`KIND_KEYS`.

The kinds, their densities (w.r.t. ``dx / (2 pi)^d``, conventions of
:mod:`kmdflow.domains.torus`) and their regularity are listed in :mod:`kmdflow.measures`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kmdflow.measures.analytic import Mode, Perturbation, Uniform, VonMises
from kmdflow.measures.analytic_nd import ModeND, PerturbationND, UniformND, von_mises_nd
from kmdflow.measures.atoms import Atoms, atoms_from_raw
from kmdflow.measures.base import MeasureError, TorusDensity
from kmdflow.measures.base_nd import axis_vector
from kmdflow.measures.files import measure_from_file
from kmdflow.measures.piecewise import Indicator, Mixture
from kmdflow.measures.piecewise_nd import Box, MixtureND

#: Dimensions of the torus that :func:`make_measure` builds measures on.
DIMS = (1, 2, 3)

#: Required and optional parameters of each kind.
KIND_KEYS = {
    "uniform": ((), ()),
    "mode": (("k", "amplitude"), ()),
    "perturbation": (("amplitude", "decay", "seed", "modes"), ()),
    "von_mises": (("loc", "kappa"), ()),
    "mixture": (("components",), ()),
    "indicator": (("start", "stop"), ("floor",)),
    "particles": (("positions",), ("weights",)),
    "file": (("path",), ("weights_path",)),
}


def make_measure(kind: str, params: dict | None = None, *,
                 base_dir: Path | str | None = None, dim: int = 1) -> TorusDensity | Atoms:
    """Build the measure a config describes (``[initial]`` or ``[target]``) on :math:`T^d`.

    Parameters
    ----------
    kind : str
        One of :data:`KIND_KEYS`.
    params : dict
        The kind's parameters (listed in :mod:`kmdflow.measures` and :data:`KIND_KEYS`); a
        ``"kind"`` entry equal to ``kind`` is ignored. ``"mixture"`` takes ``components``: a sequence of
        ``(weight, spec)`` where ``spec`` is ``(kind, params)``, an object with ``.kind`` and
        ``.params``, or a dict with a ``"kind"`` entry; or dicts ``{"weight": w, "kind": ...}``.
        For ``dim >= 2``: ``mode.k`` is a list of ``dim`` integers; ``von_mises.loc`` and
        ``indicator.start`` / ``stop`` one number (every axis) or ``dim`` numbers;
        ``particles.positions`` ``N`` lists of ``dim`` numbers.
    base_dir : path, optional
        Directory that relative file paths are resolved against (the config's directory).
    dim : {1, 2, 3}
        Dimension ``d`` of the torus.

    Returns
    -------
    TorusDensity or Atoms
        ``Atoms`` for ``"particles"`` and for files holding positions, else a density: a
        :class:`~kmdflow.measures.base.Density` for ``d = 1``, a
        :class:`~kmdflow.measures.base_nd.DensityND` for ``d >= 2``. Atom positions are wrapped
        into ``[0, 2 pi)`` (shape ``(N,)`` for ``d = 1``, ``(N, d)`` otherwise) and weights
        (default ``1/N``) divided by their sum; grid densities are divided by their mean (mass 1).

    Raises
    ------
    MeasureError
        Unknown kind or key, missing key, bad value, unreadable or malformed file (key names
        the parameter, message the fix).
    """
    params = dict(params or {})
    if isinstance(dim, bool) or dim not in DIMS:
        raise MeasureError("dim", f"dim = {dim!r}: the torus dimension must be 1, 2 or 3")
    if kind not in KIND_KEYS:
        raise MeasureError("kind", f"{kind!r} is not a measure kind; choose one of "
                           f"{', '.join(KIND_KEYS)}")
    given = params.pop("kind", kind)
    if given != kind:
        raise MeasureError("kind", f"params say kind = {given!r} but kind = {kind!r} was asked; "
                           "drop the one in params")
    params = {key: value for key, value in params.items() if value is not None}
    required, optional = KIND_KEYS[kind]
    for key in params:
        if key not in required + optional:
            allowed = ", ".join(required + optional) or "none"
            raise MeasureError(key, f"not a parameter of kind {kind!r} (allowed: {allowed}); "
                               "remove it")
    for key in required:
        if key not in params:
            raise MeasureError(key, f"missing; kind {kind!r} needs {', '.join(required)}")
    if dim > 1:
        return _make_nd(kind, params, base_dir, dim)
    if kind == "uniform":
        return Uniform()
    if kind == "mode":
        return Mode(_integer(params, "k"), _number(params, "amplitude"))
    if kind == "perturbation":
        return Perturbation(_number(params, "amplitude"), _number(params, "decay"),
                            _integer(params, "seed"), _integer(params, "modes"))
    if kind == "von_mises":
        return VonMises(_number(params, "loc"), _number(params, "kappa"))
    if kind == "indicator":
        return Indicator(_number(params, "start"), _number(params, "stop"),
                         _number(params, "floor") if "floor" in params else 0.0)
    if kind == "mixture":
        return _mixture(params["components"], base_dir)
    if kind == "particles":
        weights = params.get("weights")
        return atoms_from_raw(_float_vector(params["positions"], "positions"),
                      None if weights is None else _float_vector(weights, "weights"),
                      "positions", "weights")
    return measure_from_file(params["path"], params.get("weights_path"), base_dir)


def _make_nd(kind: str, params: dict, base_dir, dim: int) -> TorusDensity | Atoms:
    """:func:`make_measure` for ``d >= 2`` (keys already checked)."""
    if kind == "uniform":
        return UniformND(dim)
    if kind == "mode":
        return ModeND(_wavevector(params["k"], dim), _number(params, "amplitude"))
    if kind == "perturbation":
        return PerturbationND(_number(params, "amplitude"), _number(params, "decay"),
                              _integer(params, "seed"), _integer(params, "modes"), dim)
    if kind == "von_mises":
        return von_mises_nd(params["loc"], _number(params, "kappa"), dim)
    if kind == "indicator":
        return Box(axis_vector("start", params["start"], dim), axis_vector("stop", params["stop"], dim),
                   _number(params, "floor") if "floor" in params else 0.0)
    if kind == "mixture":
        return _mixture(params["components"], base_dir, dim)
    if kind == "particles":
        weights = params.get("weights")
        return atoms_from_raw(_position_array(params["positions"], dim),
                              None if weights is None else _float_vector(weights, "weights"),
                              "positions", "weights")
    return measure_from_file(params["path"], params.get("weights_path"), base_dir, dim=dim)


def _wavevector(value, dim: int) -> tuple[int, ...]:
    entries = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    whole = [v for v in entries if not isinstance(v, bool) and isinstance(v, (int, float, np.number))
             and np.isfinite(v) and float(v).is_integer()]
    if len(entries) != dim or len(whole) != dim:
        raise MeasureError("k", f"k = {value!r}: in d = {dim} the wave vector is a list of {dim} "
                           f"integers, e.g. k = [1{', 0' * (dim - 1)}]")
    k = tuple(int(v) for v in whole)
    if not any(k):
        raise MeasureError("k", f"k = {value!r}: the wave vector must not be zero")
    return k


def _position_array(value, dim: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise MeasureError("positions", f"expected N lists of {dim} numbers, got "
                           f"{type(value).__name__}") from None
    if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] == 0:
        raise MeasureError("positions", f"shape {arr.shape}: in d = {dim} give N >= 1 positions "
                           f"of {dim} numbers each, e.g. [[0.5, 1.0], ...]")
    if not np.all(np.isfinite(arr)):
        raise MeasureError("positions", "contains NaN or infinite values; give finite numbers")
    return arr


def _number(params, key) -> float:
    value = params[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        out = float(value)
    except (TypeError, ValueError):
        raise MeasureError(key, f"{key} = {value!r}: expected a number") from None
    if not np.isfinite(out):
        raise MeasureError(key, f"{key} = {value!r}: must be finite")
    return out


def _integer(params, key) -> int:
    value = _number(params, key)
    if not value.is_integer():
        raise MeasureError(key, f"{key} = {params[key]!r}: expected an integer")
    return int(value)


def _float_vector(value, key) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise MeasureError(key, f"expected a list of numbers, got {type(value).__name__}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise MeasureError(key, f"shape {arr.shape}: expected a non-empty flat list of numbers")
    if not np.all(np.isfinite(arr)):
        raise MeasureError(key, "contains NaN or infinite values; give finite numbers")
    return arr



def _mixture(components, base_dir, dim: int = 1) -> Mixture | MixtureND:
    try:
        items = list(components)
    except TypeError:
        raise MeasureError("components", "expected a list of (weight, (kind, params))") from None
    weights, densities = [], []
    for i, item in enumerate(items):
        key = f"components[{i}]"
        try:
            if isinstance(item, dict):
                spec = dict(item)
                weight = spec.pop("weight")
                kind, params = spec.pop("kind"), spec
            else:
                weight, spec = item
                if hasattr(spec, "kind") and hasattr(spec, "params"):
                    kind, params = spec.kind, spec.params
                elif isinstance(spec, dict):
                    params = dict(spec)
                    kind = params.pop("kind")
                else:
                    kind, params = spec
        except (KeyError, TypeError, ValueError):
            raise MeasureError(key, "expected (weight, (kind, params)) or a table with weight and "
                               "kind") from None
        try:
            density = make_measure(kind, params, base_dir=base_dir, dim=dim)
        except MeasureError as err:
            raise MeasureError(f"{key}.{err.key}", err.message) from None
        if isinstance(density, Atoms):
            raise MeasureError(f"{key}.kind", f"{kind!r} gives atoms; mixtures take densities only")
        try:
            weight = _number({"weight": weight}, "weight")
        except MeasureError as err:
            raise MeasureError(f"{key}.weight", err.message) from None
        if weight <= 0:
            raise MeasureError(f"{key}.weight", f"weight = {weight!r}: must be > 0")
        weights.append(weight)
        densities.append(density)
    try:
        return (Mixture if dim == 1 else MixtureND)(tuple(weights), tuple(densities))
    except MeasureError as err:
        raise MeasureError("components", err.message) from None
