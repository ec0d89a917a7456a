"""Sweep files: read a SWEEP.toml and expand it into validated run configs (``docs/sweeps.md``).

:func:`load_sweep` checks the file and every expanded config (loaded and built, as ``kmdflow
check`` does) before anything runs or is written; every problem is one
:class:`~kmdflow.experiments.config.ConfigError` line naming the key. Running the expanded configs
is :mod:`kmdflow.experiments.sweep`.
"""

from __future__ import annotations

import copy
import itertools
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmdflow import __version__
from kmdflow.experiments.config import Config, ConfigError, dump_toml, load_config
from kmdflow.experiments.config_files import existing_file
from kmdflow.experiments.config_schema import (
    MEASURE_KEYS,
    SECTION_VALIDATORS,
    TABLE_ORDER,
)
from kmdflow.experiments.config_values import show, suggest, type_name
from kmdflow.experiments.toml_writer import toml_key

__all__ = ["MAX_RUNS", "MODES", "Sweep", "SweepRun", "describe_values", "expand_parameters", "load_sweep"]

#: How the parameter lists combine: every combination, or the lists side by side.
MODES = ("product", "zip")
#: The most runs one sweep may expand to (validation builds each of them).
MAX_RUNS = 10_000
_FILE_KEYS = ("base", "parameters", "sweep")
_RECORD_HEADER = "# kmdflow sweep, expanded"  # the first line of DIR/sweep.toml
_SWEEP_KEYS = ("mode",)


# --------------------------------------------------------------------------------------------
# The sweep description


@dataclass(frozen=True)
class SweepRun:
    """One expanded run: its position, the values of the swept keys and the validated config."""

    index: int
    values: dict
    config: Config

    @property
    def config_hash(self) -> str:
        return self.config.hash()

    @property
    def name(self) -> str:
        """The run directory's name, ``run-0007-1a2b3c4d`` (index and config hash)."""
        return f"run-{self.index:04d}-{self.config_hash[:8]}"

    def describe(self) -> str:
        """``energy.s = 2.0, initial.decay = 1.5`` (one line)."""
        return describe_values(self.values)


def describe_values(values: Mapping) -> str:
    """The swept values of a run as one line: ``energy.s = 2.0, initial.decay = 1.5``."""
    return ", ".join(f"{key} = {show(value, limit=30)}" for key, value in values.items())


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: the base config (TOML structure), the swept values and the runs.

    ``parameters`` maps each dotted key to its tuple of values, in file order; ``runs`` are in
    expansion order (product: the first key varies slowest).
    """

    mode: str
    base: dict
    parameters: dict
    runs: tuple[SweepRun, ...]
    source: Path | None = None

    def to_toml(self) -> str:
        """The expanded sweep as TOML: the description plus one ``[[runs]]`` entry per run."""
        header = {"mode": self.mode, "source": str(self.source) if self.source else None,
                  "kmdflow_version": __version__, "n_runs": len(self.runs)}
        runs = [{"index": run.index, "run_dir": run.name, "config_hash": run.config_hash,
                 "values": dict(run.values)} for run in self.runs]
        document = {"sweep": header, "base": self.base,
                    "parameters": {key: list(values) for key, values in self.parameters.items()},
                    "runs": runs}
        return _RECORD_HEADER + " (a record; each run's config is in its result.nc)\n\n" + dump_toml(document)


def load_sweep(source: str | os.PathLike | Mapping, *, base_dir: str | os.PathLike | None = None,
               build: bool = True) -> Sweep:
    """Read and validate a sweep: the file, the expansion and every expanded config.

    Parameters
    ----------
    source : str, Path or dict
        A SWEEP.toml path, or a dict with its structure.
    base_dir : str or Path, optional
        For dict input: where relative paths start (default: the current directory). A file's
        paths start at its own directory; those of a ``base = "config.toml"`` file at that file's.
    build : bool
        Also build each run's problem (the checks of ``kmdflow check``: scheme names, files,
        summations); ``False`` only loads the configs.

    Returns
    -------
    Sweep

    Raises
    ------
    ConfigError
        One line naming the key: malformed TOML, unknown tables or keys (near miss suggested), a
        parameter that is not a non-empty list, zip lists of unequal lengths, duplicate runs, or
        an expanded config that fails validation (``run 3 (energy.s = -1.0): energy.s = ...``).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        raw = _read_toml(path, str(path))
        where, origin = path.resolve().parent, path.resolve()
    elif isinstance(source, Mapping):
        raw, where, origin = source, Path(base_dir or Path.cwd()).resolve(), None
    else:
        raise TypeError(f"load_sweep(source={source!r}): expected a TOML path or a dict")
    _check_keys(raw, "", _FILE_KEYS, "table")
    settings = raw.get("sweep", {})
    if not isinstance(settings, Mapping):
        raise ConfigError("sweep", f"expected a table [sweep], got {type_name(settings)}", settings)
    _check_keys(settings, "sweep", _SWEEP_KEYS, "key")
    mode = settings.get("mode", "product")
    if mode not in MODES:
        raise ConfigError("sweep.mode", f"unknown mode; {suggest(str(mode), MODES)}choose \"product\" "
                          "(every combination) or \"zip\" (lists side by side)", mode)
    base, base_dir_ = _read_base(raw, where)
    parameters = _read_parameters(raw)
    combos = expand_parameters(parameters, mode)
    runs = tuple(_validated_run(i, values, base, base_dir_, build) for i, values in enumerate(combos))
    _check_unique(runs)
    return Sweep(mode, base, parameters, runs, origin)


def expand_parameters(parameters: Mapping[str, Sequence], mode: str = "product") -> list[dict]:
    """The values of every run: one dict ``{dotted key: value}`` per run.

    ``"product"``: every combination, the first key varying slowest (``itertools.product``);
    ``"zip"``: the i-th values of all lists (lists of equal length).
    """
    keys = list(parameters)
    lists = [list(parameters[key]) for key in keys]
    if mode == "zip":
        for key, values in zip(keys[1:], lists[1:], strict=True):
            if len(values) != len(lists[0]):
                raise ConfigError(f"parameters.{toml_key(key)}", f"has {len(values)} values but "
                                  f"parameters.{toml_key(keys[0])} has {len(lists[0])}; zip mode needs "
                                  "lists of equal length (or set [sweep] mode = \"product\")")
        combos = zip(*lists, strict=True)
        count = len(lists[0]) if lists else 0
    elif mode == "product":
        count = int(np.prod([len(values) for values in lists], dtype=float))
        combos = itertools.product(*lists)
    else:
        raise ConfigError("sweep.mode", "choose \"product\" or \"zip\"", mode)
    if count > MAX_RUNS:
        raise ConfigError("parameters", f"the sweep expands to {count} runs, more than {MAX_RUNS}; "
                          "split it into several sweeps")
    return [dict(zip(keys, combo, strict=True)) for combo in combos]


def _read_toml(path: Path, key: str) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(key, "no such file; check the path") from None
    except IsADirectoryError:
        raise ConfigError(key, "is a directory; pass a .toml file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(key, f"is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConfigError(key, f"cannot be read ({err.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(key, f"invalid TOML: {err}; fix the syntax there") from None


def _check_keys(table: Mapping, prefix: str, known: Sequence[str], what: str) -> None:
    for key in table:
        if key not in known:
            dotted = f"{prefix}.{toml_key(key)}" if prefix else toml_key(key)
            raise ConfigError(dotted, f"unknown {what}; {suggest(str(key), known)}known: {', '.join(known)}")


def _read_base(raw: Mapping, where: Path) -> tuple[dict, Path]:
    """The base config (TOML structure) and the directory its relative paths start from."""
    if "base" not in raw:
        raise ConfigError("base", "missing; add a [base] table holding a run config, or "
                          "base = \"config.toml\" naming one")
    base = raw["base"]
    if isinstance(base, str):
        path = existing_file("base", base, where)
        return _read_toml(path, f"base ({path})"), path.parent
    if not isinstance(base, Mapping):
        raise ConfigError("base", f"expected a table [base] or a path string, got {type_name(base)}", base)
    return dict(base), where


def _read_parameters(raw: Mapping) -> dict[str, tuple]:
    if "parameters" not in raw:
        raise ConfigError("parameters", "missing; add a [parameters] table such as "
                          "\"energy.s\" = [1.5, 2.0]")
    table = raw["parameters"]
    if not isinstance(table, Mapping):
        raise ConfigError("parameters", f"expected a table, got {type_name(table)}", table)
    flat = dict(_flatten(table, ""))
    if not flat:
        raise ConfigError("parameters", "is empty; give at least one key, e.g. \"energy.s\" = [1.5, 2.0]")
    for key, values in flat.items():
        name = f"parameters.{toml_key(key)}"
        _check_config_key(key, name)
        if not isinstance(values, list):
            raise ConfigError(name, f"expected a list of values, got {type_name(values)}; write "
                              f"[{show(values, limit=20)}, ...]", values)
        if not values:
            raise ConfigError(name, "is an empty list; give at least one value", values)
    return {key: tuple(values) for key, values in flat.items()}


def _flatten(table: Mapping, prefix: str):
    """``{"energy": {"s": [...]}}`` (unquoted dotted keys) -> ``("energy.s", [...])``."""
    for key, value in table.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _flatten(value, dotted)
        else:
            yield dotted, value


#: Keys that any measure table ([initial], [target]) may have, over all kinds.
_MEASURE_NAMES = ("kind", *dict.fromkeys(k for keys in MEASURE_KEYS.values() for k in keys))


def _check_config_key(key: str, name: str) -> None:
    """A swept key must be a table (``"initial"``) or a table's key (``"energy.s"``)."""
    parts = key.split(".")
    if parts[0] not in TABLE_ORDER:
        raise ConfigError(name, f"unknown config table {parts[0]!r}; {suggest(parts[0], TABLE_ORDER)}"
                          f"known: {', '.join(TABLE_ORDER)}")
    if len(parts) > 2:
        raise ConfigError(name, "too deep; sweep a key of a table (\"initial.amplitude\") or a whole "
                          "table (\"initial\" = [{kind = ...}, ...])")
    if len(parts) == 2:
        known = list(SECTION_VALIDATORS[parts[0]]) if parts[0] in SECTION_VALIDATORS else _MEASURE_NAMES
        if parts[1] not in known:
            raise ConfigError(name, f"unknown config key; {suggest(parts[1], known)}"
                              f"[{parts[0]}] has: {', '.join(known)}")


def _with_values(base: Mapping, values: Mapping) -> dict:
    """A deep copy of ``base`` with each dotted key set to its value."""
    config = copy.deepcopy(dict(base))
    for key, value in values.items():
        *tables, last = key.split(".")
        target = config
        for table in tables:
            target = target.setdefault(table, {})
            if not isinstance(target, dict):
                raise ConfigError(f"parameters.{toml_key(key)}", f"[base] has {table} = "
                                  f"{show(target)}, not a table")
        target[last] = value
    return config


def _validated_run(index: int, values: dict, base: dict, base_dir: Path, build: bool) -> SweepRun:
    try:
        config = load_config(_with_values(base, values), base_dir=base_dir)
        if build:
            from kmdflow.experiments.build import build_problem

            build_problem(config)
    except ConfigError as err:
        raise ConfigError(f"run {index} ({describe_values(values)}): {err.key}", err.message,
                          *([err.value] if err.has_value else [])) from None
    return SweepRun(index, values, config)


def _check_unique(runs: Sequence[SweepRun]) -> None:
    seen: dict[str, SweepRun] = {}
    for run in runs:
        first = seen.setdefault(run.config_hash, run)
        if first is not run:
            raise ConfigError("parameters", f"runs {first.index} ({first.describe()}) and {run.index} "
                              f"({run.describe()}) have the same config; remove the repeated value")


# --------------------------------------------------------------------------------------------
# One run (the Dask task)
