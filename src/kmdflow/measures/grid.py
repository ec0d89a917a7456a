r"""A density given by its values on the grid ``x_m = 2 pi m / n``: :class:`GridDensity`.

Grid, normalisation and FFT convention: :mod:`kmdflow.domains.torus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kmdflow.domains.torus import to_fourier
from kmdflow.measures.base import MeasureError, next_pow2, padded
from kmdflow.measures.series import SeriesDensity, series_extrema


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
        if not np.all(np.isfinite(v)):
            raise MeasureError("grid_values", "contains NaN or infinite values; replace them")
        if np.any(v < 0):
            raise MeasureError("grid_values", f"negative density values (min {v.min():.3g}); a "
                               "density must be >= 0: clip the data at 0")
        mean = v.mean()
        if not mean > 0:
            raise MeasureError("grid_values", "total mass is 0; the density cannot be normalised")
        v = v / mean
        v.flags.writeable = False
        object.__setattr__(self, "grid_values", v)

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

