r"""Band-limited densities: exact cdf tables and extrema of a finite Fourier series.

A band-limited density is given by its one-sided coefficients ``c_0 .. c_{K-1}`` (convention of
:mod:`kmdflow.domains.torus`; ``c_0`` is the mass). :class:`SeriesTable` evaluates the density and
its term-by-term integrated cdf at many points, exact up to round-off; :func:`series_extrema`
finds its minimum and maximum; :class:`SeriesDensity` is the base of the families built on them
(perturbation, von Mises, grid values).
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cached_property
from math import factorial

import numpy as np

from kmdflow.domains.torus import TWO_PI, fourier_series, from_fourier
from kmdflow.measures.base import Density, next_pow2

#: Relative size below which a Fourier coefficient is treated as zero (band-limit detection).
NEGLIGIBLE = 1e-20


class SeriesTable:
    r"""Evaluate a band-limited density and its cdf at many points, exact up to round-off.

    Parameters
    ----------
    coeffs : (K,) complex
        One-sided coefficients ``c_0 .. c_{K-1}`` of ``rho`` (``c_0`` the mass).

    Notes
    -----
    With :math:`G(x) = \sum_{k \ne 0} \frac{c_k}{ik} e^{ikx}` (periodic, :math:`G' = \rho - c_0`),

    .. math:: F(x) = \frac{c_0 x + G(x) - G(0)}{2\pi}, \qquad \rho(x) = c_0 + G'(x).

    Tables :math:`T_j(m) = G^{(j)}(x_m) h^j / j!` on a grid ``x_m = m h`` (``M >= 4K`` points, by
    FFT) give :math:`G(x_m + t h) = \sum_{j \le J} T_j(m) t^j` with :math:`|t| \le 1/2`. ``J`` is
    the smallest order whose remainder bound
    :math:`2\sum_k |c_k| k^{-1} z_k^{J+1} e^{z_k} / (J+1)!`, :math:`z_k = k h / 2`, is below
    ``1e-18`` (and the one for :math:`G'` below ``1e-17``), so the truncation is invisible next to
    round-off. Cost per point: ``J + 1`` table look-ups.
    """

    def __init__(self, coeffs: np.ndarray):
        c = np.asarray(coeffs, dtype=complex)
        n = c.size
        self.mass = float(c[0].real)
        size = next_pow2(max(1024, 16 * n)) if 16 * n <= (1 << 18) else next_pow2(4 * n)
        self.size, self.h = size, TWO_PI / size
        k = np.arange(1, n)
        g = np.zeros(n, dtype=complex)
        g[1:] = c[1:] / (1j * k)
        a, z = np.abs(c[1:]), k * self.h / 2
        order = 1
        while order < 60:
            rem_g = 2 * np.sum(a / k * z ** (order + 1) * np.exp(z)) / factorial(order + 1)
            rem_rho = 2 * np.sum(a * z ** order * np.exp(z)) / factorial(order)
            if rem_g <= 1e-18 and rem_rho <= 1e-17:
                break
            order += 1
        self.order = order
        kk = np.arange(n)
        self.rows = [from_fourier(g * (1j * kk * self.h) ** j / factorial(j), size)
                     for j in range(order + 1)]
        self._g0 = float(self.rows[0][0])

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(F(x), rho(x))`` at any real ``x``; shapes of ``x``."""
        x = np.asarray(x, dtype=float)
        s = x / self.h
        i = np.rint(s)
        t = s - i
        idx = np.mod(i, self.size).astype(np.intp)
        g = np.zeros(x.shape)
        dg = np.zeros(x.shape)
        for j in range(self.order, -1, -1):
            r = self.rows[j][idx]
            g = g * t + r
            if j >= 1:
                dg = dg * t + j * r
        return (self.mass * x + g - self._g0) / TWO_PI, self.mass + dg / self.h


def series_extrema(coeffs: np.ndarray, n_grid: int, n_candidates: int = 16) -> tuple[float, float]:
    """Minimum and maximum over the circle of the real series ``sum_k c_k e^{ikx}``.

    Parameters
    ----------
    coeffs : (K,) complex
        One-sided coefficients.
    n_grid : int
        Sampling points (use ``>= 16 K``); the best ``n_candidates`` local extrema of the samples
        are refined by Newton steps on the derivative (direct evaluation of the series).

    Returns
    -------
    (float, float)
        ``(min, max)``.
    """
    coeffs = np.asarray(coeffs, dtype=complex)
    samples = from_fourier(coeffs, n_grid)
    h = TWO_PI / n_grid
    out = []
    for sign in (-1.0, 1.0):
        v = sign * samples
        peak = (v >= np.roll(v, 1)) & (v >= np.roll(v, -1))
        idx = np.nonzero(peak)[0]
        idx = idx[np.argsort(v[idx])[::-1][:n_candidates]]
        x = idx * h
        for _ in range(8):
            d1 = fourier_series(coeffs, x, 1)
            d2 = fourier_series(coeffs, x, 2)
            ok = sign * d2 < 0
            step = np.where(ok, -d1 / np.where(ok, d2, 1.0), 0.0)
            x = x + np.clip(step, -h, h)
        refined = sign * fourier_series(coeffs, x)
        out.append(sign * max(float(v.max()), float(refined.max()) if refined.size else -np.inf))
    return out[0], out[1]


class SeriesDensity(Density):
    """A band-limited density given by its (truncated) one-sided series ``_series``."""

    @property
    @abstractmethod
    def _series(self) -> np.ndarray:
        """Coefficients ``c_0 .. c_{K-1}``, all later ones negligible."""

    @cached_property
    def _table(self) -> SeriesTable:
        return SeriesTable(self._series)

    @property
    def bandwidth(self) -> float:
        return float(self._series.size - 1)

    def cdf(self, x):
        return self._table.evaluate(x)[0]

    def values(self, x):
        return self._table.evaluate(x)[1]

    def cdf_and_values(self, x):
        return self._table.evaluate(x)
