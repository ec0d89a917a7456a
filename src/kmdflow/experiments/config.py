"""Load, validate and write the TOML configuration of one run.

The tables and keys are the public contract of DESIGN.md section 2 (extend, never rename)::

    [domain]    kind, dim                  [energy]  kernel, s
    [geometry]  kind, alpha, beta          (optional table)
    [target]    kind + kind-specific keys  (default kind "uniform")
    [initial]   kind + kind-specific keys  (kind required)
    [method]    kind, n, integrator, summation, tol, placement, seed, dt
    [time]      t_end, rtol, atol, n_saves, spacing, t_first
    [output]    snapshots, checkpoint_every

Everything is checked once, here, at the boundary: unknown tables and keys (with the near miss
suggested), types (a string, boolean or array where a number belongs), ranges, and the
cross-checks between tables. Every problem is a :class:`ConfigError` whose text is one line
naming the dotted key, showing the value and saying the fix. Configs are data: nothing in them is
ever evaluated. Positions and angles follow the conventions of :mod:`kmdflow.domains.torus`.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import numbers
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "Config", "ConfigError", "DomainConfig", "EnergyConfig", "GeometryConfig", "MeasureSpec",
    "MethodConfig", "OutputConfig", "TimeConfig", "describe_file", "dump_toml", "load_config",
]

MEASURE_KINDS = ("uniform", "mode", "perturbation", "von_mises", "mixture", "indicator",
                 "particles", "file")
#: Kinds a mixture component may have (densities only, no nesting).
COMPONENT_KINDS = ("uniform", "mode", "perturbation", "von_mises", "indicator")


# --------------------------------------------------------------------------------------------
# Errors and one-line display of values


class ConfigError(ValueError):
    """A problem with a configuration, located by its dotted key.

    Parameters
    ----------
    key : str
        Dotted key (``"time.t_end"``, ``"initial.positions[2]"``), a file name or a CLI option.
    message : str
        What is wrong and how to fix it.
    value : object, optional
        The offending value, shown in TOML syntax by ``str(error)``.

    Notes
    -----
    ``str(error)`` is always one line: ``"time.t_end = -1.0: must be > 0; set a positive end
    time"``, or ``"key: message"`` when there is no value to show.
    """

    def __init__(self, key: str, message: str, *value: object):
        self.key = str(key)
        self.message = " ".join(str(message).split())
        self.has_value = bool(value)
        self.value = value[0] if value else None
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.has_value:
            return f"{self.key} = {_show(self.value)}: {self.message}"
        return f"{self.key}: {self.message}"

    def __reduce__(self):
        return (type(self), (self.key, self.message) + ((self.value,) if self.has_value else ()))


def _show(value: object, limit: int = 60, depth: int = 0) -> str:
    """Short one-line TOML-like text for ``value`` (for error messages)."""
    if isinstance(value, (list, tuple)) and depth < 3:
        items = [_show(v, limit, depth + 1) for v in list(value)[:6]]
        text = "[" + ", ".join(items) + (", ...]" if len(value) > 6 else "]")
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(str(k) for k in list(value)[:6]) + (", ...}" if len(value) > 6 else "}")
    elif isinstance(value, (bool, int, float, str)):
        text = _toml_scalar(value)
    else:
        text = repr(value)
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    if value is None:
        return "nothing (None)"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a float"
    return f"a {type(value).__name__}"


def _suggest(word: str, candidates) -> str:
    near = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}? " if near else ""


def _quoted(options) -> str:
    return ", ".join(f'"{o}"' for o in options)


# --------------------------------------------------------------------------------------------
# Scalar validators: (dotted key, raw value) -> normalised value, or ConfigError


def _as_float(key: str, value: object, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fix = "remove the quotes" if isinstance(value, str) and _parses_as_float(value) else \
            "write a number"
        raise ConfigError(key, f"expected {what}, got {_type_name(value)}; {fix}", value)
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):
        raise ConfigError(key, "is too large for a float; write a smaller number", value) from None
    if not math.isfinite(number):
        raise ConfigError(key, f"must be a finite number (not nan or inf); write {what}", value)
    return number


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _as_int(key: str, value: object, what: str = "an integer") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fix = "write a whole number without a decimal point" if isinstance(value, float) \
            else "write a whole number"
        raise ConfigError(key, f"expected {what}, got {_type_name(value)}; {fix}", value)
    return int(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _bounds(gt, ge, lt, le) -> str:
    """``"> 0 and < 1"``-style text for the given bounds ('' when unbounded)."""
    parts = [f"{op} {_fmt(b)}" for op, b in ((">", gt), (">=", ge), ("<", lt), ("<=", le)) if b is not None]
    return " and ".join(parts)


def _range_text(gt, ge, lt, le) -> str:
    return "must be " + _bounds(gt, ge, lt, le)


def _in_range(x: float, gt, ge, lt, le) -> bool:
    return ((gt is None or x > gt) and (ge is None or x >= ge)
            and (lt is None or x < lt) and (le is None or x <= le))


def _number(gt=None, ge=None, lt=None, le=None, fix: str = "") -> Callable[[str, object], float]:
    """Validator for a finite float in the given range."""

    what = f"a number {_bounds(gt, ge, lt, le)}".rstrip()

    def validate(key: str, value: object) -> float:
        x = _as_float(key, value, what)
        if not _in_range(x, gt, ge, lt, le):
            raise ConfigError(key, _range_text(gt, ge, lt, le) + (f"; {fix}" if fix else ""), value)
        return x

    return validate


def _integer(ge=None, le=None, fix: str = "") -> Callable[[str, object], int]:
    """Validator for an integer in ``[ge, le]``."""

    what = f"an integer {_bounds(None, ge, None, le)}".rstrip()

    def validate(key: str, value: object) -> int:
        n = _as_int(key, value, what)
        if not _in_range(n, None, ge, None, le):
            raise ConfigError(key, _range_text(None, ge, None, le) + (f"; {fix}" if fix else ""), value)
        return n

    return validate


def _choice(options: tuple[str, ...], reserved: Mapping[str, str] | None = None):
    """Validator for one of ``options``; ``reserved`` names planned ones with their message."""
    reserved = reserved or {}

    def validate(key: str, value: object) -> str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {_type_name(value)}; choose one of "
                              f"{_quoted(options)}", value)
        if value in options:
            return value
        if value in reserved:
            raise ConfigError(key, f"not yet supported ({reserved[value]}); use {_quoted(options)}",
                              value)
        raise ConfigError(key, f"unknown choice; {_suggest(value, [*options, *reserved])}"
                          f"choose one of {_quoted(options)}", value)

    return validate


def _text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {_type_name(value)}; write it in quotes", value)
    if not value.strip():
        raise ConfigError(key, "must not be empty", value)
    return value


def _optional(validate):
    """Allow ``None`` (key unset; only reachable from dict input, TOML has no null)."""
    return lambda key, value: None if value is None else validate(key, value)


def _domain_dim(key: str, value: object) -> int:
    dim = _as_int(key, value)
    if dim in (2, 3):
        raise ConfigError(key, "not yet supported (T^2 and T^3 come in a later issue); use dim = 1", value)
    if dim != 1:
        raise ConfigError(key, "dim must be 1, 2 or 3 (only 1 is supported so far)", value)
    return dim


# --------------------------------------------------------------------------------------------
# The configuration dataclasses (field defaults are the documented defaults)


@dataclass(frozen=True)
class DomainConfig:
    """``[domain]``: ``kind`` ("torus"), ``dim`` (1)."""

    kind: str = "torus"
    dim: int = 1


@dataclass(frozen=True)
class EnergyConfig:
    """``[energy]``: ``kernel`` ("sobolev"), ``s`` (> 0; the paper's theory needs s >= 1)."""

    kernel: str = "sobolev"
    s: float = 2.0


@dataclass(frozen=True)
class GeometryConfig:
    """``[geometry]``: ``kind`` ("wasserstein"), ``alpha``, ``beta`` (MATH.md section 6)."""

    kind: str = "wasserstein"
    alpha: float = 2.0
    beta: float = 1.0


@dataclass(frozen=True)
class MethodConfig:
    """``[method]``: discretisation (``kind``, ``n``), time scheme, particle sums, fixed ``dt``."""

    kind: str = "spectral"
    n: int = 512
    integrator: str = "auto"
    summation: str = "auto"
    tol: float = 1e-10
    placement: str = "quantile"
    seed: int = 0
    dt: float | None = None


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


_SECTIONS = {"domain": DomainConfig, "energy": EnergyConfig, "geometry": GeometryConfig,
             "method": MethodConfig, "time": TimeConfig, "output": OutputConfig}
_TABLE_ORDER = ("domain", "energy", "geometry", "target", "initial", "method", "time", "output")


@dataclass(frozen=True)
class Config:
    """A validated run configuration (see the module docstring for the tables).

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
        for name in _TABLE_ORDER:
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
# Tables


_SECTION_VALIDATORS: dict[str, dict[str, Callable]] = {
    "domain": {"kind": _choice(("torus",), {"sphere": "the sphere comes in a later issue"}),
               "dim": _domain_dim},
    "energy": {"kernel": _choice(("sobolev",), {"relu": "the ReLU kernel comes in a later issue"}),
               "s": _number(gt=0, fix="use a positive Sobolev exponent, e.g. s = 2.0")},
    "geometry": {"kind": _choice(("wasserstein",), {"wfr": "Wasserstein-Fisher-Rao comes in a later issue"}),
                 "alpha": _number(ge=0), "beta": _number(gt=0)},
    "method": {"kind": _choice(("spectral", "particles")), "n": _integer(ge=1),
               "integrator": _text, "summation": _choice(("auto", "sorted", "nufft", "direct")),
               "tol": _number(gt=0, lt=1, fix="e.g. tol = 1e-10"),
               "placement": _choice(("quantile", "random")), "seed": _integer(ge=0),
               "dt": _optional(_number(gt=0, fix="or leave dt out for adaptive steps"))},
    "time": {"t_end": _number(gt=0, fix="set a positive end time"),
             "rtol": _number(gt=0, lt=1, fix="e.g. rtol = 1e-8"), "atol": _number(ge=0),
             "n_saves": _integer(ge=2, le=10**6), "spacing": _choice(("log", "linear")),
             "t_first": _optional(_number(gt=0))},
    "output": {"snapshots": _integer(ge=2, le=10**4), "checkpoint_every": _number(gt=0)},
}


def _check_mapping(key: str, value: object, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected {what}, got {_type_name(value)}", value)
    for k in value:
        if not isinstance(k, str):
            raise ConfigError(f"{key}.{k!r}", "keys must be strings")
    return value


def _check_known(raw: Mapping, prefix: str, known, owners_in: str = "") -> None:
    """Reject keys not in ``known``; suggest a near miss, or the ``owners_in`` ("tables",
    "kinds") that do have the key."""
    for k in raw:
        if k in known:
            continue
        dotted = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
        hint = _suggest(k, known)
        if not hint and owners_in == "tables":  # a key written outside its table
            owners = [f"{t}.{k}" for t, keys in _SECTION_VALIDATORS.items() if k in keys]
            hint = f"did you mean {owners[0]!r}? " if owners else ""
        if not hint and owners_in == "kinds":  # a key of another measure kind
            owners = [kind for kind, keys in _MEASURE_KEYS.items() if k in keys]
            hint = f"{k!r} belongs to kind = {_quoted(owners)}; " if owners else ""
        what = "table" if not prefix else "key"
        raise ConfigError(dotted, f"unknown {what}; {hint}known: {', '.join(known)}")


def _read_section(raw: Mapping, name: str) -> dict:
    validators = _SECTION_VALIDATORS[name]
    _check_known(raw, name, list(validators))
    out = {}
    for f in fields(_SECTIONS[name]):
        out[f.name] = validators[f.name](f"{name}.{f.name}", raw[f.name]) if f.name in raw else f.default
    return out


# --------------------------------------------------------------------------------------------
# Measure specs


_REQUIRED = MISSING


def _array(key: str, value: object) -> list:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected an array, got {_type_name(value)}; write [x1, x2, ...]", value)
    if len(value) == 0:
        raise ConfigError(key, "must not be empty", value)
    return list(value)


def _float_array(key: str, value: object, gt=None) -> tuple[float, ...]:
    out = []
    for i, v in enumerate(_array(key, value)):
        x = _as_float(f"{key}[{i}]", v)
        if gt is not None and not x > gt:
            raise ConfigError(f"{key}[{i}]", f"must be > {gt:g}", v)
        out.append(x)
    return tuple(out)


def _mode_k(key: str, value: object) -> int:
    if isinstance(value, (list, tuple)):  # a wave vector; in d = 1 a single entry
        if len(value) != 1:
            raise ConfigError(key, "in d = 1 the wave vector has one entry; write k = 3", value)
        value = value[0]
    return _integer(ge=1)(key, value)


_MEASURE_KEYS: dict[str, dict[str, tuple[object, Callable]]] = {
    "uniform": {},
    "mode": {"k": (1, _mode_k),
             "amplitude": (0.5, _number(ge=-1, le=1, fix="|amplitude| > 1 makes the density negative"))},
    "perturbation": {"amplitude": (0.3, _number(ge=0, le=1, fix="amplitude > 1 allows a negative density")),
                     "decay": (2.0, _number(gt=0)), "seed": (0, _integer(ge=0)),
                     "modes": (64, _integer(ge=1, le=100_000))},
    "von_mises": {"loc": (0.0, _number()), "kappa": (1.0, _number(ge=0, le=700, fix="exp(kappa) overflows beyond 700"))},
    "indicator": {"start": (0.0, _number()), "stop": (math.pi, _number()),
                  "floor": (0.0, _number(ge=0, lt=1, fix="floor is the density outside the patch"))},
    "mixture": {"components": (_REQUIRED, None)},
    "particles": {"positions": (_REQUIRED, _float_array),
                  "weights": (None, _optional(lambda k, v: _float_array(k, v, gt=0)))},
    "file": {"path": (_REQUIRED, _text), "weights_path": (None, _optional(_text))},
}


@dataclass
class _Context:
    dim: int
    base_dir: Path


def _read_measure(raw: object, key: str, ctx: _Context, default_kind: str | None,
                  allowed: tuple[str, ...] = MEASURE_KINDS, extra: tuple[str, ...] = ()
                  ) -> tuple[MeasureSpec, int | None]:
    """Validate a measure table; return the spec and its number of atoms (``None``: a density)."""
    raw = _check_mapping(key, raw, "a table with a kind")
    if "kind" not in raw and default_kind is None:
        raise ConfigError(f"{key}.kind", f"missing; add kind = one of {_quoted(allowed)}")
    kind = raw.get("kind", default_kind)
    if isinstance(kind, str) and kind in MEASURE_KINDS and kind not in allowed:
        raise ConfigError(f"{key}.kind", f"not allowed here; choose one of {_quoted(allowed)}", kind)
    kind = _choice(allowed)(f"{key}.kind", kind)
    schema = _MEASURE_KEYS[kind]
    _check_known(raw, key, ["kind", *extra, *schema], owners_in="kinds")
    params: dict[str, Any] = {}
    for name, (default, validate) in schema.items():
        dotted = f"{key}.{name}"
        if name not in raw:
            if default is _REQUIRED:
                raise ConfigError(dotted, f"missing; kind = \"{kind}\" needs {name}")
            params[name] = default
        elif name == "components":
            params[name] = _components(raw[name], dotted, ctx)
        else:
            params[name] = validate(dotted, raw[name])
    atoms = _measure_checks(kind, params, key, ctx)
    return MeasureSpec(kind, params), atoms


def _components(value: object, key: str, ctx: _Context) -> tuple[tuple[float, MeasureSpec], ...]:
    out = []
    for i, item in enumerate(_array(key, value)):
        item_key = f"{key}[{i}]"
        item = _check_mapping(item_key, item, "a table with weight and kind ([[...components]])")
        if "weight" not in item:
            raise ConfigError(f"{item_key}.weight", "missing; give each component a weight > 0")
        weight = _number(gt=0)(f"{item_key}.weight", item["weight"])
        spec, _ = _read_measure(item, item_key, ctx, None, COMPONENT_KINDS, extra=("weight",))
        out.append((weight, spec))
    return tuple(out)


def _measure_checks(kind: str, params: dict, key: str, ctx: _Context) -> int | None:
    """Kind-specific checks across keys; resolve file paths; return the atom count."""
    if kind == "indicator":
        start, stop = params["start"], params["stop"]
        if not 0 < abs(stop - start) < 2 * math.pi:  # wrapped length (stop - start) mod 2 pi
            raise ConfigError(f"{key}.stop", f"the patch [start, stop] = [{start:g}, {stop:g}] must have "
                              "length in (0, 2 pi); for the whole circle use kind = \"uniform\"", stop)
    if kind == "particles":
        positions, weights = params["positions"], params["weights"]
        if weights is not None and len(weights) != len(positions):
            raise ConfigError(f"{key}.weights", f"has {len(weights)} entries but {key}.positions has "
                              f"{len(positions)}; give one weight per particle")
        return len(positions)
    if kind == "file":
        params["path"] = str(_existing_file(f"{key}.path", params["path"], ctx.base_dir))
        content, size = describe_file(Path(params["path"]), ctx.dim, key=f"{key}.path")
        if params["weights_path"] is not None:
            wkey = f"{key}.weights_path"
            params["weights_path"] = str(_existing_file(wkey, params["weights_path"], ctx.base_dir))
            if content != "positions" or Path(params["path"]).suffix.lower() != ".npy":
                raise ConfigError(wkey, f"weights go with particle positions in a .npy file, but "
                                  f"{key}.path holds {content}; remove weights_path")
            _check_weights_file(wkey, Path(params["weights_path"]), size)
        return size if content == "positions" else None
    return None


def _existing_file(key: str, value: str, base_dir: Path) -> Path:
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


def describe_file(path: Path, dim: int = 1, key: str = "path") -> tuple[str, int]:
    """Say what a measure file holds, checking it can serve as one.

    Parameters
    ----------
    path : Path
        A ``.npy`` array (grid density values of shape ``(n,)*dim``, or particle positions of
        shape ``(N, dim)``) or a previous run's ``result.nc`` (its last snapshot).
    dim : int
        Dimension of the torus.
    key : str
        Dotted key reported in errors.

    Returns
    -------
    (content, size) : (str, int)
        ``("density", n)`` or ``("positions", N)``.

    Raises
    ------
    ConfigError
        Unreadable file, wrong shape or dtype, non-finite values, a negative or zero density.
    """
    suffix = path.suffix.lower()
    if suffix == ".nc":
        return _describe_result_file(path, key)
    if suffix != ".npy":
        raise ConfigError(key, f"{path.name} is neither a .npy array nor a result.nc file", str(path))
    import numpy as np

    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ConfigError(key, f"cannot be read as a .npy array ({err})", str(path)) from None
    if values.dtype.kind not in "fiu":
        raise ConfigError(key, f"holds dtype {values.dtype}; expected real numbers", str(path))
    if values.ndim == 2 and values.shape[1] == dim and values.shape[0] >= 1:
        if not np.isfinite(values).all():
            raise ConfigError(key, "particle positions must be finite", str(path))
        return "positions", int(values.shape[0])
    if values.ndim == dim and len(set(values.shape)) == 1 and values.shape[0] >= 2:
        if not np.isfinite(values).all() or (values < 0).any() or not values.sum() > 0:
            raise ConfigError(key, "density values must be finite and >= 0 with positive mass", str(path))
        return "density", int(values.shape[0])
    raise ConfigError(key, f"has shape {values.shape}; expected a density of shape (n,)*{dim} or "
                      f"particle positions of shape (N, {dim})", str(path))


def _describe_result_file(path: Path, key: str) -> tuple[str, int]:
    try:
        import xarray

        with xarray.open_dataset(path, decode_times=False) as dataset:
            shapes = {name: var.shape for name, var in dataset.data_vars.items()}
    except Exception as err:  # any reader failure means: not a usable result file
        raise ConfigError(key, f"cannot be read as a result.nc file ({type(err).__name__}: {err})",
                          str(path)) from None
    if "positions" in shapes and len(shapes["positions"]) == 3:
        return "positions", int(shapes["positions"][1])
    if "density" in shapes and len(shapes["density"]) >= 2:
        return "density", int(shapes["density"][-1])
    raise ConfigError(key, "holds neither positions nor density; pass the result.nc of a kmdflow run",
                      str(path))


def _check_weights_file(key: str, path: Path, count: int) -> None:
    import numpy as np

    try:
        weights = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ConfigError(key, f"cannot be read as a .npy array ({err})", str(path)) from None
    if weights.dtype.kind not in "fiu" or weights.shape != (count,):
        raise ConfigError(key, f"must hold {count} real weights (shape ({count},)), found dtype "
                          f"{weights.dtype} and shape {weights.shape}", str(path))
    if not (np.isfinite(weights).all() and (weights > 0).all()):
        raise ConfigError(key, "weights must be finite and > 0", str(path))


# --------------------------------------------------------------------------------------------
# Loading


def load_config(source: str | os.PathLike | Mapping | Config, *, base_dir: str | os.PathLike | None = None
                ) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    source : str, Path, dict or Config
        A TOML file path, a dict with the TOML structure, or a :class:`Config` (returned as is).
    base_dir : str or Path, optional
        For dict input: directory that relative file paths start from (default: the current
        directory). A TOML file's own directory is always used for its paths.

    Returns
    -------
    Config
        Every key resolved (defaults filled, file paths absolute).

    Raises
    ------
    ConfigError
        Unreadable or malformed file (key: the file name, with the parser's line and column),
        unknown tables or keys, wrong types, values out of range, inconsistent tables.
    """
    if isinstance(source, Config):
        return source
    if isinstance(source, (str, os.PathLike)):
        raw, source_dir = _read_toml(Path(source))
        return _build(raw, source_dir, source_dir)
    if isinstance(source, Mapping):
        base = Path(base_dir).resolve() if base_dir is not None else None
        return _build(source, base or Path.cwd(), base)
    raise TypeError(f"load_config(source={source!r}): expected a TOML path, a dict or a Config")


def _read_toml(path: Path) -> tuple[dict, Path]:
    key = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(key, "no such file; check the path to the config") from None
    except IsADirectoryError:
        raise ConfigError(key, "is a directory; pass a .toml config file") from None
    except (OSError, ValueError) as err:
        raise ConfigError(key, f"cannot be read ({err})") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(key, f"is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(key, f"invalid TOML: {err}; fix the syntax there") from None
    return raw, path.resolve().parent


def _build(raw: object, base_dir: Path, source_dir: Path | None) -> Config:
    raw = _check_mapping("config", raw, "a table of tables")
    _check_known(raw, "", list(_TABLE_ORDER), owners_in="tables")
    sections = {}
    for name in _SECTIONS:
        table = _check_mapping(name, raw.get(name, {}), f"a table [{name}]")
        sections[name] = _read_section(table, name)
    ctx = _Context(sections["domain"]["dim"], base_dir)
    if "initial" not in raw:
        raise ConfigError("initial", "missing table; add [initial] with a kind, e.g. kind = \"mode\"")
    target, target_atoms = _read_measure(raw.get("target", {}), "target", ctx, "uniform")
    initial, initial_atoms = _read_measure(raw["initial"], "initial", ctx, None)
    _cross_check(sections, raw, target_atoms, initial_atoms)
    return Config(DomainConfig(**sections["domain"]), EnergyConfig(**sections["energy"]),
                  GeometryConfig(**sections["geometry"]), target, initial,
                  MethodConfig(**sections["method"]), TimeConfig(**sections["time"]),
                  OutputConfig(**sections["output"]), source_dir)


def _cross_check(sections: dict, raw: Mapping, target_atoms: int | None,
                 initial_atoms: int | None) -> None:
    """Checks between tables; fills ``method.n`` from atomic initial data."""
    method, time, dim = sections["method"], sections["time"], sections["domain"]["dim"]
    n = method["n"]
    if method["kind"] == "spectral":
        if initial_atoms is not None:
            raise ConfigError("initial.kind", "atoms (particle positions) cannot start the spectral "
                              "method; set method.kind = \"particles\"", raw["initial"].get("kind"))
        if n % 2 or not 8 <= n <= 2**20:
            raise ConfigError("method.n", "the spectral grid needs an even n with 8 <= n <= 2^20 "
                              "(1048576); e.g. n = 512", n)
    else:
        if initial_atoms is not None:
            given = raw.get("method", {}).get("n")
            if given is not None and n != initial_atoms:
                raise ConfigError("method.n", f"the initial data has {initial_atoms} particles; remove "
                                  "method.n (it is taken from the data) or make them agree", n)
            n = method["n"] = initial_atoms
        if not 1 <= n <= 10**7:
            raise ConfigError("method.n", "particle runs need 1 <= n <= 10^7", n)
    s = sections["energy"]["s"]
    if s <= dim / 2 and (method["kind"] == "particles" or target_atoms is not None):
        what = "particles need" if method["kind"] == "particles" else "an atomic target needs"
        raise ConfigError("energy.s", f"{what} s > {dim / 2:g} in d = {dim} (the energy of a "
                          "point mass is infinite otherwise); raise s or use densities", s)
    if time["t_first"] is not None:
        if time["spacing"] != "log":
            raise ConfigError("time.t_first", "is only used with spacing = \"log\"; remove it",
                              time["t_first"])
        if not time["t_first"] < time["t_end"]:
            raise ConfigError("time.t_first", f"must be < time.t_end = {time['t_end']:g}",
                              time["t_first"])


# --------------------------------------------------------------------------------------------
# A small TOML writer (tomllib only reads)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def _is_table_array(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, Mapping) for v in value)


def dump_toml(document: Mapping) -> str:
    """Write a dict of tables as TOML text.

    Parameters
    ----------
    document : Mapping
        Values may be bools, ints, floats, strings, arrays of those, tables (dicts) and arrays of
        tables (lists of dicts); ``None`` values are left out (TOML has no null).

    Returns
    -------
    str
        Text that ``tomllib.loads`` reads back to ``document`` (minus the ``None`` entries).
    """
    lines: list[str] = []
    _emit(document, [], lines, header=None)
    return "\n".join(lines).lstrip("\n") + "\n"


def _emit(table: Mapping, path: list[str], lines: list[str], header: str | None) -> None:
    if header is not None:
        lines.extend(["", header])
    nested = []
    for key, value in table.items():
        if value is None:
            continue
        if isinstance(value, Mapping) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_scalar(value)}")
    for key, value in nested:
        sub = [*path, _toml_key(key)]
        if isinstance(value, Mapping):
            _emit(value, sub, lines, f"[{'.'.join(sub)}]")
        else:
            for item in value:
                _emit(item, sub, lines, f"[[{'.'.join(sub)}]]")
