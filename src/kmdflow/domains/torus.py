r"""The torus :math:`T^d = R^d / (2\pi Z)^d` and the project's conventions, stated once.

Every other docstring points here.

Positions
    Stored in ``[0, 2 pi)``; :func:`wrap` maps any real number there.
Measures and densities
    Probability measures (Wasserstein case). A density ``rho`` is taken with respect to the
    *normalised* Lebesgue measure ``dx / (2 pi)^d``, so the uniform probability measure has
    density ``1`` and ``mass = mean(rho)`` on a grid.
Fourier coefficients
    ``mu_hat(k) = \int exp(-i k x) dmu(x)`` for ``k`` in ``Z^d``, so ``mu_hat(0)`` is the mass and
    ``rho(x) = sum_k mu_hat(k) exp(i k x)``. For particles with weights ``w_j``:
    ``mu_hat(k) = sum_j w_j exp(-i k X_j)``.
Grid and FFT
    A grid has ``n`` points per axis, ``x_m = 2 pi m / n`` (``m = 0 .. n-1``). Then
    ``mu_hat(k) = fft(rho)[k] / n`` (numpy's forward sign ``exp(-2 pi i k m / n)``, divided by
    ``n``). Real data is stored by its one-sided spectrum ``rfft(rho) / n`` with wavenumbers
    ``k = 0 .. n // 2`` (:func:`wavenumbers`); :func:`to_fourier` and :func:`from_fourier` are
    the only places that apply the ``1/n`` factor. The Nyquist mode ``k = n/2`` (even ``n``) is
    kept at zero by the solvers so that derivatives stay real.
Inner products
    With this normalisation Parseval reads ``mean(f g) = sum_k f_hat(k) conj(g_hat(k))``, the sum
    over all ``k`` in ``Z`` (one-sided sums count ``k > 0`` twice).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

TWO_PI = 2.0 * np.pi

#: Worker threads handed to ``scipy.fft``.
FFT_WORKERS = -1


def wrap(x: np.ndarray) -> np.ndarray:
    """Map positions to ``[0, 2 pi)``; shape preserved."""
    y = np.mod(x, TWO_PI)
    # np.mod can return exactly 2 pi for tiny negative inputs
    return np.where(y >= TWO_PI, 0.0, y)


def grid(n: int) -> np.ndarray:
    """Grid points ``x_m = 2 pi m / n``, shape ``(n,)``."""
    return TWO_PI * np.arange(n) / n


def wavenumbers(n: int) -> np.ndarray:
    """Integer wavenumbers ``0 .. n // 2`` of the one-sided spectrum, shape ``(n // 2 + 1,)``."""
    return np.arange(n // 2 + 1)


def to_fourier(values: np.ndarray) -> np.ndarray:
    """One-sided Fourier coefficients ``rfft(values) / n`` of grid values, shape ``(n//2+1,)``."""
    n = values.shape[-1]
    return sfft.rfft(values, workers=FFT_WORKERS) / n


def from_fourier(coeffs: np.ndarray, n: int) -> np.ndarray:
    """Grid values ``sum_k coeffs(k) exp(i k x_m)`` on ``n`` points (inverse of :func:`to_fourier`).

    ``coeffs`` may hold fewer or more modes than ``n // 2 + 1``; it is zero-padded or truncated,
    which is how spectral interpolation to a finer grid is done. A Nyquist coefficient (even ``n``)
    enters once, through its real part.
    """
    return sfft.irfft(coeffs * n, n, workers=FFT_WORKERS)


def fourier_series(coeffs: np.ndarray, x: np.ndarray, derivative: int = 0) -> np.ndarray:
    """Evaluate the real series ``sum_k c_k e^{ikx}`` (one-sided ``coeffs``) or a derivative at ``x``.

    Direct summation, ``O(len(x) * len(coeffs))``, chunked; meant for few points or few modes.

    Parameters
    ----------
    coeffs : (K,) complex
        One-sided coefficients ``c_0 .. c_{K-1}`` of a real function.
    x : (M,) float
        Evaluation points.
    derivative : int
        Order of the x-derivative.
    """
    x = np.asarray(x, dtype=float)
    k = np.arange(coeffs.shape[-1])
    c = coeffs * (1j * k) ** derivative
    weights = np.where(k == 0, 1.0, 2.0)
    out = np.empty(x.shape)
    flat_x, flat_out = x.ravel(), out.ravel()
    chunk = max(1, 2_000_000 // max(1, k.size))
    for start in range(0, flat_x.size, chunk):
        xs = flat_x[start:start + chunk]
        flat_out[start:start + chunk] = (np.exp(1j * np.outer(xs, k)) @ (weights * c)).real
    return flat_out.reshape(x.shape)


# -- d dimensions ---------------------------------------------------------------------------------
# Layout of one-sided spectra in d dimensions (numpy's rfftn): for ``n`` points per axis the
# coefficient array has shape ``(n,) * (d - 1) + (n // 2 + 1,)``; along the first ``d - 1`` axes
# index ``m`` holds wavenumber ``m`` for ``m < n/2`` and ``m - n`` above (``fftfreq`` order), along the
# last axis index ``m`` holds ``m >= 0``. Coefficients are ``rfftn(values) / n^d``. Sums over all of
# ``Z^d`` count the entries with last index ``0 < m < n/2`` twice (their mirror images ``-k`` are not
# stored).


def wavevectors(n: int, dim: int) -> tuple[np.ndarray, ...]:
    """Integer wavevector components of the one-sided layout, broadcastable: ``dim`` arrays."""
    axes = [np.rint(np.fft.fftfreq(n, 1.0 / n)).astype(int)] * (dim - 1) + [np.arange(n // 2 + 1)]
    return tuple(np.meshgrid(*axes, indexing="ij", sparse=True))


def one_sided_multiplicity(n: int, dim: int) -> np.ndarray:
    """How often each stored coefficient counts in a sum over ``Z^d``: 1 or 2, shape of the layout."""
    last = np.full(n // 2 + 1, 2.0)
    last[0] = 1.0
    if n % 2 == 0:
        last[-1] = 1.0
    return np.broadcast_to(last, (n,) * (dim - 1) + (n // 2 + 1,)).copy()


def to_fourier_nd(values: np.ndarray) -> np.ndarray:
    """One-sided coefficients ``rfftn(values) / n^d`` of values on an ``n^d`` grid."""
    return sfft.rfftn(values, workers=FFT_WORKERS) / values.size


def resize_spectrum(coeffs: np.ndarray, n_new: int) -> np.ndarray:
    """Zero-pad or truncate a one-sided d-dimensional spectrum to the layout of ``n_new`` points.

    Keeps every wavevector with all components ``|k_i| < min(n, n_new) / 2`` (Nyquist planes are
    dropped), so that padding then truncating returns the original for band-limited data.
    """
    dim = coeffs.ndim
    n_old = coeffs.shape[0] if dim > 1 else 2 * (coeffs.shape[0] - 1)
    keep = min(n_old, n_new) // 2  # components 0 .. keep-1 and -(keep-1) .. -1
    out = np.zeros((n_new,) * (dim - 1) + (n_new // 2 + 1,), dtype=complex)
    index = [np.r_[0:keep, -(keep - 1):0] if keep > 1 else np.r_[0:keep]] * (dim - 1) + [np.r_[0:keep]]
    out[np.ix_(*index)] = coeffs[np.ix_(*index)]
    return out


def from_fourier_nd(coeffs: np.ndarray, n: int) -> np.ndarray:
    """Values on the ``n^d`` grid of a one-sided spectrum (any size: padded or truncated first)."""
    dim = coeffs.ndim
    if coeffs.shape != (n,) * (dim - 1) + (n // 2 + 1,):
        coeffs = resize_spectrum(coeffs, n)
    return sfft.irfftn(coeffs * n**dim, s=(n,) * dim, workers=FFT_WORKERS)


def grid_nd(n: int, dim: int) -> tuple[np.ndarray, ...]:
    """Coordinates of the ``n^d`` grid, ``indexing="ij"``: ``dim`` arrays of shape ``(n,) * dim``."""
    return tuple(np.meshgrid(*[grid(n)] * dim, indexing="ij"))
