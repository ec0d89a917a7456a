r"""Densities on :math:`T^d`, ``d >= 2``: the base class :class:`DensityND` and shared checks.

Positions, the normalisation (w.r.t. ``dx / (2 pi)^d``: the uniform measure has density ``1``),
the Fourier convention and the one-sided ``rfftn`` layout that :meth:`DensityND.fourier_nd`
returns are those of :mod:`kmdflow.domains.torus`.

Sampling is one map per family, :meth:`DensityND.transform`, from rows of uniforms in
``[0, 1)^m`` (``m = n_uniforms``: ``d``, or ``d + 1`` for mixtures) to positions. For i.i.d.
uniforms it gives i.i.d. samples of the density; for a Sobol' sequence it gives low-discrepancy
points (:mod:`kmdflow.measures.uniforms`). Each family's map is exact: the inverse cdf per axis
for product densities, the chain of conditional inverse cdfs (Rosenblatt transform) otherwise.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from kmdflow.domains.torus import TWO_PI
from kmdflow.measures.base import MeasureError, TorusDensity, check_grid_size

#: The largest double below ``2 pi``: positions are clipped to it so they stay in ``[0, 2 pi)``.
LAST_POSITION = float(np.nextafter(TWO_PI, 0.0))


class DensityND(TorusDensity):
    """A probability density on :math:`T^d`, ``d >= 2`` (conventions: ``domains/torus``).

    Subclasses implement :attr:`dim`, :meth:`fourier_nd`, :meth:`_values` (on ``(M, d)`` points),
    :meth:`transform`, the extrema and :meth:`regularity`; this class supplies the checks and
    :meth:`sample`.
    """

    @property
    def n_uniforms(self) -> int:
        """Uniforms per position consumed by :meth:`transform` (``d`` unless stated)."""
        return self.dim

    @property
    def bandwidth(self) -> float:
        """Largest ``|k_i|`` with a non-negligible coefficient (``inf``: not band-limited)."""
        return np.inf

    @abstractmethod
    def _values(self, points: np.ndarray) -> np.ndarray:
        """Density at ``(M, d)`` points (already checked), shape ``(M,)``."""

    @abstractmethod
    def transform(self, u: np.ndarray) -> np.ndarray:
        """Map uniforms to positions distributed as the density.

        Parameters
        ----------
        u : (N, n_uniforms) float
            Rows in ``[0, 1)^n_uniforms``.

        Returns
        -------
        (N, d) float
            Positions in ``[0, 2 pi)^d``; i.i.d. rows of ``u`` give i.i.d. samples.
        """

    def values(self, points: np.ndarray) -> np.ndarray:
        """Density at ``points`` of shape ``(..., d)`` (periodic); returns shape ``(...)``."""
        points = np.asarray(points, dtype=float)
        if points.ndim == 0 or points.shape[-1] != self.dim:
            raise MeasureError("points", f"shape {points.shape}: in d = {self.dim} give points of "
                               f"shape (..., {self.dim})")
        return self._values(points.reshape(-1, self.dim)).reshape(points.shape[:-1])

    def sample(self, n: int, seed: int, method: str = "random") -> np.ndarray:
        """``transform(uniform_points(n, n_uniforms, seed, method))``: shape ``(n, d)``."""
        from kmdflow.measures.uniforms import uniform_points

        return self.transform(uniform_points(n, self.n_uniforms, seed, method))


def layout_shape(n: int, dim: int) -> tuple[int, ...]:
    """Shape ``(n,) * (dim - 1) + (n // 2 + 1,)`` of the one-sided layout (``n`` checked)."""
    n = check_grid_size(n)
    return (n,) * (dim - 1) + (n // 2 + 1,)


def axis_vector(name: str, value, dim: int) -> tuple[float, ...]:
    """A float, or ``dim`` floats, as a tuple of ``dim`` finite floats (else :class:`MeasureError`)."""
    arr = np.asarray(value, dtype=float) if not isinstance(value, bool) else np.array(np.nan)
    if arr.ndim == 0:
        arr = np.full(dim, float(arr))
    if arr.shape != (dim,):
        raise MeasureError(name, f"{name} = {value!r}: in d = {dim} give one number or a list of "
                           f"{dim} numbers")
    if not np.all(np.isfinite(arr)):
        raise MeasureError(name, f"{name} = {value!r}: must be finite")
    return tuple(float(v) for v in arr)


def clip_positions(x: np.ndarray) -> np.ndarray:
    """Positions clipped to ``[0, LAST_POSITION]`` (round-off can reach ``2 pi``)."""
    return np.clip(x, 0.0, LAST_POSITION)
