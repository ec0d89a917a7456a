r"""Real trigonometric polynomials on :math:`T^d` from a sparse list of terms: :class:`TrigSeries`.

A series is ``f(x) = sum_w c_w exp(i k_w . x)`` over a finite set of wavevectors that is closed
under ``k -> -k`` with ``c_{-k} = conj(c_k)``, so ``f`` is real (conventions of
:mod:`kmdflow.domains.torus`). The module evaluates such series at many points (direct sums, or a
type-2 NUFFT through ``finufft`` when that is cheaper), scatters them into the one-sided layout
of an ``n^d`` grid, and finds their extrema (:func:`trig_extrema`). The band-limited densities of
:mod:`kmdflow.measures.series_nd` are built on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.fft as sfft
from scipy.ndimage import maximum_filter

from kmdflow.domains.torus import TWO_PI, from_fourier_nd, wrap

#: Points x terms up to which direct summation is used (above: the NUFFT).
DIRECT_WORK = 4_000_000
#: Largest dense mode array (entries) handed to the NUFFT; larger series are summed directly.
DENSE_LIMIT = 1 << 25
#: Requested accuracy of the NUFFT, relative to the sum of ``|c_w|``.
NUFFT_EPS = 1e-14
#: Largest number of samples (all axes together) of the grid that :func:`trig_extrema` searches.
EXTREMA_SAMPLES = 1 << 24


@dataclass(frozen=True, eq=False)
class TrigSeries:
    r"""A real trigonometric polynomial :math:`f(x) = \sum_w c_w e^{i k_w \cdot x}` on :math:`T^d`.

    Parameters
    ----------
    waves : (W, d) int
        Distinct wavevectors, the set closed under ``k -> -k``.
    coefs : (W,) complex
        Coefficients with ``c(-k) = conj(c(k))``.
    """

    waves: np.ndarray
    coefs: np.ndarray

    def __post_init__(self):
        waves = np.asarray(self.waves).astype(np.int32)
        if waves.ndim != 2:
            raise ValueError(f"waves of shape {waves.shape}: expected (W, d)")
        object.__setattr__(self, "waves", waves)
        object.__setattr__(self, "coefs", np.asarray(self.coefs, dtype=complex).reshape(-1))

    @property
    def dim(self) -> int:
        """Dimension ``d``."""
        return int(self.waves.shape[1])

    @property
    def radius(self) -> int:
        """Largest ``|k_i|`` over all terms and axes (0 for a constant)."""
        return int(np.abs(self.waves).max()) if self.waves.size else 0

    def marginal(self, axes: int) -> TrigSeries:
        """The terms with ``k_i = 0`` for every axis ``i >= axes``, on the first ``axes`` axes.

        For a density this is the marginal density of ``(x_1 .. x_axes)`` (integrating a term
        over an axis where its component is non-zero gives 0).
        """
        keep = np.all(self.waves[:, axes:] == 0, axis=1)
        return TrigSeries(self.waves[keep, :axes], self.coefs[keep])

    def evaluate(self, points: np.ndarray, coef_sets: np.ndarray | None = None) -> np.ndarray:
        """``Re sum_w c_w exp(i k_w . x)`` at each point, for one or several coefficient sets.

        Parameters
        ----------
        points : (M, d) float
            Evaluation points (any real numbers; the series is periodic).
        coef_sets : (T, W) complex, optional
            Coefficient sets on the same wavevectors (default: ``coefs``, then the result is
            ``(M,)``).

        Returns
        -------
        (T, M) or (M,) float
        """
        points = np.asarray(points, dtype=float).reshape(-1, self.dim)
        single = coef_sets is None
        sets = self.coefs[None, :] if single else np.asarray(coef_sets, dtype=complex)
        if points.shape[0] == 0:
            out = np.zeros((sets.shape[0], 0))
        elif self._use_nufft(points.shape[0]):
            out = self._evaluate_nufft(points, sets)
        else:
            out = self._evaluate_direct(points, sets)
        return out[0] if single else out

    def _use_nufft(self, n_points: int) -> bool:
        dense = (2 * self.radius + 1) ** self.dim
        return (n_points * self.waves.shape[0] > DIRECT_WORK and dense <= DENSE_LIMIT
                and dense < 4 * n_points * self.waves.shape[0])

    @cached_property
    def _half(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, waves, multiplicity)``: one term of each pair ``+-k`` (weight 2) and ``k = 0``.

        The kept term of a pair is the one whose first non-zero component is positive; direct
        sums over these, with the weights, give the real series at half the cost.
        """
        first = np.zeros(self.waves.shape[0], dtype=self.waves.dtype)
        for i in range(self.dim - 1, -1, -1):
            first = np.where(self.waves[:, i] != 0, self.waves[:, i], first)
        rows = np.flatnonzero(first >= 0)
        return rows, self.waves[rows].astype(float), np.where(first[rows] > 0, 2.0, 1.0)

    def _evaluate_direct(self, points, sets):
        rows, k, mult = self._half
        sets = sets[:, rows] * mult
        out = np.empty((sets.shape[0], points.shape[0]))
        chunk = max(1, 2_000_000 // max(1, rows.size))
        for start in range(0, points.shape[0], chunk):
            phase = points[start:start + chunk] @ k.T
            out[:, start:start + chunk] = (sets.real @ np.cos(phase).T - sets.imag @ np.sin(phase).T)
        return out

    def _evaluate_nufft(self, points, sets):
        import finufft

        r = self.radius
        dense = np.zeros((sets.shape[0],) + (2 * r + 1,) * self.dim, dtype=complex)
        dense[(slice(None), *(self.waves + r).T)] = sets
        coords = [np.ascontiguousarray(wrap(points[:, i])) for i in range(self.dim)]
        transform = (finufft.nufft1d2, finufft.nufft2d2, finufft.nufft3d2)[self.dim - 1]
        values = transform(*coords, dense if sets.shape[0] > 1 else dense[0], eps=NUFFT_EPS, isign=1)
        return np.asarray(values.real).reshape(sets.shape[0], -1)

    def layout(self, n: int) -> np.ndarray:
        """The coefficients in the one-sided layout of an ``n^d`` grid (:mod:`~kmdflow.domains.torus`).

        Terms with ``k_d >= 0`` and every ``|k_i| < n / 2`` are stored (exactly); the rest are
        mirror images (``k_d < 0``) or outside the layout (dropped, Nyquist planes included).

        Returns
        -------
        (n,) * (d - 1) + (n // 2 + 1,) complex
        """
        d = self.dim
        out = np.zeros((n,) * (d - 1) + (n // 2 + 1,), dtype=complex)
        keep = (self.waves[:, -1] >= 0) & np.all(2 * np.abs(self.waves) < n, axis=1)
        w = self.waves[keep]
        index = tuple(np.mod(w[:, i], n) for i in range(d - 1)) + (w[:, -1],)
        out[index] = self.coefs[keep]
        return out

    def derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Value, gradient and Hessian at a few points by direct sums.

        Parameters
        ----------
        x : (C, d) float

        Returns
        -------
        value : (C,) float
        gradient : (C, d) float
        hessian : (C, d, d) float
        """
        x = np.asarray(x, dtype=float).reshape(-1, self.dim)
        c, d = x.shape
        rows, waves, mult = self._half
        value, grad, hess = np.zeros(c), np.zeros((c, d)), np.zeros((c, d, d))
        chunk = max(1, 4_000_000 // max(1, c))
        for start in range(0, rows.size, chunk):
            k = waves[start:start + chunk]
            coef = self.coefs[rows[start:start + chunk]] * mult[start:start + chunk]
            phase = x @ k.T
            cos, sin = np.cos(phase), np.sin(phase)
            term = cos * coef.real - sin * coef.imag  # Re c e^{i phase}
            slope = -(sin * coef.real + cos * coef.imag)  # its derivative in phase
            value += term.sum(axis=1)
            grad += slope @ k
            for i in range(d):
                for j in range(i, d):
                    hess[:, i, j] -= term @ (k[:, i] * k[:, j])
        upper = np.triu_indices(d, 1)
        hess[:, upper[1], upper[0]] = hess[:, upper[0], upper[1]]
        return value, grad, hess


def trig_extrema(series: TrigSeries, n_candidates: int = 8) -> tuple[float, float]:
    """Minimum and maximum over :math:`T^d` of a real trigonometric polynomial.

    Parameters
    ----------
    series : TrigSeries
    n_candidates : int
        Local extrema of the samples refined per sign.

    Returns
    -------
    (float, float)
        ``(min, max)``.

    Notes
    -----
    The series is sampled on the ``M^d`` grid, ``M`` = :func:`extrema_grid_size` (at least
    ``2 R + 2`` for the radius ``R``, so the samples are exact values of the polynomial). The
    ``n_candidates`` largest local maxima of ``+-f`` (3^d-neighbourhood, periodic) are refined by
    Newton steps on the gradient (direct sums; a step is taken only where the Hessian is definite
    with the right sign, and is clipped to one grid cell per axis). The result is the best of the
    samples and the refined points, so it never does worse than the grid.
    """
    m = extrema_grid_size(series)
    samples = from_fourier_nd(series.layout(m), m)
    h = TWO_PI / m
    out = []
    for sign in (-1.0, 1.0):
        v = sign * samples
        peaks = np.flatnonzero(v == maximum_filter(v, size=3, mode="wrap"))
        best = peaks[np.argsort(v.flat[peaks])[::-1][:n_candidates]]
        x = np.stack(np.unravel_index(best, v.shape), axis=1) * h
        for _ in range(10):
            _, grad, hess = series.derivatives(x)
            step = np.zeros_like(x)
            for i in range(x.shape[0]):
                eig = np.linalg.eigvalsh(sign * hess[i])
                if eig.max() < 0:
                    step[i] = -np.linalg.solve(hess[i], grad[i])
            x = x + np.clip(step, -h, h)
            if np.abs(step).max() < 1e-10:  # Newton: the value is then exact to round-off
                break
        refined = sign * series.derivatives(x)[0]
        out.append(sign * max(float(v.max()), float(refined.max())))
    return out[0], out[1]


def extrema_grid_size(series: TrigSeries) -> int:
    """Samples per axis used by :func:`trig_extrema`: even, ``>= max(64, 2 R + 2)``.

    ``8 R`` (8 samples per shortest wavelength) when ``(8 R)^d`` fits in
    :data:`EXTREMA_SAMPLES`, else as many as fit, but never fewer than ``2 R + 2``; rounded up to
    an even FFT-friendly size (``scipy.fft.next_fast_len``).
    """
    r = series.radius
    cap = int(np.floor(EXTREMA_SAMPLES ** (1.0 / series.dim) + 1e-9))
    target = max(64, min(8 * r, cap), 2 * r + 2)
    return 2 * sfft.next_fast_len(-(-target // 2))
