r"""Predicted convergence rates (MATH.md section 5) and fits of the energy curve.

Predictions
    ``s = 1``: exponential, ``E(t) ~ e^{-2 m t}`` with ``m = min(inf rho_0, inf nu)`` (for a uniform
    target the asymptotic rate is exactly 2; in general ``2 m`` is the guaranteed bound).
    ``s > 1``: power law ``E(t) ~ t^{-(r + s)/(s - 1)}`` where ``r`` is the Sobolev regularity of
    ``rho_0 - nu``; smooth data (``r = inf``) decay faster than any power.
    ``s < 1``: outside the paper's theory; no prediction.
Fits
    Least squares on a window of the saved curve: ``log E`` against ``t`` (exponential) or against
    ``log t`` (power law). The window drops the transient (the first half of the usable range) and
    everything below the floor (particle floor ``zeta(2s) N^{-2s}`` times a margin, and round-off).
    The uncertainty is the spread (standard deviation) of local slopes inside the window.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class RatePrediction:
    """A predicted asymptotic law: ``kind`` is "exponential", "power", "super-polynomial" or "none"."""

    kind: str
    value: float | None  # exponential rate (E ~ e^{-value t}) or power exponent (E ~ t^{value})
    s: float
    r: float | None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RateFit:
    """A fitted law on the window ``[t_start, t_stop]``."""

    kind: str
    value: float | None
    uncertainty: float | None
    t_start: float | None
    t_stop: float | None
    n_points: int

    def to_dict(self) -> dict:
        return asdict(self)


def predict_rate(s: float, regularity: float | None, min_density: float, uniform_target: bool) -> RatePrediction:
    """The rate MATH.md section 5 predicts for the energy.

    Parameters
    ----------
    s : float
        Sobolev exponent.
    regularity : float or None
        Sobolev regularity ``r`` of ``rho_0 - nu`` (``inf`` for smooth data, ``None`` if unknown).
    min_density : float
        ``min(inf rho_0, inf nu)``.
    uniform_target : bool
        Whether ``nu`` is uniform (the power laws are exact only then).
    """
    if s < 1:
        return RatePrediction("none", None, s, regularity, "s < 1 is outside the theory")
    if s == 1:
        if uniform_target:
            return RatePrediction("exponential", 2.0, s, regularity, "asymptotic rate for a uniform target")
        return RatePrediction("exponential", 2.0 * min_density, s, regularity,
                              "bound 2 min(inf rho_0, inf nu)")
    if regularity is None:
        return RatePrediction("none", None, s, None, "regularity of rho_0 - nu unknown")
    if math.isinf(regularity):
        return RatePrediction("super-polynomial", None, s, regularity, "smooth data decay faster than any power")
    note = "exact for the linearisation" if uniform_target else "derived for a uniform target"
    return RatePrediction("power", -(regularity + s) / (s - 1.0), s, regularity, note)


def fit_window(kind: str, s: float, *, n_modes: int | None = None, n_particles: int | None = None,
               regularity: float | None = None, q: float | None = None, k_low: float = 8.0,
               k_margin: float = 8.0, time_scale: float = 1.0) -> tuple[float, float]:
    """Time window where the predicted law is asymptotic and not yet spoiled by the discretisation.

    Near a uniform target mode ``k`` decays at rate ``k^(2-2s)`` (MATH.md section 3). With
    ``|f_hat(k)|^2 ~ k^(-2r-1)``, the ``H^q`` norm at time ``t`` (energy: ``q = -s``) is carried by
    ``k^(-p) exp(-2 k^(2-2s) t)``, ``p = 2r + 1 - 2q``, which peaks at
    ``k*^(2s-2) = 4 (s-1) t / p``. The power law needs ``k_low <= k* <= K / k_margin`` (``K`` the
    highest resolved mode: ``n/2 - 1`` on a grid, ``N/2`` for particles). Without ``regularity``,
    ``p = 4 (s - 1)`` is used (``k* = t^(1/(2s-2))``). Exponential laws (``s = 1``) have no such
    window: ``(0, inf)``, limited by the energy floors alone. ``time_scale`` stretches the window
    for flows whose modes decay ``time_scale`` times slower, ``k^(2-2s) / time_scale`` (the ReLU
    WFR flow on the circle: ``pi^2 / beta``).
    """
    if kind != "power" or s <= 1:
        return 0.0, np.inf
    k_max = n_modes if n_modes is not None else (n_particles / 2 if n_particles else np.inf)
    if regularity is None or not np.isfinite(regularity):
        p = 4 * (s - 1)
    else:
        p = 2 * regularity + 1 - 2 * (-s if q is None else q)
    scale = time_scale * p / (4 * (s - 1))
    return scale * k_low ** (2 * s - 2), scale * (k_max / k_margin) ** (2 * s - 2)


def fit_rate(times: np.ndarray, energy: np.ndarray, kind: str, floor: float = 0.0,
             window: tuple[float, float] = (0.0, np.inf), transient_drop: float = 1e-2) -> RateFit:
    """Fit ``E(t)`` on an automatically chosen window; see the module docstring.

    Parameters
    ----------
    times, energy : (S,) float
        The saved curve.
    kind : {"exponential", "power"}
        Which law to fit; other kinds give an empty fit.
    floor : float
        Discretisation floor of the energy; points below ``100 * floor`` are not used.
    window : (float, float)
        Admissible times (:func:`fit_window`).
    transient_drop : float
        The transient is over once the energy fell below this fraction of its initial value
        (exponential laws) ; for power laws the window's lower end plays this role.
    """
    empty = RateFit(kind, None, None, None, None, 0)
    if kind not in ("exponential", "power"):
        return empty
    t = np.asarray(times, dtype=float)
    e = np.asarray(energy, dtype=float)
    usable = (t > 0) & np.isfinite(e) & (e > 100.0 * floor) & (t >= window[0]) & (t <= window[1])
    if kind == "exponential" and e.size:
        usable &= e <= transient_drop * e[0]
    idx = np.nonzero(usable)[0]
    if idx.size < 4:
        return empty
    # the first contiguous usable run
    breaks = np.nonzero(np.diff(idx) > 1)[0]
    if breaks.size:
        idx = idx[: breaks[0] + 1]
    if idx.size < 4:
        return empty
    if kind == "exponential":
        # the asymptotic regime: the later two thirds of what is left
        idx = idx[t[idx] >= t[idx[0]] + (t[idx[-1]] - t[idx[0]]) / 3.0]
        if idx.size < 4:
            return empty
    x = t[idx] if kind == "exponential" else np.log(t[idx])
    y = np.log(e[idx])
    slope = np.polyfit(x, y, 1)[0]
    local = np.diff(y) / np.diff(x)
    value = -slope if kind == "exponential" else slope
    return RateFit(kind, float(value), float(np.std(local)), float(t[idx[0]]), float(t[idx[-1]]),
                   int(idx.size))
