r"""Initial and target measures on the circle :math:`T^1`: density families and weighted atoms.

Positions, the density normalisation (w.r.t. ``dx / 2 pi``, so the uniform measure has density
``1``) and the Fourier convention are those of :mod:`kmdflow.domains.torus`. Every density here is
a probability density: ``fourier(n)[0] == 1``.

Families (frozen dataclasses; :func:`make_measure` builds them from a config's kind + params),
with the density and the Sobolev regularity ``r*`` of ``rho - 1`` that :meth:`Density.regularity`
reports:

- ``uniform``: ``1``; ``r* = inf``.
- ``mode``: ``1 + a cos(k x)``; ``r* = inf``.
- ``perturbation``: ``1 + a g / max|g|``, ``g = sum_{k=1}^{K} k^-decay cos(k x + phi_k)``;
  ``r* = decay - 1/2``.
- ``von_mises``: ``exp(kappa cos(x - loc)) / I_0(kappa)``; ``r* = inf``.
- ``indicator``: ``c`` on the arc ``[start, stop]``, ``floor`` elsewhere; ``r* = 1/2``.
- ``mixture``: ``sum_i w_i rho_i`` (weights normalised); the smallest ``r*`` of its parts.
- ``file`` with grid values: their trigonometric interpolant (normalised); ``r*`` unknown.
- ``particles``, and ``file`` with positions: :class:`Atoms`.

``cdf(x) = mu([0, x))`` is exact up to round-off: closed forms for uniform, mode and indicator;
for the band-limited families (perturbation, von Mises, grid) the term-by-term integrated series,
evaluated at many points through Taylor tables (:class:`SeriesTable`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from math import factorial
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import ive

from kmdflow.domains.torus import TWO_PI, fourier_series, from_fourier, to_fourier, wrap

#: Relative size below which a Fourier coefficient is treated as zero (band-limit detection).
NEGLIGIBLE = 1e-20


class MeasureError(ValueError):
    """A measure that cannot be built from its parameters or file.

    ``key`` names the offending parameter (``"path"``, ``"weights"``, ``"components[1].kappa"``);
    ``message`` says what is wrong and how to fix it. ``str(err)`` is one line: ``key: message``.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = " ".join(str(message).split())
        super().__init__(f"{key}: {self.message}" if key else self.message)


# --------------------------------------------------------------------------------------- atoms


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
        n_modes = _check_modes(n_modes)
        k = np.arange(n_modes)
        out = np.zeros(n_modes, dtype=complex)
        chunk = max(1, 2_000_000 // n_modes)
        for start in range(0, self.size, chunk):
            x = self.positions[start:start + chunk]
            out += self.weights[start:start + chunk] @ np.exp(-1j * np.outer(x, k))
        return out


# ------------------------------------------------------------------------------ density base


class Density(ABC):
    """A probability density on :math:`T^1` w.r.t. ``dx / 2 pi`` (conventions: ``domains/torus``).

    Subclasses give closed forms for :meth:`fourier`, :meth:`values` and :meth:`cdf`. The extra
    members :attr:`bandwidth`, :attr:`breakpoints`, :meth:`cdf_and_values` and
    :meth:`exact_inverse_cdf` serve :mod:`kmdflow.measures.placement`.
    """

    @abstractmethod
    def fourier(self, n_modes: int) -> np.ndarray:
        r"""Exact one-sided coefficients :math:`\hat\mu(0..n_{modes}-1)`, shape ``(n_modes,)``.

        :math:`\hat\mu(k) = \frac{1}{2\pi}\int_0^{2\pi} e^{-ikx}\rho(x)\,dx`; ``[0]`` is the mass 1.
        """

    @abstractmethod
    def values(self, x: np.ndarray) -> np.ndarray:
        """Density ``rho(x)`` at any real ``x`` (periodic); same shape as ``x``."""

    @abstractmethod
    def cdf(self, x: np.ndarray) -> np.ndarray:
        r"""Cumulative mass :math:`F(x) = \mu([0, x)) = \frac{1}{2\pi}\int_0^x \rho`; shape of ``x``.

        ``F(0) = 0`` and ``F(2 pi) = 1``; outside ``[0, 2 pi]`` the lift ``F(x + 2 pi) = F(x) + 1``.
        """

    @abstractmethod
    def min_value(self) -> float:
        """Infimum of the density over the circle."""

    @abstractmethod
    def max_value(self) -> float:
        """Supremum of the density over the circle."""

    @abstractmethod
    def regularity(self) -> float | None:
        """Sobolev regularity ``r*`` of ``rho - 1`` (in ``H^r`` for ``r < r*``), ``None`` if unknown."""

    @property
    def bandwidth(self) -> float:
        """Largest wavenumber with a non-negligible coefficient (``inf``: not band-limited)."""
        return np.inf

    @property
    def breakpoints(self) -> np.ndarray:
        """Points of ``[0, 2 pi)`` where the density jumps, shape ``(m,)``; empty when continuous."""
        return np.empty(0)

    def cdf_and_values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(cdf(x), values(x))`` in one call (band-limited families share the work)."""
        return self.cdf(x), self.values(x)

    def exact_inverse_cdf(self, u: np.ndarray) -> np.ndarray | None:
        """Closed-form ``inf {x : F(x) >= u}`` for ``u`` in ``[0, 1]``, or ``None`` if there is none."""
        return None

    def _values_on_piece(self, x: np.ndarray, ref: float) -> np.ndarray:
        """Values at ``x`` continued from the piece (between breakpoints) that contains ``ref``."""
        return self.values(x)


def _check_modes(n_modes) -> int:
    if isinstance(n_modes, bool) or not isinstance(n_modes, (int, np.integer)) or n_modes < 1:
        raise MeasureError("n_modes", f"n_modes = {n_modes!r}: must be an integer >= 1")
    return int(n_modes)


def _pow2(n: float) -> int:
    return 1 << max(0, int(np.ceil(np.log2(max(n, 1)))))


def _padded(coeffs: np.ndarray, n_modes: int) -> np.ndarray:
    out = np.zeros(_check_modes(n_modes), dtype=complex)
    m = min(n_modes, coeffs.size)
    out[:m] = coeffs[:m]
    return out


# ----------------------------------------------------------------- band-limited machinery


class SeriesTable:
    r"""Evaluate a band-limited density and its cdf at many points, exact up to round-off.

    Parameters
    ----------
    coeffs : (K,) complex
        One-sided coefficients ``c_0 .. c_{K-1}`` of ``rho`` (``c_0`` the mass).

    Notes
    -----
    With :math:`G(x) = \sum_{k \ne 0} \frac{c_k}{ik} e^{ikx}` (periodic, :math:`G' = \rho - c_0`),

    .. math:: F(x) = \frac{c_0 x + G(x) - G(0)}{2\pi}, \qquad \rho(x) = c_0 + G'(x).

    Tables :math:`T_j(m) = G^{(j)}(x_m) h^j / j!` on a grid ``x_m = m h`` (``M >= 4K`` points, by
    FFT) give :math:`G(x_m + t h) = \sum_{j \le J} T_j(m) t^j` with :math:`|t| \le 1/2`. ``J`` is
    the smallest order whose remainder bound
    :math:`2\sum_k |c_k| k^{-1} z_k^{J+1} e^{z_k} / (J+1)!`, :math:`z_k = k h / 2`, is below
    ``1e-18`` (and the one for :math:`G'` below ``1e-17``), so the truncation is invisible next to
    round-off. Cost per point: ``J + 1`` table look-ups.
    """

    def __init__(self, coeffs: np.ndarray):
        c = np.asarray(coeffs, dtype=complex)
        n = c.size
        self.mass = float(c[0].real)
        size = _pow2(max(1024, 16 * n)) if 16 * n <= (1 << 18) else _pow2(4 * n)
        self.size, self.h = size, TWO_PI / size
        k = np.arange(1, n)
        g = np.zeros(n, dtype=complex)
        g[1:] = c[1:] / (1j * k)
        a, z = np.abs(c[1:]), k * self.h / 2
        order = 1
        while order < 60:
            rem_g = 2 * np.sum(a / k * z ** (order + 1) * np.exp(z)) / factorial(order + 1)
            rem_rho = 2 * np.sum(a * z ** order * np.exp(z)) / factorial(order)
            if rem_g <= 1e-18 and rem_rho <= 1e-17:
                break
            order += 1
        self.order = order
        kk = np.arange(n)
        self.rows = [from_fourier(g * (1j * kk * self.h) ** j / factorial(j), size)
                     for j in range(order + 1)]
        self._g0 = float(self.rows[0][0])

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(F(x), rho(x))`` at any real ``x``; shapes of ``x``."""
        x = np.asarray(x, dtype=float)
        s = x / self.h
        i = np.rint(s)
        t = s - i
        idx = np.mod(i, self.size).astype(np.intp)
        g = np.zeros(x.shape)
        dg = np.zeros(x.shape)
        for j in range(self.order, -1, -1):
            r = self.rows[j][idx]
            g = g * t + r
            if j >= 1:
                dg = dg * t + j * r
        return (self.mass * x + g - self._g0) / TWO_PI, self.mass + dg / self.h


def series_extrema(coeffs: np.ndarray, n_grid: int, n_candidates: int = 16) -> tuple[float, float]:
    """Minimum and maximum over the circle of the real series ``sum_k c_k e^{ikx}``.

    Parameters
    ----------
    coeffs : (K,) complex
        One-sided coefficients.
    n_grid : int
        Sampling points (use ``>= 16 K``); the best ``n_candidates`` local extrema of the samples
        are refined by Newton steps on the derivative (direct evaluation of the series).

    Returns
    -------
    (float, float)
        ``(min, max)``.
    """
    coeffs = np.asarray(coeffs, dtype=complex)
    samples = from_fourier(coeffs, n_grid)
    h = TWO_PI / n_grid
    out = []
    for sign in (-1.0, 1.0):
        v = sign * samples
        peak = (v >= np.roll(v, 1)) & (v >= np.roll(v, -1))
        idx = np.nonzero(peak)[0]
        idx = idx[np.argsort(v[idx])[::-1][:n_candidates]]
        x = idx * h
        for _ in range(8):
            d1 = fourier_series(coeffs, x, 1)
            d2 = fourier_series(coeffs, x, 2)
            ok = sign * d2 < 0
            step = np.where(ok, -d1 / np.where(ok, d2, 1.0), 0.0)
            x = x + np.clip(step, -h, h)
        refined = sign * fourier_series(coeffs, x)
        out.append(sign * max(float(v.max()), float(refined.max()) if refined.size else -np.inf))
    return out[0], out[1]


class SeriesDensity(Density):
    """A band-limited density given by its (truncated) one-sided series ``_series``."""

    @property
    @abstractmethod
    def _series(self) -> np.ndarray:
        """Coefficients ``c_0 .. c_{K-1}``, all later ones negligible."""

    @cached_property
    def _table(self) -> SeriesTable:
        return SeriesTable(self._series)

    @property
    def bandwidth(self) -> float:
        return float(self._series.size - 1)

    def cdf(self, x):
        return self._table.evaluate(x)[0]

    def values(self, x):
        return self._table.evaluate(x)[1]

    def cdf_and_values(self, x):
        return self._table.evaluate(x)


# ------------------------------------------------------------------------------- families


@dataclass(frozen=True)
class Uniform(Density):
    """The uniform probability measure, ``rho = 1``."""

    def fourier(self, n_modes):
        return _padded(np.ones(1, dtype=complex), n_modes)

    def values(self, x):
        return np.ones(np.shape(x))

    def cdf(self, x):
        return np.asarray(x, dtype=float) / TWO_PI

    def min_value(self):
        return 1.0

    def max_value(self):
        return 1.0

    def regularity(self):
        return np.inf

    @property
    def bandwidth(self):
        return 0.0

    def exact_inverse_cdf(self, u):
        return TWO_PI * np.asarray(u, dtype=float)


@dataclass(frozen=True)
class Mode(Density):
    r"""A single Fourier mode, :math:`\rho(x) = 1 + a\cos(kx)`.

    Parameters
    ----------
    k : int
        Wavenumber ``>= 1``.
    amplitude : float
        ``a`` with ``|a| <= 1`` (so that ``rho >= 0``).

    Notes
    -----
    :math:`\hat\mu(\pm k) = a/2`; :math:`F(x) = \frac{1}{2\pi}\left(x + \frac{a}{k}\sin kx\right)`.
    """

    k: int
    amplitude: float

    def __post_init__(self):
        if isinstance(self.k, bool) or not float(self.k).is_integer() or self.k < 1:
            raise MeasureError("k", f"k = {self.k!r}: must be an integer >= 1")
        if not np.isfinite(self.amplitude) or abs(self.amplitude) > 1:
            raise MeasureError("amplitude", f"amplitude = {self.amplitude!r}: |amplitude| must be "
                               "<= 1 or the density is negative; choose a value in [-1, 1]")
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "amplitude", float(self.amplitude))

    def fourier(self, n_modes):
        out = _padded(np.ones(1, dtype=complex), n_modes)
        if self.k < out.size:
            out[self.k] = self.amplitude / 2
        return out

    def values(self, x):
        return 1.0 + self.amplitude * np.cos(self.k * np.asarray(x, dtype=float))

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        return (x + self.amplitude * np.sin(self.k * x) / self.k) / TWO_PI

    def min_value(self):
        return 1.0 - abs(self.amplitude)

    def max_value(self):
        return 1.0 + abs(self.amplitude)

    def regularity(self):
        return np.inf

    @property
    def bandwidth(self):
        return float(self.k)


@dataclass(frozen=True)
class Perturbation(SeriesDensity):
    r"""A random-phase perturbation with power-law spectrum, normalised in sup norm.

    Parameters
    ----------
    amplitude : float
        ``a = max |rho - 1|``, ``|a| <= 1``.
    decay : float
        Spectral decay exponent: ``|f_hat(k)| ~ k^-decay``.
    seed : int
        Seed of the phases.
    modes : int
        Number of modes ``K >= 1``.

    Notes
    -----
    .. math::

        \rho = 1 + a\,\frac{g}{\max|g|}, \qquad
        g(x) = \sum_{k=1}^{K} k^{-\mathrm{decay}} \cos(kx + \phi_k),

    ``phi = default_rng(seed).uniform(0, 2 pi, K)``, ``phi_k = phi[k - 1]``. ``max|g|`` is taken
    over the circle on ``max(4096, 32 K)`` (rounded up to a power of 2) samples refined by Newton
    steps, a resolution independent of any solver, so one config gives one ``mu_0``. Hence
    ``max|rho - 1| = |a|`` exactly and ``f_hat(k) = a k^-decay e^{i phi_k} / (2 max|g|)``; the
    regularity reported is ``r* = decay - 1/2`` (that of the infinite series; MATH.md section 5).
    """

    amplitude: float
    decay: float
    seed: int
    modes: int

    def __post_init__(self):
        if not np.isfinite(self.amplitude) or abs(self.amplitude) > 1:
            raise MeasureError("amplitude", f"amplitude = {self.amplitude!r}: must lie in [-1, 1] "
                               "or the density is negative")
        if not np.isfinite(self.decay):
            raise MeasureError("decay", f"decay = {self.decay!r}: must be a finite number")
        for key, least in (("seed", 0), ("modes", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not float(value).is_integer() or value < least:
                raise MeasureError(key, f"{key} = {value!r}: must be an integer >= {least}")
            object.__setattr__(self, key, int(value))
        object.__setattr__(self, "amplitude", float(self.amplitude))
        object.__setattr__(self, "decay", float(self.decay))

    @cached_property
    def _g_series(self) -> np.ndarray:
        k = np.arange(1, self.modes + 1)
        phases = np.random.default_rng(self.seed).uniform(0.0, TWO_PI, self.modes)
        c = np.zeros(self.modes + 1, dtype=complex)
        c[1:] = 0.5 * k ** (-self.decay) * np.exp(1j * phases)
        return c

    @cached_property
    def _g_extrema(self) -> tuple[float, float]:
        return series_extrema(self._g_series, _pow2(max(4096, 32 * self.modes)))

    @property
    def g_sup(self) -> float:
        """``max |g|`` over the circle (the normalisation)."""
        lo, hi = self._g_extrema
        return max(hi, -lo)

    @cached_property
    def _series(self):
        c = self._g_series * (self.amplitude / self.g_sup)
        c[0] = 1.0
        return c

    def fourier(self, n_modes):
        return _padded(self._series, n_modes)

    def min_value(self):
        lo, hi = self._g_extrema
        return 1.0 + self.amplitude * (lo if self.amplitude >= 0 else hi) / self.g_sup

    def max_value(self):
        lo, hi = self._g_extrema
        return 1.0 + self.amplitude * (hi if self.amplitude >= 0 else lo) / self.g_sup

    def regularity(self):
        return self.decay - 0.5


@dataclass(frozen=True)
class VonMises(SeriesDensity):
    r"""The von Mises density :math:`\rho(x) = e^{\kappa\cos(x - \mathrm{loc})} / I_0(\kappa)`.

    Parameters
    ----------
    loc : float
        Mode location.
    kappa : float
        Concentration ``>= 0`` (``0``: uniform). Large values are fine (scaled Bessel functions).

    Notes
    -----
    :math:`\hat\mu(k) = \frac{I_k(\kappa)}{I_0(\kappa)} e^{-ik\,\mathrm{loc}}`, computed as
    ``ive(k, kappa) / ive(0, kappa)``; the series is cut where these fall below ``1e-20``.
    ``min = e^{-2 kappa} / ive(0, kappa)``, ``max = 1 / ive(0, kappa)``.
    """

    loc: float
    kappa: float

    def __post_init__(self):
        if not np.isfinite(self.loc):
            raise MeasureError("loc", f"loc = {self.loc!r}: must be a finite number")
        if not np.isfinite(self.kappa) or self.kappa < 0:
            raise MeasureError("kappa", f"kappa = {self.kappa!r}: must be finite and >= 0")
        object.__setattr__(self, "loc", float(self.loc))
        object.__setattr__(self, "kappa", float(self.kappa))

    def fourier(self, n_modes):
        k = np.arange(_check_modes(n_modes))
        ratio = ive(k, self.kappa) / ive(0, self.kappa)
        return ratio * np.exp(-1j * np.mod(k * self.loc, TWO_PI))

    @cached_property
    def _series(self):
        n = int(12 * np.sqrt(self.kappa)) + 48
        while True:
            c = self.fourier(n)
            small = np.abs(c) < NEGLIGIBLE
            if small[-1]:
                return c[: int(np.nonzero(~small)[0][-1]) + 1]
            n *= 2

    def values(self, x):
        half = 0.5 * (np.asarray(x, dtype=float) - self.loc)
        # cos(d) - 1 = -2 sin^2(d/2) keeps full relative accuracy near the mode
        return np.exp(-2.0 * self.kappa * np.sin(half) ** 2) / ive(0, self.kappa)

    def min_value(self):
        return float(np.exp(-2 * self.kappa) / ive(0, self.kappa))

    def max_value(self):
        return float(1.0 / ive(0, self.kappa))

    def regularity(self):
        return np.inf


@dataclass(frozen=True)
class Indicator(Density):
    r"""A patch: density ``c`` on the closed arc ``[start, stop]``, ``floor`` elsewhere.

    Parameters
    ----------
    start, stop : float
        The arc runs counter-clockwise from ``start`` to ``stop`` (wrapping through ``0`` is
        allowed); its length ``L = (stop - start) mod 2 pi`` must be in ``(0, 2 pi)``.
    floor : float
        Density outside the arc, ``0 <= floor < 1`` (``0``: vacuum).

    Notes
    -----
    Mass 1 fixes :math:`c = \mathrm{floor} + (1 - \mathrm{floor})\,2\pi/L`. With ``a = start``,

    .. math:: \hat\mu(k) = \frac{c - \mathrm{floor}}{2\pi i k} e^{-ika}(1 - e^{-ikL}), \quad k \ne 0,

    and ``F`` is piecewise linear (inverted in closed form). ``rho - 1`` is in ``H^r`` for
    ``r < 1/2``.
    """

    start: float
    stop: float
    floor: float = 0.0

    def __post_init__(self):
        for key in ("start", "stop", "floor"):
            if not np.isfinite(getattr(self, key)):
                raise MeasureError(key, f"{key} = {getattr(self, key)!r}: must be a finite number")
        if not 0 <= self.floor < 1:
            raise MeasureError("floor", f"floor = {self.floor!r}: must satisfy 0 <= floor < 1 "
                               "(the patch must carry the rest of the mass)")
        if not 0 < self.length < TWO_PI:
            raise MeasureError("stop", f"stop = {self.stop!r}: the arc from start = {self.start!r} "
                               "is empty or the whole circle; choose 0 < (stop - start) mod 2 pi")

    @property
    def a(self) -> float:
        """Start of the arc in ``[0, 2 pi)``."""
        return float(wrap(np.float64(self.start)))

    @property
    def length(self) -> float:
        """Arc length ``L``."""
        return float(np.mod(self.stop - self.start, TWO_PI))

    @property
    def level(self) -> float:
        """Density ``c`` inside the arc."""
        return self.floor + (1.0 - self.floor) * TWO_PI / self.length

    def _inside(self, x):
        return np.mod(np.asarray(x, dtype=float) - self.a, TWO_PI) <= self.length

    def fourier(self, n_modes):
        k = np.arange(_check_modes(n_modes))
        out = np.ones(n_modes, dtype=complex)
        kk = k[1:]
        phase = np.exp(-1j * np.mod(kk * self.a, TWO_PI))
        out[1:] = ((self.level - self.floor) / (TWO_PI * 1j * kk) * phase
                   * (1.0 - np.exp(-1j * np.mod(kk * self.length, TWO_PI))))
        return out

    def values(self, x):
        return np.where(self._inside(x), self.level, self.floor)

    def _values_on_piece(self, x, ref):
        return np.full(np.shape(x), self.level if self._inside(ref) else self.floor)

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        turns = np.floor(x / TWO_PI)
        r = x - TWO_PI * turns
        a, length = self.a, self.length
        covered = np.clip(r - a, 0.0, length) + np.maximum(0.0, np.minimum(r, a + length - TWO_PI))
        return turns + (self.floor * r + (self.level - self.floor) * covered) / TWO_PI

    def exact_inverse_cdf(self, u):
        u = np.asarray(u, dtype=float)
        nodes = np.unique(np.concatenate([[0.0, TWO_PI], self.breakpoints]))
        f = self.cdf(nodes[:-1])
        f = np.append(f, 1.0)
        i = np.clip(np.searchsorted(f, u, side="left"), 1, nodes.size - 1)
        slope = (f[i] - f[i - 1]) / (nodes[i] - nodes[i - 1])
        x = nodes[i - 1] + (u - f[i - 1]) / np.where(slope > 0, slope, 1.0)
        return np.where(u <= 0, 0.0, np.minimum(x, nodes[i]))

    def min_value(self):
        return float(self.floor)

    def max_value(self):
        return float(self.level)

    def regularity(self):
        return 0.5

    @property
    def breakpoints(self):
        return np.sort(np.array([self.a, float(wrap(np.float64(self.a + self.length)))]))


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
        return _padded(self._series, n_modes)

    @cached_property
    def _extrema(self):
        return series_extrema(self._series, _pow2(max(4096, 32 * self._series.size)))

    def min_value(self):
        return self._extrema[0]

    def max_value(self):
        return self._extrema[1]

    def regularity(self):
        return None


@dataclass(frozen=True)
class Mixture(Density):
    r"""A convex combination :math:`\rho = \sum_i w_i \rho_i` of densities.

    Parameters
    ----------
    weights : tuple of float
        Positive weights, **normalised** here to sum 1.
    components : tuple of Density
        Same length as ``weights``.

    Notes
    -----
    Fourier coefficients, values and cdf are the weighted sums. The inf/sup are found per arc
    between the components' breakpoints: dense samples (``64`` per shortest wavelength, at least
    ``2^14``) plus bounded Brent refinement of the best local extrema, arc ends included.
    ``r*`` is the smallest of the components' (``None`` if any is unknown).
    """

    weights: tuple
    components: tuple

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=float).reshape(-1)
        comps = tuple(self.components)
        if w.size == 0 or w.size != len(comps):
            raise MeasureError("components", f"{w.size} weights for {len(comps)} components; give "
                               "at least one component, each with a weight")
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise MeasureError("components", f"weights {w.tolist()} must be positive and finite")
        for i, comp in enumerate(comps):
            if not isinstance(comp, Density):
                raise MeasureError(f"components[{i}]", f"{type(comp).__name__} is not a density; "
                                   "mixtures take non-atomic kinds only")
        object.__setattr__(self, "weights", tuple(float(x) for x in w / w.sum()))
        object.__setattr__(self, "components", comps)

    def _sum(self, method, *args):
        return sum(w * getattr(c, method)(*args) for w, c in zip(self.weights, self.components))

    def fourier(self, n_modes):
        return self._sum("fourier", _check_modes(n_modes))

    def values(self, x):
        return self._sum("values", x)

    def _values_on_piece(self, x, ref):
        return self._sum("_values_on_piece", x, ref)

    def cdf(self, x):
        return self._sum("cdf", x)

    def cdf_and_values(self, x):
        f = np.zeros(np.shape(x))
        v = np.zeros(np.shape(x))
        for w, c in zip(self.weights, self.components):
            cf, cv = c.cdf_and_values(x)
            f = f + w * cf
            v = v + w * cv
        return f, v

    @property
    def bandwidth(self):
        return max(c.bandwidth for c in self.components)

    @property
    def breakpoints(self):
        parts = [c.breakpoints for c in self.components]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0)

    @cached_property
    def _extrema(self):
        return piecewise_extrema(self)

    def min_value(self):
        return self._extrema[0]

    def max_value(self):
        return self._extrema[1]

    def regularity(self):
        values = [c.regularity() for c in self.components]
        return None if any(v is None for v in values) else min(values)


def piecewise_extrema(density: Density, n_candidates: int = 8) -> tuple[float, float]:
    """``(inf, sup)`` of a density that is smooth between its :attr:`~Density.breakpoints`.

    Each closed arc between consecutive breakpoints (the whole circle if none) is sampled with
    ``max(2^14, 64 * bandwidth)`` points per turn (finite bandwidths of the smooth parts only),
    and the best ``n_candidates`` interior local extrema are refined by bounded Brent search.
    """
    per_turn = min(_pow2(max(1 << 14, 64 * smooth_bandwidth(density))), 1 << 22)
    cuts = np.unique(wrap(np.asarray(density.breakpoints, dtype=float)))
    pad = 4 * TWO_PI / per_turn  # periodic case: overlap so an extremum near 0 is interior
    arcs = ([(-pad, TWO_PI + pad)] if cuts.size == 0 else
            list(zip(cuts, np.append(cuts[1:], cuts[0] + TWO_PI))))
    best = [np.inf, -np.inf]
    for a, b in arcs:
        ref = 0.5 * (a + b)
        x = np.linspace(a, b, max(65, int(per_turn * (b - a) / TWO_PI) + 1))
        v = density._values_on_piece(x, ref)
        for slot, sign in ((0, -1.0), (1, 1.0)):
            w = sign * v
            top = float(w.max())
            inner = np.nonzero((w[1:-1] >= w[:-2]) & (w[1:-1] >= w[2:]))[0] + 1
            for i in inner[np.argsort(w[inner])[::-1][:n_candidates]]:
                res = minimize_scalar(
                    lambda y: -sign * float(density._values_on_piece(np.array([y]), ref)[0]),
                    bounds=(x[i - 1], x[i + 1]), method="bounded", options={"xatol": 1e-12})
                top = max(top, -float(res.fun))
            best[slot] = min(best[slot], -top) if slot == 0 else max(best[slot], top)
    return float(best[0]), float(best[1])


def smooth_bandwidth(density: Density) -> float:
    """Largest finite :attr:`~Density.bandwidth` among the (mixture) parts; 0 if none.

    Sets sampling resolutions: a mixture with a patch has infinite bandwidth, but its smooth
    parts still decide how finely it must be sampled between the breakpoints.
    """
    if isinstance(density, Mixture):
        return max(smooth_bandwidth(c) for c in density.components)
    band = density.bandwidth
    return float(band) if np.isfinite(band) else 0.0


# ------------------------------------------------------------------------------- factory

#: Required and optional parameters of each kind.
KIND_KEYS = {
    "uniform": ((), ()),
    "mode": (("k", "amplitude"), ()),
    "perturbation": (("amplitude", "decay", "seed", "modes"), ()),
    "von_mises": (("loc", "kappa"), ()),
    "mixture": (("components",), ()),
    "indicator": (("start", "stop"), ("floor",)),
    "particles": (("positions",), ("weights",)),
    "file": (("path",), ("weights_path",)),
}


def make_measure(kind: str, params: dict | None = None, *,
                 base_dir: Path | str | None = None) -> Density | Atoms:
    """Build the measure a config describes (``[initial]`` or ``[target]``, d = 1).

    Parameters
    ----------
    kind : str
        One of :data:`KIND_KEYS`.
    params : dict
        The kind's parameters (see the module docstring and :data:`KIND_KEYS`); a ``"kind"`` entry
        equal to ``kind`` is ignored. ``"mixture"`` takes ``components``: a sequence of
        ``(weight, spec)`` where ``spec`` is ``(kind, params)``, an object with ``.kind`` and
        ``.params``, or a dict with a ``"kind"`` entry; or dicts ``{"weight": w, "kind": ...}``.
    base_dir : path, optional
        Directory that relative file paths are resolved against (the config's directory).

    Returns
    -------
    Density or Atoms
        ``Atoms`` for ``"particles"`` and for files holding positions, else a :class:`Density`.
        Atom positions are wrapped into ``[0, 2 pi)`` and weights (default ``1/N``) divided by
        their sum; grid densities are divided by their mean (mass 1).

    Raises
    ------
    MeasureError
        Unknown kind or key, missing key, bad value, unreadable or malformed file (key names
        the parameter, message the fix).
    """
    params = dict(params or {})
    if kind not in KIND_KEYS:
        raise MeasureError("kind", f"{kind!r} is not a measure kind; choose one of "
                           f"{', '.join(KIND_KEYS)}")
    given = params.pop("kind", kind)
    if given != kind:
        raise MeasureError("kind", f"params say kind = {given!r} but kind = {kind!r} was asked; "
                           "drop the one in params")
    params = {key: value for key, value in params.items() if value is not None}
    required, optional = KIND_KEYS[kind]
    for key in params:
        if key not in required + optional:
            allowed = ", ".join(required + optional) or "none"
            raise MeasureError(key, f"not a parameter of kind {kind!r} (allowed: {allowed}); "
                               "remove it")
    for key in required:
        if key not in params:
            raise MeasureError(key, f"missing; kind {kind!r} needs {', '.join(required)}")
    if kind == "uniform":
        return Uniform()
    if kind == "mode":
        return Mode(_integer(params, "k"), _number(params, "amplitude"))
    if kind == "perturbation":
        return Perturbation(_number(params, "amplitude"), _number(params, "decay"),
                            _integer(params, "seed"), _integer(params, "modes"))
    if kind == "von_mises":
        return VonMises(_number(params, "loc"), _number(params, "kappa"))
    if kind == "indicator":
        return Indicator(_number(params, "start"), _number(params, "stop"),
                         _number(params, "floor") if "floor" in params else 0.0)
    if kind == "mixture":
        return _mixture(params["components"], base_dir)
    if kind == "particles":
        weights = params.get("weights")
        return _atoms(_float_vector(params["positions"], "positions"),
                      None if weights is None else _float_vector(weights, "weights"),
                      "positions", "weights")
    return _from_file(params["path"], params.get("weights_path"), base_dir)


def _number(params, key) -> float:
    value = params[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        out = float(value)
    except (TypeError, ValueError):
        raise MeasureError(key, f"{key} = {value!r}: expected a number") from None
    if not np.isfinite(out):
        raise MeasureError(key, f"{key} = {value!r}: must be finite")
    return out


def _integer(params, key) -> int:
    value = _number(params, key)
    if not value.is_integer():
        raise MeasureError(key, f"{key} = {params[key]!r}: expected an integer")
    return int(value)


def _float_vector(value, key) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise MeasureError(key, f"expected a list of numbers, got {type(value).__name__}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise MeasureError(key, f"shape {arr.shape}: expected a non-empty flat list of numbers")
    if not np.all(np.isfinite(arr)):
        raise MeasureError(key, "contains NaN or infinite values; give finite numbers")
    return arr


def _atoms(positions, weights, position_key, weight_key) -> Atoms:
    """Atoms from raw positions (wrapped) and optional raw weights (normalised; default 1/N)."""
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


def _mixture(components, base_dir) -> Mixture:
    try:
        items = list(components)
    except TypeError:
        raise MeasureError("components", "expected a list of (weight, (kind, params))") from None
    weights, densities = [], []
    for i, item in enumerate(items):
        key = f"components[{i}]"
        try:
            if isinstance(item, dict):
                spec = dict(item)
                weight = spec.pop("weight")
                kind, params = spec.pop("kind"), spec
            else:
                weight, spec = item
                if hasattr(spec, "kind") and hasattr(spec, "params"):
                    kind, params = spec.kind, spec.params
                elif isinstance(spec, dict):
                    params = dict(spec)
                    kind = params.pop("kind")
                else:
                    kind, params = spec
        except (KeyError, TypeError, ValueError):
            raise MeasureError(key, "expected (weight, (kind, params)) or a table with weight and "
                               "kind") from None
        try:
            density = make_measure(kind, params, base_dir=base_dir)
        except MeasureError as err:
            raise MeasureError(f"{key}.{err.key}", err.message) from None
        if isinstance(density, Atoms):
            raise MeasureError(f"{key}.kind", f"{kind!r} gives atoms; mixtures take densities only")
        try:
            weight = _number({"weight": weight}, "weight")
        except MeasureError as err:
            raise MeasureError(f"{key}.weight", err.message) from None
        if weight <= 0:
            raise MeasureError(f"{key}.weight", f"weight = {weight!r}: must be > 0")
        weights.append(weight)
        densities.append(density)
    try:
        return Mixture(tuple(weights), tuple(densities))
    except MeasureError as err:
        raise MeasureError("components", err.message) from None


# ---------------------------------------------------------------------------------- files


def _resolve(path, base_dir) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def _from_file(path, weights_path, base_dir) -> Density | Atoms:
    """``.npy`` grid values ``(n,)`` or positions ``(N, 1)``; or a result.nc's last snapshot."""
    p = _resolve(path, base_dir)
    if not p.is_file():
        raise MeasureError("path", f"{str(p)!r} is not a file; check the path (relative paths "
                           "are resolved against the config's directory)")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        arr = _load_npy(p, "path")
        if arr.ndim == 1:
            if weights_path is not None:
                raise MeasureError("weights_path", "only particle positions take weights; "
                                   f"{p.name} holds grid values (n,); remove weights_path")
            return _grid(arr, "path")
        if arr.ndim == 2 and arr.shape[1] == 1 and arr.shape[0] >= 1:
            weights = None
            if weights_path is not None:
                w = _load_npy(_resolve(weights_path, base_dir), "weights_path")
                if w.ndim != 1:
                    raise MeasureError("weights_path", f"array of shape {w.shape}: expected (N,)")
                weights = w
            return _atoms(arr[:, 0], weights, "path", "weights_path")
        raise MeasureError("path", f"{p.name} holds an array of shape {arr.shape}: expected grid "
                           "values (n,) or particle positions (N, 1) on the circle")
    if suffix in (".nc", ".nc4", ".h5", ".hdf5"):
        if weights_path is not None:
            raise MeasureError("weights_path", "a result file carries its own weights; remove "
                               "weights_path")
        return _from_result(p)
    raise MeasureError("path", f"{p.name}: unsupported file type {suffix!r}; use a .npy array "
                       "or a previous run's result.nc")


def _load_npy(path: Path, key: str) -> np.ndarray:
    if not path.is_file():
        raise MeasureError(key, f"{str(path)!r} is not a file; check the path")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise MeasureError(key, f"cannot read {path.name} as a .npy array ({err}); save it with "
                           "numpy.save") from None
    if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.integer)
                                               or np.issubdtype(arr.dtype, np.floating)):
        raise MeasureError(key, f"{path.name} holds {getattr(arr, 'dtype', type(arr))} data; "
                           "expected real numbers")
    return arr.astype(float)


def _grid(values: np.ndarray, key: str) -> GridDensity:
    try:
        return GridDensity(values)
    except MeasureError as err:
        raise MeasureError(key, err.message) from None


def _from_result(path: Path) -> Density | Atoms:
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            if "density" in ds.variables:
                density = _last_snapshot(ds["density"])
                if density.ndim != 1:
                    raise MeasureError("path", f"density of shape {density.shape} in the last "
                                       "snapshot: expected (n,) (d = 1)")
                return _grid(density, "path")
            if "positions" in ds.variables:
                positions = _last_snapshot(ds["positions"])
                weights = _last_snapshot(ds["weights"]) if "weights" in ds.variables else None
            else:
                raise MeasureError("path", f"{path.name} has neither 'density' nor 'positions'; "
                                   "give a result.nc written by kmdflow run")
    except MeasureError:
        raise
    except ImportError as err:
        raise MeasureError("path", f"reading {path.name} needs a NetCDF backend ({err}); "
                           "install h5py") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise MeasureError("path", f"cannot read {path.name} as NetCDF ({type(err).__name__}: "
                           f"{err}); give a result.nc written by kmdflow run") from None
    if positions.ndim == 2 and positions.shape[1] == 1:
        positions = positions[:, 0]
    if positions.ndim != 1 or positions.size == 0:
        raise MeasureError("path", f"positions of shape {positions.shape} in the last snapshot: "
                           "expected (N, 1) (d = 1)")
    if weights is not None and weights.shape != positions.shape:
        raise MeasureError("path", f"weights of shape {weights.shape} for {positions.size} "
                           "positions in the last snapshot")
    return _atoms(positions, weights, "path", "path")


def _last_snapshot(var) -> np.ndarray:
    """Values of ``var`` at the latest ``snapshot_time`` (all of it if it has no such dim)."""
    if "snapshot_time" in var.dims:
        index = -1
        if "snapshot_time" in var.coords and np.issubdtype(var["snapshot_time"].dtype, np.number):
            index = int(np.argmax(var["snapshot_time"].values))
        var = var.isel(snapshot_time=index)
    return np.asarray(var.values, dtype=float)
