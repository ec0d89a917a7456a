"""The schema of a run configuration: the dataclasses, their defaults and each key's validator.

The frozen dataclasses (:class:`Config` and one per table) hold a validated configuration; their
field defaults are the documented defaults. :data:`SECTION_VALIDATORS` gives the validator of
every key of the plain tables and :data:`MEASURE_KEYS` the default and validator of every key of
each measure kind (``[initial]``, ``[target]``, mixture components); keys whose form depends on
the torus dimension (``mode.k``, ``von_mises.loc``, ``indicator.start`` / ``stop``,
``particles.positions``) have a :class:`PerDim` validator. The ``d``-dependent defaults and limits
of ``[method]`` are :data:`DEFAULT_SPECTRAL_N`, :data:`DEFAULT_PLACEMENT`, :data:`MAX_SPECTRAL_N`
and :data:`MAX_PERTURBATION_MODES`. The loader that applies them, with the cross-checks between
tables, is :mod:`kmdflow.experiments.config`; the complete list of keys is in
``docs/config-reference.md``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from kmdflow.experiments.config_values import (
    ConfigError,
    as_float,
    as_int,
    choice_of,
    domain_dim,
    integer_in,
    nonempty_string,
    number_in,
    optional,
    type_name,
)
from kmdflow.experiments.toml_writer import dump_toml

#: Every measure kind of ``[initial]`` and ``[target]``.
MEASURE_KINDS = ("uniform", "mode", "perturbation", "von_mises", "mixture", "indicator",
                 "particles", "file")
#: Kinds a mixture component may have (densities only, no nesting).
COMPONENT_KINDS = ("uniform", "mode", "perturbation", "von_mises", "indicator")
#: ``method.placement`` choices; ``"quantile"`` is for ``d = 1`` only.
PLACEMENTS = ("quantile", "random", "sobol")
#: Default ``method.placement`` by dimension (``"quantile"`` has no analogue in ``d >= 2``).
DEFAULT_PLACEMENT = {1: "quantile", 2: "sobol", 3: "sobol"}
#: Spectral grids: the default ``method.n`` by dimension (the dataclass default is the d = 1 one).
DEFAULT_SPECTRAL_N = {1: 512, 2: 512, 3: 128}
#: Spectral grids: the largest ``method.n`` by dimension (memory of the ``n^d`` grid).
MAX_SPECTRAL_N = {1: 2**20, 2: 1024, 3: 256}
#: Perturbations: the largest ``modes`` by dimension (the ``~ modes^d`` terms are summed at set-up).
MAX_PERTURBATION_MODES = {1: 100_000, 2: 512, 3: 64}


# --------------------------------------------------------------------------------------------
# The configuration dataclasses (field defaults are the documented defaults)


@dataclass(frozen=True)
class DomainConfig:
    """``[domain]``: ``kind`` ("torus" or "sphere"), ``dim`` (1; ``T^1..T^3``, ``S^1..S^8``)."""

    kind: str = "torus"
    dim: int = 1


@dataclass(frozen=True)
class EnergyConfig:
    """``[energy]``: ``kernel`` ("sobolev" or "relu"), ``s`` (> 0; the paper's theory needs s >= 1).

    With ``kernel = "relu"`` the resolved ``s`` is ``(d + 3) / 2``, the Sobolev exponent the ReLU
    kernel on ``S^d`` behaves like (MATH.md section 6).
    """

    kernel: str = "sobolev"
    s: float = 2.0


@dataclass(frozen=True)
class GeometryConfig:
    """``[geometry]``: ``kind``, ``alpha``, ``beta`` (MATH.md section 6).

    The default ``kind`` is "wasserstein" on the torus and "wfr" on the sphere (the network case);
    ``alpha`` and ``beta`` are read only by "wfr" (the Wasserstein flow is ``alpha = 0``).
    """

    kind: str = "wasserstein"
    alpha: float = 2.0
    beta: float = 1.0


@dataclass(frozen=True)
class MethodConfig:
    """``[method]``: discretisation (``kind``, ``n``), time scheme, particle sums, fixed ``dt``.

    ``kind = "network"`` (sphere only) trains a width-``n`` two-layer ReLU network by gradient
    descent with learning rate ``dt`` (in flow time), or by minibatch SGD when ``batch`` is set.
    """

    kind: str = "spectral"
    n: int = 512
    integrator: str = "auto"
    summation: str = "auto"
    tol: float = 1e-10
    placement: str = "quantile"
    seed: int = 0
    dt: float | None = None
    modes: int | None = None
    batch: int | None = None


@dataclass(frozen=True)
class TimeConfig:
    """``[time]``: end time, tolerances and the save times (``n_saves``, ``spacing``, ``t_first``)."""

    t_end: float = 1e4
    rtol: float = 1e-8
    atol: float = 0.0
    n_saves: int = 200
    spacing: str = "log"
    t_first: float | None = None


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: kept states (``snapshots``) and checkpoint interval in wall seconds."""

    snapshots: int = 20
    checkpoint_every: float = 60.0


@dataclass(frozen=True)
class MeasureSpec:
    """A measure as the config describes it: ``kind`` plus its keys, validated and normalised.

    ``params`` holds every key of the kind with its value (defaults filled). Arrays are tuples of
    floats; ``mixture`` holds ``components``, a tuple of ``(weight, MeasureSpec)``; ``file``
    holds absolute paths.
    """

    kind: str
    params: dict = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.kind, _freeze(self.params)))

    def to_dict(self) -> dict:
        """The spec as a TOML-structured dict (``{"kind": ..., key: value, ...}``)."""
        out: dict[str, Any] = {"kind": self.kind}
        for key, value in self.params.items():
            if key == "components":
                out[key] = [{"weight": w, **spec.to_dict()} for w, spec in value]
            else:
                out[key] = _plain(value)
        return out


def _freeze(value):
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


#: The plain tables and their dataclasses.
SECTIONS = {"domain": DomainConfig, "energy": EnergyConfig, "geometry": GeometryConfig,
             "method": MethodConfig, "time": TimeConfig, "output": OutputConfig}
#: All tables, in the order they are written.
TABLE_ORDER = ("domain", "energy", "geometry", "target", "initial", "method", "time", "output")


@dataclass(frozen=True)
class Config:
    """A validated run configuration (tables: :mod:`kmdflow.experiments.config`).

    ``source_dir`` is the directory of the TOML file it came from (``None`` for a dict); it is
    provenance only and takes no part in equality or :meth:`hash`.
    """

    domain: DomainConfig
    energy: EnergyConfig
    geometry: GeometryConfig
    target: MeasureSpec
    initial: MeasureSpec
    method: MethodConfig
    time: TimeConfig
    output: OutputConfig
    source_dir: Path | None = field(default=None, compare=False)

    def __hash__(self) -> int:
        return hash(self.hash())

    def to_dict(self) -> dict:
        """The fully resolved config: every table and key with its value (``None`` = unset).

        ``load_config(config.to_dict())`` returns an equal config.
        """
        out = {}
        for name in TABLE_ORDER:
            section = getattr(self, name)
            if isinstance(section, MeasureSpec):
                out[name] = section.to_dict()
            else:
                out[name] = {f.name: getattr(section, f.name) for f in fields(section)}
        return out

    def to_toml(self) -> str:
        """The resolved config as canonical TOML text (unset optional keys are left out)."""
        return "# kmdflow configuration, fully resolved\n\n" + dump_toml(self.to_dict())

    def hash(self) -> str:
        """SHA-256 hex digest of :meth:`to_toml` (identifies the run's content)."""
        return hashlib.sha256(self.to_toml().encode("utf-8")).hexdigest()

    def notes(self) -> list[str]:
        """Remarks that are not errors (settings outside the paper's theory)."""
        notes = []
        if self.energy.s < 1:
            notes.append(f"energy.s = {self.energy.s:g} is below 1, outside the paper's theory "
                         "(s >= 1); the flow is computed all the same")
        return notes



# --------------------------------------------------------------------------------------------
# Validators of the plain tables


#: The validator of every key of the plain tables: ``(dotted key, raw value) -> value``.
SECTION_VALIDATORS: dict[str, dict[str, Callable]] = {
    "domain": {
        "kind": choice_of(("torus", "sphere")),
        "dim": domain_dim,
    },
    "energy": {
        "kernel": choice_of(("sobolev", "relu")),
        "s": number_in(gt=0, fix="use a positive Sobolev exponent, e.g. s = 2.0"),
    },
    "geometry": {
        "kind": choice_of(("wasserstein", "wfr")),
        "alpha": number_in(ge=0),
        "beta": number_in(gt=0),
    },
    "method": {
        "kind": choice_of(("spectral", "particles", "network")),
        "n": integer_in(ge=1),
        "integrator": nonempty_string,
        "summation": choice_of(("auto", "sorted", "nufft", "direct")),
        "tol": number_in(gt=0, lt=1, fix="e.g. tol = 1e-10"),
        "placement": choice_of(PLACEMENTS),
        "seed": integer_in(ge=0),
        "dt": optional(number_in(gt=0, fix="or leave dt out for adaptive steps")),
        "modes": optional(integer_in(ge=2, le=4096, fix="or leave modes out for the default")),
        "batch": optional(integer_in(ge=1, le=10**7, fix="or leave batch out for population "
                                     "gradient descent")),
    },
    "time": {
        "t_end": number_in(gt=0, fix="set a positive end time"),
        "rtol": number_in(gt=0, lt=1, fix="e.g. rtol = 1e-8"),
        "atol": number_in(ge=0),
        "n_saves": integer_in(ge=2, le=10**6),
        "spacing": choice_of(("log", "linear")),
        "t_first": optional(number_in(gt=0)),
    },
    "output": {"snapshots": integer_in(ge=2, le=10**4), "checkpoint_every": number_in(gt=0)},
}


# --------------------------------------------------------------------------------------------
# Defaults and validators of the measure kinds

#: Marks a key that has no default (it must be given).
REQUIRED = MISSING


def nonempty_array(key: str, value: object) -> list:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected an array, got {type_name(value)}; write [x1, x2, ...]", value)
    if len(value) == 0:
        raise ConfigError(key, "must not be empty", value)
    return list(value)


def float_array(key: str, value: object, gt=None) -> tuple[float, ...]:
    out = []
    for i, v in enumerate(nonempty_array(key, value)):
        x = as_float(f"{key}[{i}]", v)
        if gt is not None and not x > gt:
            raise ConfigError(f"{key}[{i}]", f"must be > {gt:g}", v)
        out.append(x)
    return tuple(out)


class PerDim:
    """A measure key whose default or validation depends on the torus dimension ``d``.

    ``default(dim)`` gives the default; ``validate(key, value, dim)`` the normalised value.
    """

    def __init__(self, validate: Callable, default: Callable | None = None):
        self.validate = validate
        self.default = default


def mode_k(key: str, value: object, dim: int = 1) -> int | tuple[int, ...]:
    """``k`` of a mode: an integer ``>= 1`` (``d = 1``) or a list of ``d`` integers, not all 0."""
    if dim == 1:
        if isinstance(value, (list, tuple)):  # a wave vector; in d = 1 a single entry
            if len(value) != 1:
                raise ConfigError(key, "in d = 1 the wave vector has one entry; write k = 3", value)
            value = value[0]
        return integer_in(ge=1)(key, value)
    example = "[" + ", ".join(["1"] + ["0"] * (dim - 1)) + "]"
    if not isinstance(value, (list, tuple)) or len(value) != dim:
        raise ConfigError(key, f"in d = {dim} the wave vector is a list of {dim} integers, e.g. "
                          f"k = {example}", value)
    k = tuple(as_int(f"{key}[{i}]", v) for i, v in enumerate(value))
    if not any(k):
        raise ConfigError(key, f"the wave vector must not be zero; e.g. k = {example}", value)
    return k


def number_or_vector(key: str, value: object, dim: int = 1) -> float | tuple[float, ...]:
    """A finite number, or (``d >= 2``) a list of ``d`` finite numbers (one per axis)."""
    if dim > 1 and isinstance(value, (list, tuple)):
        if len(value) != dim:
            raise ConfigError(key, f"in d = {dim} give one number (every axis) or a list of "
                              f"{dim} numbers", value)
        return tuple(as_float(f"{key}[{i}]", v) for i, v in enumerate(value))
    what = "a number" if dim == 1 else f"a number or a list of {dim} numbers"
    return as_float(key, value, what)


def positions_array(key: str, value: object, dim: int = 1) -> tuple:
    """Particle positions: ``N`` numbers (``d = 1``) or ``N`` lists of ``d`` numbers."""
    if dim == 1:
        return float_array(key, value)
    out = []
    for i, item in enumerate(nonempty_array(key, value)):
        if not isinstance(item, (list, tuple)) or len(item) != dim:
            raise ConfigError(f"{key}[{i}]", f"in d = {dim} each position is a list of {dim} "
                              "numbers, e.g. positions = [[0.5, 1.0], [2.0, 3.0]] in d = 2", item)
        out.append(tuple(as_float(f"{key}[{i}][{j}]", v) for j, v in enumerate(item)))
    return tuple(out)


#: ``(default, validator)`` of every key of each measure kind (``kind`` itself aside). A
#: :class:`PerDim` validator also gets the torus dimension (and may give a ``d``-dependent default).
MEASURE_KEYS: dict[str, dict[str, tuple[object, Callable | PerDim]]] = {
    "uniform": {},
    "mode": {
        "k": (1, PerDim(mode_k, lambda dim: 1 if dim == 1 else (1,) + (0,) * (dim - 1))),
        "amplitude": (0.5, number_in(ge=-1, le=1,
                                     fix="|amplitude| > 1 makes the density negative")),
    },
    "perturbation": {
        "amplitude": (0.3, number_in(ge=0, le=1, fix="amplitude > 1 allows a negative density")),
        "decay": (2.0, number_in(gt=0)),
        "seed": (0, integer_in(ge=0)),
        "modes": (64, integer_in(ge=1, le=100_000)),
    },
    "von_mises": {
        "loc": (0.0, PerDim(number_or_vector)),
        "kappa": (1.0, number_in(ge=0, le=700, fix="exp(kappa) overflows beyond 700")),
    },
    "indicator": {
        "start": (0.0, PerDim(number_or_vector)),
        "stop": (math.pi, PerDim(number_or_vector)),
        "floor": (0.0, number_in(ge=0, lt=1, fix="floor is the density outside the patch")),
    },
    "mixture": {"components": (REQUIRED, None)},
    "particles": {
        "positions": (REQUIRED, PerDim(positions_array)),
        "weights": (None, optional(lambda k, v: float_array(k, v, gt=0))),
    },
    "file": {"path": (REQUIRED, nonempty_string), "weights_path": (None, optional(nonempty_string))},
}
