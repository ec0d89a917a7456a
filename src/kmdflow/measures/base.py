r"""The base of the measure families: :class:`TorusDensity`, :class:`Density`, :class:`MeasureError`.

:class:`TorusDensity` is what every probability density on :math:`T^d` offers (``dim``,
``fourier_nd``, ``values``, ``sample``, extrema, regularity); :class:`Density` is the ``d = 1``
branch, which adds the cdf machinery of :mod:`kmdflow.measures.placement`, and
:class:`~kmdflow.measures.base_nd.DensityND` the ``d >= 2`` branch. Positions, the normalisation
(w.r.t. ``dx / (2 pi)^d``, so the uniform measure has density ``1``), the Fourier convention and
the one-sided layout of ``fourier_nd`` are those of :mod:`kmdflow.domains.torus`. Every density is
a probability density: its coefficient at ``k = 0`` is ``1``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class MeasureError(ValueError):
    """A measure that cannot be built from its parameters or file.

    ``key`` names the offending parameter (``"path"``, ``"weights"``, ``"components[1].kappa"``);
    ``message`` says what is wrong and how to fix it. ``str(err)`` is one line: ``key: message``.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = " ".join(str(message).split())
        super().__init__(f"{key}: {self.message}" if key else self.message)



#: Ways :meth:`TorusDensity.sample` draws its uniforms (:mod:`kmdflow.measures.uniforms`).
SAMPLE_METHODS = ("random", "sobol")


class TorusDensity(ABC):
    """A probability density on :math:`T^d` w.r.t. ``dx / (2 pi)^d`` (conventions: ``domains/torus``).

    The members every family offers, whatever ``d``; :class:`Density` (``d = 1``) and
    :class:`~kmdflow.measures.base_nd.DensityND` (``d >= 2``) implement them. Each family also
    has ``dim``, the dimension ``d`` of the torus (an attribute, a property or a dataclass
    field; it is not declared here so that dataclass families can take it as a field).
    """

    @abstractmethod
    def fourier_nd(self, n: int) -> np.ndarray:
        r"""Exact coefficients :math:`\hat\mu(k)` in the one-sided layout of an ``n^d`` grid.

        Parameters
        ----------
        n : int
            Grid points per axis, ``>= 2``.

        Returns
        -------
        (n,) * (d - 1) + (n // 2 + 1,) complex
            The layout of :mod:`kmdflow.domains.torus` (``rfftn`` order; ``(n // 2 + 1,)`` for
            ``d = 1``). Every wavevector the layout holds gets its exact coefficient, except that
            the Nyquist planes (a component ``= n/2``, even ``n``) are zero. Entry ``0`` is 1.
        """

    @abstractmethod
    def values(self, points: np.ndarray) -> np.ndarray:
        """Density at ``points``: shape ``(...)`` for ``d = 1``, ``(..., d)`` for ``d >= 2``."""

    @abstractmethod
    def sample(self, n: int, seed: int, method: str = "random") -> np.ndarray:
        """``n`` points distributed as the density (``(n,)`` for ``d = 1``, else ``(n, d)``).

        ``method = "random"``: i.i.d.; ``"sobol"``: a scrambled Sobol' sequence mapped through the
        density (low discrepancy). The uniforms come from
        :func:`~kmdflow.measures.uniforms.uniform_points`; the same arguments give the same points.
        """

    @abstractmethod
    def min_value(self) -> float:
        """Infimum of the density over the torus."""

    @abstractmethod
    def max_value(self) -> float:
        """Supremum of the density over the torus."""

    @abstractmethod
    def regularity(self) -> float | None:
        """Sobolev regularity ``r*`` of ``rho - 1`` (in ``H^r`` for ``r < r*``), ``None`` if unknown."""


class Density(TorusDensity):
    """A probability density on :math:`T^1` w.r.t. ``dx / 2 pi`` (conventions: ``domains/torus``).

    Subclasses give closed forms for :meth:`fourier`, :meth:`values` and :meth:`cdf`. The extra
    members :attr:`bandwidth`, :attr:`breakpoints`, :meth:`cdf_and_values` and
    :meth:`exact_inverse_cdf` serve :mod:`kmdflow.measures.placement`; :meth:`fourier_nd` and
    :meth:`sample` are the ``d``-independent interface of :class:`TorusDensity`.
    """

    #: Dimension of the torus.
    dim = 1

    def fourier_nd(self, n: int) -> np.ndarray:
        """:meth:`fourier` in the layout of an ``n``-point grid: ``(n // 2 + 1,)``, Nyquist zero."""
        n = check_grid_size(n)
        out = self.fourier(n // 2 + 1)
        if n % 2 == 0:
            out[-1] = 0.0
        return out

    def sample(self, n: int, seed: int, method: str = "random") -> np.ndarray:
        """``F^{-1}(U_j)`` for uniforms ``U`` drawn by ``method``; shape ``(n,)``, not sorted."""
        from kmdflow.measures.placement import inverse_cdf
        from kmdflow.measures.uniforms import uniform_points

        return inverse_cdf(self, uniform_points(n, 1, seed, method)[:, 0])

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



class MixtureMembers:
    """What the mixture families (:class:`~kmdflow.measures.piecewise.Mixture`,
    :class:`~kmdflow.measures.piecewise_nd.MixtureND`) share, whatever ``d``.

    Put it before the density base class. The subclass has the fields ``weights`` and
    ``components`` (checked by :func:`mixture_weights`) and the cached pair ``_extrema``
    ``(inf, sup)``, found by a search that suits its dimension.
    """

    @property
    def bandwidth(self) -> float:
        """The largest of the components' bandwidths."""
        return max(c.bandwidth for c in self.components)

    def min_value(self) -> float:
        return self._extrema[0]

    def max_value(self) -> float:
        return self._extrema[1]

    def regularity(self) -> float | None:
        """The smallest of the components' ``r*`` (``None`` if one is unknown)."""
        values = [c.regularity() for c in self.components]
        return None if any(v is None for v in values) else min(values)


def mixture_weights(weights, components) -> tuple[tuple[float, ...], tuple]:
    """Mixture ``weights`` normalised to sum 1, and ``components`` as a tuple.

    Raises :class:`MeasureError` (key ``"components"``) unless there is at least one component
    and one positive finite weight per component; the components themselves are not checked.
    """
    w = np.asarray(weights, dtype=float).reshape(-1)
    comps = tuple(components)
    if w.size == 0 or w.size != len(comps):
        raise MeasureError("components", f"{w.size} weights for {len(comps)} components; give "
                           "at least one component, each with a weight")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise MeasureError("components", f"weights {w.tolist()} must be positive and finite")
    return tuple(float(x) for x in w / w.sum()), comps


def check_modes(n_modes) -> int:
    """``n_modes`` as an ``int`` if it is an integer ``>= 1``, else :class:`MeasureError`."""
    if isinstance(n_modes, bool) or not isinstance(n_modes, (int, np.integer)) or n_modes < 1:
        raise MeasureError("n_modes", f"n_modes = {n_modes!r}: must be an integer >= 1")
    return int(n_modes)


def check_grid_size(n) -> int:
    """``n`` (grid points per axis) as an ``int`` if it is an integer ``>= 2``, else raise."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise MeasureError("n", f"n = {n!r}: grid points per axis must be an integer >= 2")
    return int(n)


def next_pow2(n: float) -> int:
    """The smallest power of 2 that is ``>= n`` (``1`` for ``n <= 1``)."""
    return 1 << max(0, int(np.ceil(np.log2(max(n, 1)))))


def padded(coeffs: np.ndarray, n_modes: int) -> np.ndarray:
    """``coeffs`` (shape ``(K,)``) cut or zero-padded to shape ``(n_modes,)``, complex."""
    out = np.zeros(check_modes(n_modes), dtype=complex)
    m = min(n_modes, coeffs.size)
    out[:m] = coeffs[:m]
    return out


def require_finite(key: str, value: float) -> None:
    """Raise :class:`MeasureError` naming ``key`` unless ``value`` is a finite number."""
    if not np.isfinite(value):
        raise MeasureError(key, f"{key} = {value!r}: must be a finite number")


def require_integer(key: str, value, least: int) -> int:
    """``value`` as an ``int`` if it is a whole number ``>= least`` (not a bool), else raise."""
    if isinstance(value, bool) or not float(value).is_integer() or value < least:
        raise MeasureError(key, f"{key} = {value!r}: must be an integer >= {least}")
    return int(value)
