"""Parameter sweeps: expand a SWEEP.toml into run configs and run them on Dask distributed.

A sweep file holds a base run config and the values of some of its keys (``docs/sweeps.md``)::

    base = "config.toml"                  # or a [base] table holding the config itself
    [parameters]
    "energy.s" = [1.5, 2.0, 3.0]          # dotted config key -> list of values
    "initial.decay" = [1.5, 2.0]
    [sweep]
    mode = "product"                      # or "zip" (lists of equal length, taken side by side)

:func:`load_sweep` checks the file and every expanded config (as ``kmdflow check`` does: loaded
and built) before anything runs or is written; every problem is one
:class:`~kmdflow.experiments.config.ConfigError` line naming the key. :func:`run_sweep` runs each
config through :func:`~kmdflow.experiments.run.run_config` as one Dask task, in its own
directory ``DIR/run-<index>-<first 8 hex digits of the config hash>``, and writes the table of
results (``sweep.csv``, ``sweep.nc``) and the expanded sweep (``sweep.toml``).

Reruns and failures:

- a run whose directory holds a ``summary.json`` with status ``"completed"`` and the same config
  hash is reused, not run again; a failed run is run again (``retry_failed=False`` keeps it);
- a numerical failure (status ``"failed: ..."``) or an exception in a run is recorded in its row
  and does not stop the others; an exception's traceback goes to ``error.txt`` in the run
  directory;
- a task is idempotent (it overwrites whatever a killed attempt left), so Dask may run it again:
  the tasks of a worker process that dies are rescheduled on the others, and an ``OSError`` (a
  hiccup of a shared file system) is retried :data:`IO_RETRIES` times.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import os
import sys
import time
import tomllib
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmdflow import __version__
from kmdflow.experiments.config import Config, ConfigError, dump_toml, load_config
from kmdflow.experiments.config_files import existing_file
from kmdflow.experiments.config_schema import MEASURE_KEYS, SECTION_VALIDATORS, TABLE_ORDER
from kmdflow.experiments.config_values import show, suggest, type_name
from kmdflow.experiments.toml_writer import toml_key, toml_scalar

__all__ = ["MODES", "RESULT_COLUMNS", "Sweep", "SweepResult", "SweepRun", "load_sweep",
           "expand_parameters", "run_one", "run_sweep", "sweep_dataset"]

#: How the parameter lists combine: every combination, or the lists side by side.
MODES = ("product", "zip")
#: The most runs one sweep may expand to (validation builds each of them).
MAX_RUNS = 10_000
#: Times Dask retries a task that raised ``OSError`` (numerical failures are results, not retried).
IO_RETRIES = 2
#: Columns of the results table after ``index``, ``run_dir`` and the swept keys.
RESULT_COLUMNS = ("status", "fitted_rate", "predicted_rate", "predicted_rate_kind", "final_energy",
                  "wall_seconds", "config_hash", "reused")
#: Seconds between rewrites of the tables while a sweep runs (they are also written at the end).
TABLE_INTERVAL = 10.0

_FILE_KEYS = ("base", "parameters", "sweep")
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
        return "# kmdflow sweep, expanded (a record; each run's config is in its result.nc)\n\n" \
            + dump_toml(document)


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
        for key, values in zip(keys[1:], lists[1:]):
            if len(values) != len(lists[0]):
                raise ConfigError(f"parameters.{toml_key(key)}", f"has {len(values)} values but "
                                  f"parameters.{toml_key(keys[0])} has {len(lists[0])}; zip mode needs "
                                  "lists of equal length (or set [sweep] mode = \"product\")")
        combos = zip(*lists)
        count = len(lists[0]) if lists else 0
    elif mode == "product":
        count = int(np.prod([len(values) for values in lists], dtype=float))
        combos = itertools.product(*lists)
    else:
        raise ConfigError("sweep.mode", "choose \"product\" or \"zip\"", mode)
    if count > MAX_RUNS:
        raise ConfigError("parameters", f"the sweep expands to {count} runs, more than {MAX_RUNS}; "
                          "split it into several sweeps")
    return [dict(zip(keys, combo)) for combo in combos]


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


def run_one(config: Config, run_dir: str | os.PathLike) -> dict:
    """Run one config into ``run_dir`` and return its row of the results table.

    Idempotent: whatever an earlier, killed attempt left in ``run_dir`` is overwritten. A
    numerical failure is a row with status ``"failed: ..."``; so is an exception (traceback in
    ``run_dir/error.txt``), except ``OSError``, which propagates so that Dask retries the task.
    """
    import dask

    from kmdflow.experiments.run import run_config

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*run_dir.glob(".*.tmp"), run_dir / "error.txt"]:
        stale.unlink(missing_ok=True)
    try:
        # xarray asks dask which scheduler runs its writes; inside a worker that would open a
        # client back to the scheduler for nothing: the run's own computation is plain NumPy
        with dask.config.set(scheduler="synchronous"):
            run_config(config, run_dir, overwrite=True)
        return summary_row(json.loads((run_dir / "summary.json").read_text()))
    except OSError:
        raise
    except Exception as err:  # any other error is this run's result, not the sweep's
        (run_dir / "error.txt").write_text(traceback.format_exc())
        return failed_row(f"{type(err).__name__}: {err}")


def summary_row(summary: Mapping) -> dict:
    """The result columns of a run from its ``summary.json``."""
    predicted, fitted = summary.get("predicted_rate") or {}, summary.get("fitted_rate") or {}
    return {"status": str(summary.get("status", "failed: no status in summary.json")),
            "fitted_rate": _number(fitted.get("value")), "predicted_rate": _number(predicted.get("value")),
            "predicted_rate_kind": str(predicted.get("kind") or ""),
            "final_energy": _number(summary.get("final_energy")),
            "wall_seconds": _number(summary.get("wall_seconds")),
            "config_hash": str(summary.get("config_hash", ""))}


def failed_row(reason: str) -> dict:
    """The result columns of a run that produced no summary."""
    return {"status": "failed: " + " ".join(reason.split()), "fitted_rate": np.nan,
            "predicted_rate": np.nan, "predicted_rate_kind": "", "final_energy": np.nan,
            "wall_seconds": np.nan, "config_hash": ""}


def _number(value) -> float:
    return np.nan if value is None else float(value)


def _earlier_row(run: SweepRun, run_dir: Path) -> dict | None:
    """The row of an earlier attempt of ``run`` in ``run_dir`` (same config hash), if any."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("config_hash") != run.config_hash \
            or not (run_dir / "result.nc").is_file():
        return None
    return summary_row(summary)


# --------------------------------------------------------------------------------------------
# The sweep


@dataclass
class SweepResult:
    """What a sweep did: one row per run (in run order), and how many runs it started."""

    rows: list[dict]
    parameter_keys: tuple[str, ...]
    started: int
    out: Path

    @property
    def reused(self) -> int:
        return sum(bool(row["reused"]) for row in self.rows)

    @property
    def failed(self) -> list[dict]:
        """Rows whose status is not ``"completed"``."""
        return [row for row in self.rows if row["status"] != "completed"]

    @property
    def all_completed(self) -> bool:
        return not self.failed


def run_sweep(sweep: Sweep, out: str | os.PathLike, *, client=None, scheduler: str | None = None,
              workers: int | None = None, progress: str | Callable = "none", retry_failed: bool = True,
              connect_timeout: float = 30.0) -> SweepResult:
    """Run every run of ``sweep`` not already completed in ``out``, on Dask distributed.

    Parameters
    ----------
    sweep : Sweep
        From :func:`load_sweep`.
    out : str or Path
        The sweep directory (created): empty, new, or one an earlier sweep wrote (its completed
        runs are reused). Workers must see it at the same path.
    client : distributed.Client, optional
        Run on this client's cluster (left open).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); otherwise a
        ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)`` is started.
    workers : int, optional
        Worker processes of the local cluster (default: the usable CPU cores).
    progress : {"none", "lines", "bar", "auto"} or callable
        Report finished runs on stderr: a line each, a rich bar, or ``"auto"`` (bar when stderr
        is a terminal); a callable gets ``(row, done, total)`` after each finished run.
    retry_failed : bool
        Run again the runs whose earlier attempt failed (default); ``False`` keeps their rows.
    connect_timeout : float
        Seconds to wait for ``scheduler``.

    Returns
    -------
    SweepResult
        ``sweep.csv``, ``sweep.nc`` and ``sweep.toml`` are in ``out``.

    Raises
    ------
    ConfigError
        ``--out`` unusable, ``--scheduler`` unreachable (nothing written then).
    KeyboardInterrupt
        After writing the tables (unfinished runs have status ``"interrupted"``).
    """
    out = Path(out)
    _check_out(out)
    keys = tuple(sweep.parameters)
    rows: list[dict | None] = [None] * len(sweep.runs)
    pending = []
    for run in sweep.runs:
        earlier = _earlier_row(run, out / run.name) if out.is_dir() else None
        if earlier is not None and (earlier["status"] == "completed" or not retry_failed):
            rows[run.index] = _full_row(run, earlier, reused=True)
        else:
            pending.append(run)
    owned, client = _connect(client, scheduler, workers, connect_timeout) if pending else (None, client)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_text(sweep.to_toml(), out / "sweep.toml")
        report = _make_reporter(progress, len(pending), len(sweep.runs) - len(pending))
        try:
            _execute(client, pending, out, rows, report, lambda: _write_tables(sweep, rows, out))
        except KeyboardInterrupt:
            for run in pending:
                if rows[run.index] is None:
                    rows[run.index] = _full_row(run, {**failed_row(""), "status": "interrupted"}, False)
            _write_tables(sweep, rows, out)
            raise
        finally:
            report.close()
    finally:
        for resource in reversed(owned or []):
            resource.close()
    _write_tables(sweep, rows, out)
    return SweepResult(rows, keys, len(pending), out)  # type: ignore[arg-type]


def _execute(client, pending: list[SweepRun], out: Path, rows: list, report, save: Callable) -> None:
    """Submit the pending runs, fill their rows as they finish, rewrite the tables now and then."""
    if not pending:
        return
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # fresh task keys: never a cached result of an earlier sweep
    futures = {client.submit(run_one, run.config, str((out / run.name).resolve()),
                             key=f"kmdflow-{run.name}-{token}", retries=IO_RETRIES, pure=False): run
               for run in pending}
    last_save = time.monotonic()
    try:
        for done, future in enumerate(as_completed(futures, loop=client.loop), start=1):
            run = futures[future]
            try:
                row = future.result()
            except Exception as err:  # the task raised after its retries, or its workers died
                row = failed_row(f"{type(err).__name__}: {err}")
            rows[run.index] = _full_row(run, row, reused=False)
            report(rows[run.index], done)
            if time.monotonic() - last_save > TABLE_INTERVAL:
                save()
                last_save = time.monotonic()
    finally:
        client.cancel(list(futures))


def _full_row(run: SweepRun, result: Mapping, reused: bool) -> dict:
    return {"index": run.index, "run_dir": run.name, **run.values, **result,
            "config_hash": run.config_hash, "reused": reused}


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a directory; choose a directory path")
    if out.is_dir() and any(out.iterdir()) and not (out / "sweep.toml").is_file():
        raise ConfigError("--out", f"{out} is not empty and holds no earlier sweep; choose a new "
                          "directory (or the DIR of an earlier sweep, to reuse its runs)")


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _connect(client, scheduler: str | None, workers: int | None, timeout: float):
    """``(resources to close, client)``: the given client, a scheduler's, or a local cluster."""
    if client is not None:
        return [], client
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return [c := Client(scheduler, timeout=timeout, set_as_default=False)], c
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            raise ConfigError("--scheduler", f"cannot connect to {scheduler!r} ({' '.join(str(err).split())}); "
                              "check the address (tcp://HOST:8786) and that `dask scheduler` runs") from None
    import logging

    # no dashboard; the scheduler's small HTTP server (health checks) on a free port, so that
    # several sweeps on one machine do not compete for port 8787
    cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                           dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                           silence_logs=logging.ERROR)
    return [cluster, c := Client(cluster, set_as_default=False)], c


# --------------------------------------------------------------------------------------------
# Progress


class _Reporter:
    """Reports finished runs: ``report(row, done)``; ``close()`` at the end."""

    def __init__(self, total: int, reused: int, mode: str | Callable):
        self.total, self.mode, self._bar = total, mode, None
        if mode in ("lines", "bar"):
            print(f"sweep: {total} to run, {reused} reused (completed earlier)", file=sys.stderr)
        if mode == "bar" and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(),
                                 console=Console(stderr=True))
            self._task = self._bar.add_task("sweep", total=total, failed=0)
            self._failed = 0
            self._bar.start()

    def __call__(self, row: dict, done: int) -> None:
        if callable(self.mode):
            self.mode(row, done, self.total)
        elif self._bar is not None:
            self._failed += row["status"] != "completed"
            self._bar.update(self._task, advance=1, failed=self._failed)
        elif self.mode == "lines":
            wall = "" if np.isnan(row["wall_seconds"]) else f", {row['wall_seconds']:.3g} s"
            print(f"[{done}/{self.total}] {row['run_dir']}: {row['status']}{wall}", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _make_reporter(progress: str | Callable, total: int, reused: int) -> _Reporter:
    if callable(progress):
        return _Reporter(total, reused, progress)
    if progress not in ("none", "lines", "bar", "auto"):
        raise ValueError(f"run_sweep(progress={progress!r}): choose 'none', 'lines', 'bar', 'auto' "
                         "or a callable")
    if progress == "auto":
        progress = "bar" if sys.stderr.isatty() else "lines"
    return _Reporter(total, reused, progress)


# --------------------------------------------------------------------------------------------
# The results table


def sweep_dataset(rows: Sequence[Mapping], parameter_keys: Sequence[str]):
    """The results table as an ``xarray.Dataset`` with dimension ``run``.

    Numeric columns are float64 (NaN where missing); a swept key whose values are all integers
    is int64; other values (strings, arrays, tables) are stored as their TOML text.
    """
    import xarray as xr

    columns = ["run_dir", *parameter_keys, *RESULT_COLUMNS]
    data = {name: ("run", _column([row[name] for row in rows])) for name in columns}
    ds = xr.Dataset(data, coords={"run": np.array([row["index"] for row in rows], dtype=np.int64)})
    ds.attrs.update({"kmdflow_version": __version__, "parameters": "\n".join(parameter_keys)})
    return ds


def _column(values: list) -> np.ndarray:
    if all(isinstance(v, bool) or isinstance(v, np.bool_) for v in values):
        return np.array(values, dtype=np.int8)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.float64)
    return np.array([_text(v) for v in values], dtype=str)


def _text(value) -> str:
    return value if isinstance(value, str) else toml_scalar(value) if not isinstance(value, Mapping) \
        else "{" + ", ".join(f"{toml_key(k)} = {toml_scalar(v)}" for k, v in value.items()) + "}"


def _csv_text(rows: Sequence[Mapping], parameter_keys: Sequence[str]) -> str:
    columns = ["index", "run_dir", *parameter_keys, *RESULT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row[name]) for name in columns])
    return buffer.getvalue()


def _csv_cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else repr(float(value))
    return str(value) if isinstance(value, (int, np.integer)) else _text(value)


def _write_tables(sweep: Sweep, rows: Sequence[dict | None], out: Path) -> None:
    """``sweep.csv`` and ``sweep.nc``; runs not finished yet have status ``"pending"``."""
    from kmdflow.io import write_dataset

    table = [row if row is not None else _full_row(run, {**failed_row(""), "status": "pending"}, False)
             for run, row in zip(sweep.runs, rows)]
    keys = tuple(sweep.parameters)
    _write_text(_csv_text(table, keys), out / "sweep.csv")
    write_dataset(sweep_dataset(table, keys), out / "sweep.nc")


def _write_text(text: str, path: Path) -> None:
    """Write ``text`` atomically (a temporary file beside ``path``, renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
