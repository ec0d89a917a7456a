r"""Weighted atoms on the circle: :class:`Atoms` and :func:`atoms_from_raw`.

Positions in ``[0, 2 pi)`` and the Fourier convention: :mod:`kmdflow.domains.torus`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmdflow.domains.torus import TWO_PI, wrap
from kmdflow.measures.base import MeasureError, check_modes


@dataclass(frozen=True, eq=False)
class Atoms:
    r"""A weighted empirical measure ``mu = sum_j w_j delta_{X_j}`` on the circle.

    Parameters
    ----------
    positions : (N,) float
        Atom positions in ``[0, 2 pi)``.
    weights : (N,) float
        Positive weights summing to 1 (to ``1e-12``).

    Notes
    -----
    Fourier coefficients (convention of :mod:`kmdflow.domains.torus`):
    :math:`\hat\mu(k) = \sum_j w_j e^{-i k X_j}`.
    """

    positions: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        x = np.array(self.positions, dtype=float).reshape(-1)
        w = np.array(self.weights, dtype=float).reshape(-1)
        if x.size == 0:
            raise MeasureError("positions", "no atoms given; pass at least one position")
        if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x >= TWO_PI):
            raise MeasureError("positions", "positions must be finite and lie in [0, 2 pi); "
                               "map them there with kmdflow.domains.torus.wrap")
        if w.shape != x.shape:
            raise MeasureError("weights", f"{w.size} weights for {x.size} positions; give one "
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
        return int(self.positions.size)

    def fourier(self, n_modes: int) -> np.ndarray:
        r"""One-sided coefficients :math:`\hat\mu(0..n_{modes}-1)` by direct summation, ``O(N K)``.

        Returns
        -------
        (n_modes,) complex
        """
        n_modes = check_modes(n_modes)
        k = np.arange(n_modes)
        out = np.zeros(n_modes, dtype=complex)
        chunk = max(1, 2_000_000 // n_modes)
        for start in range(0, self.size, chunk):
            x = self.positions[start:start + chunk]
            out += self.weights[start:start + chunk] @ np.exp(-1j * np.outer(x, k))
        return out



def atoms_from_raw(positions: np.ndarray, weights: np.ndarray | None, position_key: str,
                   weight_key: str) -> Atoms:
    """Atoms from raw positions (wrapped) and optional raw weights (normalised; default 1/N).

    Parameters
    ----------
    positions : (N,) float
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
        weights = np.ones(positions.size)
    if weights.shape != positions.shape:
        raise MeasureError(weight_key, f"{weights.size} weights for {positions.size} positions; "
                           "give one weight per position")
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise MeasureError(weight_key, f"weights must be positive and finite (min "
                           f"{np.nanmin(weights):.3g}); remove the atoms with zero weight")
    if not np.all(np.isfinite(positions)):
        raise MeasureError(position_key, "contains NaN or infinite positions; give finite numbers")
    return Atoms(wrap(positions), weights / weights.sum())

