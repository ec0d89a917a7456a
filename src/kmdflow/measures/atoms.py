r"""Weighted atoms on the torus :math:`T^d`: :class:`Atoms` and :func:`atoms_from_raw`.

Positions in ``[0, 2 pi)^d``, the Fourier convention and the one-sided layout of
:meth:`Atoms.fourier_nd`: :mod:`kmdflow.domains.torus`. On the circle (``d = 1``) positions have
shape ``(N,)``; for ``d >= 2`` they have shape ``(N, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmdflow.domains.torus import TWO_PI, wrap
from kmdflow.measures.base import MeasureError, check_grid_size, check_modes


@dataclass(frozen=True, eq=False)
class Atoms:
    r"""A weighted empirical measure ``mu = sum_j w_j delta_{X_j}`` on the torus :math:`T^d`.

    Parameters
    ----------
    positions : (N,) or (N, d) float
        Atom positions in ``[0, 2 pi)`` (``d = 1``; an ``(N, 1)`` array is flattened to
        ``(N,)``) or in ``[0, 2 pi)^d`` (``(N, d)``, ``d >= 2``).
    weights : (N,) float
        Positive weights summing to 1 (to ``1e-12``).

    Notes
    -----
    Fourier coefficients (convention of :mod:`kmdflow.domains.torus`):
    :math:`\hat\mu(k) = \sum_j w_j e^{-i k \cdot X_j}`.
    """

    positions: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        x = np.array(self.positions, dtype=float)
        x = x if x.ndim == 2 and x.shape[1] >= 2 else x.reshape(-1)
        w = np.array(self.weights, dtype=float).reshape(-1)
        if x.size == 0:
            raise MeasureError("positions", "no atoms given; pass at least one position")
        if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x >= TWO_PI):
            raise MeasureError("positions", "positions must be finite and lie in [0, 2 pi); "
                               "map them there with kmdflow.domains.torus.wrap")
        if w.shape != x.shape[:1]:
            raise MeasureError("weights", f"{w.size} weights for {x.shape[0]} positions; give one "
                               "weight per position")
        if not np.all(np.isfinite(w)) or np.any(w <= 0) or abs(w.sum() - 1.0) > 1e-12:
            raise MeasureError("weights", f"weights must be positive and sum to 1 (sum = "
                               f"{w.sum()!r}); divide them by their sum")
        x.flags.writeable = False
        w.flags.writeable = False
        object.__setattr__(self, "positions", x)
        object.__setattr__(self, "weights", w)

    @property
    def size(self) -> int:
        """Number of atoms ``N``."""
        return int(self.positions.shape[0])

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the torus (``1`` for ``(N,)`` positions)."""
        return 1 if self.positions.ndim == 1 else int(self.positions.shape[1])

    def fourier(self, n_modes: int) -> np.ndarray:
        r"""One-sided coefficients :math:`\hat\mu(0..n_{modes}-1)` by direct summation, ``O(N K)``.

        ``d = 1`` only (:meth:`fourier_nd` serves every ``d``).

        Returns
        -------
        (n_modes,) complex
        """
        if self.dim != 1:
            raise MeasureError("n_modes", f"fourier() is for atoms on the circle; these live in "
                               f"d = {self.dim}: use fourier_nd(n)")
        n_modes = check_modes(n_modes)
        k = np.arange(n_modes)
        out = np.zeros(n_modes, dtype=complex)
        chunk = max(1, 2_000_000 // n_modes)
        for start in range(0, self.size, chunk):
            x = self.positions[start:start + chunk]
            out += self.weights[start:start + chunk] @ np.exp(-1j * np.outer(x, k))
        return out

    def fourier_nd(self, n: int, eps: float = 1e-14) -> np.ndarray:
        r"""Coefficients :math:`\hat\mu(k)` in the one-sided layout of an ``n^d`` grid.

        Parameters
        ----------
        n : int
            Grid points per axis, ``>= 2``.
        eps : float
            Accuracy of the type-1 NUFFT (``finufft``) used for ``d >= 2``, relative to the
            total weight 1; ``d = 1`` uses the direct sums of :meth:`fourier`.

        Returns
        -------
        (n,) * (d - 1) + (n // 2 + 1,) complex
            Layout of :mod:`kmdflow.domains.torus`; the Nyquist planes (even ``n``) are zero.
        """
        n = check_grid_size(n)
        if self.dim == 1:
            out = self.fourier(n // 2 + 1)
            if n % 2 == 0:
                out[-1] = 0.0
            return out
        import finufft

        if self.dim > 3:
            raise MeasureError("positions", f"fourier_nd supports d <= 3, not d = {self.dim}")
        transform = finufft.nufft2d1 if self.dim == 2 else finufft.nufft3d1
        coords = [np.ascontiguousarray(self.positions[:, i]) for i in range(self.dim)]
        full = transform(*coords, self.weights.astype(complex), (n,) * self.dim, eps=eps,
                         isign=-1, modeord=1)
        out = np.ascontiguousarray(full[..., : n // 2 + 1])
        if n % 2 == 0:
            for axis in range(self.dim):
                index = [slice(None)] * self.dim
                index[axis] = n // 2
                out[tuple(index)] = 0.0
        return out



def atoms_from_raw(positions: np.ndarray, weights: np.ndarray | None, position_key: str,
                   weight_key: str) -> Atoms:
    """Atoms from raw positions (wrapped) and optional raw weights (normalised; default 1/N).

    Parameters
    ----------
    positions : (N,) or (N, d) float
        Any real positions; wrapped into ``[0, 2 pi)``.
    weights : (N,) float or None
        Positive weights, divided by their sum here; ``None`` gives ``1/N`` each.
    position_key, weight_key : str
        Parameter names reported in a :class:`MeasureError`.

    Returns
    -------
    Atoms
    """
    if weights is None:
        weights = np.ones(positions.shape[0])
    if weights.shape != positions.shape[:1]:
        raise MeasureError(weight_key, f"{weights.size} weights for {positions.shape[0]} positions; "
                           "give one weight per position")
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise MeasureError(weight_key, f"weights must be positive and finite (min "
                           f"{np.nanmin(weights):.3g}); remove the atoms with zero weight")
    if not np.all(np.isfinite(positions)):
        raise MeasureError(position_key, "contains NaN or infinite positions; give finite numbers")
    return Atoms(wrap(positions), weights / weights.sum())

