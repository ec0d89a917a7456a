r"""Densities given by values on a grid: :class:`GridDensity` (circle), :class:`GridDensityND`.

Grid (``x_m = 2 pi m / n`` on each axis), normalisation and FFT convention:
:mod:`kmdflow.domains.torus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.fft as sfft

from kmdflow.domains.torus import FFT_WORKERS, to_fourier
from kmdflow.measures.base import MeasureError, next_pow2, padded
from kmdflow.measures.series import SeriesDensity, series_extrema
from kmdflow.measures.series_nd import SeriesDensityND
from kmdflow.measures.trig import TrigSeries


@dataclass(frozen=True, eq=False)
class GridDensity(SeriesDensity):
    r"""A density given by values on the grid ``x_m = 2 pi m / n`` (e.g. read from a file).

    Parameters
    ----------
    grid_values : (n,) float
        Nonnegative finite values with a positive mean; they are **divided by their mean** so the
        mass (``mean`` on the grid, exact for the interpolant) is 1.

    Notes
    -----
    The density is the trigonometric interpolant of the normalised values:
    coefficients ``rfft(values) / n``, the Nyquist term (even ``n``) split evenly between
    ``k = +-n/2`` so the interpolant is real. Values between grid points may dip slightly below
    zero when the data are rough (Gibbs); :meth:`min_value` reports the interpolant's minimum.
    The regularity is unknown (``None``).
    """

    grid_values: np.ndarray

    def __post_init__(self):
        v = np.array(self.grid_values, dtype=float)
        if v.ndim != 1 or v.size == 0:
            raise MeasureError("grid_values", f"shape {v.shape}: expected (n,) values on the grid")
        object.__setattr__(self, "grid_values", normalised_grid_values(v))

    @cached_property
    def _series(self):
        c = to_fourier(self.grid_values).astype(complex)
        n = self.grid_values.size
        if n % 2 == 0 and n > 1:
            c[-1] = 0.5 * c[-1].real
        c[0] = 1.0
        return c

    def fourier(self, n_modes):
        return padded(self._series, n_modes)

    @cached_property
    def _extrema(self):
        return series_extrema(self._series, next_pow2(max(4096, 32 * self._series.size)))

    def min_value(self):
        return self._extrema[0]

    def max_value(self):
        return self._extrema[1]

    def regularity(self):
        return None



@dataclass(frozen=True, eq=False)
class GridDensityND(SeriesDensityND):
    r"""A density on :math:`T^d`, ``d >= 2``, given by values on the ``n^d`` grid.

    Parameters
    ----------
    grid_values : (n,) * d float
        Nonnegative finite values (``indexing="ij"``, ``x_m = 2 pi m / n`` on each axis) with a
        positive mean; they are **divided by their mean** (mass 1).

    Notes
    -----
    The density is the trigonometric interpolant of the normalised values: coefficients
    ``fftn(values) / n^d`` for ``|k_i| < n/2``; for even ``n`` a coefficient with ``m``
    components at the Nyquist wavenumber is shared equally by the ``2^m`` wavevectors ``+-n/2``
    on those axes, so the interpolant is real and matches the values at the grid points. It may
    dip below zero between grid points for rough data (Gibbs). ``r*`` is unknown (``None``).
    """

    grid_values: np.ndarray

    def __post_init__(self):
        v = np.array(self.grid_values, dtype=float)
        if v.ndim < 2 or len(set(v.shape)) != 1 or v.shape[0] < 2:
            raise MeasureError("grid_values", f"shape {v.shape}: expected (n,) * d values, d >= 2, "
                               "n >= 2")
        object.__setattr__(self, "grid_values", normalised_grid_values(v))

    @property
    def dim(self):
        return self.grid_values.ndim

    @cached_property
    def series(self):
        v = self.grid_values
        n, d = v.shape[0], v.ndim
        full = sfft.fftn(v, workers=FFT_WORKERS) / v.size
        r = n // 2
        k = np.arange(-r, r + 1)  # even n: -n/2 .. n/2 (Nyquist shared); odd n: all modes
        share = np.where(np.abs(k) * 2 == n, 0.5, 1.0)
        for axis in range(d):
            shape = [1] * d
            shape[axis] = k.size
            full = np.take(full, np.mod(k, n), axis=axis) * share.reshape(shape)
        waves = np.stack(np.meshgrid(*[k] * d, indexing="ij"), axis=-1).reshape(-1, d)
        coefs = full.reshape(-1)
        keep = coefs != 0
        keep[waves.shape[0] // 2] = True  # k = 0
        coefs[waves.shape[0] // 2] = 1.0
        return TrigSeries(waves[keep], coefs[keep])

    def regularity(self):
        return None


def normalised_grid_values(values: np.ndarray) -> np.ndarray:
    """Grid values (any shape, already checked) divided by their mean, read-only.

    Raises :class:`MeasureError` (key ``"grid_values"``) if a value is not finite or negative, or
    if the mean is not positive.
    """
    if not np.all(np.isfinite(values)):
        raise MeasureError("grid_values", "contains NaN or infinite values; replace them")
    if np.any(values < 0):
        raise MeasureError("grid_values", f"negative density values (min {values.min():.3g}); a "
                           "density must be >= 0: clip the data at 0")
    mean = values.mean()
    if not mean > 0:
        raise MeasureError("grid_values", "total mass is 0; the density cannot be normalised")
    out = values / mean
    out.flags.writeable = False
    return out
