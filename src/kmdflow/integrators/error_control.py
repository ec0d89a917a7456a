r"""Step acceptance: scaled error norms and the PI step-size controller.

A :class:`kmdflow.integrators.adaptive.Stepper` accepts a trial step when the norm of its error
estimate, scaled by the tolerances, is at most 1, and chooses the next step size from that norm
with a :class:`PIController`.

Error norm (norm-wise, so a state decaying to zero keeps its *relative* accuracy)
    ``err_norm = ||e||_rms / (atol + rtol * max(||y||_rms, ||y_new||_rms))`` with
    ``||v||_rms = sqrt(mean |v_i|^2)`` over all entries (complex entries by modulus). A step is
    accepted when ``err_norm <= 1``. ``atol = 0`` is allowed: if the scale is exactly zero the norm
    is 0 for a zero error and infinite otherwise, never a division by zero. The alternative
    :func:`modewise_error_norm` measures each component against its own size (spectral states).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def rms_norm(values: np.ndarray) -> float:
    """RMS ``sqrt(mean |v|^2)`` over all entries, safe against under/overflow; 0 if empty."""
    v = np.asarray(values)
    if v.size == 0:
        return 0.0
    if v.dtype.kind in "fc":
        # fast path: vdot conjugates its first argument, so this is the sum of |v_i|^2 in one
        # BLAS call without temporaries; kept only when nothing under- or overflowed
        value = math.sqrt(abs(complex(np.vdot(v, v)).real) / v.size)
        if 1e-150 <= value < math.inf:
            return value
    v = np.abs(v)
    with np.errstate(over="ignore", under="ignore"):
        value = float(np.sqrt(np.mean(v * v)))
    if (value < 1e-150 or not np.isfinite(value)) and np.all(np.isfinite(v)):
        # squares underflow or overflow: rescale by the largest entry
        peak = float(v.max())
        if peak > 0.0:
            value = peak * float(np.sqrt(np.mean((v / peak) ** 2)))
    return value



def safe_ratio(num: float, den: float) -> float:
    """``num / den`` for ``num, den >= 0``, with ``0 / 0 = 0`` and ``num / 0 = inf``."""
    if num == 0.0:
        return 0.0
    return np.inf if den == 0.0 else num / den


def error_norm(error: np.ndarray, y: np.ndarray, y_new: np.ndarray, rtol: float,
               atol: float) -> float:
    r"""Norm-wise scaled error (module docstring); ``<= 1`` means acceptable.

    Parameters
    ----------
    error : (...) array
        Embedded error estimate.
    y, y_new : (...) array
        State before and after the step.
    rtol, atol : float
        Relative and absolute tolerances, ``>= 0``.

    Notes
    -----
    :math:`\|e\|_{rms} / (atol + rtol \max(\|y\|_{rms}, \|y_{new}\|_{rms}))`.
    """
    scale = atol + rtol * max(rms_norm(y), rms_norm(y_new))
    return safe_ratio(rms_norm(error), scale)


#: Fraction of the largest component below which :func:`modewise_error_norm` stops being relative.
MODEWISE_FLOOR = 1e-3


def modewise_error_norm(error: np.ndarray, y: np.ndarray, y_new: np.ndarray, rtol: float,
                        atol: float) -> float:
    r"""Component-wise scaled error with a relative floor; ``<= 1`` means acceptable.

    For spectral states (Fourier modes of a decaying deviation) the modes that dominate late in a
    run are tiny early on; a norm-wise test lets their relative errors grow. Here each component is
    measured against its own size, floored at ``MODEWISE_FLOOR`` times the largest one so that
    modes at round-off level do not dictate the step:

    :math:`\mathrm{rms}_k\, e_k / (atol + rtol \max(a_k, 10^{-3} \max_j a_j))`,
    :math:`a_k = \max(|y_k|, |y_{new,k}|)`.
    """
    size = np.maximum(np.abs(y), np.abs(y_new))
    peak = float(size.max()) if size.size else 0.0
    if atol == 0.0 and peak > 0.0 and rtol > 0.0:
        # the common case, in place: rtol * max(a_k, floor * peak) > 0 everywhere
        np.maximum(size, MODEWISE_FLOOR * peak, out=size)
        ratio = np.abs(error)
        ratio /= size
        return rms_norm(ratio) / rtol
    scale = atol + rtol * np.maximum(size, MODEWISE_FLOOR * peak)
    if not np.any(scale > 0):
        return 0.0 if not np.any(error) else np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(scale > 0, np.abs(error) / scale, np.where(error != 0, np.inf, 0.0))
        return rms_norm(ratio)


ERROR_NORMS = {"normwise": error_norm, "modewise": modewise_error_norm}


@dataclass(frozen=True)
class PIController:
    r"""Proportional--integral step-size controller (Hairer--Wanner, stabilised form).

    Parameters
    ----------
    safety : float
        Safety factor ``< 1``.
    alpha, beta : float
        Exponents scaled by ``1/k``, ``k`` the order of the error estimate in ``h``.
    grow_max, shrink_min : float
        Limits on the ratio of successive step sizes.

    Notes
    -----
    After an accepted step with scaled error :math:`\epsilon_n`,
    :math:`h_{n+1} = h_n\, \mathrm{safety}\, \epsilon_n^{-\alpha/k}\, \epsilon_{n-1}^{\beta/k}`,
    clipped to ``[shrink_min, grow_max]``. A rejected step retries with
    :math:`h \max(\mathrm{shrink\_min}, \min(1, \mathrm{safety}\,\epsilon^{-1/k}))`.
    At a steady state the error settles at :math:`\epsilon^* = \mathrm{safety}^{k/(\alpha-\beta)}`.
    The defaults ``alpha = 0.7, beta = 0.4`` are Hairer's ``beta = 0.08`` for ``k = 5``, which
    damps the step-size oscillation at the stability boundary.
    """

    safety: float = 0.9
    alpha: float = 0.7
    beta: float = 0.4
    grow_max: float = 10.0
    shrink_min: float = 0.2

    def accept_factor(self, err: float, err_prev: float, k: int) -> float:
        """Ratio ``h_next / h`` after an accepted step."""
        err = max(err, 1e-10)
        factor = self.safety * err ** (-self.alpha / k) * err_prev ** (self.beta / k)
        return float(min(self.grow_max, max(self.shrink_min, factor)))

    def reject_factor(self, err: float, k: int) -> float:
        """Ratio ``h_retry / h`` after a rejected step (``err`` may be inf)."""
        if not np.isfinite(err):
            return self.shrink_min
        return float(max(self.shrink_min, min(1.0, self.safety * err ** (-1.0 / k))))
