r"""The exact quadratic Wasserstein distance ``W2`` on the circle ``T = R / 2 pi Z`` (d = 1).

Conventions (positions in ``[0, 2 pi)``, densities w.r.t. ``dx / 2 pi``):
:mod:`kmdflow.domains.torus`. The ground cost is the squared geodesic distance ``d(x, y)^2``,
``d(x, y) = min_n |x - y + 2 pi n|``.

Formula
-------
Lift the cdfs to ``R`` (``F(x + 2 pi) = F(x) + 1``) and let ``A = F^-1``, ``B = G^-1`` be their
generalised (left-continuous) inverses, so ``A(u + 1) = A(u) + 2 pi``. For convex costs of the
lifted difference, the optimal plans on the circle are the monotone plans between ``mu`` and ``nu``
with the levels of ``nu`` shifted by some ``theta`` (Delon, Salomon & Sobolevski, *Fast transport
optimization for Monge costs on the circle*, SIAM J. Appl. Math. 70, 2010; Rabin, Delon & Gousseau,
*Transportation distances on the circle*, J. Math. Imaging Vis. 41, 2011):

    W2(mu, nu)^2 = min_(theta in R) J(theta),     J(theta) = int_0^1 |A(u) - B(u + theta)|^2 du.

Structure of ``J`` (derived here, checked by the tests): with ``mu = sum_i w_i delta_(x_i)`` sorted,
levels ``a_i = w_1 + .. + w_i``, gaps ``g_i = x_(i+1) - x_i`` (``x_(N+1) = x_1 + 2 pi``),

    J'(theta) = sum_i g_i (2 B(a_i + theta) - x_i - x_(i+1)),

a nondecreasing function of ``theta`` (``B`` is nondecreasing), so **J is convex**. For two atomic
measures ``J`` is piecewise linear with kinks where a shifted level of ``nu`` meets a level of
``mu`` (``theta = b_j - a_i + n``); its minimum is at such a kink. For a density ``nu`` with no
vacuum ``J`` is ``C^1``. Since ``B(v) in [2 pi n, 2 pi (n + 1)]`` for ``v in (n, n + 1]``,
``J'(-2) < 0 < J'(2)``: the minimiser lies in ``(-2, 2)`` (a certified bracket).

Algorithms
----------
Atoms vs atoms: bisection on the sign of the right derivative ``J'(theta^+)`` (the right limit
``B(v^+)``) down to a bracket of width ``1e-15``, then the kinks inside it are enumerated and ``J``
is evaluated exactly at each (merge of both level sets; one segment per pair). Level arithmetic is
done in ``numpy.longdouble``, so the slivers that rounding leaves at the optimal kink (a segment of
length ``~ulp`` paired with far-apart atoms) cost ``~1e-18`` rather than ``~1e-15``. Cost
``O((N + M) log(N + M))`` per evaluation, about 50 evaluations.

Atoms vs density: ``J'`` needs ``B`` at the ``N`` levels only (the density's inverse cdf); its root
in ``[-2, 2]`` is found by ``scipy.optimize.brentq``. Then
``J = sum_i int_(y_(i-1))^(y_i) (x_i - y)^2 rho(y) dy / 2 pi`` with ``y_i = B(a_i + theta)``,
integrated by 16-point Gauss-Legendre panels cut at the ``y_i``, at the density's breakpoints and
every ``pi / bandwidth``; ``x_i - y`` is formed directly, so small distances keep their precision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

from kmdflow.measures.piecewise import smooth_bandwidth
from kmdflow.domains.torus import TWO_PI
from kmdflow.measures import Atoms, Density, Uniform, inverse_cdf

__all__ = ["CircleTransport", "circle_transport", "shift_cost", "wasserstein2"]

#: Working precision of the level arithmetic (x87 extended where available).
WORK = np.longdouble
_TWO_PI_WORK = WORK("6.28318530717958647692528676655900577")
#: Bisection stops at this bracket width (in levels, which live in [0, 1]).
_BRACKET = 1e-15
#: Gauss-Legendre nodes per panel (atoms vs density).
_GL_NODES = 16


@dataclass(frozen=True)
class CircleTransport:
    """Result of :func:`circle_transport`.

    Attributes
    ----------
    distance : float
        ``W2(mu, nu)``.
    cost : float
        ``W2(mu, nu)^2``.
    shift : float
        An optimal level shift ``theta`` (``B(u + theta)`` is matched with ``A(u)``).
    """

    distance: float
    cost: float
    shift: float

    def to_dict(self) -> dict:
        return asdict(self)


def wasserstein2(first, second) -> float:
    """``W2`` distance on the circle between two probability measures.

    Parameters
    ----------
    first, second : Atoms, Density or "uniform"
        At least one must be :class:`~kmdflow.measures.Atoms` (build them with
        ``Atoms(positions, weights)``); any sizes and weights.

    Returns
    -------
    float
        ``W2 >= 0``, symmetric, zero iff the measures are equal; at most ``pi``.

    Notes
    -----
    ``W2^2 = min_theta int_0^1 |F^-1(u) - G^-1(u + theta)|^2 du``; see the module docstring.
    """
    return circle_transport(first, second).distance


def circle_transport(first, second) -> CircleTransport:
    """``W2``, ``W2^2`` and an optimal level shift; arguments as :func:`wasserstein2`."""
    mu, nu = _measure(first, "first"), _measure(second, "second")
    if not isinstance(mu, Atoms):
        mu, nu = nu, mu
        if not isinstance(mu, Atoms):
            raise ValueError("first and second are both densities; W2 between two densities "
                             "is not implemented: discretise one with "
                             "kmdflow.measures.place_particles")
        flip = True
    else:
        flip = False
    if isinstance(nu, Atoms):
        theta, cost = _atoms_vs_atoms(_Sorted(mu), _Sorted(nu))
    else:
        theta, cost = _atoms_vs_density(_Sorted(mu), nu)
    cost = max(0.0, float(cost))
    # swapping the roles of mu and nu turns the shift theta into -theta
    return CircleTransport(math.sqrt(cost), cost, -float(theta) if flip else float(theta))


def shift_cost(first: Atoms, second, theta: float) -> float:
    r"""``J(theta) = int_0^1 |A(u) - B(u + theta)|^2 du`` for atoms ``first`` and ``second``.

    Parameters
    ----------
    first : Atoms
    second : Atoms, Density or "uniform"
    theta : float
        Level shift.

    Returns
    -------
    float
        ``J(theta) >= W2^2``, with equality at an optimal shift.
    """
    mu, nu = _measure(first, "first"), _measure(second, "second")
    if not isinstance(mu, Atoms):
        raise ValueError(f"first must be Atoms, got {type(mu).__name__}; swap the arguments")
    if isinstance(nu, Atoms):
        return float(_atoms_cost(_Sorted(mu), _Sorted(nu), WORK(theta)))
    return float(_density_cost(_Sorted(mu), nu, float(theta)))


# -------------------------------------------------------------------------------- helpers

class _Sorted:
    """Sorted positions, their levels ``a_i`` (``a_N = 1``) in :data:`WORK`, and gaps."""

    def __init__(self, atoms: Atoms):
        order = np.argsort(atoms.positions, kind="stable")
        self.x = atoms.positions[order]
        w = atoms.weights[order].astype(WORK)
        self.levels = np.cumsum(w) / np.sum(w)
        self.levels[-1] = WORK(1)
        self.size = self.x.size
        nxt = np.append(self.x[1:], self.x[0] + TWO_PI)
        self.gaps = nxt - self.x
        self.mids = 0.5 * (self.x + nxt)

    def quantile(self, v: np.ndarray, right: bool) -> np.ndarray:
        """Lifted ``A(v)`` (left-continuous) or its right limit ``A(v^+)``, in :data:`WORK`."""
        turns = np.floor(v)
        frac = v - turns
        if right:
            j = np.searchsorted(self.levels, frac, side="right")
        else:
            j = np.searchsorted(self.levels, frac, side="left")
            at_integer = frac == 0                  # A(n) is the last atom of the turn before
            j = np.where(at_integer, self.size - 1, j)
            turns = np.where(at_integer, turns - 1, turns)
        return self.x[j].astype(WORK) + _TWO_PI_WORK * turns


def _measure(value, name: str):
    if isinstance(value, str):
        if value != "uniform":
            raise ValueError(f"{name}={value!r}: the only named measure is 'uniform'; pass Atoms "
                             "or a Density")
        return Uniform()
    if isinstance(value, (Atoms, Density)):
        return value
    raise ValueError(f"{name} of type {type(value).__name__} is not a measure; pass "
                     "kmdflow.measures.Atoms(positions, weights), a Density or 'uniform'")


# ----------------------------------------------------------------------------- atoms/atoms

def _atoms_slope(mu: _Sorted, nu: _Sorted, theta) -> WORK:
    """Right derivative ``J'(theta^+)``."""
    y = nu.quantile(mu.levels + theta, right=True)
    return 2.0 * np.sum(mu.gaps * (y - mu.mids))


def _atoms_cost(mu: _Sorted, nu: _Sorted, theta) -> WORK:
    """``J(theta)``: merge the levels of ``mu`` and the shifted levels of ``nu``; exact sum."""
    theta = WORK(theta)
    shifted = nu.levels - (theta - np.floor(theta))
    shifted = np.where(shifted <= 0, shifted + 1, shifted)        # in (0, 1]
    edges = np.concatenate([[WORK(0)], np.sort(np.concatenate([mu.levels, shifted]))])
    length = np.diff(edges)
    keep = length > 0
    length = length[keep]
    mid = (0.5 * (edges[:-1] + edges[1:]))[keep]
    a = mu.x[np.searchsorted(mu.levels, mid, side="left")].astype(WORK)
    b = nu.quantile(mid + theta, right=False)
    return np.sum(length * (a - b) ** 2)


def _kinks(mu: _Sorted, nu: _Sorted, lo, hi) -> np.ndarray:
    """The kinks ``b_j + n - a_i`` in ``(lo, hi]`` (one per level ``a_i``: the bracket is tiny)."""
    v_hi = mu.levels + hi
    v_lo = mu.levels + lo
    turns = np.floor(v_hi)
    j = np.searchsorted(nu.levels, v_hi - turns, side="right") - 1
    turns = np.where(j < 0, turns - 1, turns)
    j = np.where(j < 0, nu.size - 1, j)
    top = nu.levels[j] + turns                      # largest lifted level <= a_i + hi
    inside = top > v_lo
    return np.unique((top - mu.levels)[inside])


def _atoms_vs_atoms(mu: _Sorted, nu: _Sorted) -> tuple[float, float]:
    lo, hi = WORK(-2), WORK(2)
    if not (_atoms_slope(mu, nu, lo) < 0 <= _atoms_slope(mu, nu, hi)):
        raise RuntimeError("the certified bracket [-2, 2] failed; positions must lie in [0, 2 pi)")
    while hi - lo > _BRACKET:
        mid = 0.5 * (lo + hi)
        if _atoms_slope(mu, nu, mid) >= 0:
            hi = mid
        else:
            lo = mid
    candidates = _kinks(mu, nu, lo, hi)
    if candidates.size == 0:
        candidates = np.array([hi])
    candidates = candidates[np.argsort(np.abs(candidates - hi))[:16]]
    costs = np.array([_atoms_cost(mu, nu, t) for t in candidates])
    best = int(np.argmin(costs))
    return float(candidates[best]), float(costs[best])


# ---------------------------------------------------------------------------- atoms/density

def _density_quantile(density: Density, v: np.ndarray) -> np.ndarray:
    """Lifted generalised inverse cdf ``B(v)`` of a density, float64."""
    turns = np.floor(v)
    frac = v - turns
    at_integer = frac == 0
    frac = np.where(at_integer, 1.0, frac)
    turns = np.where(at_integer, turns - 1, turns)
    return inverse_cdf(density, frac) + TWO_PI * turns


def _density_slope(mu: _Sorted, density: Density, theta: float) -> float:
    y = _density_quantile(density, mu.levels.astype(float) + theta)
    return float(np.sum(mu.gaps * (2.0 * (y - mu.mids))))


def _density_cost(mu: _Sorted, density: Density, theta: float) -> float:
    """``J(theta) = sum_i int_(y_(i-1))^(y_i) (x_i - y)^2 rho(y) dy / 2 pi`` by Gauss-Legendre."""
    y = _density_quantile(density, mu.levels.astype(float) + theta)
    start = y[-1] - TWO_PI
    band = smooth_bandwidth(density)
    step = min(np.pi / 8.0, np.pi / max(1.0, band))
    grid = start + np.linspace(0.0, TWO_PI, int(np.ceil(TWO_PI / step)) + 1)
    cuts = [grid, y]
    breaks = np.asarray(density.breakpoints, dtype=float).reshape(-1)
    if breaks.size:
        turns = np.arange(np.floor(start / TWO_PI) - 1, np.floor(y[-1] / TWO_PI) + 2)
        lifted = (breaks[None, :] + TWO_PI * turns[:, None]).ravel()
        cuts.append(lifted[(lifted > start) & (lifted < y[-1])])
    edges = np.unique(np.concatenate(cuts))
    edges = edges[(edges >= start) & (edges <= y[-1])]
    lo, hi = edges[:-1], edges[1:]
    owner = np.minimum(np.searchsorted(y, 0.5 * (lo + hi), side="left"), mu.size - 1)
    xi, omega = np.polynomial.legendre.leggauss(_GL_NODES)
    half = 0.5 * (hi - lo)
    nodes = (lo + half)[:, None] + half[:, None] * xi[None, :]
    rho = density.values(nodes)
    dist = mu.x[owner][:, None] - nodes
    return float(np.sum(half[:, None] * omega[None, :] * dist * dist * rho) / TWO_PI)


def _atoms_vs_density(mu: _Sorted, density: Density) -> tuple[float, float]:
    lo, hi = -2.0, 2.0
    s_lo, s_hi = _density_slope(mu, density, lo), _density_slope(mu, density, hi)
    if not (s_lo < 0 < s_hi):
        raise RuntimeError("the certified bracket [-2, 2] failed; positions must lie in [0, 2 pi)")
    theta = brentq(lambda t: _density_slope(mu, density, t), lo, hi, xtol=1e-15,
                   rtol=4 * np.finfo(float).eps, maxiter=200)
    return theta, _density_cost(mu, density, theta)


