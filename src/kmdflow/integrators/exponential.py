r"""Exponential time differencing (ETD) for ``dy/dt = L y + N(t, y)`` with ``L`` diagonal.

The diagonal linear part ``L`` is integrated exactly through the functions ``phi_k(z)`` at
``z = L h`` (``h`` the step; definition and stable evaluation in
:mod:`kmdflow.integrators.phi_functions`), and the nonlinear part ``N`` explicitly. For the
spectral flow (MATH.md section 3, "Stiffness") ``L_k = -|k|^(2-2s)`` holds the slow linear decay
exactly, so the step is limited only by how fast ``N`` changes and grows geometrically as ``N``
decays.

Schemes (registered in :data:`kmdflow.integrators.SCHEMES`, ``needs_linear = True``):

- ``etd1``: exponential Euler, order 1.
- ``etdrk2``: Cox--Matthews ETD2RK (J. Comput. Phys. 176, 2002), order 2.
- ``etdrk4``: Cox--Matthews ETDRK4 (same paper), order 4; two half steps per step, checked
  against an exponential quadrature of ``N`` (below). The default for spectral runs.
- ``etdrk43``: one ETDRK4 step with an embedded order-3 estimate (FSAL, below), order 4.

Error estimate of ``etdrk4``: two half steps checked by a quadrature
    A trial step of size ``h`` takes two ETDRK4 steps of ``h/2`` and accepts them (``y_new``,
    local error ``C h^5 / 16``). ``N`` is then known on accurate states at ``s = 0, 1/2, 1``
    (``s = (tau - t) / h``): ``N(t, y)``, ``N`` at the midpoint state (the second half step's
    first stage) and ``N(t + h, y_new)`` (the next step's first stage, first same as last); the
    previous accepted step adds ``N`` at its start and midpoint, ``s = -r, -r/2`` with
    ``r = h_prev / h``, handed on as the step's ``memory``. The check is the exponential
    quadrature ``Q = e^(L h) y + h int_0^1 e^(L h (1 - s)) p(s) ds`` of the quartic ``p`` through
    these five values. Its own error is ``O(h^6)``, so ``e = y_new - Q`` is the error of
    ``y_new`` itself up to ``O(h^6)``: an estimate of power 5 (``error_order = 4``) that sees
    both the stage errors of the half steps and how well their quadrature follows ``N`` over the
    step, where the FSAL estimate below is blind. ``Q`` is the exponential Simpson rule (ETDRK4's
    final weights with exact stage values) plus ``h int e^(L h (1 - s)) omega(s) q(s) ds``,
    ``omega = s (s - 1/2)(s - 1)``, ``q`` linear: the weights ``G_j`` of ``s^j omega`` are fixed
    phi-combinations. A previous step more than :data:`LOOKBACK_RATIO` times shorter (one
    clipped at a save time) is passed over for the one before it, so the memory holds the last
    :data:`LOOKBACK_STEPS` steps. Without usable earlier nodes (the first step, or after a step
    more than :data:`LOOKBACK_RATIO` times longer) the check is the Simpson rule alone,
    ``y_new - S``: ``O(h^5)``, usually larger than the true error (its own quadrature error
    enters at full weight, the half steps' at 1/16; median 12 times on random scalar problems),
    but the two can cancel, so it is a weaker check, used about once per run. A step costs ``2 s = 8``
    evaluations of ``N``. Measured: the estimate matches an independent quartic rule (mpmath),
    falls with ``h^5`` and tracks the true error to ``O(h)`` (``tests/test_etd_quadrature.py``);
    on the spectral benchmark it is 1-4 times the true local error. It replaced step doubling
    (11 evaluations per step): the benchmark run takes 1691 evaluations instead of 2147, and the
    mode-coupling test of ``tests/test_exponential.py`` ends 6.2e-7 off at ``rtol = 1e-8``
    (doubling: 6.8e-7). The memory goes into checkpoints
    (:meth:`kmdflow.integrators.Stepper.checkpoint`), so a resumed run continues bit for bit.

Error estimate of ``etd1``, ``etdrk2``: step doubling (Richardson)
    A trial step of size ``h`` takes one step of ``h`` (``y_1``) and two of ``h/2`` (``y_2``) and
    *accepts* ``y_2``; the declared order ``p`` is that of the scheme and of ``y_2``. The local
    error of ``y_2`` is ``C h^(p+1) / 2^p + O(h^(p+2))`` and that of ``y_1`` is ``C h^(p+1)``, so
    ``e = (y_2 - y_1) / (2^p - 1)`` estimates the error of ``y_2`` to leading order; the controller
    sees an estimate of power ``p + 1`` (``error_order = p``). It costs ``3 s - 1`` evaluations of
    ``N`` per step instead of ``s`` (``N(t, y)`` is shared by the full step, the first half step
    and any retry, which cost ``3 s - 2`` each). Both ``y_1`` and ``y_2`` are exact when ``N = 0``,
    so the estimate is then at round-off level and the step grows geometrically. With
    ``dt_fixed`` the doubled step is still taken (the result is two half steps).

Error estimate of ``etdrk43``: embedded, first same as last
    The step ``u_new`` is ETDRK4's; the embedded solution replaces its last stage ``N_c`` by
    ``N(t + h, u_new)``, the evaluation the next step starts from, so a step costs 4 evaluations
    instead of 11 (formulas in :class:`ExponentialScheme`). The Cox--Matthews stages admit no
    other order-3 partner: at ``L = 0`` ETDRK4 is the classical RK4, whose four stages fix the
    order-3 weights, and with the fifth (FSAL) stage the order-3 weights form the one-parameter
    family ``b + alpha (0, 0, 0, 1, -1)``; ``alpha = 1/6`` is the embedded solution above. The
    estimate has power 4 (``error_order = 3``) and overstates the error of ``u_new`` (local
    extrapolation), 7-30x on the order-test problem of ``tests/test_exponential.py``.

    Its blind spot, measured there: it sees only how ``N`` at ``t + h`` depends on the last stage,
    not how well the stage values represent ``N`` over the step in time. When the forcing of a
    component changes by large factors within one step (it is driven by components decaying
    through many e-folds), ETDRK4's quadrature of ``N`` is off while ``N_c`` and ``N_new`` still
    agree, and the estimate can be orders of magnitude too small: in the mode-coupling test it
    reported 5e-16 for a step whose true error was 5e-6, and the run ended 6.8e-6 off at
    ``rtol = 1e-8`` (``etdrk4``: 6.2e-7). The quadrature check of ``etdrk4`` sees these
    errors. A partial guard is built in: when a
    step shrinks the state by more than :data:`FSAL_DECAY_LIMIT`, the trial is redone as two half
    steps (accepted) checked against the exponential Simpson rule through ``N`` evaluated on
    them at ``t``, ``t + h/2`` and ``t + h`` (ETDRK4's own final weights with accurate stage
    values), an estimate that does see the quadrature error; without it a decaying Bernoulli
    problem ended 1e37 off. It is also blind to forcing that depends on ``t`` alone: when ``N``
    does not depend on ``y``, ``N_c`` and ``N_new`` coincide and the estimate is zero (for
    ``y' = -0.1 y + cos t`` to ``t = 50`` at ``rtol = 1e-8`` it took 16 steps and ended 6 off;
    ``etdrk4``: 407 steps, 2e-10). On the spectral benchmark (``kmdflow bench``) it is no
    faster than ``etdrk4`` (1395 evaluations in 348 steps against 1691 in 211, the same time);
    it is kept for comparison.

Error measured against the new state
    One ETD step may span many e-folds of decay (``|L h| >> 1``). The polynomial-in-time
    treatment of ``N`` then leaves an error that is tiny next to the old state but can dwarf the
    new one (a mode decaying by ``e^-167`` in one step came out 1e35 times too large). The
    stepper's norm scales errors by ``max(||y||, ||y_new||)``, so the returned estimate is
    multiplied by ``||y|| / ||y_new||`` whenever the state shrank: the step is then accepted only
    if it is accurate *relative to the new state*. With ``atol > 0`` this is stricter than the
    stepper's norm once the state is below ``atol / rtol``.

Coefficients
    The phi-function coefficients depend only on ``(L, h)``; every scheme keeps the
    :data:`CACHE_SIZE` most recently used sets (at most :data:`CACHE_BYTES`; keyed also by the
    state's dtype, so complex states multiply complex coefficients without a cast), so repeated
    step sizes (fixed steps, steps clipped to the same save interval, retries) cost no
    exponentials. A new set is one block: ``e^z`` and the weights, from the same series and
    closed forms as :class:`~kmdflow.integrators.phi_functions.PhiCombination`, summed as one
    matrix product with the powers of ``z`` (or ``1/z``) rather than a Horner loop per weight
    (:func:`kmdflow.integrators.phi_functions.evaluate_together`). ``etdrk4`` keeps one set per
    step size ``h`` (``e^(L h)``, ``h phi_1``, the three ETDRK4 weights and the ``G_j``) and
    builds a step of ``h`` from the sets of ``h``, ``h/2`` and ``h/4``; its adaptive steps lie
    on the ladder ``2^(j / QUADRATURE_STEPS_PER_OCTAVE)``, two rungs per octave
    (:func:`kmdflow.integrators.adaptive.ladder_step`), so ``h/2`` and ``h/4`` are rungs as well
    and a run computes one set per rung it reaches (49 in the benchmark's 211 steps) instead of
    three per step. ``etdrk43`` uses 16 rungs per octave. The stepper rounds a step to the
    nearest rung (within ``2^(1/(2m))``; a retry rounds down) and feeds the controller the step
    it asked for, so the ladder neither shortens nor stalls the steps: on the Bernoulli test
    ``etdrk4`` takes as many steps with its ladder as without (``tests/test_etd_quadrature.py``).
    The doubling schemes need sets of two sizes per step and use no ladder.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from kmdflow.integrators.adaptive import OdeProblem, advance
from kmdflow.integrators.error_control import rms_norm
from kmdflow.integrators.explicit import Rhs, StepResult
from kmdflow.integrators.phi_functions import (
    PhiCombination,
    evaluate_together,
    phi,
    phi1_expm1,
)
from kmdflow.integrators.tableaux import register_scheme

#: Coefficient sets kept per scheme (``(L, h)`` pairs).
CACHE_SIZE = 16

#: Bytes the coefficient sets of one scheme may hold, beyond the first :data:`CACHE_MIN`.
CACHE_BYTES = 64 * 2**20

#: Coefficient sets kept whatever their size.
CACHE_MIN = 8

#: Adaptive ``etdrk43`` steps lie on the ladder ``2^(j / STEPS_PER_OCTAVE)`` (module docstring).
STEPS_PER_OCTAVE = 16

#: The ladder of ``etdrk4`` (coarser: each of its steps needs the sets of ``h``, ``h/2``, ``h/4``).
QUADRATURE_STEPS_PER_OCTAVE = 2

#: The quadrature check of ``etdrk4`` looks back over earlier steps while each is within this
#: factor of the current step's length (either way).
LOOKBACK_RATIO = 8.0

#: Earlier nodes in that check (module docstring): the previous step's midpoint and start; the
#: code takes up to the midpoints and starts of the last two steps.
LOOKBACK_NODES = 2

#: Steps whose nodes a step hands on: one for the nodes, one more to look past a short step.
LOOKBACK_STEPS = 2

#: ``etdrk43`` trusts its FSAL estimate while one step shrinks the state by at most this factor
#: (module docstring); beyond it the step is redone as two Simpson-checked half steps.
FSAL_DECAY_LIMIT = 2.0


# ------------------------------------------------------------------------------------------------
# Schemes: coefficients and one plain step
# ------------------------------------------------------------------------------------------------

# Step weights as phi-combinations: phi_1 and phi_2 (etd1, etdrk2); ETDRK4 (Cox--Matthews):
# b_u = phi1 - 3 phi2 + 4 phi3, b_a = b_b = 2 phi2 - 4 phi3, b_c = 4 phi3 - phi2.
_PHI1 = PhiCombination([1])
_PHI2 = PhiCombination([0, 1])
_ETDRK4_U = PhiCombination([1, -3, 4])
_ETDRK4_AB = PhiCombination([0, 2, -4])
_ETDRK4_C = PhiCombination([0, -1, 4])
# the look-back correction of the quadrature check: int_0^1 e^(z (1 - s)) q(s) ds for
# q = omega = s (s - 1/2)(s - 1) and q = s omega, from int_0^1 e^(z (1 - s)) s^j ds = j! phi_(j+1)
_G = tuple(PhiCombination([0] * (j + 1) + [Fraction(math.factorial(j + 1), 2),
                                            Fraction(-3 * math.factorial(j + 2), 2),
                                            math.factorial(j + 3)]) for j in range(LOOKBACK_NODES))

Coefficients = dict[str, np.ndarray]


#: Coefficient names of each formula, in the order :func:`_coefficients` stores them.
_COEFFICIENT_NAMES = {"etd1": ("E", "W1"), "etdrk2": ("E", "W1", "W2"),
                      "etdrk4": ("E", "E2", "Q", "Wu", "Wab", "Wc"),
                      "rung": ("E", "P1", "Wu", "Wab", "Wc")
                      + tuple(f"G{j}" for j in range(LOOKBACK_NODES))}


def _coefficients(method: str, z: np.ndarray, h: float, dtype=None) -> Coefficients:
    """Arrays multiplying ``y`` and the stages in one step of ``method`` (``z = L h``).

    All of them are rows of one read-only block of ``dtype`` promoted with that of ``z``.
    """
    z = np.asarray(z)
    names = _COEFFICIENT_NAMES[method]
    kind = np.result_type(z, np.float64) if dtype is None else np.result_type(z, np.float64, dtype)
    block = np.empty((len(names),) + z.shape, dtype=kind)
    with np.errstate(over="ignore"):
        exp_z = phi(0, z)  # of the kind of z: a real z is evaluated in real arithmetic
    block[0] = exp_z
    if method == "etd1":
        block[1:] = evaluate_together((_PHI1,), z, exp_z)
    elif method == "etdrk2":
        block[1:] = evaluate_together((_PHI1, _PHI2), z, exp_z)
    elif method == "rung":
        block[1:] = evaluate_together((_PHI1, _ETDRK4_U, _ETDRK4_AB, _ETDRK4_C) + _G, z, exp_z)
    else:
        block[3:] = evaluate_together((_ETDRK4_U, _ETDRK4_AB, _ETDRK4_C), z, exp_z)
        with np.errstate(over="ignore"):
            block[1] = np.exp(0.5 * z)
        block[2] = 0.5 * phi1_expm1(0.5 * z)  # times h below: Q = (h/2) phi_1(z/2)
    block[1 if method != "etdrk4" else 2:] *= h
    block.setflags(write=False)
    return dict(zip(names, block))


def _step_etd1(w: Coefficients, rhs: Rhs, t: float, y: np.ndarray, h: float,
               n0: np.ndarray) -> np.ndarray:
    return w["E"] * y + w["W1"] * n0


def _step_etdrk2(w: Coefficients, rhs: Rhs, t: float, y: np.ndarray, h: float,
                 n0: np.ndarray) -> np.ndarray:
    a = w["E"] * y + w["W1"] * n0
    return a + w["W2"] * (rhs(t + h, a) - n0)


def _stages_etdrk4(w: Coefficients, rhs: Rhs, t: float, y: np.ndarray, h: float,
                   n0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Cox--Matthews ETDRK4 step: the new state and its last stage ``N_c = N(t + h, c)``."""
    half = t + 0.5 * h
    e2y = w["E2"] * y
    a = e2y + w["Q"] * n0
    na = rhs(half, a)
    b = e2y + w["Q"] * na
    nb = rhs(half, b)
    c = w["E2"] * a + w["Q"] * (2.0 * nb - n0)
    nc = rhs(t + h, c)
    return w["E"] * y + w["Wu"] * n0 + w["Wab"] * (na + nb) + w["Wc"] * nc, nc


def _step_etdrk4(w: Coefficients, rhs: Rhs, t: float, y: np.ndarray, h: float,
                 n0: np.ndarray) -> np.ndarray:
    return _stages_etdrk4(w, rhs, t, y, h, n0)[0]


_STEPS: dict[str, Callable[..., np.ndarray]] = {
    "etd1": _step_etd1, "etdrk2": _step_etdrk2, "etdrk4": _step_etdrk4}


class _CoefficientCache:
    """The most recently used coefficient sets keyed by ``(method, h, dtype, L)``; safe to share
    between threads.

    At most ``size`` sets, and no more than :data:`CACHE_BYTES` of them (but always
    :data:`CACHE_MIN`, enough for the three sizes a step of ``etdrk4`` uses and the next ones) for
    large states. ``L`` is held as a read-only array that owns its data (the stepper's copy is
    held itself, other arrays are copied), so a hit on the same object is a hit on the same
    values; an array that is not such a copy is compared by value.

    ``dtype`` is the state's: for a complex state the real coefficients are stored as complex, so
    each stage multiplies like types (numpy multiplies complex by real arrays about three times
    slower, through a cast, than complex by complex).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # (method, h, dtype, id(L)) -> (L, coefficients), least recently used first
        self._entries: OrderedDict[tuple, tuple[np.ndarray, Coefficients]] = OrderedDict()
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, method: str, linear: np.ndarray, h: float,
            dtype: np.dtype | None = None) -> Coefficients:
        frozen = _owned_read_only(linear)
        with self._lock:
            if frozen:
                key = (method, h, dtype, id(linear))
                entry = self._entries.get(key)
                found = key if entry is not None and entry[0] is linear else None
            else:
                found = next((k for k, (linear_c, _) in self._entries.items()
                              if k[:3] == (method, h, dtype) and linear_c.shape == linear.shape
                              and bool((linear_c == linear).all())), None)
            if found is not None:
                self._entries.move_to_end(found)
                return self._entries[found][1]
        coefficients = _coefficients(method, h * linear, h, dtype)
        if not frozen:
            linear = np.array(linear, copy=True)
            linear.setflags(write=False)
        entry_bytes = linear.nbytes + sum(v.nbytes for v in coefficients.values())
        keep = max(CACHE_MIN, min(self.size, CACHE_BYTES // max(entry_bytes, 1)))
        with self._lock:
            self.misses += 1
            key = (method, h, dtype, id(linear))  # the entry holds linear: the id stays unique
            self._entries[key] = (linear, coefficients)
            self._entries.move_to_end(key)
            while len(self._entries) > keep:
                self._entries.popitem(last=False)
        return coefficients

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: How a scheme estimates its local error: two half steps against one full step, or an
#: embedded lower-order solution from a first-same-as-last stage (module docstring).
ESTIMATES = ("doubling", "fsal", "quadrature")


@dataclass(frozen=True, eq=False)
class ExponentialScheme:
    r"""An exponential Runge--Kutta scheme for ``dy/dt = L y + N(t, y)``, ``L`` diagonal.

    Parameters
    ----------
    name : str
        Registry name.
    order : int
        Classical order of the propagated solution.
    stages : int
        Evaluations of ``N`` in one plain step.
    formula : str, optional
        The step formula, one of ``etd1``, ``etdrk2``, ``etdrk4``; default: ``name``.
    estimate : {"doubling", "fsal", "quadrature"}
        Error estimate (module docstring): step doubling (``error_order == order``, accepts the
        two half steps); two half steps checked against the exponential quadrature of ``N``
        through their nodes and the previous step's (``quadrature``, ``error_order == order``);
        or the embedded order-``order - 1`` solution built from ``N(t + h, u_new)`` (``fsal``,
        blind where the forcing changes fast within a step). The last two are defined for the
        ``etdrk4`` formula only; both hand ``N(t + h, u_new)`` to the next step as its first
        stage (``fsal = True``).
    steps_per_octave : int
        Adaptive steps lie on the ladder ``2^(j / steps_per_octave)`` (the stepper rounds to the
        nearest rung) so that coefficient sets are reused; ``0`` (the default) leaves them as the
        controller chose them.

    Notes
    -----
    ETDRK4 (Cox--Matthews), with ``z = L h``, :math:`E = e^{z}`, :math:`E_2 = e^{z/2}`,
    :math:`Q = \tfrac h2 \varphi_1(z/2)` and :math:`N_u = N(t, u)`:

    .. math::

        a = E_2 u + Q N_u,\quad b = E_2 u + Q N_a,\quad c = E_2 a + Q (2 N_b - N_u),

        u_{new} = E u + h\big[(\varphi_1 - 3\varphi_2 + 4\varphi_3) N_u
                  + (2\varphi_2 - 4\varphi_3)(N_a + N_b) + (4\varphi_3 - \varphi_2) N_c\big],

    with :math:`N_a = N(t + h/2, a)`, :math:`N_b = N(t + h/2, b)`, :math:`N_c = N(t + h, c)`.
    ETD2RK: :math:`a = E u + h\varphi_1 N_u`, :math:`u_{new} = a + h\varphi_2 (N(t+h, a) - N_u)`.
    Exponential Euler: :math:`u_{new} = E u + h\varphi_1 N_u`.

    The embedded solution of ``estimate = "fsal"`` replaces :math:`N_c` by
    :math:`N_{new} = N(t + h, u_{new})`:
    :math:`\hat u = u_{new} - h(4\varphi_3 - \varphi_2)(N_c - N_{new})`, so the estimate is

    .. math::

        e = u_{new} - \hat u = h\,(4\varphi_3 - \varphi_2)(z)\,(N_c - N_{new}).

    At ``L = 0`` this is the order-3 partner :math:`(\tfrac16, \tfrac13, \tfrac13, 0, \tfrac16)`
    of the classical RK4 with a fifth, FSAL stage; for ``L != 0`` the stage ``c`` is an
    exponential midpoint rule with local error :math:`O(h^3)`, so :math:`N_c - N_{new} = O(h^3)`
    and :math:`e = O(h^4)` (``error_order = 3``).

    The declared order is the classical one (``h -> 0`` at fixed ``L``). Components with
    ``|h L| >> 1`` that are driven by ``N`` converge more slowly (order reduction; for ETDRK4 the
    stiff order is 2, Hochbruck & Ostermann, SIAM J. Numer. Anal. 43, 2005), but their error
    carries a factor ``1/|h L|``; in the tests (``L = -1e3``, ``|h L| = 10 .. 60``) it stays
    below the error of the mild components.
    """

    name: str
    order: int
    stages: int
    formula: str = ""
    estimate: str = "doubling"
    steps_per_octave: int = 0
    error_order: int = field(init=False)
    fsal: bool = field(default=False, init=False)
    cache: _CoefficientCache = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        formula = self.formula or self.name
        if formula not in _STEPS:
            what = "formula" if self.formula else "name"
            raise ValueError(f"ExponentialScheme: {what} must be one of {', '.join(_STEPS)}, got "
                             f"{formula!r}")
        if self.estimate not in ESTIMATES:
            raise ValueError(f"ExponentialScheme: estimate must be one of {', '.join(ESTIMATES)}, "
                             f"got {self.estimate!r}")
        if self.estimate != "doubling" and formula != "etdrk4":
            raise ValueError(f"ExponentialScheme {self.name!r}: estimate {self.estimate!r} is "
                             f"defined for the etdrk4 formula only, got formula {formula!r}; use "
                             "estimate 'doubling'")
        object.__setattr__(self, "formula", formula)
        object.__setattr__(self, "error_order",
                           self.order - 1 if self.estimate == "fsal" else self.order)
        object.__setattr__(self, "fsal", self.estimate != "doubling")
        object.__setattr__(self, "cache", _CoefficientCache(CACHE_SIZE))

    @property
    def embedded(self) -> bool:
        """Always True: every ETD scheme has an error estimate (doubling or embedded)."""
        return True

    @property
    def needs_linear(self) -> bool:
        """ETD schemes integrate the diagonal ``linear`` part exactly: the split is required."""
        return True

    @property
    def error_estimate_order(self) -> int:
        """Power of ``h`` in the error estimate: ``error_order + 1``."""
        return self.error_order + 1

    @property
    def evaluations_per_trial(self) -> int:
        """Evaluations of ``N`` per trial step beyond ``N(t, y)`` (which retries share).

        Doubling: ``3 s - 2`` (``s - 1`` for the full step and for the first half step, ``s`` for
        the second). Quadrature: ``2 s`` (``s - 1`` per half step, ``N`` at the midpoint and
        ``N(t + h, u_new)``, which an accepted step hands to the next one as its ``N(t, y)``).
        FSAL: ``s`` (``s - 1`` stages and ``N(t + h, u_new)``); a trial that shrinks the state by
        more than :data:`FSAL_DECAY_LIMIT` adds ``2 s`` for its Simpson-checked half steps.
        """
        return {"doubling": 3 * self.stages - 2, "quadrature": 2 * self.stages,
                "fsal": self.stages}[self.estimate]

    def coefficients(self, linear: np.ndarray, h: float, dtype=None) -> Coefficients:
        """Cached phi-function coefficients for step ``h``: read-only, shaped as ``linear``.

        With ``dtype`` (the state's) they are promoted to it, e.g. complex for a complex state.
        """
        return self.cache.get(self.formula, np.asarray(linear), float(h),
                              None if dtype is None else np.dtype(dtype))


ETD1 = ExponentialScheme("etd1", order=1, stages=1)
ETDRK2 = ExponentialScheme("etdrk2", order=2, stages=2)
ETDRK4 = ExponentialScheme("etdrk4", order=4, stages=4, estimate="quadrature",
                           steps_per_octave=QUADRATURE_STEPS_PER_OCTAVE)
ETDRK43 = ExponentialScheme("etdrk43", order=4, stages=4, formula="etdrk4", estimate="fsal",
                            steps_per_octave=STEPS_PER_OCTAVE)


def etd_step(scheme: ExponentialScheme, linear: np.ndarray, rhs: Rhs, t: float, y: np.ndarray,
             dt: float, n_first: np.ndarray | None = None) -> np.ndarray:
    r"""One plain step of ``scheme`` (no error estimate) for ``dy/dt = linear * y + rhs(t, y)``.

    Parameters
    ----------
    scheme : ExponentialScheme
        The scheme.
    linear : (...) float or complex
        Diagonal of ``L``, broadcastable against ``y``.
    rhs : callable
        The nonlinear part ``N(t, y) -> (...) array`` (shape of ``y``).
    t : float
        Current time.
    y : (...) float or complex
        Current state (not modified).
    dt : float
        Step size.
    n_first : (...) array, optional
        ``rhs(t, y)`` when already known.

    Returns
    -------
    (...) array
        The state at ``t + dt``; real when ``y``, ``linear`` and ``rhs`` are real.

    Notes
    -----
    The formulas are in :class:`ExponentialScheme`; with ``rhs = 0`` the result is
    ``exp(linear * dt) * y`` for any ``dt``.
    """
    y = np.asarray(y)
    n0 = rhs(t, y) if n_first is None else n_first
    w = scheme.coefficients(linear, dt, y.dtype)
    return _STEPS[scheme.formula](w, rhs, t, y, float(dt), np.asarray(n0))


@advance.register
def _advance_exponential(scheme: ExponentialScheme, problem: OdeProblem, t: float,
                         y: np.ndarray, dt: float, k_first: np.ndarray | None = None,
                         memory: tuple | None = None) -> StepResult:
    """One trial step with its error estimate (doubling, quadrature or FSAL: module docstring)."""
    if problem.linear is None:
        raise ValueError(f"integrator {scheme.name!r} needs the diagonal linear part: pass "
                         "linear=<array>")
    y = np.asarray(y)
    n0 = np.asarray(problem.rhs(t, y) if k_first is None else k_first)
    h = float(dt)
    if scheme.estimate == "quadrature":
        return _advance_quadrature(scheme, problem, t, y, h, n0, memory)
    if scheme.fsal:
        return _advance_fsal(scheme, problem, t, y, h, n0)
    y_full = etd_step(scheme, problem.linear, problem.rhs, t, y, h, n0)
    y_mid = etd_step(scheme, problem.linear, problem.rhs, t, y, 0.5 * h, n0)
    y_half = etd_step(scheme, problem.linear, problem.rhs, t + 0.5 * h, y_mid, 0.5 * h)
    error = (y_half - y_full) / (2.0**scheme.order - 1.0)
    return StepResult(y=y_half, error=error * _decay_factor(y, y_half), k_last=None, k_first=n0)


def _advance_fsal(scheme: ExponentialScheme, problem: OdeProblem, t: float, y: np.ndarray,
                  h: float, n0: np.ndarray) -> StepResult:
    """ETDRK4 with its embedded FSAL estimate; the Simpson-checked pair of half steps when the
    state shrinks by more than :data:`FSAL_DECAY_LIMIT` (module docstring)."""
    rhs, dtype = problem.rhs, y.dtype
    w = scheme.coefficients(problem.linear, h, dtype)
    y_new, n_c = _stages_etdrk4(w, rhs, t, y, h, n0)
    n_new = np.asarray(rhs(t + h, y_new))
    decay = _decay_factor(y, y_new)
    if decay <= FSAL_DECAY_LIMIT:
        error = w["Wc"] * (n_c - n_new)
        if decay != 1.0:
            error *= decay
        return StepResult(y=y_new, error=error, k_last=n_new, k_first=n0)
    # many e-folds in one step: two half steps, checked against the exponential Simpson rule
    # through N at t, t + h/2 and t + h evaluated on them (the ETDRK4 weights of the full step)
    result = _advance_quadrature(scheme, problem, t, y, h, n0, memory=None)
    return StepResult(y=result.y, error=result.error, k_last=result.k_last, k_first=n0)


def _advance_quadrature(scheme: ExponentialScheme, problem: OdeProblem, t: float, y: np.ndarray,
                        h: float, n0: np.ndarray, memory: tuple | None) -> StepResult:
    """Two ETDRK4 half steps, checked against the exponential quadrature of ``N`` on five nodes
    (the step's three and the previous step's two) or, without a usable previous step, on the
    step's three (module docstring)."""
    rhs, linear, dtype = problem.rhs, np.asarray(problem.linear), np.dtype(y.dtype)
    w, w_half, w_quarter = (scheme.cache.get("rung", linear, x, dtype) for x in (h, 0.5 * h, 0.25 * h))
    half = {"E": w_half["E"], "E2": w_quarter["E"], "Q": w_quarter["P1"], "Wu": w_half["Wu"],
            "Wab": w_half["Wab"], "Wc": w_half["Wc"]}
    y_mid, _ = _stages_etdrk4(half, rhs, t, y, 0.5 * h, n0)
    n_mid = np.asarray(rhs(t + 0.5 * h, y_mid))
    y_new, _ = _stages_etdrk4(half, rhs, t + 0.5 * h, y_mid, 0.5 * h, n_mid)
    n_end = np.asarray(rhs(t + h, y_new))
    # error = y_new - (e^(L h) y + h int_0^1 e^(L h (1 - s)) p(s) ds), p interpolating N: first
    # the exponential Simpson rule (p the quadratic through s = 0, 1/2, 1) ...
    error = np.asarray(y_new - w["E"] * y)  # of the kind of y_new, which every term below has
    error -= w["Wu"] * n0
    error -= w["Wab"] * (2.0 * n_mid)
    error -= w["Wc"] * n_end
    positions, earlier = _lookback_nodes(memory, h)
    if positions:
        # ... then its correction to the interpolant through earlier nodes as well
        nodes = np.stack([n0, n_mid, n_end, *earlier])
        correction = _lookback_coefficients(positions) @ nodes.reshape(nodes.shape[0], -1)
        for j, q_j in enumerate(correction.reshape((len(positions),) + nodes.shape[1:])):
            error -= w[f"G{j}"] * q_j
    decay = _decay_factor(y, y_new)
    if decay != 1.0:
        error *= decay
    step_memory = ((h, n0, n_mid) + (memory or ()))[:3 * LOOKBACK_STEPS]
    return StepResult(y=y_new, error=error, k_last=n_end, k_first=n0, memory=step_memory)


def _lookback_nodes(memory: tuple | None, h: float) -> tuple[tuple[float, ...], list]:
    """Positions ``s = (tau - t) / h`` and values of ``N`` at the earlier nodes the check uses.

    ``memory`` is ``(h_1, N(t - h_1), N(t - h_1/2), h_2, N(t - h_1 - h_2), N(...))``, the last
    steps first. A step more than :data:`LOOKBACK_RATIO` times shorter than ``h`` (say, one
    clipped at a save time) is passed over, its nodes being too close to ``s = 0``; the search
    stops at a step more than that much longer, or beyond ``LOOKBACK_RATIO`` step lengths back.
    Up to :data:`LOOKBACK_NODES` nodes; none if fewer than two.
    """
    positions, values = [], []
    offset = 0.0
    for i in range(0, len(memory or ()), 3):
        ratio = memory[i] / h
        if ratio > LOOKBACK_RATIO or offset + ratio > LOOKBACK_RATIO:
            break
        if ratio >= 1.0 / LOOKBACK_RATIO:
            positions += [-(offset + 0.5 * ratio), -(offset + ratio)]
            values += [memory[i + 2], memory[i + 1]]
        offset += ratio
    if len(positions) < 2:
        return (), []
    return tuple(positions[:LOOKBACK_NODES]), values[:LOOKBACK_NODES]


@functools.lru_cache(maxsize=256)
def _lookback_coefficients(positions: tuple[float, ...]) -> np.ndarray:
    r"""``(m, 3 + m)``: the coefficients ``q_j`` of the interpolant's correction as combinations of
    ``N`` at ``s = 0, 1/2, 1`` and at the ``m`` earlier ``positions``; cached (on the step
    ladder few position sets occur), read-only.

    The interpolant through all nodes is ``p_2(s) + omega(s) q(s)``, ``p_2`` the quadratic through
    ``s = 0, 1/2, 1``, ``omega(s) = s (s - 1/2)(s - 1)`` and ``q(s) = sum_j q_j s^j`` of degree
    ``m - 1``; at an earlier node ``q(s_i) = (N_i - p_2(s_i)) / omega(s_i)``, with
    ``p_2(s) = 2 (s - 1/2)(s - 1) N_0 - 4 s (s - 1) N_(1/2) + 2 s (s - 1/2) N_1``.
    """
    m = len(positions)
    d = np.zeros((m, 3 + m))
    for i, s in enumerate(positions):
        d[i, :3] = [-2.0 * (s - 0.5) * (s - 1.0), 4.0 * s * (s - 1.0), -2.0 * s * (s - 0.5)]
        d[i, 3 + i] = 1.0
        d[i] /= s * (s - 0.5) * (s - 1.0)
    out = np.linalg.solve(np.vander(np.array(positions), m, increasing=True), d)
    out.setflags(write=False)
    return out


def _owned_read_only(array: np.ndarray) -> bool:
    """True for a read-only array that owns its data (no writeable base can change it)."""
    return not array.flags.writeable and array.flags.owndata


def _decay_factor(y: np.ndarray, y_new: np.ndarray) -> float:
    """``||y|| / ||y_new||`` when the state shrank over the step (and is not all zero), else 1."""
    before, after = rms_norm(y), rms_norm(y_new)
    if 0.0 < after < before:
        return before / after
    return 1.0


for _scheme in (ETD1, ETDRK2, ETDRK4, ETDRK43):
    register_scheme(_scheme)
del _scheme
