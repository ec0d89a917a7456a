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

import csv
import io
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmdflow import __version__
from kmdflow.experiments.config import Config, ConfigError
from kmdflow.experiments.sweep_file import (  # noqa: F401  (re-exported: the sweep API in one place)
    _RECORD_HEADER,
    MAX_RUNS,
    MODES,
    Sweep,
    SweepRun,
    describe_values,
    expand_parameters,
    load_sweep,
)
from kmdflow.experiments.toml_writer import toml_key, toml_scalar
from kmdflow.io import write_text

__all__ = ["MODES", "RESULT_COLUMNS", "Sweep", "SweepResult", "SweepRun", "default_workers",
           "describe_values", "expand_parameters", "load_sweep", "run_one", "run_sweep", "sweep_dataset"]

#: Times Dask retries a task that raised ``OSError`` (numerical failures are results, not retried).
IO_RETRIES = 2
#: Columns of the results table after ``index``, ``run_dir`` and the swept keys.
RESULT_COLUMNS = ("status", "fitted_rate", "predicted_rate", "predicted_rate_kind", "final_energy",
                  "wall_seconds", "config_hash", "reused")
#: Seconds between rewrites of the tables while a sweep runs (they are also written at the end).
TABLE_INTERVAL = 10.0


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
    from kmdflow.experiments.run import CHECKPOINT

    # run_config removes the checkpoint last, after the pictures: a run killed before that
    # (a worker lost mid-write) still counts as unfinished
    if not isinstance(summary, dict) or summary.get("config_hash") != run.config_hash \
            or not (run_dir / "result.nc").is_file() \
            or (summary.get("status") == "completed" and (run_dir / CHECKPOINT).exists()):
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
    mode = _progress_mode(progress)
    _check_out(out)
    keys = tuple(sweep.parameters)
    rows: list = [None] * len(sweep.runs)
    pending = []
    for run in sweep.runs:
        earlier = _earlier_row(run, out / run.name) if out.is_dir() else None
        if earlier is not None and (earlier["status"] == "completed" or not retry_failed):
            rows[run.index] = _full_row(run, earlier, reused=True)
        else:
            pending.append(run)
    owned, client = _connect(client, scheduler, workers, connect_timeout) if pending else ([], None)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(sweep.to_toml(), out / "sweep.toml")
        report = _Reporter(mode, keys, len(pending), len(sweep.runs) - len(pending), client)
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
        for resource in reversed(owned):
            resource.close()
    _write_tables(sweep, rows, out)
    return SweepResult(rows, keys, len(pending), out)


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
    if not out.is_dir() or not any(out.iterdir()):
        return
    record = out / "sweep.toml"
    try:
        ours = record.is_file() and record.read_text(errors="replace").startswith(_RECORD_HEADER)
    except OSError:
        ours = False
    if not ours:
        what = "a sweep.toml that kmdflow did not write" if record.exists() else "no earlier sweep"
        raise ConfigError("--out", f"{out} is not empty and holds {what}; choose a new directory "
                          "(or the DIR of an earlier sweep, to reuse its runs)")


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
            reason = " ".join(str(err).split())
            raise ConfigError("--scheduler", f"cannot connect to {scheduler!r} ({reason}); check the "
                              "address (tcp://HOST:8786) and that `dask scheduler` runs") from None
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
    """Reports finished runs on stderr (or to a callable): ``report(row, done)``, then ``close()``."""

    def __init__(self, mode: str | Callable, keys: Sequence[str], total: int, reused: int, client):
        self.mode, self.keys, self.total, self._bar, self._failed = mode, keys, total, None, 0
        if mode in ("lines", "bar"):
            where = f" on {sum(client.nthreads().values())} workers" if client is not None else ""
            print(f"sweep: {total} to run{where}, {reused} reused (completed earlier)", file=sys.stderr)
        if mode == "bar" and total:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(),
                                 console=Console(stderr=True))
            self._task = self._bar.add_task("sweep", total=total, failed=0)
            self._bar.start()

    def __call__(self, row: dict, done: int) -> None:
        self._failed += row["status"] != "completed"
        if callable(self.mode):
            self.mode(row, done, self.total)
        elif self._bar is not None:
            self._bar.update(self._task, advance=1, failed=self._failed)
        elif self.mode == "lines":
            values = describe_values({key: row[key] for key in self.keys})
            wall = "" if np.isnan(row["wall_seconds"]) else f", {row['wall_seconds']:.3g} s"
            print(f"[{done}/{self.total}] {row['run_dir']} ({values}): {row['status']}{wall}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _progress_mode(progress: str | Callable) -> str | Callable:
    if callable(progress):
        return progress
    if progress not in ("none", "lines", "bar", "auto"):
        raise ValueError(f"run_sweep(progress={progress!r}): choose 'none', 'lines', 'bar', 'auto' "
                         "or a callable")
    return ("bar" if sys.stderr.isatty() else "lines") if progress == "auto" else progress


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
             for run, row in zip(sweep.runs, rows, strict=True)]
    keys = tuple(sweep.parameters)
    write_text(_csv_text(table, keys), out / "sweep.csv")
    write_dataset(sweep_dataset(table, keys), out / "sweep.nc")

