"""Small numerical helpers shared by kernels, integrators and summation (no project imports)."""

from __future__ import annotations

import numpy as np


def horner(coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``sum_j coefficients[j] x^j`` (lowest power first) by Horner's rule; shape of ``x``.

    One output array is reused; its dtype is that of ``x`` promoted with float (complex stays
    complex).
    """
    x = np.asarray(x)
    out = np.full(x.shape, coefficients[-1], dtype=np.result_type(x.dtype, np.float64))
    for c in coefficients[-2::-1]:
        out *= x
        out += c
    return out
