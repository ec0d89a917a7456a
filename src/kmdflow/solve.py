"""The driver: integrate a flow, save diagnostics on a time grid, keep snapshots, report status.

Flows (:mod:`kmdflow.flows`) give the equation, steppers (:mod:`kmdflow.integrators`) take one
accepted step; this module owns the loop. It lands exactly on every save time, records the energy
after every accepted step (so monotonicity can be checked), and turns numerical faults into a
``"failed: <reason>"`` status while keeping everything computed so far.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kmdflow.integrators import SCHEMES, IntegratorError, make_stepper


def save_times(t_end: float, n_saves: int, spacing: str = "log", t_first: float | None = None) -> np.ndarray:
    """Save times starting at 0 and ending at ``t_end``: ``(n_saves,)``.

    ``"linear"``: evenly spaced. ``"log"``: ``0`` then ``n_saves - 1`` log-spaced times from
    ``t_first`` (default ``min(0.01, t_end / 10)``) to ``t_end``.
    """
    if spacing == "linear":
        return np.linspace(0.0, t_end, n_saves)
    if t_first is None:
        t_first = min(0.01, t_end / 10.0)
    times = np.concatenate([[0.0], np.geomspace(t_first, t_end, n_saves - 1)])
    times[-1] = t_end
    return times


def snapshot_indices(n_saves: int, snapshots: int) -> np.ndarray:
    """Indices into the save times at which states are kept; first and last always included."""
    return np.unique(np.round(np.linspace(0, n_saves - 1, min(snapshots, n_saves))).astype(int))


@dataclass
class Trajectory:
    """What a run produced. Series are lists aligned with ``times`` (only the times reached)."""

    times: list[float] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    snapshot_times: list[float] = field(default_factory=list)
    snapshots: dict[str, list[np.ndarray]] = field(default_factory=dict)
    step_energies: list[float] = field(default_factory=list)
    status: str = "running"
    n_steps: int = 0
    n_rejected: int = 0
    n_rhs: int = 0
    wall_seconds: float = 0.0
    final_state: np.ndarray | None = None

    def record(self, t: float, diagnostics: dict[str, float]) -> None:
        self.times.append(float(t))
        for name, value in diagnostics.items():
            self.series.setdefault(name, []).append(float(value))

    def keep(self, t: float, arrays: dict[str, np.ndarray]) -> None:
        self.snapshot_times.append(float(t))
        for name, value in arrays.items():
            self.snapshots.setdefault(name, []).append(np.asarray(value))


def simulate(flow, *, integrator: str, times: np.ndarray, snapshot_at: np.ndarray,
             rtol: float = 1e-8, atol: float = 0.0, dt: float | None = None,
             max_steps: int = 10_000_000, record_step_energy: bool = False,
             progress: Callable[[float], None] | None = None,
             checkpoint: Callable[[dict], None] | None = None, checkpoint_every: float = 60.0,
             resume: dict | None = None, stop: Callable[[], bool] | None = None) -> Trajectory:
    """Integrate ``flow`` from ``times[0]`` through every time in ``times``.

    Parameters
    ----------
    flow : Flow
        The semi-discretised equation (:class:`kmdflow.flows.base.Flow`).
    integrator : str
        A name from :data:`kmdflow.integrators.SCHEMES`.
    times : (S,) float
        Increasing save times; ``times[0]`` is the initial time.
    snapshot_at : (P,) int
        Indices into ``times`` where the state is kept.
    rtol, atol : float
        Tolerances of the adaptive step control (see :mod:`kmdflow.integrators`).
    dt : float, optional
        Fixed step for schemes without an error estimate.
    record_step_energy : bool
        Also record the energy after every accepted step (costs one energy per step).
    progress : callable, optional
        Called with the current time after every save.
    checkpoint : callable, optional
        Called with the run's complete state (a dict of arrays and numbers; see
        :func:`kmdflow.io.write_checkpoint`) at every save, at least every ``checkpoint_every``
        seconds between saves, and when the run stops early.
    resume : dict, optional
        A state handed to ``checkpoint`` earlier: the run continues from it and ends with the same
        result as an uninterrupted run (the step-size controller is restored too).
    stop : callable, optional
        Polled after every step; when it returns True the run ends with status ``"interrupted"``.

    Returns
    -------
    Trajectory
        ``status`` is ``"completed"``, ``"interrupted"`` or ``"failed: <reason>"``; the data up to
        the end is kept.
    """
    start = _time.perf_counter()
    keep = set(int(i) for i in snapshot_at)
    norm = getattr(flow, "error_norm", "normwise")
    if getattr(SCHEMES[integrator], "needs_linear", False):
        # exponential schemes: the diagonal linear part exactly, the rest explicitly
        stepper = make_stepper(integrator, flow.nonlinear, linear=flow.linear, rtol=rtol, atol=atol,
                               norm=norm, dt_fixed=dt)
    else:
        stepper = make_stepper(integrator, flow.rhs, rtol=rtol, atol=atol, norm=norm, dt_fixed=dt)
    if resume is None:
        traj, y, t, first, wall_before = Trajectory(), flow.initial_state(), float(times[0]), 1, 0.0
        traj.record(t, flow.diagnostics(y))
        if 0 in keep:
            traj.keep(t, flow.snapshot(y))
        if record_step_energy:
            traj.step_energies.append(flow.energy(y))
    else:
        traj, y, t, first, wall_before = _restore(resume, stepper)
    y_saved = y

    def state(index: int) -> dict:
        return {"t": t, "y": y, "index": index, "trajectory": traj, "stepper": stepper.checkpoint(),
                "wall_seconds": wall_before + _time.perf_counter() - start}

    last_checkpoint = _time.perf_counter()
    index = first
    try:
        for index in range(first, len(times)):
            t_save = float(times[index])
            while t < t_save:
                if stepper.n_accepted >= max_steps:
                    raise _Failure(f"max steps ({max_steps}) reached at t = {t:.6g}")
                t_new, y, _ = stepper.step(t, y, t_save - t)
                # land exactly on the save time despite round-off in t + dt
                t = t_save if abs(t_save - t_new) <= 1e-12 * max(1.0, abs(t_save)) else t_new
                if record_step_energy:
                    traj.step_energies.append(flow.energy(y))
                if stop is not None and stop():
                    raise _Interrupted
                if checkpoint is not None and _time.perf_counter() - last_checkpoint > checkpoint_every:
                    checkpoint(state(index))
                    last_checkpoint = _time.perf_counter()
            diagnostics = flow.diagnostics(y)
            if not all(np.isfinite(v) for v in diagnostics.values()):
                raise _Failure(f"non-finite diagnostics at t = {t:.6g}")
            _check_positivity(diagnostics, traj, t)
            traj.record(t, diagnostics)
            y_saved = y
            if index in keep:
                traj.keep(t, flow.snapshot(y))
            if checkpoint is not None:
                checkpoint(state(index + 1))
                last_checkpoint = _time.perf_counter()
            if progress is not None:
                progress(t)
        traj.status = "completed"
    except _Interrupted:
        traj.status = "interrupted"
        if checkpoint is not None:
            checkpoint(state(index))
        _close_snapshots(traj, flow, y_saved)
    except (IntegratorError, _Failure, ArithmeticError, ValueError) as err:
        # numerical faults end the run, never the data computed so far
        traj.status = f"failed: {err}" if isinstance(err, (IntegratorError, _Failure)) \
            else f"failed: {type(err).__name__} at t = {t:.6g}: {err}"
        _close_snapshots(traj, flow, y_saved)
    traj.final_state = y
    traj.n_steps = stepper.n_accepted
    traj.n_rejected = stepper.n_rejected
    traj.n_rhs = stepper.n_rhs
    traj.wall_seconds = wall_before + _time.perf_counter() - start
    return traj


#: A density may dip below zero by this much (plus twice the initial data's own undershoot, e.g.
#: Gibbs ringing of truncated discontinuous data) before the run is declared failed.
NEGATIVE_DENSITY_TOLERANCE = 1e-8


def _check_positivity(diagnostics: dict[str, float], traj: Trajectory, t: float) -> None:
    """Fail when a grid density goes negative beyond what its initial data already did."""
    if "min_density" not in diagnostics:
        return
    initial = min(0.0, traj.series["min_density"][0])
    limit = -(NEGATIVE_DENSITY_TOLERANCE + 2.0 * abs(initial))
    if diagnostics["min_density"] < limit:
        raise _Failure(f"density fell to {diagnostics['min_density']:.3g} < {limit:.3g} at t = {t:.6g}")


def _close_snapshots(traj: Trajectory, flow, y_saved: np.ndarray) -> None:
    """A run that ends early keeps its last saved state as the final snapshot."""
    if not traj.snapshot_times or traj.snapshot_times[-1] != traj.times[-1]:
        traj.keep(traj.times[-1], flow.snapshot(y_saved))


def _restore(state: dict, stepper) -> tuple[Trajectory, np.ndarray, float, int, float]:
    """Trajectory, state, time, next save index and wall seconds of a checkpoint."""
    stepper.restore(state["stepper"], t=float(state["t"]), y=np.asarray(state["y"]))
    old = state["trajectory"]
    traj = Trajectory(times=list(old.times), series={k: list(v) for k, v in old.series.items()},
                      snapshot_times=list(old.snapshot_times),
                      snapshots={k: list(v) for k, v in old.snapshots.items()},
                      step_energies=list(old.step_energies))
    return traj, np.array(state["y"]), float(state["t"]), int(state["index"]), float(state["wall_seconds"])


class _Interrupted(Exception):
    """The ``stop`` callback asked the run to end."""


class _Failure(RuntimeError):
    """A numerical fault detected by the driver itself."""
