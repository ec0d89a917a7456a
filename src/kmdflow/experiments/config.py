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

This module is the loader; its parts live in :mod:`~kmdflow.experiments.config_values`
(:class:`ConfigError`, validators of single values), :mod:`~kmdflow.experiments.config_schema`
(the dataclasses, defaults and each key's validator), :mod:`~kmdflow.experiments.config_files`
(measure files) and :mod:`~kmdflow.experiments.toml_writer` (:func:`dump_toml`). Every key with
its type, default and range: ``docs/config-reference.md``.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kmdflow.experiments.config_files import (
    check_weights_file,
    describe_file,
    existing_file,
)
from kmdflow.experiments.config_schema import (
    COMPONENT_KINDS,
    DEFAULT_PLACEMENT,
    DEFAULT_SPECTRAL_N,
    MAX_PERTURBATION_MODES,
    MAX_SPECTRAL_N,
    MEASURE_KEYS,
    MEASURE_KINDS,
    REQUIRED,
    SECTION_VALIDATORS,
    SECTIONS,
    TABLE_ORDER,
    Config,
    DomainConfig,
    EnergyConfig,
    GeometryConfig,
    MeasureSpec,
    MethodConfig,
    OutputConfig,
    PerDim,
    TimeConfig,
    nonempty_array,
)
from kmdflow.experiments.config_sphere import (
    SPHERE_KINDS,
    SPHERE_VALIDATORS,
    check_sphere_method,
    resolve_domain,
)
from kmdflow.experiments.config_values import (
    ConfigError,
    choice_of,
    number_in,
    quoted,
    suggest,
    type_name,
)
from kmdflow.experiments.toml_writer import dump_toml, toml_key

__all__ = [
    "Config", "ConfigError", "DomainConfig", "EnergyConfig", "GeometryConfig", "MeasureSpec",
    "MethodConfig", "OutputConfig", "TimeConfig", "describe_file", "dump_toml", "load_config",
]


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
    _check_known(raw, "", list(TABLE_ORDER), owners_in="tables")
    sections = {}
    for name in SECTIONS:
        table = _check_mapping(name, raw.get(name, {}), f"a table [{name}]")
        sections[name] = _read_section(table, name)
    resolve_domain(sections, raw)
    ctx = _Context(sections["domain"]["dim"], base_dir, sections["domain"]["kind"])
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
    """Checks between tables; fills ``method.n`` from atomic initial data and the
    ``d``-dependent defaults of ``method.n`` (spectral) and ``method.placement``."""
    method, dim = sections["method"], sections["domain"]["dim"]
    given = raw.get("method", {})
    if sections["domain"]["kind"] == "sphere":
        check_sphere_method(method, given, dim, initial_atoms)
    else:
        _check_torus_method(sections, given, target_atoms, initial_atoms)
    _check_time(sections["time"])


def _check_torus_method(sections: dict, given: Mapping, target_atoms: int | None,
                        initial_atoms: int | None) -> None:
    method, dim = sections["method"], sections["domain"]["dim"]
    if method["batch"] is not None:
        raise ConfigError("method.batch", "is the minibatch size of network training on the sphere; "
                          "remove it", method["batch"])
    if "n" not in given and method["kind"] == "spectral":
        method["n"] = DEFAULT_SPECTRAL_N[dim]
    n = method["n"]
    if "placement" not in given:
        method["placement"] = DEFAULT_PLACEMENT[dim]
    elif dim > 1 and method["placement"] == "quantile":
        raise ConfigError("method.placement", f"quantile placement exists for d = 1 only (here d = "
                          f"{dim}); use \"sobol\" (low discrepancy) or \"random\" (i.i.d.)",
                          method["placement"])
    if method["kind"] == "spectral":
        if initial_atoms is not None:
            raise ConfigError("initial.kind", "atoms (particle positions) cannot start the spectral "
                              "method; set method.kind = \"particles\"")
        if dim == 1 and (n % 2 or not 8 <= n <= MAX_SPECTRAL_N[1]):
            raise ConfigError("method.n", "the spectral grid needs an even n with 8 <= n <= 2^20 "
                              "(1048576); e.g. n = 512", n)
        if dim > 1 and (n % 2 or not 8 <= n <= MAX_SPECTRAL_N[dim]):
            raise ConfigError("method.n", f"in d = {dim} the spectral grid needs an even n with "
                              f"8 <= n <= {MAX_SPECTRAL_N[dim]} (memory of the n^{dim} grid); "
                              f"e.g. n = {min(256, MAX_SPECTRAL_N[dim]) // 2}", n)
    else:
        if initial_atoms is not None:
            if given.get("n") is not None and n != initial_atoms:
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


def _check_time(time: dict) -> None:
    if time["t_first"] is not None:
        if time["spacing"] != "log":
            raise ConfigError("time.t_first", "is only used with spacing = \"log\"; remove it",
                              time["t_first"])
        if not time["t_first"] < time["t_end"]:
            raise ConfigError("time.t_first", f"must be < time.t_end = {time['t_end']:g}",
                              time["t_first"])


# --------------------------------------------------------------------------------------------
# Tables


def _check_mapping(key: str, value: object, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected {what}, got {type_name(value)}", value)
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
        dotted = f"{prefix}.{toml_key(k)}" if prefix else toml_key(k)
        hint = suggest(k, known)
        if not hint and owners_in == "tables":  # a key written outside its table
            owners = [f"{t}.{k}" for t, keys in SECTION_VALIDATORS.items() if k in keys]
            hint = f"did you mean {owners[0]!r}? " if owners else ""
        if not hint and owners_in == "kinds":  # a key of another measure kind
            owners = [kind for kind, keys in MEASURE_KEYS.items() if k in keys]
            hint = f"{k!r} belongs to kind = {quoted(owners)}; " if owners else ""
        what = "table" if not prefix else "key"
        raise ConfigError(dotted, f"unknown {what}; {hint}known: {', '.join(known)}")


def _read_section(raw: Mapping, name: str) -> dict:
    validators = SECTION_VALIDATORS[name]
    _check_known(raw, name, list(validators))
    out = {}
    for f in fields(SECTIONS[name]):
        out[f.name] = validators[f.name](f"{name}.{f.name}", raw[f.name]) if f.name in raw else f.default
    return out


# --------------------------------------------------------------------------------------------
# Measure specs


@dataclass
class _Context:
    dim: int
    base_dir: Path
    domain: str = "torus"


def _read_measure(raw: object, key: str, ctx: _Context, default_kind: str | None,
                  allowed: tuple[str, ...] = MEASURE_KINDS, extra: tuple[str, ...] = ()
                  ) -> tuple[MeasureSpec, int | None]:
    """Validate a measure table; return the spec and its number of atoms (``None``: a density)."""
    raw = _check_mapping(key, raw, "a table with a kind")
    if ctx.domain == "sphere" and ctx.dim > 1 and allowed == MEASURE_KINDS:
        allowed = SPHERE_KINDS
    if "kind" not in raw and default_kind is None:
        raise ConfigError(f"{key}.kind", f"missing; add kind = one of {quoted(allowed)}")
    kind = raw.get("kind", default_kind)
    if isinstance(kind, str) and kind in MEASURE_KINDS and kind not in allowed:
        where = f"on S^{ctx.dim}" if allowed == SPHERE_KINDS else "here"
        raise ConfigError(f"{key}.kind", f"not allowed {where}; choose one of {quoted(allowed)}", kind)
    kind = choice_of(allowed)(f"{key}.kind", kind)
    schema = MEASURE_KEYS[kind]
    _check_known(raw, key, ["kind", *extra, *schema], owners_in="kinds")
    params: dict[str, Any] = {}
    for name, (default, validate) in schema.items():
        dotted = f"{key}.{name}"
        if ctx.domain == "sphere":
            validate = SPHERE_VALIDATORS.get((kind, name), validate)
        per_dim = isinstance(validate, PerDim)
        if name not in raw:
            if default is REQUIRED:
                raise ConfigError(dotted, f"missing; kind = \"{kind}\" needs {name}")
            params[name] = validate.default(ctx.dim) if per_dim and validate.default else default
        elif name == "components":
            params[name] = _components(raw[name], dotted, ctx)
        elif per_dim:
            params[name] = validate.validate(dotted, raw[name], ctx.dim)
        else:
            params[name] = validate(dotted, raw[name])
    atoms = _measure_checks(kind, params, key, ctx)
    return MeasureSpec(kind, params), atoms


def _components(value: object, key: str, ctx: _Context) -> tuple[tuple[float, MeasureSpec], ...]:
    out = []
    for i, item in enumerate(nonempty_array(key, value)):
        item_key = f"{key}[{i}]"
        item = _check_mapping(item_key, item, "a table with weight and kind ([[...components]])")
        if "weight" not in item:
            raise ConfigError(f"{item_key}.weight", "missing; give each component a weight > 0")
        weight = number_in(gt=0)(f"{item_key}.weight", item["weight"])
        spec, _ = _read_measure(item, item_key, ctx, None, COMPONENT_KINDS, extra=("weight",))
        out.append((weight, spec))
    return tuple(out)


def _measure_checks(kind: str, params: dict, key: str, ctx: _Context) -> int | None:
    """Kind-specific checks across keys; resolve file paths; return the atom count."""
    if kind == "indicator":
        starts, stops = (v if isinstance(v, tuple) else (v,) * ctx.dim
                         for v in (params["start"], params["stop"]))
        for axis, (start, stop) in enumerate(zip(starts, stops)):
            if not 0 < abs(stop - start) < 2 * math.pi:  # wrapped length (stop - start) mod 2 pi
                where = f" on axis {axis}" if ctx.dim > 1 else ""
                raise ConfigError(f"{key}.stop", f"the patch [start, stop] = [{start:g}, {stop:g}]"
                                  f"{where} must have length in (0, 2 pi); for the whole circle use "
                                  "kind = \"uniform\"", params["stop"])
    if kind == "perturbation" and params["modes"] > MAX_PERTURBATION_MODES[ctx.dim]:
        limit = MAX_PERTURBATION_MODES[ctx.dim]
        raise ConfigError(f"{key}.modes", f"in d = {ctx.dim} modes must be <= {limit} (the ~modes^"
                          f"{ctx.dim} terms are summed when the run is set up); lower modes",
                          params["modes"])
    if kind == "particles":
        positions, weights = params["positions"], params["weights"]
        for i, point in enumerate(positions):
            if ctx.domain == "sphere":  # vectors are normalised, angles taken mod 2 pi
                break
            coords = point if isinstance(point, tuple) else (point,)
            if not all(0.0 <= c < 2 * math.pi for c in coords):
                raise ConfigError(f"{key}.positions[{i}]", "lies outside the torus [0, 2 pi)^d; give "
                                  "coordinates in [0, 2 pi) (reduce them mod 2 pi)", point)
        if weights is not None and len(weights) != len(positions):
            raise ConfigError(f"{key}.weights", f"has {len(weights)} entries but {key}.positions has "
                              f"{len(positions)}; give one weight per particle")
        return len(positions)
    if kind == "file":
        params["path"] = str(existing_file(f"{key}.path", params["path"], ctx.base_dir))
        coords = ctx.dim + 1 if ctx.domain == "sphere" else ctx.dim
        content, size = describe_file(Path(params["path"]), ctx.dim, key=f"{key}.path", coords=coords)
        if ctx.domain == "sphere" and ctx.dim > 1 and content == "density":
            raise ConfigError(f"{key}.path", f"holds grid values; on S^{ctx.dim} a file holds unit "
                              f"vectors of shape (N, {coords}) (or a sphere run's result.nc)", params["path"])
        if params["weights_path"] is not None:
            wkey = f"{key}.weights_path"
            params["weights_path"] = str(existing_file(wkey, params["weights_path"], ctx.base_dir))
            if content != "positions" or Path(params["path"]).suffix.lower() != ".npy":
                raise ConfigError(wkey, f"weights go with particle positions in a .npy file, but "
                                  f"{key}.path holds {content}; remove weights_path")
            check_weights_file(wkey, Path(params["weights_path"]), size)
        return size if content == "positions" else None
    return None
