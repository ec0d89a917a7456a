r"""The functions ``phi_k`` of exponential integrators and their linear combinations.

Definition
    For ``z`` real or complex,

    .. math::

        \varphi_0(z) = e^z, \qquad
        \varphi_k(z) = \frac{1}{(k-1)!}\int_0^1 e^{(1-\theta) z}\,\theta^{k-1}\,d\theta
                     = \frac{e^z - \sum_{j<k} z^j / j!}{z^k} \quad (k \ge 1),

    with :math:`\varphi_k(0) = 1/k!`. An exponential scheme with step ``h`` evaluates them, and
    fixed combinations :math:`\sum_m c_m \varphi_m` of them (its weights), at ``z = L h``
    (:mod:`kmdflow.integrators.exponential`).

Stable evaluation
    The closed form loses all accuracy to cancellation as ``z -> 0`` (``e^z`` and the subtracted
    Taylor polynomial agree to ``k`` orders), and the Taylor series loses it for large ``|z|``
    (huge alternating terms in the left half-plane). So each combination is summed from its own
    Taylor series for ``|z| < TAYLOR_RADIUS`` and from its closed form ``e^z p(1/z) - q(1/z)``
    beyond (:class:`PhiCombination`, where the polynomials and the error at the switch are
    derived). A combination is evaluated as a whole, never from separately rounded ``phi_m``: the
    ETDRK4 weights are ``O(z^-2)`` while each ``phi_m`` is ``O(1/z)``, so forming them by
    subtraction would lose relative accuracy for large ``|z|``. :func:`evaluate_together` sums
    several combinations at once as matrix products with the powers of ``z`` (or ``1/z``), and
    :func:`phi1_expm1` gives ``phi_1`` through ``expm1``, accurate without a series.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from kmdflow.polynomials import horner

#: ``|z|`` below which phi-type functions are summed from their Taylor series.
TAYLOR_RADIUS = 2.0

#: Taylor terms kept: ``2^26 / 27! < 1e-19``, below round-off on ``|z| < TAYLOR_RADIUS``.
TAYLOR_TERMS = 26


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


def _powers(x: np.ndarray, count: int) -> np.ndarray:
    """``x^0 .. x^(count - 1)`` stacked, ``(count, x.size)``, in ``log2(count)`` block products.

    Rows ``m .. 2m - 1`` are rows ``0 .. m - 1`` times ``x^m`` (``x^m`` by repeated squaring), so
    ``x^j`` carries at most about ``2 log2(j)`` roundings.
    """
    powers = np.empty((count, x.size), dtype=x.dtype)
    powers[0] = 1.0
    filled, x_filled = 1, x
    while filled < count:
        step = min(filled, count - filled)
        np.multiply(powers[:step], x_filled, out=powers[filled:filled + step])
        filled += step
        x_filled = x_filled * x_filled
    return powers


@functools.lru_cache(maxsize=32)
def _stacked(combinations: tuple[PhiCombination, ...], attribute: str) -> np.ndarray:
    """The coefficient vectors ``attribute`` of ``combinations`` as rows, zero-padded (cached)."""
    rows = [getattr(c, attribute) for c in combinations]
    table = np.zeros((len(rows), max(r.size for r in rows)))
    for i, row in enumerate(rows):
        table[i, :row.size] = row
    table.setflags(write=False)
    return table


def evaluate_together(combinations: tuple[PhiCombination, ...], z: np.ndarray,
                      exp_z: np.ndarray | None = None) -> np.ndarray:
    r"""Several :class:`PhiCombination` at the same ``z`` in one pass.

    Parameters
    ----------
    combinations : tuple of PhiCombination
        The combinations (a tuple, hashable: their stacked coefficient tables are cached).
    z : (...) float or complex
        Arguments.
    exp_z : (...) float or complex, optional
        ``e^z`` (shape of ``z``) when already known, reused for the closed forms.

    Returns
    -------
    (len(combinations), ...) float or complex
        Row ``i`` is ``combinations[i](z)``; complex when ``z`` or ``exp_z`` is.

    Notes
    -----
    Same series and closed forms as calling each one (Taylor for ``|z| < TAYLOR_RADIUS``,
    ``e^z p(1/z) - q(1/z)`` beyond), summed as one matrix product of the stacked coefficient table
    with the powers of ``z`` (or ``1/z``): a step needs several weights at each new step size, and
    a Horner loop per weight costs more numpy calls than the right-hand side does. On ``|z| < 2``
    the power sum and Horner's rule have the same error bound (a few ulps of
    :math:`\sum_j |a_j z^j|`).
    """
    z = np.asarray(z)
    dtype = np.complex128 if np.iscomplexobj(z) or np.iscomplexobj(exp_z) else np.float64
    flat = z.astype(dtype, copy=False).ravel()
    out = np.empty((len(combinations), flat.size), dtype=dtype)
    small = np.abs(flat) < TAYLOR_RADIUS
    n_small = int(np.count_nonzero(small))
    if n_small:
        table = _stacked(combinations, "_taylor")
        values = table @ _powers(flat[small], table.shape[1])
        if n_small == flat.size:
            return values.reshape((len(combinations),) + z.shape)
        out[:, small] = values
    large = ~small
    if n_small < flat.size:
        zl = flat[large]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ez = np.exp(zl) if exp_z is None else np.asarray(exp_z).ravel()[large]
            p, q = _stacked(combinations, "_p"), _stacked(combinations, "_q")
            powers = _powers(1.0 / zl, max(p.shape[1], q.shape[1]))
            out[:, large] = ez * (p @ powers[:p.shape[1]]) - q @ powers[:q.shape[1]]
    return out.reshape((len(combinations),) + z.shape)


def phi1_expm1(w: np.ndarray) -> np.ndarray:
    r"""``phi_1(w) = expm1(w) / w`` (``1`` at ``w = 0``): a few ulps everywhere off its zeros.

    Parameters
    ----------
    w : (...) float or complex
        Arguments.

    Returns
    -------
    (...) float or complex
        ``phi_1(w)``, of the kind of ``w``.

    Notes
    -----
    :math:`\varphi_1(w) = (e^w - 1)/w`; ``expm1`` keeps relative accuracy for small ``|w|`` (real
    and complex), so no series is needed.
    """
    w = np.asarray(w)
    out = np.ones(w.shape, dtype=np.complex128 if np.iscomplexobj(w) else np.float64)
    nonzero = w != 0
    with np.errstate(over="ignore", invalid="ignore"):
        out[nonzero] = np.expm1(w[nonzero]) / w[nonzero]
    return out
