"""Run one config: build, integrate, write ``result.nc``, ``summary.json`` and the pictures.

Nothing is written before the whole problem is built and validated; output files are replaced
atomically (:mod:`kmdflow.io`).
"""

from __future__ import annotations

import platform
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import xarray as xr

from kmdflow import __version__
from kmdflow.diagnostics.rates import fit_rate, fit_window, predict_rate
from kmdflow.experiments.build import Problem, build_problem
from kmdflow.experiments.config import Config, ConfigError, load_config
from kmdflow.io import read_checkpoint, trajectory_dataset, write_checkpoint, write_dataset, write_json
from kmdflow.solve import simulate


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite``; create it otherwise."""
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a directory; choose another path")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError("--out", f"{out} is not empty; pass --overwrite or choose an empty directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError("--out", f"cannot create {out} ({err.strerror}); choose a writable path") from None


def run_config(config: Config | dict | str | Path, out: Path | None = None, *, progress: bool = False,
               overwrite: bool = False, resume: bool = False, handle_signals: bool = False) -> xr.Dataset:
    """Run the flow a config describes; write its outputs to ``out`` when given.

    Parameters
    ----------
    config : Config, dict, str or Path
        A loaded config, a dict with the TOML structure, or a TOML path.
    out : Path, optional
        Output directory (created; must be empty unless ``overwrite``).
    progress : bool
        Show a progress bar on stderr.
    overwrite : bool
        Replace the results of an earlier run in ``out``.
    resume : bool
        Continue the run whose checkpoint is in ``out`` (same config required).
    handle_signals : bool
        Turn SIGINT/SIGTERM into a clean stop: checkpoint, status ``"interrupted"``, results written
        (main thread only; the CLI sets it).

    Returns
    -------
    xarray.Dataset
        The content of ``result.nc``; ``attrs["status"]`` is ``"completed"`` or ``"failed: ..."``.
    """
    config = load_config(config)
    problem = build_problem(config)
    state = None
    if out is not None:
        out = Path(out)
        if resume:
            state = _load_checkpoint(out, config)
        else:
            prepare_out_dir(out, overwrite)
            (out / CHECKPOINT).unlink(missing_ok=True)
    save_state = None if out is None else (lambda s: write_checkpoint(s, out / CHECKPOINT, config.hash()))
    with _progress_bar(problem, enabled=progress) as advance, _StopOnSignal(handle_signals) as stop:
        traj = simulate(problem.flow, integrator=problem.integrator, times=problem.times,
                        snapshot_at=problem.snapshot_at, rtol=config.time.rtol, atol=config.time.atol,
                        dt=config.method.dt, progress=advance, checkpoint=save_state,
                        checkpoint_every=config.output.checkpoint_every, resume=state, stop=stop)
    summary = make_summary(problem, traj)
    ds = trajectory_dataset(traj, problem.flow.representation, _attributes(problem, traj, summary))
    if out is not None:
        write_dataset(ds, out / "result.nc")
        write_json(summary, out / "summary.json")
        from kmdflow.plotting import plot_energy, plot_state

        plot_energy(ds, summary, out / "energy.png")
        plot_state(ds, out / "state.png")
        if traj.status == "completed":
            (out / CHECKPOINT).unlink(missing_ok=True)  # result.nc now holds everything
    return ds


#: The checkpoint file of a run directory (:func:`kmdflow.io.write_checkpoint`).
CHECKPOINT = "checkpoint.npz"


def _load_checkpoint(out: Path, config: Config) -> dict:
    """The checkpoint in ``out``, checked against ``config``; ConfigError when it cannot serve."""
    path = out / CHECKPOINT
    if not path.is_file():
        done = (out / "result.nc").is_file()
        raise ConfigError("--resume", f"{out} holds no checkpoint"
                          + (" (its run completed)" if done else "") + "; run without --resume")
    try:
        state, config_hash = read_checkpoint(path)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError("--resume", f"{path} is unreadable ({err}); run again with --overwrite") from None
    if config_hash != config.hash():
        raise ConfigError("--resume", f"{path} belongs to a different config; resume with the config "
                          "of that run, or start again with --overwrite")
    return state


class _StopOnSignal:
    """Context manager: while active, SIGINT/SIGTERM set a flag that the returned callable reads."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.raised = False
        self._previous = {}

    def __enter__(self):
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return lambda: self.raised

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def make_summary(problem: Problem, traj) -> dict:
    """The content of ``summary.json``."""
    s = problem.config.energy.s
    predicted = predict_rate(s, problem.regularity, problem.min_density, problem.uniform_target)
    window = fit_window(predicted.kind, s, n_modes=problem.n_modes, n_particles=problem.n_particles,
                        regularity=problem.regularity, time_scale=problem.time_scale)
    fitted = fit_rate(np.asarray(traj.times), np.asarray(traj.series["energy"]), predicted.kind, problem.floor,
                      window)
    cfg = problem.config
    return {
        "status": traj.status,
        "title": _title(cfg),
        "predicted_rate": predicted.to_dict(),
        "fitted_rate": fitted.to_dict(),
        "floor": problem.floor,
        "length_scale": getattr(problem.flow, "length_scale", None),
        "final_time": traj.times[-1],
        "final_energy": traj.series["energy"][-1],
        "steps": traj.n_steps,
        "rejected_steps": traj.n_rejected,
        "rhs_evaluations": traj.n_rhs,
        "wall_seconds": traj.wall_seconds,
        "integrator": problem.integrator,
        "summation": problem.summation,
        "config_hash": cfg.hash(),
        "notes": list(problem.notes),
    }


def _title(cfg: Config) -> str:
    """One line naming the run (the energy picture's title)."""
    if cfg.domain.kind == "sphere":
        geometry = "WFR" if cfg.geometry.kind == "wfr" else "Wasserstein"
        return (f"{cfg.method.kind} on S^{cfg.domain.dim}, ReLU kernel ({geometry}, s = {cfg.energy.s:g}), "
                f"initial {cfg.initial.kind}, teacher {cfg.target.kind}, n = {cfg.method.n}")
    return (f"{cfg.method.kind}, s = {cfg.energy.s:g}, initial {cfg.initial.kind}, "
            f"target {cfg.target.kind}, n = {cfg.method.n}")


def _attributes(problem: Problem, traj, summary: dict) -> dict:
    import scipy

    return {
        "config": problem.config.to_toml(),
        "config_hash": summary["config_hash"],
        "kmdflow_version": __version__,
        "status": traj.status,
        "wall_seconds": traj.wall_seconds,
        "steps": traj.n_steps,
        "rejected_steps": traj.n_rejected,
        "rhs_evaluations": traj.n_rhs,
        "integrator": problem.integrator,
        "summation": problem.summation,
        "predicted_rate_kind": summary["predicted_rate"]["kind"],
        "predicted_rate": summary["predicted_rate"]["value"],
        "fitted_rate": summary["fitted_rate"]["value"],
        "floor": problem.floor,
        "length_scale": getattr(problem.flow, "length_scale", None),
        "notes": "\n".join(problem.notes),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "finufft_version": _version_of("finufft"),
        "git_commit": _git_commit(),
        "seed": problem.config.method.seed,
    }


def _version_of(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """The commit of the kmdflow source tree when it is a git checkout, else "unknown"."""
    import subprocess

    source = Path(__file__).resolve().parent
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True,
                                timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = result.stdout.strip()
    if result.returncode != 0 or not commit:
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return commit + ("-dirty" if dirty else "")


class _progress_bar:
    """Context manager yielding ``advance(t)``; a rich bar over save times when enabled."""

    def __init__(self, problem: Problem, enabled: bool):
        self.times = problem.times
        self.enabled = enabled
        self._progress = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("t = {task.fields[t]:.4g}"), BarColumn(),
                                  TextColumn("{task.completed}/{task.total} saves"), TimeElapsedColumn(),
                                  transient=True, console=Console(stderr=True))
        self._progress.start()
        task = self._progress.add_task("run", total=len(self.times) - 1, t=0.0)

        def advance(t: float) -> None:
            self._progress.update(task, advance=1, t=t)

        return advance

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
        return False
