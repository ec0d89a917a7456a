r"""Band-limited densities on :math:`T^d`: :class:`SeriesDensityND` and its exact sampler.

A band-limited density is a :class:`~kmdflow.measures.trig.TrigSeries` whose ``k = 0``
coefficient is the mass 1 (conventions: :mod:`kmdflow.domains.torus`). Its coefficients give
``fourier_nd`` exactly (:meth:`~kmdflow.measures.trig.TrigSeries.layout`), its values by direct
sums or a NUFFT, its extrema by :func:`~kmdflow.measures.trig.trig_extrema`, and its samples by
the conditional inverse cdfs of :func:`conditional_inverse`. The families built on it are in
:mod:`kmdflow.measures.analytic_nd` (mode, perturbation) and :mod:`kmdflow.measures.grid`
(grid values read from a file).
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cached_property

import numpy as np

from kmdflow.domains.torus import TWO_PI
from kmdflow.measures.base_nd import DensityND, clip_positions, layout_shape
from kmdflow.measures.trig import TrigSeries, trig_extrema


class SeriesDensityND(DensityND):
    """A density on :math:`T^d` given by a finite real Fourier series (:attr:`series`)."""

    @property
    @abstractmethod
    def series(self) -> TrigSeries:
        """All the terms of ``rho``: ``k = 0`` with coefficient 1, closed under ``k -> -k``."""

    @property
    def bandwidth(self) -> float:
        return float(self.series.radius)

    def fourier_nd(self, n):
        layout_shape(n, self.dim)
        return self.series.layout(n)

    def _values(self, points):
        return self.series.evaluate(points)

    def transform(self, u):
        return conditional_inverse(self.series, u)

    @cached_property
    def _extrema(self) -> tuple[float, float]:
        return trig_extrema(self.series)

    def min_value(self):
        return self._extrema[0]

    def max_value(self):
        return self._extrema[1]


def conditional_inverse(series: TrigSeries, u: np.ndarray, max_iter: int = 100) -> np.ndarray:
    r"""The Rosenblatt transform of a band-limited density: uniforms to positions.

    Parameters
    ----------
    series : TrigSeries
        The density (coefficient 1 at ``k = 0``; values ``>= 0``).
    u : (N, d) float
        Uniforms in ``[0, 1)``.
    max_iter : int
        Cap on the iterations per axis.

    Returns
    -------
    (N, d) float
        Positions in ``[0, 2 pi)^d``: ``x_1`` has the marginal law of the first coordinate,
        ``x_j`` the law of the ``j``-th coordinate given ``x_1 .. x_{j-1}``.

    Notes
    -----
    Let :math:`m_j` be the marginal density of :math:`(x_1..x_j)` (the terms with
    :math:`k_{j+1} = .. = k_d = 0`; :math:`m_0 = 1`). With the prefix :math:`p = (x_1..x_{j-1})`,

    .. math::

        F_j(t \mid p) = \frac{m_{j-1}(p)\, t + G_j(p, t) - G_j(p, 0)}{2\pi\, m_{j-1}(p)},
        \qquad G_j = \sum_{k_j \ne 0} \frac{c_k}{i k_j} e^{i k \cdot (p, t)},

    a closed form since the terms with :math:`k_j = 0` sum to :math:`m_{j-1}(p)`. Each
    :math:`x_j` solves :math:`F_j(x_j \mid p) = u_j` by a bracketed Newton iteration (slope
    :math:`m_j(p, t) / (2\pi m_{j-1}(p))`, bisection when a step leaves the bracket ``[lo, hi]``,
    which starts as ``[0, 2 pi]``), from ``t = 2 pi u_j``, until a Newton step is below ``1e-11``
    or the bracket below ``1e-13``. ``G_j`` and ``m_j`` are evaluated together (one NUFFT per
    iteration for large series). Where :math:`m_{j-1}(p) \le 0` (a zero of the density, measure
    zero) the conditional law is undefined and ``x_j = 2 pi u_j``.
    """
    u = np.asarray(u, dtype=float)
    n, d = u.shape
    x = np.zeros((n, d))
    below = np.ones(n)
    for j in range(d):
        marg = series.marginal(j + 1)
        kj = marg.waves[:, j]
        anti = np.where(kj != 0, marg.coefs / (1j * np.where(kj != 0, kj, 1)), 0.0)
        offset = marg.evaluate(np.column_stack([x[:, :j], np.zeros(n)]), anti[None])[0]
        x[:, j] = _solve_axis(marg, np.stack([anti, marg.coefs]), x[:, :j], below, offset,
                              u[:, j], max_iter)
        if j + 1 < d:
            below = marg.evaluate(x[:, :j + 1])
    return clip_positions(x)


def _solve_axis(marg, sets, prefix, below, offset, u, max_iter) -> np.ndarray:
    """Solve ``F_j(t | prefix) = u`` row by row (see :func:`conditional_inverse`)."""
    t = TWO_PI * u
    lo, hi = np.zeros(u.size), np.full(u.size, TWO_PI)
    todo = np.flatnonzero(below > 0)
    for _ in range(max_iter):
        if todo.size == 0:
            break
        tt, scale = t[todo], TWO_PI * below[todo]
        anti, rho = marg.evaluate(np.column_stack([prefix[todo], tt]), sets)
        resid = (below[todo] * tt + anti - offset[todo]) / scale - u[todo]
        left = resid < 0
        lo[todo] = np.where(left, tt, lo[todo])
        hi[todo] = np.where(left, hi[todo], tt)
        slope = rho / scale
        newton = tt - resid / np.where(slope > 0, slope, 1.0)
        inside = (slope > 0) & (newton > lo[todo]) & (newton < hi[todo])
        nxt = np.where(resid == 0, tt, np.where(inside, newton, 0.5 * (lo[todo] + hi[todo])))
        t[todo] = nxt
        done = ((resid == 0) | (inside & (np.abs(nxt - tt) < 1e-11))
                | (hi[todo] - lo[todo] < 1e-13))
        todo = todo[~done]
    return t
