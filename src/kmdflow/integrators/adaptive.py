r"""Step-size control: a :class:`Stepper` takes one *accepted* step at a time.

The driver owns the loop. It calls ``stepper.step(t, y, dt_limit)`` with ``dt_limit`` the distance
to the next save time; the stepper never steps past ``t + dt_limit``, and a clipped step returns
exactly ``t + dt_limit`` (the floating-point sum; with ``dt_limit = t_save - t`` that may differ
from ``t_save`` by an ulp when ``t < t_save / 2``, so the driver should snap to ``t_save`` when
``info["clipped"]``). Failures raise an :class:`IntegratorError` subclass carrying the time ``t`` and a short
``reason``, which the driver records as run status ``"failed: <reason>"``.

Problem form
    ``dy/dt = rhs(t, y)``; or, with ``linear`` given (a diagonal array broadcastable against
    ``y``), ``dy/dt = linear * y + rhs(t, y)``. Explicit Runge--Kutta schemes integrate the sum;
    exponential schemes (a later addition) use the split. A scheme type plugs in by registering a
    step function with :func:`advance` and a scheme object with
    :func:`kmdflow.integrators.tableaux.register_scheme`.

Error norm
    A trial step is accepted when its scaled error norm is at most 1; the norms and the step-size
    controller are in :mod:`kmdflow.integrators.error_control`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import singledispatch
from typing import Any

import numpy as np

from kmdflow.integrators.error_control import (
    ERROR_NORMS,
    MODEWISE_FLOOR,
    PIController,
    error_norm,
    modewise_error_norm,
    rms_norm,
    safe_ratio,
)
from kmdflow.integrators.explicit import Rhs, StepResult, rk_step
from kmdflow.integrators.tableaux import SCHEMES, ButcherTableau, Scheme, get_scheme

# the error norms and the controller live in error_control and are re-exported here
__all__ = [
    "ERROR_NORMS",
    "MODEWISE_FLOOR",
    "UNDERFLOW_FACTOR",
    "IntegratorError",
    "NonFiniteState",
    "OdeProblem",
    "PIController",
    "StepSizeUnderflow",
    "Stepper",
    "TooManyRejections",
    "advance",
    "error_norm",
    "initial_step",
    "ladder_step",
    "make_stepper",
    "modewise_error_norm",
    "rms_norm",
]

#: A step is too small when ``dt < UNDERFLOW_FACTOR * max(1, |t|)``.
UNDERFLOW_FACTOR = 1e-14


class IntegratorError(RuntimeError):
    """Base class of integration failures; ``t`` is the time reached, ``reason`` a short label."""

    reason = "integrator error"

    def __init__(self, message: str, *, t: float, dt: float | None = None) -> None:
        t = float(t)
        dt = None if dt is None else float(dt)
        where = f"at t = {t!r}" if dt is None else f"at t = {t!r}, dt = {dt!r}"
        super().__init__(f"{message} ({where})")
        self.t = t
        self.dt = dt


class StepSizeUnderflow(IntegratorError):
    """The controller needed a step below ``1e-14 * max(1, |t|)`` (blow-up or too strict tol)."""

    reason = "step size underflow"


class NonFiniteState(IntegratorError):
    """The right-hand side or a step produced NaN or Inf."""

    reason = "non-finite state"


class TooManyRejections(IntegratorError):
    """More than ``max_rejects`` consecutive rejected trial steps within one accepted step."""

    reason = "too many rejected steps"


def ladder_step(dt: float, steps_per_octave: int, nearest: bool = False) -> float:
    r"""The largest step ``2^(j / m) <= dt`` (``m = steps_per_octave``, ``j`` integer), or with
    ``nearest`` the rung nearest to ``dt`` in ratio.

    Parameters
    ----------
    dt : float
        Proposed step, ``> 0``.
    steps_per_octave : int
        Rungs of the geometric ladder per factor of 2, ``>= 1``.
    nearest : bool
        Round to the nearest rung (within a factor ``2^(1/(2m))`` of ``dt``) instead of down.

    Notes
    -----
    :math:`h = 2^{\lfloor m \log_2 dt \rfloor / m}` (``nearest``: :math:`2^{[m \log_2 dt] / m}`),
    computed so that a rung maps to itself bit for bit
    (``ladder_step(ladder_step(dt, m), m) == ladder_step(dt, m)``): schemes whose steps cost a
    setup per step size (exponential integrators) then meet the same sizes again.
    """
    m = int(steps_per_octave)
    j = round(m * math.log2(dt))
    rung = 2.0 ** (j / m)
    if rung > dt and not nearest:
        rung = 2.0 ** ((j - 1) / m)
    return rung



@dataclass(frozen=True, eq=False)
class OdeProblem:
    """``dy/dt = rhs(t, y)``, or ``linear * y + rhs(t, y)`` when ``linear`` is given.

    Parameters
    ----------
    rhs : callable
        ``rhs(t, y) -> (...) array``; the nonlinear part when ``linear`` is given.
    linear : (...) array, optional
        Diagonal linear part, broadcastable against ``y``.
    """

    rhs: Rhs
    linear: np.ndarray | None = None

    def full_rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """The whole right-hand side ``dy/dt``."""
        if self.linear is None:
            return self.rhs(t, y)
        return self.linear * y + self.rhs(t, y)


@singledispatch
def advance(scheme: Any, problem: OdeProblem, t: float, y: np.ndarray, dt: float,
            k_first: np.ndarray | None = None, memory: tuple | None = None) -> StepResult:
    """One trial step of ``scheme``; new scheme types register an implementation.

    Contract: ``k_first`` is the scheme's first stage at ``(t, y)`` (None: evaluate it), returned
    again in the result; ``k_last`` is the next step's first stage at ``(t + dt, y_new)`` or None.
    ``memory`` is the ``memory`` of the accepted step that ended at ``(t, y)`` (None when there is
    none, e.g. at the first step); schemes that keep none ignore it.
    """
    raise TypeError(f"integrator: no step function registered for {type(scheme).__name__}")


@advance.register
def _advance_rk(scheme: ButcherTableau, problem: OdeProblem, t: float, y: np.ndarray, dt: float,
                k_first: np.ndarray | None = None, memory: tuple | None = None) -> StepResult:
    return rk_step(scheme, problem.full_rhs, t, y, dt, k_first)


def initial_step(full_rhs: Rhs, t: float, y: np.ndarray, f0: np.ndarray, k: int, rtol: float,
                 atol: float, dt_max: float = np.inf) -> float:
    r"""First step size from the Hairer--Wanner heuristic (HNW I, section II.4), norm-wise scaled.

    Parameters
    ----------
    full_rhs : callable
        ``dy/dt``; called once, at ``(t + h0, y + h0 f0)``.
    t : float
        Start time.
    y, f0 : (...) array
        State and ``full_rhs(t, y)``.
    k : int
        Power of ``h`` in the local error estimate.
    rtol, atol, dt_max : float
        Tolerances and the largest allowed step.

    Notes
    -----
    With ``sc = atol + rtol ||y||``: ``d0 = ||y||/sc``, ``d1 = ||f0||/sc``,
    ``h0 = 0.01 d0/d1`` (``1e-6`` if either is below ``1e-5``), ``d2 = ||f1 - f0|| / (sc h0)``,
    ``h1 = (0.01 / max(d1, d2))^(1/k)``, and the step is ``min(100 h0, h1, dt_max)``.
    """
    y_norm = rms_norm(y)
    scale0 = atol + rtol * y_norm
    d0, d1 = safe_ratio(y_norm, scale0), safe_ratio(rms_norm(f0), scale0)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, dt_max)
    y1 = y + h0 * f0
    f1 = full_rhs(t + h0, y1)
    if not np.all(np.isfinite(f1)):
        return h0
    scale1 = atol + rtol * max(y_norm, rms_norm(y1))
    d2 = safe_ratio(rms_norm(f1 - f0), scale1) / h0
    largest = max(d1, d2)
    if not np.isfinite(largest):
        h1 = h0
    elif largest <= 1e-15:
        h1 = max(1e-6, 1e-3 * h0)
    else:
        h1 = (0.01 / largest) ** (1.0 / k)
    return float(min(100.0 * h0, h1, dt_max))


def _positive(name: str, value: float | None, allow_inf: bool = False) -> None:
    if value is None:
        return
    ok = value > 0 and (allow_inf or np.isfinite(value))
    if not ok:
        kind = "a positive number" if allow_inf else "a positive finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


class Stepper:
    r"""Takes one accepted step at a time of ``dy/dt = [linear * y +] rhs(t, y)``, forward in time.

    Parameters
    ----------
    scheme : Scheme
        A registered scheme object (:data:`kmdflow.integrators.SCHEMES`).
    rhs : callable
        ``rhs(t, y) -> (...) array`` (the nonlinear part when ``linear`` is given).
    linear : (...) array, optional
        Diagonal linear part, broadcastable against ``y``.
    rtol, atol : float
        Tolerances of the error test.
    norm : {"normwise", "modewise"}
        :func:`~kmdflow.integrators.error_control.error_norm` (the whole state's size sets the
        scale; the default) or :func:`~kmdflow.integrators.error_control.modewise_error_norm`
        (each component against its own size, for spectral states).
    dt_initial : float, optional
        First trial step; chosen by :func:`initial_step` when None.
    dt_fixed : float, optional
        Constant step, no error control (required for schemes without an error estimate).
    dt_max : float
        Upper bound on every step.
    max_rejects : int
        Consecutive rejections allowed within one :meth:`step` call.
    controller : PIController, optional
        Step-size controller; default
        :class:`PIController() <kmdflow.integrators.error_control.PIController>`.

    Attributes
    ----------
    n_accepted, n_rejected, n_rhs : int
        Accepted steps, rejected trial steps, calls of ``rhs``.

    Notes
    -----
    FSAL schemes keep ``f(t_new, y_new)`` from the accepted step and reuse it when the next call
    passes the same ``t`` and an equal ``y``; any other state (say, positions wrapped into
    ``[0, 2 pi)``) is simply re-evaluated. Within one call the first stage is evaluated once for
    all trial steps. A scheme with ``steps_per_octave = m > 0`` has its adaptive trial steps
    rounded to the nearest rung of :func:`ladder_step` (``2^(j/m)``; retries after a rejection
    round down), so that step-size-dependent setup can be reused; the controller is fed the step
    it asked for, with the error rescaled to it (``err ~ dt^k``), so the rounding neither biases
    nor stalls the steps. Clipped and fixed steps are taken as given.
    """

    def __init__(self, scheme: Scheme, rhs: Rhs, *, linear: np.ndarray | None = None,
                 rtol: float = 1e-6, atol: float = 0.0, norm: str = "normwise",
                 dt_initial: float | None = None,
                 dt_fixed: float | None = None, dt_max: float = np.inf, max_rejects: int = 50,
                 controller: PIController | None = None) -> None:
        for name, value in (("rtol", rtol), ("atol", atol)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if rtol == 0 and atol == 0:
            raise ValueError("rtol and atol are both 0: give rtol > 0 (e.g. 1e-8) or atol > 0")
        _positive("dt_initial", dt_initial)
        _positive("dt_fixed", dt_fixed)
        _positive("dt_max", dt_max, allow_inf=True)
        if dt_fixed is not None and dt_initial is not None:
            raise ValueError(f"give dt_fixed (constant steps) or dt_initial (adaptive start), not "
                             f"both; got dt_fixed={dt_fixed!r}, dt_initial={dt_initial!r}")
        if dt_fixed is None and not scheme.embedded:
            adaptive = sorted(n for n, s in SCHEMES.items() if s.embedded)
            raise ValueError(
                f"integrator {scheme.name!r} has no embedded error estimate, so it cannot choose "
                f"its step: pass dt_fixed=<step size>, or use an adaptive scheme "
                f"({', '.join(adaptive)})")
        if scheme.needs_linear and linear is None:
            raise ValueError(f"integrator {scheme.name!r} needs the diagonal linear part: pass "
                             "linear=<array>")
        if int(max_rejects) < 1:
            raise ValueError(f"max_rejects must be >= 1, got {max_rejects!r}")
        self.scheme = scheme
        self.rtol, self.atol = float(rtol), float(atol)
        if norm not in ERROR_NORMS:
            raise ValueError(f"norm = {norm!r}: choose one of {', '.join(ERROR_NORMS)}")
        self.error_norm = ERROR_NORMS[norm]
        self.dt_fixed = None if dt_fixed is None else float(dt_fixed)
        self.dt_max = float(dt_max)
        self.max_rejects = int(max_rejects)
        self.controller = controller if controller is not None else PIController()
        if linear is not None:
            linear = np.array(linear, copy=True)  # read-only: schemes may key caches on it
            linear.setflags(write=False)
        self.problem = OdeProblem(rhs=self._counted(rhs), linear=linear)
        self.n_accepted = self.n_rejected = self.n_rhs = 0
        self._k = scheme.error_estimate_order if scheme.embedded else None
        self._dt_next = self.dt_fixed if dt_fixed is not None else (
            None if dt_initial is None else min(float(dt_initial), self.dt_max))
        self._err_prev = 1.0
        self._ladder = int(getattr(scheme, "steps_per_octave", 0) or 0)
        # (t, y, k_last, memory) of the last accepted step, for the next step from (t, y)
        self._cache: tuple[float, np.ndarray, np.ndarray | None, tuple | None] | None = None

    def _counted(self, rhs: Rhs) -> Rhs:
        def counted(t: float, y: np.ndarray) -> np.ndarray:
            self.n_rhs += 1
            return rhs(t, y)
        return counted

    @property
    def adaptive(self) -> bool:
        """True when the step is error-controlled (no ``dt_fixed``)."""
        return self.dt_fixed is None

    def checkpoint(self) -> dict[str, float | np.ndarray]:
        """What decides the next steps, for an exact resume: the controller, the counters and the
        last accepted step's ``memory`` (entries ``memory.0``, ``memory.1``, ...; absent when it
        has none). The FSAL stage is not kept: it is recomputed from the same state, with the
        same value."""
        state = {"dt_next": np.nan if self._dt_next is None else self._dt_next,
                 "err_prev": self._err_prev, "n_accepted": self.n_accepted,
                 "n_rejected": self.n_rejected, "n_rhs": self.n_rhs}
        memory = None if self._cache is None else self._cache[3]
        for i, value in enumerate(memory or ()):
            state[f"memory.{i}"] = value
        return state

    def restore(self, state: dict[str, float | np.ndarray], t: float | None = None,
                y: np.ndarray | None = None) -> None:
        """Continue from :meth:`checkpoint` output taken at the state ``(t, y)``.

        Without ``t`` and ``y`` the step memory is dropped: the next step then checks its error
        as the first step of a run does, and the resumed run follows other steps than the
        uninterrupted one (its results differ at the level of the tolerance).
        """
        dt_next = float(state["dt_next"])
        self._dt_next = None if np.isnan(dt_next) else dt_next
        self._err_prev = float(state["err_prev"])
        self.n_accepted, self.n_rejected, self.n_rhs = (int(state[k]) for k in ("n_accepted", "n_rejected", "n_rhs"))
        memory = tuple(itertools.takewhile(lambda v: v is not None,
                                           (state.get(f"memory.{i}") for i in itertools.count())))
        self._cache = None
        if memory and t is not None and y is not None:
            self._cache = (float(t), np.array(y, copy=True), None, memory)

    @property
    def dt_next(self) -> float | None:
        """Step the next call will try before clipping (None until the first adaptive step)."""
        return self._dt_next

    def reset(self) -> None:
        """Forget the FSAL stage, the step memory and the controller history (counters are
        kept)."""
        self._cache = None
        self._err_prev = 1.0

    def _first_stage(self, t: float, y: np.ndarray) -> tuple[np.ndarray | None, tuple | None]:
        """``k_last`` and ``memory`` of the last accepted step when it ended at ``(t, y)``.

        The times may differ by ``1e-12 max(1, |t|)``: the driver snaps a step that lands within
        that of a save time onto it.
        """
        if self._cache is None:
            return None, None
        t_c, y_c, k_c, memory = self._cache
        if (abs(t_c - t) <= 1e-12 * max(1.0, abs(t)) and y_c.shape == y.shape
                and bool((y_c == y).all())):
            return k_c, memory
        return None, None

    def step(self, t: float, y: np.ndarray, dt_limit: float = np.inf
             ) -> tuple[float, np.ndarray, dict[str, Any]]:
        """Take one accepted step from ``(t, y)``, never beyond ``t + dt_limit``.

        Parameters
        ----------
        t : float
            Current time.
        y : (...) float or complex
            Current state (not modified).
        dt_limit : float
            Largest allowed step, ``> 0``; a clipped step has ``dt == dt_limit`` exactly and
            returns ``t + dt_limit``.

        Returns
        -------
        t_new : float
        y_new : (...) array
        info : dict
            ``dt`` (step used), ``rejected`` (rejections in this call), ``error_norm`` (scaled
            error of the accepted step; nan without an estimate), ``clipped`` (bool), ``n_rhs``
            (rhs calls in this call).

        Raises
        ------
        StepSizeUnderflow, NonFiniteState, TooManyRejections
            Carrying ``t``; the state at ``t`` is the last good one.
        """
        if not dt_limit > 0:
            raise ValueError(f"dt_limit must be > 0, got {dt_limit!r}; the driver must not ask "
                             "for a step at or past the end time")
        y = np.asarray(y)
        # a match means y equals an accepted, finite state
        k_first, memory = self._first_stage(t, y)
        if k_first is None and memory is None and not np.isfinite(y).all():
            raise NonFiniteState("the state passed to the stepper contains NaN or Inf", t=t)
        rhs_before = self.n_rhs
        if self._dt_next is None:
            k_first = self._choose_first_step(t, y, k_first)
        if self.adaptive:
            result, dt, err, rejected, clipped, dt_unclipped = self._adaptive_trials(
                t, y, dt_limit, k_first, memory)
        else:
            clipped = dt_limit < self.dt_fixed
            dt = float(dt_limit) if clipped else self.dt_fixed
            result, finite, err = self._trial(t, y, dt, k_first, memory)
            if not finite:
                raise NonFiniteState(f"a fixed step of {self.scheme.name!r} produced NaN or Inf; "
                                     "reduce dt_fixed", t=t, dt=dt)
            rejected, dt_unclipped = 0, self.dt_fixed
        self._accept(t, result, dt, err, rejected, clipped, dt_unclipped)
        info = {"dt": dt, "rejected": rejected, "error_norm": err, "clipped": clipped,
                "n_rhs": self.n_rhs - rhs_before}
        return t + dt, result.y, info

    def _choose_first_step(self, t: float, y: np.ndarray, k_first: np.ndarray | None
                           ) -> np.ndarray | None:
        """Set ``dt_next`` by :func:`initial_step`; returns the first stage when it was computed."""
        f0 = self.problem.full_rhs(t, y) if (k_first is None or self.scheme.needs_linear) \
            else k_first
        self._check_first_stage(f0, t)
        if not self.scheme.needs_linear:
            k_first = f0  # for explicit RK the first stage is dy/dt itself
        self._dt_next = initial_step(self.problem.full_rhs, t, y, f0, self._k, self.rtol,
                                     self.atol, self.dt_max)
        return k_first

    def _trial(self, t: float, y: np.ndarray, dt: float, k_first: np.ndarray | None,
               memory: tuple | None = None) -> tuple[StepResult, bool, float]:
        """One trial step: result, whether it is finite, and its scaled error (nan if none)."""
        result = advance(self.scheme, self.problem, t, y, dt, k_first, memory)
        if k_first is None:
            self._check_first_stage(result.k_first, t)
        finite = bool(np.isfinite(result.y).all())
        err = np.nan
        if result.error is not None:
            err = self.error_norm(result.error, y, result.y, self.rtol, self.atol) if finite else np.inf
            if not math.isfinite(err):
                # NaN or Inf in the estimate makes the norm non-finite; only then look for it
                finite = finite and bool(np.isfinite(result.error).all())
                err = np.inf
        return result, finite, err

    def _adaptive_trials(self, t: float, y: np.ndarray, dt_limit: float,
                         k_first: np.ndarray | None, memory: tuple | None):
        """Shrink the step until a trial passes the error test; raise when that fails.

        ``ideal`` is the controller's step and ``dt_try`` the rung nearest to it on the scheme's
        ladder (never above ``dt_max``; after a rejection the rung below); the last ``ideal`` is
        returned as ``dt_unclipped``.
        """
        ideal = self._dt_next
        dt_try = self._on_ladder(ideal, nearest=True)
        if dt_try > self.dt_max:
            dt_try = self._on_ladder(self.dt_max)
        rejected = 0
        nonfinite = False
        smallest = UNDERFLOW_FACTOR * max(1.0, abs(t))
        while True:
            clipped = dt_limit < dt_try
            dt = float(dt_limit) if clipped else dt_try
            if not clipped and dt < smallest:
                if nonfinite:
                    raise NonFiniteState("the right-hand side or the step gave NaN or Inf even "
                                         "for the smallest steps", t=t, dt=dt)
                raise StepSizeUnderflow(
                    f"step size {dt:.3e} fell below {UNDERFLOW_FACTOR:g} * max(1, |t|); the "
                    "solution may blow up here, or rtol/atol are too strict", t=t, dt=dt)
            result, finite, err = self._trial(t, y, dt, k_first, memory)
            k_first = result.k_first
            if finite and err <= 1.0:
                return result, dt, err, rejected, clipped, ideal
            rejected += 1
            self.n_rejected += 1
            nonfinite = not finite
            if rejected > self.max_rejects:
                if nonfinite:
                    raise NonFiniteState(f"the right-hand side or the step gave NaN or Inf "
                                         f"{rejected} times in a row", t=t, dt=dt)
                raise TooManyRejections(f"{rejected} consecutive rejected steps (max_rejects = "
                                        f"{self.max_rejects})", t=t, dt=dt)
            ideal = dt * self.controller.reject_factor(err, self._k)
            dt_try = self._on_ladder(ideal)

    def _on_ladder(self, dt: float, nearest: bool = False) -> float:
        """``dt`` rounded down (or to the nearest rung) on the scheme's step ladder (unchanged
        without one). A retry after a rejection rounds down, so it is shorter than the step that
        failed."""
        return ladder_step(dt, self._ladder, nearest) if self._ladder else dt

    def _check_first_stage(self, k_first: np.ndarray, t: float) -> None:
        if not np.isfinite(k_first).all():
            raise NonFiniteState("the right-hand side returned NaN or Inf at the current state",
                                 t=t)

    def _accept(self, t: float, result: StepResult, dt: float, err: float, rejected: int,
                clipped: bool, dt_unclipped: float) -> None:
        self.n_accepted += 1
        if result.k_last is not None or result.memory is not None:
            self._cache = (t + dt, np.array(result.y, copy=True), result.k_last, result.memory)
        else:
            self._cache = None
        if not self.adaptive:
            return
        if not clipped and dt != dt_unclipped:
            # a step rounded onto the ladder: control the step the controller asked for, with
            # the error it would have had (err ~ dt^k); fed the rounded steps, the controller
            # would stall on a rung whenever it asks for less than the next one
            err *= (dt_unclipped / dt) ** self._k
            dt = dt_unclipped
        proposal = dt * self.controller.accept_factor(err, self._err_prev, self._k)
        if rejected:
            proposal = min(proposal, dt)
        if clipped:
            # a step shortened to hit a save time says little about the next one
            proposal = max(proposal, dt_unclipped)
        else:
            self._err_prev = max(err, 1e-4)
        self._dt_next = min(proposal, self.dt_max)


def make_stepper(scheme_name: str, rhs: Rhs, *, linear: np.ndarray | None = None,
                 rtol: float = 1e-6, atol: float = 0.0, norm: str = "normwise",
                 dt_initial: float | None = None,
                 dt_fixed: float | None = None, dt_max: float = np.inf, max_rejects: int = 50,
                 controller: PIController | None = None) -> Stepper:
    """Build a :class:`Stepper` for the registered scheme ``scheme_name`` (see :class:`Stepper`).

    Raises
    ------
    ValueError
        For an unknown scheme (naming ``integrator``), a non-embedded scheme without
        ``dt_fixed``, or invalid tolerances/steps.
    """
    return Stepper(get_scheme(scheme_name), rhs, linear=linear, rtol=rtol, atol=atol, norm=norm,
                   dt_initial=dt_initial, dt_fixed=dt_fixed, dt_max=dt_max,
                   max_rejects=max_rejects, controller=controller)
