r"""Exponential time differencing (ETD) for ``dy/dt = L y + N(t, y)`` with ``L`` diagonal.

The diagonal linear part ``L`` is integrated exactly through the functions

.. math::

    \varphi_0(z) = e^z, \qquad
    \varphi_k(z) = \frac{1}{(k-1)!}\int_0^1 e^{(1-\theta) z}\,\theta^{k-1}\,d\theta
                 = \frac{e^z - \sum_{j<k} z^j / j!}{z^k} \quad (k \ge 1),

evaluated at ``z = L h`` (``h`` the step), and the nonlinear part ``N`` explicitly. For the spectral
flow (MATH.md section 3, "Stiffness") ``L_k = -|k|^(2-2s)`` holds the slow linear decay exactly, so
the step is limited only by how fast ``N`` changes and grows geometrically as ``N`` decays.

Schemes (registered in :data:`kmdflow.integrators.SCHEMES`, ``needs_linear = True``):

- ``etd1``: exponential Euler, order 1.
- ``etdrk2``: Cox--Matthews ETD2RK (J. Comput. Phys. 176, 2002), order 2.
- ``etdrk4``: Cox--Matthews ETDRK4 (same paper), order 4.

Error estimate: step doubling (Richardson)
    A trial step of size ``h`` takes one step of ``h`` (``y_1``) and two of ``h/2`` (``y_2``) and
    *accepts* ``y_2``; the declared order ``p`` is that of the scheme and of ``y_2``. The local
    error of ``y_2`` is ``C h^(p+1) / 2^p + O(h^(p+2))`` and that of ``y_1`` is ``C h^(p+1)``, so
    ``e = (y_2 - y_1) / (2^p - 1)`` estimates the error of ``y_2`` to leading order; the controller
    sees an estimate of power ``p + 1`` (``error_order = p``). Step doubling was chosen over an
    embedded pair because the Cox--Matthews stages admit no distinct embedded solution of order 3
    (at ``L = 0`` ETDRK4 is the classical RK4, whose stages fix the order-3 weights uniquely), an
    order-2 estimate would hold the order-4 solution to far smaller steps than it needs, and the
    doubling estimate has the right power of ``h`` for every ETD scheme alike. It costs ``3 s - 1``
    evaluations of ``N`` per step instead of ``s`` (``N(t, y)`` is shared by the full step, the
    first half step and any retry, which cost ``3 s - 2`` each), which is small next to the
    hundreds-fold fewer steps the exact linear part allows. Both ``y_1`` and ``y_2`` are exact when
    ``N = 0``, so the estimate is then at round-off level and the step grows geometrically. With
    ``dt_fixed`` the doubled step is still taken (the result is two half steps).

Error measured against the new state
    One ETD step may span many e-folds of decay (``|L h| >> 1``). The polynomial-in-time
    treatment of ``N`` then leaves an error that is tiny next to the old state but can dwarf the
    new one (a mode decaying by ``e^-167`` in one step came out 1e35 times too large). The
    stepper's norm scales errors by ``max(||y||, ||y_new||)``, so the returned estimate is
    multiplied by ``||y|| / ||y_new||`` whenever the state shrank: the step is then accepted only
    if it is accurate *relative to the new state*. With ``atol > 0`` this is stricter than the
    stepper's norm once the state is below ``atol / rtol``.

The phi-function coefficients depend only on ``(L, h)``; every scheme keeps them for the last
:data:`CACHE_SIZE` step sizes (a full and a half step for each of two trial sizes), so repeated
step sizes (fixed steps, steps clipped to the same save interval, retries) cost no exponentials.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from kmdflow.integrators.adaptive import OdeProblem, advance, rms_norm
from kmdflow.integrators.explicit import Rhs, StepResult
from kmdflow.integrators.tableaux import register_scheme
from kmdflow.polynomials import horner

#: ``|z|`` below which phi-type functions are summed from their Taylor series.
TAYLOR_RADIUS = 2.0

#: Taylor terms kept: ``2^26 / 27! < 1e-19``, below round-off on ``|z| < TAYLOR_RADIUS``.
TAYLOR_TERMS = 26

#: Coefficient sets kept per scheme (``(L, h)`` pairs).
CACHE_SIZE = 4


# ------------------------------------------------------------------------------------------------
# phi-functions and their linear combinations
# ------------------------------------------------------------------------------------------------


class PhiCombination:
    r"""A fixed linear combination ``w(z) = sum_{m=1}^K c_m phi_m(z)``, evaluated stably.

    Parameters
    ----------
    coefficients : sequence of int or Fraction
        ``c_1 .. c_K`` (``c_m`` multiplies ``phi_m``).

    Notes
    -----
    With ``r = 1/z``, :math:`\varphi_m(z) = e^z r^m - \sum_{l=1}^{m} r^l / (m-l)!`, so

    .. math::

        w(z) = e^z\,p(r) - q(r), \qquad p(r) = \sum_m c_m r^m, \qquad
        q(r) = \sum_{l \ge 1} r^l \sum_{m \ge l} \frac{c_m}{(m-l)!},

    which is used for ``|z| >= TAYLOR_RADIUS`` (Horner in ``r``: no overflow of ``z^K``, no
    cancellation for large ``|z|`` in the left half-plane, where ``e^z p(r)`` is negligible). For
    ``|z| < TAYLOR_RADIUS`` the Taylor series :math:`w(z) = \sum_j a_j z^j`,
    :math:`a_j = \sum_m c_m / (j+m)!`, is summed by Horner. At the switch ``|z| = 2`` both forms
    lose at most a factor of about 3 to cancellation for ``phi_1 .. phi_3`` on the real axis (the
    closed form at ``z = 2``, the alternating series at ``z = -2``); measured against mpmath the
    error stays below 1e-15 relative on the real axis and in the left half-plane
    (``tests/test_exponential.py``). Weights that are
    combinations (e.g. ETDRK4's ``phi_1 - 3 phi_2 + 4 phi_3``, of size ``O(z^-2)``) are evaluated
    from their own series and closed form, so they keep relative accuracy for large ``|z|``,
    which forming them from separately rounded ``phi_m`` (of size ``O(1/z)``) would lose.
    """

    def __init__(self, coefficients) -> None:
        c = [Fraction(v) for v in coefficients]
        if not c:
            raise ValueError("PhiCombination: give at least one coefficient (c_1 .. c_K)")
        self.coefficients = tuple(c)
        order = len(c)
        self._taylor = np.array(
            [float(sum(cm / math.factorial(j + m) for m, cm in enumerate(c, start=1)))
             for j in range(TAYLOR_TERMS)])
        # polynomials in r, lowest power first (index = power of r)
        self._p = np.array([0.0] + [float(cm) for cm in c])
        self._q = np.array([0.0] + [float(sum(c[m - 1] / math.factorial(m - l)
                                              for m in range(l, order + 1)))
                                    for l in range(1, order + 1)])

    def __call__(self, z) -> np.ndarray:
        """Evaluate at ``z``: (...) float or complex, returned with the shape and kind of ``z``."""
        z = np.asarray(z)
        dtype = np.complex128 if np.iscomplexobj(z) else np.float64
        z = z.astype(dtype, copy=False)
        out = np.empty(z.shape, dtype=dtype)
        small = np.abs(z) < TAYLOR_RADIUS
        if np.any(small):
            out[small] = horner(self._taylor, z[small])
        large = ~small
        if np.any(large):
            zl = z[large]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                r = 1.0 / zl
                out[large] = np.exp(zl) * horner(self._p, r) - horner(self._q, r)
        return out


_PHI = {k: PhiCombination([0] * (k - 1) + [1]) for k in range(1, 4)}


def phi(k: int, z) -> np.ndarray:
    r"""The ETD function ``phi_k`` at ``z``, accurate to a few ulps in relative terms.

    Parameters
    ----------
    k : int
        Index, ``k >= 0``.
    z : (...) float or complex
        Arguments, typically ``L * h``.

    Returns
    -------
    (...) float or complex
        ``phi_k(z)``, real for real ``z``.

    Notes
    -----
    :math:`\varphi_0(z) = e^z`, :math:`\varphi_k(z) = (e^z - \sum_{j<k} z^j/j!)/z^k`,
    :math:`\varphi_k(0) = 1/k!`; the recurrence :math:`\varphi_{k+1}(z) = (\varphi_k(z) - 1/k!)/z`.
    Evaluated by :class:`PhiCombination` (Taylor series for ``|z| < 2``, closed form beyond).
    Relative accuracy is impossible only near the complex zeros of ``phi_k`` (for ``phi_1``,
    ``z = 2 pi i m``), none of which lie in the open left half-plane or on the real axis.
    """
    if not (isinstance(k, (int, np.integer)) and k >= 0):
        raise ValueError(f"phi: k must be an integer >= 0, got {k!r}")
    if k == 0:
        z = np.asarray(z)
        with np.errstate(over="ignore"):
            return np.exp(z.astype(np.complex128 if np.iscomplexobj(z) else np.float64))
    if k not in _PHI:
        _PHI[k] = PhiCombination([0] * (k - 1) + [1])
    return _PHI[k](z)


# ------------------------------------------------------------------------------------------------
# Schemes: coefficients and one plain step
# ------------------------------------------------------------------------------------------------

# ETDRK4 weights (Cox--Matthews): b_u = phi1 - 3 phi2 + 4 phi3, b_a = b_b = 2 phi2 - 4 phi3,
# b_c = 4 phi3 - phi2.
_ETDRK4_U = PhiCombination([1, -3, 4])
_ETDRK4_AB = PhiCombination([0, 2, -4])
_ETDRK4_C = PhiCombination([0, -1, 4])

Coefficients = dict[str, np.ndarray]


def _evaluate_together(combinations: tuple[PhiCombination, ...], z: np.ndarray) -> np.ndarray:
    """Several :class:`PhiCombination` at the same ``z`` in one pass: ``(len(combinations), *z.shape)``.

    Same formulas as calling each one (Taylor for ``|z| < TAYLOR_RADIUS``, closed forms beyond),
    but one Horner loop over a stacked table and one ``exp``: a step needs several weights at each
    new step size, and this is where an ETD step spends the time not spent in the right-hand side.
    """
    z = np.asarray(z)
    dtype = np.complex128 if np.iscomplexobj(z) else np.float64
    z = z.astype(dtype, copy=False)
    out = np.empty((len(combinations),) + z.shape, dtype=dtype)
    small = np.abs(z) < TAYLOR_RADIUS
    if np.any(small):
        table = np.stack([c._taylor for c in combinations])  # (C, terms)
        zs = z[small]
        acc = np.repeat(table[:, -1:], zs.size, axis=1).astype(dtype)
        for j in range(table.shape[1] - 2, -1, -1):
            acc *= zs
            acc += table[:, j:j + 1]
        out[:, small] = acc
    large = ~small
    if np.any(large):
        zl = z[large]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            r = 1.0 / zl
            ez = np.exp(zl)
            for i, c in enumerate(combinations):
                out[i, large] = ez * horner(c._p, r) - horner(c._q, r)
    return out


def _coefficients(method: str, z: np.ndarray, h: float) -> Coefficients:
    """Arrays multiplying ``y`` and the stages in one step of ``method`` (``z = L h``)."""
    if method == "etdrk4":
        u, ab, c = _evaluate_together((_ETDRK4_U, _ETDRK4_AB, _ETDRK4_C), z)
        out = {"E": phi(0, z), "E2": phi(0, 0.5 * z), "Q": (0.5 * h) * phi(1, 0.5 * z),
               "Wu": h * u, "Wab": h * ab, "Wc": h * c}
        for value in out.values():
            value.setflags(write=False)
        return out
    out = {"E": phi(0, z)}
    if method in ("etd1", "etdrk2"):
        out["W1"] = h * phi(1, z)
    if method == "etdrk2":
        out["W2"] = h * phi(2, z)
    if method == "etdrk4":
        out["E2"] = phi(0, 0.5 * z)
        out["Q"] = (0.5 * h) * phi(1, 0.5 * z)
        out["Wu"] = h * _ETDRK4_U(z)
        out["Wab"] = h * _ETDRK4_AB(z)
        out["Wc"] = h * _ETDRK4_C(z)
    for value in out.values():
        value.setflags(write=False)
    return out


def _step_etd1(w: Coefficients, rhs: Rhs, t: float, y: np.ndarray, h: float,
               n0: np.ndarray) -> np.ndarray:
    return w["E"] * y + w["W1"] * n0


def _step_etdrk2(w: Coefficients, rhs: Rhs, t: float, y: np.ndarray, h: float,
                 n0: np.ndarray) -> np.ndarray:
    a = w["E"] * y + w["W1"] * n0
    return a + w["W2"] * (rhs(t + h, a) - n0)


def _step_etdrk4(w: Coefficients, rhs: Rhs, t: float, y: np.ndarray, h: float,
                 n0: np.ndarray) -> np.ndarray:
    half = t + 0.5 * h
    e2y = w["E2"] * y
    a = e2y + w["Q"] * n0
    na = rhs(half, a)
    b = e2y + w["Q"] * na
    nb = rhs(half, b)
    c = w["E2"] * a + w["Q"] * (2.0 * nb - n0)
    nc = rhs(t + h, c)
    return w["E"] * y + w["Wu"] * n0 + w["Wab"] * (na + nb) + w["Wc"] * nc


_STEPS: dict[str, Callable[..., np.ndarray]] = {
    "etd1": _step_etd1, "etdrk2": _step_etdrk2, "etdrk4": _step_etdrk4}


class _CoefficientCache:
    """The last few coefficient sets keyed by ``(h, L)``; safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: tuple = ()
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, method: str, linear: np.ndarray, h: float) -> Coefficients:
        for h_c, linear_c, coefficients in self._entries:
            if h_c == h and linear_c.shape == linear.shape and np.array_equal(linear_c, linear):
                return coefficients
        coefficients = _coefficients(method, h * linear, h)
        frozen = np.array(linear, copy=True)
        frozen.setflags(write=False)
        with self._lock:
            self.misses += 1
            self._entries = ((h, frozen, coefficients),) + self._entries[: self.size - 1]
        return coefficients

    def clear(self) -> None:
        with self._lock:
            self._entries = ()


@dataclass(frozen=True, eq=False)
class ExponentialScheme:
    r"""An exponential Runge--Kutta scheme for ``dy/dt = L y + N(t, y)``, ``L`` diagonal.

    Parameters
    ----------
    name : str
        Registry name, one of ``etd1``, ``etdrk2``, ``etdrk4`` (the formula is chosen by name).
    order : int
        Classical order of one step (and of the accepted two-half-step solution).
    stages : int
        Evaluations of ``N`` in one plain step.

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
    Exponential Euler: :math:`u_{new} = E u + h\varphi_1 N_u`. The error estimate is step
    doubling (module docstring), so ``error_order == order``.

    The declared order is the classical one (``h -> 0`` at fixed ``L``). Components with
    ``|h L| >> 1`` that are driven by ``N`` converge more slowly (order reduction; for ETDRK4 the
    stiff order is 2, Hochbruck & Ostermann, SIAM J. Numer. Anal. 43, 2005), but their error
    carries a factor ``1/|h L|``; in the tests (``L = -1e3``, ``|h L| = 10 .. 60``) it stays
    below the error of the mild components.
    """

    name: str
    order: int
    stages: int
    error_order: int = field(init=False)
    fsal: bool = field(default=False, init=False)
    cache: _CoefficientCache = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name not in _STEPS:
            raise ValueError(f"ExponentialScheme: name must be one of {', '.join(_STEPS)}, got "
                             f"{self.name!r}")
        object.__setattr__(self, "error_order", self.order)
        object.__setattr__(self, "cache", _CoefficientCache(CACHE_SIZE))

    @property
    def embedded(self) -> bool:
        """Always True: step doubling gives every ETD scheme an error estimate."""
        return True

    @property
    def needs_linear(self) -> bool:
        """ETD schemes integrate the diagonal ``linear`` part exactly: the split is required."""
        return True

    @property
    def error_estimate_order(self) -> int:
        """Power of ``h`` in the step-doubling estimate: ``order + 1``."""
        return self.order + 1

    @property
    def evaluations_per_trial(self) -> int:
        """Evaluations of ``N`` per doubled trial step beyond ``N(t, y)`` (shared by retries)."""
        return 3 * self.stages - 2

    def coefficients(self, linear: np.ndarray, h: float) -> Coefficients:
        """Cached phi-function coefficients for step ``h``: read-only, shaped as ``linear``."""
        return self.cache.get(self.name, np.asarray(linear), float(h))


ETD1 = ExponentialScheme("etd1", order=1, stages=1)
ETDRK2 = ExponentialScheme("etdrk2", order=2, stages=2)
ETDRK4 = ExponentialScheme("etdrk4", order=4, stages=4)


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
    w = scheme.coefficients(linear, dt)
    return _STEPS[scheme.name](w, rhs, t, y, float(dt), np.asarray(n0))


@advance.register
def _advance_exponential(scheme: ExponentialScheme, problem: OdeProblem, t: float,
                         y: np.ndarray, dt: float, k_first: np.ndarray | None = None
                         ) -> StepResult:
    """Doubled trial step: accept two half steps, estimate their error against one full step."""
    if problem.linear is None:
        raise ValueError(f"integrator {scheme.name!r} needs the diagonal linear part: pass "
                         "linear=<array>")
    y = np.asarray(y)
    n0 = np.asarray(problem.rhs(t, y) if k_first is None else k_first)
    h = float(dt)
    y_full = etd_step(scheme, problem.linear, problem.rhs, t, y, h, n0)
    y_mid = etd_step(scheme, problem.linear, problem.rhs, t, y, 0.5 * h, n0)
    y_half = etd_step(scheme, problem.linear, problem.rhs, t + 0.5 * h, y_mid, 0.5 * h)
    error = (y_half - y_full) / (2.0**scheme.order - 1.0)
    return StepResult(y=y_half, error=error * _decay_factor(y, y_half), k_last=None, k_first=n0)


def _decay_factor(y: np.ndarray, y_new: np.ndarray) -> float:
    """``||y|| / ||y_new||`` when the state shrank over the step (and is not all zero), else 1."""
    before, after = rms_norm(y), rms_norm(y_new)
    if 0.0 < after < before:
        return before / after
    return 1.0


for _scheme in (ETD1, ETDRK2, ETDRK4):
    register_scheme(_scheme)
del _scheme
