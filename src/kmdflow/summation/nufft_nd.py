r"""Particle forces and energies on ``T^d`` for the spectrally truncated kernel, by NUFFT.

Conventions (Fourier signs, positions, weights, the one-sided layout of d-dimensional spectra):
:mod:`kmdflow.domains.torus`.

The truncated kernel
    In ``d >= 2`` the force kernel ``grad K_s`` is singular at the origin for small ``s``, and its
    Fourier series converges slowly for all moderate ``s``: ``sum_k |k| lambda(|k|)`` over ``Z^d``
    converges only when ``lambda`` decays faster than ``|k|^-(d+1)``, i.e. ``s > (d + 1) / 2`` for
    the Sobolev kernel. The particle method on ``T^d`` is therefore *defined* as the flow of the
    kernel truncated to the box ``B_K = {0 < |k|_inf <= K}``:

    .. math::

        \psi_K(x) = \sum_{k \in B_K} \lambda(|k|)\,(\hat\mu(k) - \hat\nu(k))\, e^{i k\cdot x},
        \qquad v_i = -\nabla\psi_K(X_i),
        \qquad E_K = \tfrac12 \sum_{k \in B_K} \lambda(|k|)\, |\hat\mu(k) - \hat\nu(k)|^2,

    with ``mu_hat(k) = sum_j w_j exp(-i k.X_j)``. Force and energy come from the same kernel, so
    ``dE_K/dt = -sum_i w_i |v_i|^2`` holds exactly along the particle flow (up to the NUFFT
    tolerance). The spectral PDE on ``n^d`` points (:mod:`kmdflow.flows.spectral_nd`) is the
    Galerkin flow of the same kernel with ``K = n/2 - 1``, so the two can be compared directly.
    The resolved length scale is ``2 pi / K``.

Choosing ``K`` (:func:`truncation_modes`)
    Given ``n_modes``, ``K = n_modes``. Otherwise ``K`` is the smallest cutoff whose dropped force
    tail is below ``tol`` relative to the whole: ``T(K) <= tol * T(0)`` with
    ``T(K) = sum_{|k|_inf > K} |k| lambda(|k|)`` (per unit of charge, a bound on the change of any
    velocity). This needs a Sobolev order ``s > (d + 1) / 2`` and a ``K`` within
    :data:`MAX_AUTO_MODES`; otherwise ``n_modes`` must be given (the error says so).

finufft
    Type 1 with ``isign=-1`` returns ``sum_j c_j exp(-i k.X_j)`` for ``k_i = -K .. K`` in increasing
    order along axis ``i`` (coordinate ``i``; ``modeord=0``, odd mode counts ``2K + 1``); type 2 with
    ``isign=+1`` evaluates ``sum_k f_k exp(+i k.x)``. The ``d`` gradient components go through one
    vectorised type-2 call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kmdflow.domains.torus import TWO_PI, resize_spectrum, wrap

__all__ = [
    "MAX_AUTO_MODES",
    "RadialMultiplier",
    "TruncatedKernel",
    "direct_fourier_force_nd",
    "nufft_energy_nd",
    "nufft_force_nd",
    "radial_multiplier",
    "sobolev_tail_bound",
    "truncation_modes",
]

#: Largest ``(2K + 1)^d`` the automatic choice of ``K`` may return (beyond it: pass ``n_modes``).
MAX_AUTO_MODES = 2**22
#: Smallest tolerance handed to finufft (its double-precision floor is near 1e-14).
EPS_FLOOR = 1e-14
#: finufft tolerance as a fraction of the requested ``tol`` (type-1 and type-2 errors add up).
EPS_SHARE = 0.1
#: Below this many points finufft runs on one thread: on two shared cores its threads cost more
#: than they save there (measured: N = 4096, K = 15 in 2-D, 0.8 ms on one thread vs 4.4 ms on two;
#: N = 2e4, K = 256: 14-17 ms vs 17-25 ms; at N = 1e6 two threads win, 0.19 s vs 0.34 s).
SINGLE_THREAD_BELOW = 200_000
#: finufft's upsampling factor: 1.25 halves the fine grid of 2.0 per axis, and the FFT dominates
#: for the grids used here (measured at K = 256, N = 2e4, eps = 1e-7: 24 ms vs 70 ms for a
#: type-1 + type-2 pair); finufft widens its spreading kernel to keep ``eps``. Below ``1e-9``
#: finufft's own default (2.0) is kept.
UPSAMPLING = 1.25
#: A kernel's FFTW plans are re-made with FFTW_MEASURE after this many evaluations, when the fine
#: grid has at least :data:`MEASURE_GRID` points: measuring costs 0.2-3 s once per grid size and
#: process (FFTW keeps the wisdom) and then saves about 40% of each transform (K = 256: 14 ms vs
#: 24 ms per type-1 + type-2 pair), so only a kernel serving a long run pays for it.
MEASURE_AFTER = 20
MEASURE_GRID = 2**16
_FFTW_ESTIMATE, _FFTW_MEASURE = 64, 0
#: Box ``|k|_inf <= TAIL_BOX`` summed exactly for ``T(0)``; the rest is bounded by an integral.
TAIL_BOX = 24


# ---------------------------------------------------------------------------------------------
# The multiplier as a function of |k|
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RadialMultiplier:
    r"""A Fourier multiplier ``lambda(|k|)`` evaluated at Euclidean norms (non-integer in ``d > 1``).

    Attributes
    ----------
    function : callable
        ``function(norms)``: float array of any shape -> float array of that shape, ``0`` at ``0``.
    s : float or None
        Sobolev order when ``lambda(r) = r^(-2s)`` (used to choose ``K`` from a tolerance);
        ``None`` for other multipliers.
    """

    function: Callable[[np.ndarray], np.ndarray]
    s: float | None = None

    def __call__(self, norms: np.ndarray) -> np.ndarray:
        """``lambda`` at ``norms`` (any shape, float), as float64 of that shape."""
        return np.asarray(self.function(np.asarray(norms, dtype=float)), dtype=float)


def _sobolev(s: float) -> Callable[[np.ndarray], np.ndarray]:
    def lam(r: np.ndarray) -> np.ndarray:
        out = np.zeros(np.shape(r))
        nz = r != 0.0
        out[nz] = r[nz] ** (-2.0 * s)
        return out
    return lam


def radial_multiplier(spec) -> RadialMultiplier:
    r"""Turn a multiplier specification into a :class:`RadialMultiplier`.

    Parameters
    ----------
    spec : float, SobolevKernel, callable or RadialMultiplier
        A number is the Sobolev order ``s`` (``lambda(r) = r^(-2s)``); an object with ``s`` and
        ``multiplier`` (a :class:`~kmdflow.kernels.sobolev.SobolevKernel`) or its bound method
        ``kernel.multiplier`` gives that kernel with its ``s``; any other callable is taken as
        ``lambda`` of the Euclidean norm ``|k|`` (it must accept non-integer floats), with
        ``s = spec.s`` if it has one.

    Returns
    -------
    RadialMultiplier

    Raises
    ------
    ValueError
        Naming ``multiplier``: a non-positive ``s``, a callable that is not ``0`` at ``|k| = 0``
        or not finite and nonnegative at ``|k| = 1, 1.5``.
    """
    if isinstance(spec, RadialMultiplier):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        s = float(spec)
        if not s > 0:
            raise ValueError(f"multiplier: Sobolev order s = {spec!r} must be positive; pass s > 0")
        return RadialMultiplier(_sobolev(s), s)
    if hasattr(spec, "multiplier") and hasattr(spec, "s"):
        return radial_multiplier(float(spec.s))
    if not callable(spec):     # a bad config value: ValueError, as for every other argument check
        raise ValueError(f"multiplier = {spec!r} is neither a Sobolev order nor a callable of |k|; "  # noqa: TRY004
                         f"pass s (a float) or a function lambda(|k|)")
    owner = getattr(spec, "__self__", None)
    s = getattr(spec, "s", getattr(owner, "s", None))
    probe = np.asarray(spec(np.array([0.0, 1.0, 1.5])), dtype=float)
    if probe.shape != (3,) or probe[0] != 0.0 or not np.all(np.isfinite(probe)) or np.any(probe < 0):
        raise ValueError(f"multiplier: lambda(|k|) at |k| = 0, 1, 1.5 gave {probe!r}; it must be 0 at 0 "
                         f"and finite and nonnegative elsewhere, evaluated elementwise on float arrays")
    return RadialMultiplier(spec, None if s is None else float(s))


# ---------------------------------------------------------------------------------------------
# Choosing the cutoff K
# ---------------------------------------------------------------------------------------------

def _sphere_area(dim: int) -> float:
    """Area of the unit sphere ``S^(d-1)`` in ``R^d``."""
    return 2.0 * math.pi ** (dim / 2.0) / math.gamma(dim / 2.0)


def sobolev_tail_bound(s: float, dim: int, n_modes: int) -> float:
    r"""Upper bound on ``T(K) = sum_{|k|_inf > K} |k|^(1-2s)`` over ``Z^d`` (``inf`` if divergent).

    Notes
    -----
    Each lattice point ``k`` owns the unit cell around it, on which ``|x| <= |k| + c``,
    ``c = sqrt(d)/2``; the cells of ``|k|_inf > K`` lie in ``|x| >= K + 1/2``. With ``u = |x| - c``,

    .. math::

        T(K) \le |S^{d-1}| \int_{u_0}^\infty (u + c)^{d-1} u^{1-2s} du
             \le |S^{d-1}| (1 + c/u_0)^{d-1} \frac{u_0^{d+1-2s}}{2s-d-1},
        \qquad u_0 = K + \tfrac12 - c,

    finite for ``s > (d + 1)/2`` and ``u_0 > 0``.
    """
    c = math.sqrt(dim) / 2.0
    u0 = n_modes + 0.5 - c
    if 2.0 * s <= dim + 1 or u0 <= 0:
        return math.inf
    return _sphere_area(dim) * (1.0 + c / u0) ** (dim - 1) * u0 ** (dim + 1 - 2.0 * s) / (2.0 * s - dim - 1)


def _norms(n_modes: int, dim: int) -> np.ndarray:
    """``|k|`` on the centred box ``k_i = -K .. K``, shape ``(2K + 1,) * d``."""
    k = np.arange(-n_modes, n_modes + 1, dtype=float)
    sq = np.zeros((2 * n_modes + 1,) * dim)
    for axis in range(dim):
        shape = [1] * dim
        shape[axis] = -1
        sq = sq + (k**2).reshape(shape)
    return np.sqrt(sq)


def truncation_modes(multiplier, dim: int, tol: float, n_modes: int | None = None) -> int:
    """The cutoff ``K`` of the truncated kernel (module docstring, "Choosing K").

    Parameters
    ----------
    multiplier : float, SobolevKernel, callable or RadialMultiplier
        See :func:`radial_multiplier`.
    dim : int
        Dimension ``d`` (1, 2 or 3).
    tol : float
        Relative force accuracy, ``0 < tol < 1``.
    n_modes : int, optional
        Explicit ``K >= 1``; returned as is.

    Returns
    -------
    int
        ``K``.

    Raises
    ------
    ValueError
        Naming ``n_modes`` when it must be given: an unknown or too small Sobolev order (the
        tail diverges), or a ``K`` above :data:`MAX_AUTO_MODES` for this ``tol``.
    """
    if n_modes is not None:
        if int(n_modes) != n_modes or n_modes < 1:
            raise ValueError(f"n_modes = {n_modes!r}: pass a positive integer cutoff K (|k_i| <= K)")
        return int(n_modes)
    if not 0 < tol < 1:
        raise ValueError(f"tol = {tol!r}: pass a relative accuracy between 0 and 1, e.g. 1e-8")
    lam = radial_multiplier(multiplier)
    s = lam.s
    if s is None or 2.0 * s <= dim + 1:
        why = "the multiplier has no Sobolev order" if s is None else \
            f"sum |k|^(1-2s) diverges in d = {dim} for s = {s:g} <= (d + 1)/2 = {(dim + 1) / 2:g}"
        raise ValueError(f"n_modes is required: {why}, so no cutoff reaches tol = {tol:g}; pass "
                         f"n_modes = K (the flow is then that of the kernel truncated to |k_i| <= K)")
    norms = _norms(TAIL_BOX, dim)
    near = np.sum(norms * lam(norms))
    total = near + sobolev_tail_bound(s, dim, TAIL_BOX)      # T(0), bounded above

    def small_enough(k_cut: int) -> bool:
        return sobolev_tail_bound(s, dim, k_cut) <= tol * total

    k_max = int((MAX_AUTO_MODES ** (1.0 / dim) - 1) // 2)
    if not small_enough(k_max):
        hi = 2 * k_max
        while not small_enough(hi) and hi < 2**50:
            hi *= 2
        raise ValueError(f"n_modes is required: s = {s:g} in d = {dim} needs K = {_bisect(small_enough, k_max, hi)} "
                         f"> {k_max} modes per axis to reach tol = {tol:g}; pass n_modes = K (the flow is "
                         f"then that of the kernel truncated to |k_i| <= K) or a larger tol")
    return max(_bisect(small_enough, 0, k_max), 1)


def _bisect(ok: Callable[[int], bool], lo: int, hi: int) -> int:
    """Smallest integer in ``(lo, hi]`` with ``ok``, given ``ok(hi)`` and a monotone ``ok``."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------------------------
# The truncated kernel with its target, ready to evaluate
# ---------------------------------------------------------------------------------------------

def centred_target(target_hat: np.ndarray | None, n_modes: int, dim: int) -> np.ndarray:
    r"""Target coefficients ``nu_hat(k)`` on the centred box ``k_i = -K .. K``, ``(2K + 1,) * d``.

    Parameters
    ----------
    target_hat : one-sided layout (:mod:`kmdflow.domains.torus`) complex, or None
        Coefficients of the target density; modes beyond its layout are zero. ``None``: uniform
        (``nu_hat = delta_k0``, mass 1).
    n_modes : int
        ``K``.
    dim : int
        ``d``.
    """
    size = 2 * n_modes + 1
    full = np.zeros((size,) * dim, dtype=complex)
    if target_hat is None:
        full[(n_modes,) * dim] = 1.0
        return full
    target_hat = np.asarray(target_hat, dtype=complex)
    if target_hat.ndim != dim:
        raise ValueError(f"target_hat has {target_hat.ndim} axes (shape {target_hat.shape}) but dim = {dim}; "
                         f"pass the one-sided rfftn layout of a d-dimensional density")
    n_lay = 2 * n_modes + 2
    layout = resize_spectrum(target_hat, n_lay)          # |k_i| <= K kept, zero beyond the input
    centred = np.r_[n_lay - n_modes:n_lay, 0:n_modes + 1]  # layout indices of k = -K .. K
    index = [centred] * (dim - 1) + [np.arange(n_modes + 1)]
    full[..., n_modes:] = layout[np.ix_(*index)]
    # k_d < 0: mirror images, nu_hat(-k) = conj(nu_hat(k)); flipping every axis maps k -> -k
    full[..., :n_modes] = np.conj(np.flip(full[..., n_modes + 1:]))
    return full


@dataclass(frozen=True, eq=False)
class TruncatedKernel:
    r"""The kernel truncated to ``0 < |k|_inf <= K``, with a target: forces and energies of particles.

    Parameters
    ----------
    multiplier : float, SobolevKernel, callable or RadialMultiplier
        ``lambda(|k|)`` (see :func:`radial_multiplier`).
    dim : int
        ``d``: 1, 2 or 3.
    target_hat : one-sided layout complex, or None
        Target density coefficients (see :func:`centred_target`); ``None`` for uniform.
    n_modes : int, optional
        ``K``; chosen from ``tol`` when omitted (:func:`truncation_modes`).
    tol : float
        Relative accuracy: of the truncation (when ``K`` is chosen) and of the NUFFTs.

    Attributes
    ----------
    n_modes : int
        ``K``.
    length_scale : float
        ``2 pi / K``, the smallest resolved length.
    eps : float
        Tolerance handed to finufft.
    """

    multiplier: object
    dim: int
    target_hat: np.ndarray | None = None
    n_modes: int | None = None
    tol: float = 1e-10
    lam: np.ndarray = field(init=False, repr=False)
    waves: tuple = field(init=False, repr=False)
    nu_hat: np.ndarray = field(init=False, repr=False)
    eps: float = field(init=False)
    _packed: tuple = field(init=False, repr=False)
    _plans: dict = field(init=False, repr=False, default_factory=dict)
    _calls: list = field(init=False, repr=False, default_factory=lambda: [0])

    def __post_init__(self) -> None:
        if self.dim not in (1, 2, 3):
            raise ValueError(f"dim = {self.dim!r}: the torus flows support d = 1, 2, 3")
        if not 0 < self.tol < 1:
            raise ValueError(f"tol = {self.tol!r}: pass a relative accuracy between 0 and 1, e.g. 1e-10")
        radial = radial_multiplier(self.multiplier)
        k_cut = truncation_modes(radial, self.dim, self.tol, self.n_modes)
        lam = radial(_norms(k_cut, self.dim))
        lam[(k_cut,) * self.dim] = 0.0
        k = np.arange(-k_cut, k_cut + 1, dtype=float)
        waves = tuple(k.reshape([-1 if a == i else 1 for a in range(self.dim)]) for i in range(self.dim))
        object.__setattr__(self, "multiplier", radial)
        object.__setattr__(self, "n_modes", k_cut)
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "waves", waves)
        object.__setattr__(self, "nu_hat", centred_target(self.target_hat, k_cut, self.dim))
        object.__setattr__(self, "eps", max(EPS_FLOOR, EPS_SHARE * self.tol))
        # -grad as packed complex multipliers: (-i k_1 + k_2) lambda, (-i k_3 + 0) lambda
        grads = [-1j * kw * lam for kw in waves]
        packed = tuple(grads[i] + (1j * grads[i + 1] if i + 1 < self.dim else 0.0)
                       for i in range(0, self.dim, 2))
        object.__setattr__(self, "_packed", tuple(np.broadcast_to(p, lam.shape).astype(complex) for p in packed))

    @property
    def length_scale(self) -> float:
        return TWO_PI / self.n_modes

    @property
    def shape(self) -> tuple[int, ...]:
        return (2 * self.n_modes + 1,) * self.dim

    # -- finufft plans, kept for the kernel's life ------------------------------------------------
    def _plan(self, kind: int, n_points: int):
        """A finufft plan of type ``kind`` (1: spread, 2: interpolate the packed gradient), reused."""
        import finufft

        threads = 1 if n_points < SINGLE_THREAD_BELOW else 0
        self._calls[0] += 1
        upsampling = UPSAMPLING if self.eps >= 1e-9 else 2.0
        fine_points = np.prod([math.ceil(upsampling * m) for m in self.shape])
        measure = self._calls[0] > MEASURE_AFTER and fine_points >= MEASURE_GRID
        key = (kind, threads)
        cached = self._plans.get(key)
        if cached is not None and (cached[1] or not measure):
            return cached[0]
        options = {"eps": self.eps, "nthreads": threads, "upsampfac": upsampling,
                   "fftw": _FFTW_MEASURE if measure else _FFTW_ESTIMATE}
        if kind == 1:
            plan = finufft.Plan(1, self.shape, isign=-1, **options)
        else:
            plan = finufft.Plan(2, self.shape, n_trans=len(self._packed), isign=1, **options)
        self._plans[key] = (plan, measure)
        return plan

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_plans"], state["_calls"] = {}, [0]      # finufft plans do not pickle
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    # -- the sums --------------------------------------------------------------------------------
    def _coordinates(self, positions: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(positions, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"positions must have shape (N, {self.dim}), got {x.shape}; "
                             f"pass one row per particle")
        x = wrap(x)              # finufft wants points in [-3 pi, 3 pi]
        return [np.ascontiguousarray(x[:, i]) for i in range(self.dim)]

    def deviation(self, positions: np.ndarray, weights: np.ndarray) -> np.ndarray:
        r"""``mu_hat(k) - nu_hat(k)`` on the centred box, ``(2K + 1,) * d`` complex (type-1 NUFFT)."""
        coords = self._coordinates(positions)
        w = np.asarray(weights, dtype=float)
        if w.shape != coords[0].shape:
            raise ValueError(f"weights must have shape ({coords[0].size},) like positions' rows, "
                             f"got {w.shape}; pass one weight per particle")
        plan = self._plan(1, w.size)
        plan.setpts(*coords)
        mu = plan.execute(w.astype(complex))
        if self.target_hat is None:                # uniform: only the mass mode, where lambda = 0
            mu[(self.n_modes,) * self.dim] -= 1.0
            return mu
        mu -= self.nu_hat
        return mu

    def energy_from(self, deviation: np.ndarray) -> float:
        r"""``E_K = 1/2 sum_{k in B_K} lambda |deviation(k)|^2`` (the box holds ``k`` and ``-k``)."""
        return 0.5 * float(np.sum(self.lam * (deviation.real**2 + deviation.imag**2)))

    def velocity_from(self, deviation: np.ndarray, positions: np.ndarray) -> np.ndarray:
        r"""``-grad psi_K`` at ``positions`` from the deviation's coefficients: ``(N, d)`` float.

        Notes
        -----
        ``-d_i psi = sum_k (-i k_i) lambda (mu_hat - nu_hat) e^{ik.x}`` is real, so two components
        share one complex series: ``-d_1 psi - i d_2 psi`` has coefficients
        ``(-i k_1 + k_2) lambda (mu_hat - nu_hat)`` (:attr:`_packed`, precomputed). ``d = 2`` needs
        one type-2 transform, ``d = 3`` two (one vectorised call).
        """
        coords = self._coordinates(positions)
        coeffs = np.stack([m * deviation for m in self._packed])
        plan = self._plan(2, coords[0].size)
        plan.setpts(*coords)
        packed = np.reshape(plan.execute(coeffs), (len(self._packed), -1))
        v = np.empty((coords[0].size, self.dim))
        for i in range(self.dim):
            v[:, i] = packed[i // 2].imag if i % 2 else packed[i // 2].real
        return v

    def velocity(self, positions: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Velocities ``-grad psi_K(X_i)``, ``(N, d)``."""
        return self.velocity_from(self.deviation(positions, weights), positions)

    def energy(self, positions: np.ndarray, weights: np.ndarray) -> float:
        """Energy ``E_K`` of the particles against the target."""
        return self.energy_from(self.deviation(positions, weights))


def _as_positions(positions) -> np.ndarray:
    x = np.asarray(positions, dtype=float)
    if x.ndim != 2 or x.shape[1] not in (1, 2, 3):
        raise ValueError(f"positions must have shape (N, d) with d in 1, 2, 3, got {x.shape}; "
                         f"pass one row per particle")
    if not np.all(np.isfinite(x)):
        raise ValueError("positions contain non-finite values; pass finite coordinates")
    return x


def nufft_force_nd(multiplier, positions: np.ndarray, charges: np.ndarray, target_hat=None,
                   n_modes: int | None = None, tol: float = 1e-10) -> np.ndarray:
    r"""Particle velocities ``v_i = -grad psi_K(X_i)`` for the kernel truncated to ``|k|_inf <= K``.

    Parameters
    ----------
    multiplier : float, SobolevKernel, callable or RadialMultiplier
        ``lambda(|k|)`` (see :func:`radial_multiplier`); a number is the Sobolev order ``s``.
    positions : (N, d) float
        Particle positions (any reals; wrapped).
    charges : (N,) float
        Weights ``w_j``.
    target_hat : one-sided layout complex, or None
        Target density (``None``: uniform, mass 1).
    n_modes : int, optional
        The cutoff ``K`` (else chosen from ``tol``, see :func:`truncation_modes`).
    tol : float
        Relative accuracy (truncation when ``K`` is chosen; NUFFTs always).

    Returns
    -------
    (N, d) float
        Velocities.

    Notes
    -----
    ``psi_hat(k) = lambda(|k|) (mu_hat(k) - nu_hat(k))`` for ``0 < |k|_inf <= K``,
    ``mu_hat(k) = sum_j w_j exp(-i k.X_j)`` (type-1 NUFFT), and
    ``v_i = sum_k (-i k) psi_hat(k) exp(i k.X_i)`` (type-2 NUFFT); cost
    ``O(N log(1/eps)^d + K^d log K)``. Build a :class:`TruncatedKernel` once to reuse the setup.
    """
    x = _as_positions(positions)
    kernel = TruncatedKernel(multiplier, x.shape[1], target_hat, n_modes, tol)
    return kernel.velocity(x, charges)


def nufft_energy_nd(multiplier, positions: np.ndarray, charges: np.ndarray, target_hat=None,
                    n_modes: int | None = None, tol: float = 1e-10) -> float:
    r"""Energy ``E_K = 1/2 sum_{0 < |k|_inf <= K} lambda(|k|) |mu_hat(k) - nu_hat(k)|^2``.

    Parameters and ``K``: as :func:`nufft_force_nd`, so energy and force belong to the same kernel.

    Returns
    -------
    float
        ``E_K >= 0``.
    """
    x = _as_positions(positions)
    kernel = TruncatedKernel(multiplier, x.shape[1], target_hat, n_modes, tol)
    return kernel.energy(x, charges)


def direct_fourier_force_nd(kernel: TruncatedKernel, positions: np.ndarray, weights: np.ndarray,
                            block: int = 2048) -> np.ndarray:
    r"""The same velocities as :meth:`TruncatedKernel.velocity` by direct Fourier sums (reference).

    ``O(N (2K + 1)^d)``: the exponentials factor over the axes, ``e^{-ik.x} = prod_i e^{-i k_i x_i}``,
    so each block of particles costs a few dense matrix products (the baseline of
    :func:`kmdflow.bench_nd.bench_nufft_2d`).

    Parameters
    ----------
    kernel : TruncatedKernel
    positions : (N, d) float
    weights : (N,) float
    block : int
        Particles per block (bounds the memory of the ``(block, (2K+1)^(d-1))`` temporaries).

    Returns
    -------
    (N, d) float
    """
    x = wrap(np.asarray(positions, dtype=float))
    w = np.asarray(weights, dtype=float)
    d = kernel.dim
    k = np.arange(-kernel.n_modes, kernel.n_modes + 1, dtype=float)
    size = k.size

    def rows(first: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
        """Row-wise outer products ``first (B, 1) x factors ...``: ``(B, size^len(factors))``."""
        out = first
        for f in factors:
            out = (out[:, :, None] * f[:, None, :]).reshape(out.shape[0], -1)
        return out

    mu = np.zeros((size ** (d - 1), size), dtype=complex)
    for start in range(0, x.shape[0], block):
        xb, wb = x[start:start + block], w[start:start + block]
        factors = [np.exp(-1j * np.outer(xb[:, i], k)) for i in range(d)]   # (B, 2K+1) each
        mu += rows(wb[:, None].astype(complex), factors[:-1]).T @ factors[-1]
    psi = kernel.lam * (mu.reshape((size,) * d) - kernel.nu_hat)
    coeffs = [(-1j * kernel.waves[i] * psi).reshape(-1, size) for i in range(d)]
    out = np.empty(x.shape)
    for start in range(0, x.shape[0], block):
        xb = x[start:start + block]
        factors = [np.exp(1j * np.outer(xb[:, i], k)) for i in range(d)]
        lead = rows(np.ones((xb.shape[0], 1), dtype=complex), factors[:-1])
        for i in range(d):
            out[start:start + block, i] = np.einsum("bm,bm->b", lead @ coeffs[i], factors[-1]).real
    return out
