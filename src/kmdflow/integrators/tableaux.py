r"""Explicit Runge--Kutta schemes as data: Butcher tableaux and the registry of named schemes.

A scheme is a frozen :class:`ButcherTableau` with its declared order; steppers, configs and tests
look schemes up by name in :data:`SCHEMES` (configuration key ``[method] integrator``). Adding a
scheme means adding one tableau here: the order tests in ``tests/test_integrators.py`` iterate
the registry.

Coefficients are written from the published definitions:

- ``euler``: forward Euler, order 1.
- ``heun``: Heun's (explicit trapezoidal) method, order 2.
- ``ssprk3``: Shu--Osher strong-stability-preserving three-stage method, order 3.
- ``bs32``: Bogacki--Shampine 3(2) pair (Appl. Math. Lett. 2, 1989), FSAL, propagates order 3.
- ``rk4``: the classical four-stage method, order 4.
- ``dopri5``: Dormand--Prince 5(4) pair (J. Comput. Appl. Math. 6, 1980), FSAL, propagates
  order 5.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from fractions import Fraction as F
from typing import Protocol

import numpy as np


class Scheme(Protocol):
    """What a stepper needs to know about any registered scheme (RK now, exponential later)."""

    name: str
    order: int
    error_order: int | None
    fsal: bool

    @property
    def embedded(self) -> bool: ...

    @property
    def needs_linear(self) -> bool: ...

    @property
    def error_estimate_order(self) -> int | None: ...


def _frozen_array(values, name: str, ndim: int) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"ButcherTableau: {name} must be {ndim}-dimensional, got shape "
                         f"{array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ButcherTableau:
    r"""An explicit Runge--Kutta scheme, optionally with an embedded lower-order solution.

    Parameters
    ----------
    name : str
        Registry name.
    a : (s, s) float
        Strictly lower-triangular stage coefficients.
    b : (s,) float
        Weights of the propagated solution.
    c : (s,) float
        Nodes; must equal the row sums of ``a``.
    order : int
        Classical order of the propagated solution.
    b_low : (s,) float, optional
        Weights of the embedded solution used only for the error estimate.
    error_order : int, optional
        Order of the embedded solution (required with ``b_low``).
    fsal : bool
        First Same As Last: the last stage is ``f(t + dt, y_new)`` (last row of ``a`` equals
        ``b`` and ``c[-1] = 1``), so it is the first stage of the next step.

    Notes
    -----
    For ``dy/dt = f(t, y)`` one step of size ``h`` is

    .. math::

        k_i = f\big(t + c_i h,\; y + h \sum_{j<i} a_{ij} k_j\big),\quad
        y_{new} = y + h \sum_i b_i k_i,\quad
        e = h \sum_i (b_i - \hat b_i) k_i,

    with ``e`` the embedded error estimate (``b_low`` = :math:`\hat b`). ``e`` estimates the local
    error of the embedded solution, which is ``O(h^(error_order + 1))``.
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    order: int
    b_low: np.ndarray | None = None
    error_order: int | None = None
    fsal: bool = False
    error_weights: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        a = _frozen_array(self.a, "a", 2)
        b = _frozen_array(self.b, "b", 1)
        c = _frozen_array(self.c, "c", 1)
        s = b.size
        if a.shape != (s, s) or c.shape != (s,):
            raise ValueError(
                f"ButcherTableau {self.name!r}: shapes a {a.shape}, b {b.shape}, c {c.shape} "
                f"disagree; expected a ({s}, {s}) and c ({s},)")
        if np.any(np.triu(a) != 0.0):
            raise ValueError(f"ButcherTableau {self.name!r}: a must be strictly lower triangular "
                             "(explicit scheme)")
        if not np.allclose(a.sum(axis=1), c, rtol=0.0, atol=1e-14):
            raise ValueError(f"ButcherTableau {self.name!r}: c must equal the row sums of a")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)
        if (self.b_low is None) != (self.error_order is None):
            raise ValueError(f"ButcherTableau {self.name!r}: give b_low and error_order together")
        weights = None
        if self.b_low is not None:
            b_low = _frozen_array(self.b_low, "b_low", 1)
            if b_low.shape != (s,):
                raise ValueError(f"ButcherTableau {self.name!r}: b_low has shape {b_low.shape}, "
                                 f"expected ({s},)")
            object.__setattr__(self, "b_low", b_low)
            weights = b - b_low
            weights.setflags(write=False)
        object.__setattr__(self, "error_weights", weights)
        if self.fsal and not (np.allclose(a[-1], b, rtol=0.0, atol=1e-15) and c[-1] == 1.0):
            raise ValueError(f"ButcherTableau {self.name!r}: fsal=True needs a[-1] == b and "
                             "c[-1] == 1")

    @property
    def stages(self) -> int:
        """Number of stages ``s``."""
        return int(self.b.size)

    @property
    def embedded(self) -> bool:
        """Whether the scheme carries an error estimate (and so can adapt its step)."""
        return self.b_low is not None

    @property
    def needs_linear(self) -> bool:
        """Explicit RK treats ``dy/dt = L y + N`` as one right-hand side: no split needed."""
        return False

    @property
    def error_estimate_order(self) -> int | None:
        """Power ``q + 1`` of ``h`` in the error estimate (``q = min(order, error_order)``)."""
        if self.error_order is None:
            return None
        return min(self.order, self.error_order) + 1


def _tableau(name: str, rows: list[list], b: list, *, order: int, b_low: list | None = None,
             error_order: int | None = None, fsal: bool = False) -> ButcherTableau:
    """Build a tableau from exact fractions; ``rows[i]`` holds ``a[i, :i]``."""
    s = len(b)
    a = np.zeros((s, s))
    for i, row in enumerate(rows):
        a[i, :len(row)] = [float(v) for v in row]
    c = [float(sum(row, F(0))) for row in rows]
    return ButcherTableau(
        name=name, a=a, b=[float(v) for v in b], c=c, order=order,
        b_low=None if b_low is None else [float(v) for v in b_low],
        error_order=error_order, fsal=fsal)


EULER = _tableau("euler", [[]], [F(1)], order=1)

HEUN = _tableau("heun", [[], [F(1)]], [F(1, 2), F(1, 2)], order=2)

SSPRK3 = _tableau(
    "ssprk3",
    [[], [F(1)], [F(1, 4), F(1, 4)]],
    [F(1, 6), F(1, 6), F(2, 3)], order=3)

BS32 = _tableau(
    "bs32",
    [[], [F(1, 2)], [F(0), F(3, 4)], [F(2, 9), F(1, 3), F(4, 9)]],
    [F(2, 9), F(1, 3), F(4, 9), F(0)], order=3,
    b_low=[F(7, 24), F(1, 4), F(1, 3), F(1, 8)], error_order=2, fsal=True)

RK4 = _tableau(
    "rk4",
    [[], [F(1, 2)], [F(0), F(1, 2)], [F(0), F(0), F(1)]],
    [F(1, 6), F(1, 3), F(1, 3), F(1, 6)], order=4)

_DOPRI5_B = [F(35, 384), F(0), F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84), F(0)]
DOPRI5 = _tableau(
    "dopri5",
    [[],
     [F(1, 5)],
     [F(3, 40), F(9, 40)],
     [F(44, 45), F(-56, 15), F(32, 9)],
     [F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)],
     [F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)],
     _DOPRI5_B[:6]],
    _DOPRI5_B, order=5,
    b_low=[F(5179, 57600), F(0), F(7571, 16695), F(393, 640), F(-92097, 339200),
           F(187, 2100), F(1, 40)],
    error_order=4, fsal=True)

#: Registered schemes by name. Other modules may add schemes with :func:`register_scheme`.
SCHEMES: dict[str, Scheme] = {t.name: t for t in (EULER, HEUN, SSPRK3, BS32, RK4, DOPRI5)}


def register_scheme(scheme: Scheme) -> None:
    """Add ``scheme`` to :data:`SCHEMES` under ``scheme.name`` (names are unique)."""
    if scheme.name in SCHEMES:
        raise ValueError(f"integrator: a scheme named {scheme.name!r} is already registered; "
                         "choose another name")
    SCHEMES[scheme.name] = scheme


def get_scheme(name: str) -> Scheme:
    """Look a scheme up by its registry name.

    Raises
    ------
    ValueError
        Naming ``integrator``, the bad value, the closest valid name and all valid names.
    """
    if isinstance(name, str) and name in SCHEMES:
        return SCHEMES[name]
    valid = sorted(SCHEMES)
    near = difflib.get_close_matches(str(name).lower(), valid, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise ValueError(f"integrator: unknown scheme {name!r}; {hint}valid names: {', '.join(valid)}")
