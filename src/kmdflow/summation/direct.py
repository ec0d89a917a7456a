r"""Direct ``O(N M)`` particle sums with the exact kernel: the slow reference, any ``s``.

Conventions (positions, charges): :mod:`kmdflow.domains.torus`; the sums are over signed charges,
so a target measure is included by appending its atoms with negative charges.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_particles", "direct_force", "direct_potential"]

#: Number of ``(targets x sources)`` float64 temporaries the kernel evaluation holds at once.
_TEMPORARIES = 4
#: Tiles larger than this (bytes) gain nothing: the kernel evaluation then streams from memory
#: instead of cache (measured here: 2 MB tiles are 2-4x faster than 64 MB ones).
_FAST_TILE_BYTES = 2e6


def as_particles(targets, sources, charges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert particle sums' inputs to float64 1-d arrays.

    Raises
    ------
    ValueError
        Naming the argument when a shape is wrong or a value is not finite.
    """
    x = np.asarray(targets, dtype=float)
    y = np.asarray(sources, dtype=float)
    q = np.asarray(charges, dtype=float)
    for name, arr in (("targets", x), ("sources", y), ("charges", q)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-d array (shape (N,)), got shape {arr.shape}; "
                             f"pass positions on T^1 as a flat array")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains non-finite values (first at index "
                             f"{int(np.argmin(np.isfinite(arr)))}); pass finite numbers")
    if q.shape != y.shape:
        raise ValueError(f"charges must have the shape of sources, got charges {q.shape} and "
                         f"sources {y.shape}; pass one charge per source")
    return x, y, q


def _blocked_sum(evaluate, targets, sources, charges, max_block_bytes: float) -> np.ndarray:
    """``out_i = sum_j charges_j * evaluate(targets_i - sources_j)`` in memory-bounded tiles."""
    x, y, q = as_particles(targets, sources, charges)
    n, m = x.size, y.size
    out = np.zeros(n)
    if n == 0 or m == 0:
        return out
    if not max_block_bytes > 0:
        raise ValueError(f"max_block_bytes must be positive, got {max_block_bytes!r}")
    tile = max(1, int(min(max_block_bytes, _FAST_TILE_BYTES)) // (8 * _TEMPORARIES))  # elements
    cols = min(m, tile)
    rows = max(1, min(n, tile // cols))
    for j0 in range(0, m, cols):
        ys, qs = y[j0:j0 + cols], q[j0:j0 + cols]
        for i0 in range(0, n, rows):
            diff = np.subtract.outer(x[i0:i0 + rows], ys)
            # einsum, not BLAS: threaded gemv stalls when the cores are shared, and this
            # product costs a few percent of the kernel evaluation anyway
            out[i0:i0 + rows] += np.einsum("ij,j->i", evaluate(diff), qs)
    return out


def direct_force(kernel, targets, sources, charges, *, max_block_bytes: float = 64e6) -> np.ndarray:
    r"""Force ``F_i = sum_j q_j K'(x_i - y_j)`` by direct summation.

    Parameters
    ----------
    kernel : SobolevKernel
        Any object with ``derivative(x)`` (odd, periodic, ``K'(0) := 0``).
    targets : (N,) float
        Evaluation points ``x_i``, any real numbers (wrapped by the kernel).
    sources : (M,) float
        Atom positions ``y_j``.
    charges : (M,) float
        Signed charges ``q_j`` (e.g. weights ``w`` and ``-u`` for a particle target).
    max_block_bytes : float
        Bound on the memory of the ``(targets x sources)`` temporaries.

    Returns
    -------
    (N,) float
        ``F_i``; the velocity of the Wasserstein flow is ``-F``.

    Notes
    -----
    Cost ``O(N M)`` kernel evaluations; a source exactly at a target contributes ``K'(0) = 0``.
    """
    return _blocked_sum(kernel.derivative, targets, sources, charges, max_block_bytes)


def direct_potential(kernel, targets, sources, charges, *,
                     max_block_bytes: float = 64e6) -> np.ndarray:
    r"""Potential ``psi_i = sum_j q_j K(x_i - y_j)`` by direct summation.

    Parameters
    ----------
    kernel : SobolevKernel
        Any object with ``profile(x)``.
    targets : (N,) float
        Evaluation points ``x_i``.
    sources : (M,) float
        Atom positions ``y_j``.
    charges : (M,) float
        Signed charges ``q_j``.
    max_block_bytes : float
        Bound on the memory of the ``(targets x sources)`` temporaries.

    Returns
    -------
    (N,) float
        ``psi_i``; a source at a target contributes ``q_j K(0) = 2 zeta(2s) q_j`` (infinite for
        ``s <= 1/2``).

    Notes
    -----
    ``psi = K * m`` for ``m = sum_j q_j delta_(y_j)``; a uniform background adds nothing since
    ``K`` has mean zero.
    """
    return _blocked_sum(kernel.profile, targets, sources, charges, max_block_bytes)
