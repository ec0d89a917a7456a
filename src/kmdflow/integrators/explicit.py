"""One explicit Runge--Kutta step for ``dy/dt = rhs(t, y)`` on arrays of any shape and dtype.

The step is a pure function of ``(tableau, rhs, t, y, dt)``; step-size control lives in
:mod:`kmdflow.integrators.adaptive` and the time loop in the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kmdflow.integrators.tableaux import ButcherTableau

#: ``rhs(t, y) -> dy/dt``, same shape as ``y``.
Rhs = Callable[[float, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class StepResult:
    """Outcome of one trial step.

    Attributes
    ----------
    y : array, shape of the input state
        Propagated solution at ``t + dt``.
    error : array or None
        Embedded error estimate ``y - y_low`` (None for schemes without one).
    k_last : array or None
        ``rhs(t + dt, y)`` when the scheme is FSAL (reusable as the next step's first stage),
        else None.
    k_first : array
        The first stage at ``(t, y_old)``; reusable when the step is retried with another ``dt``.
    memory : tuple or None
        What an accepted step hands to the next one from ``(t + dt, y)`` besides ``k_last`` (the
        earlier nodes of an error check that looks back one step), else None.
    """

    y: np.ndarray
    error: np.ndarray | None
    k_last: np.ndarray | None
    k_first: np.ndarray
    memory: tuple | None = None


def _combine(y: np.ndarray, h: float, weights: np.ndarray, stages: list[np.ndarray]) -> np.ndarray:
    """``y + h * sum_j weights[j] stages[j]``, skipping zero weights; ``y`` is not modified."""
    out = np.array(y, dtype=np.result_type(y, *stages, np.float64), copy=True)
    for w, k in zip(weights, stages):
        if w != 0.0:
            out += (h * w) * k
    return out


def _increment(h: float, weights: np.ndarray, stages: list[np.ndarray]) -> np.ndarray:
    """``h * sum_j weights[j] stages[j]``."""
    acc = np.zeros(stages[0].shape, dtype=np.result_type(*stages, np.float64))
    for w, k in zip(weights, stages):
        if w != 0.0:
            acc += (h * w) * k
    return acc


def rk_step(tableau: ButcherTableau, rhs: Rhs, t: float, y: np.ndarray, dt: float,
            k_first: np.ndarray | None = None) -> StepResult:
    r"""Advance ``y`` from ``t`` to ``t + dt`` with one explicit Runge--Kutta step.

    Parameters
    ----------
    tableau : ButcherTableau
        The scheme.
    rhs : callable
        ``rhs(t, y) -> (...) array`` with the shape of ``y``.
    t : float
        Current time.
    y : (...) float or complex
        Current state, any shape; complex states stay complex.
    dt : float
        Step size (may be negative for backward integration).
    k_first : (...) array, optional
        ``rhs(t, y)`` if already known (FSAL reuse or a retried step); evaluated otherwise.

    Returns
    -------
    StepResult
        ``y`` at ``t + dt``, the embedded error estimate or None, the FSAL stage or None, and the
        first stage.

    Notes
    -----
    :math:`k_i = f(t + c_i h, y + h\sum_{j<i} a_{ij} k_j)`, :math:`y_{new} = y + h\sum_i b_i k_i`,
    error :math:`e = h\sum_i (b_i - \hat b_i) k_i`. For FSAL tableaux the last stage is evaluated at
    ``y_new`` itself, so ``k_last = f(t + h, y_new)`` exactly.
    """
    y = np.asarray(y)
    k0 = rhs(t, y) if k_first is None else k_first
    stages = [np.asarray(k0)]
    a, c = tableau.a, tableau.c
    s = tableau.stages
    y_new = None
    for i in range(1, s):
        if tableau.fsal and i == s - 1:
            y_stage = _combine(y, dt, tableau.b, stages)
            y_new = y_stage
        else:
            y_stage = _combine(y, dt, a[i, :i], stages)
        stages.append(np.asarray(rhs(t + c[i] * dt, y_stage)))
    if y_new is None:
        y_new = _combine(y, dt, tableau.b, stages)
    error = None
    if tableau.error_weights is not None:
        error = _increment(dt, tableau.error_weights, stages)
    k_last = stages[-1] if tableau.fsal else None
    return StepResult(y=y_new, error=error, k_last=k_last, k_first=stages[0])
