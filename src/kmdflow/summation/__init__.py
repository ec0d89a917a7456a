r"""Particle sums ``F_i = sum_j q_j K'(x_i - y_j)`` on ``T^1``: a registry of methods.

Conventions: :mod:`kmdflow.domains.torus`. Every method has the signature
``force(kernel, targets (N,), sources (M,), charges (M,)) -> (N,)`` and agrees with
:func:`direct_force` to round-off (or to its declared tolerance).

========  ===============================================  =======================
name      method                                           serves
========  ===============================================  =======================
sorted    sort + prefix sums of powers, exact               integer ``s``
nufft     Ewald split: NUFFT far field + sorted near        any ``s``, to ``tol``
          field, ``O((N + M) log(N + M))``
direct    ``O(N M)`` sum of the exact kernel, blocked       any ``s``
========  ===============================================  =======================

``"auto"`` picks ``sorted`` for integer ``s`` (exact), ``nufft`` for other ``s`` once
``N * M > AUTO_NUFFT_PAIRS``, and ``direct`` below that.

Energies: :func:`atomic_energy` is exact (sorted recursion for integer ``s``, ``O(N^2)`` pair sum
otherwise); :func:`nufft_energy` is the ``O(N log N)`` Ewald sum to a relative tolerance, used by
the particle flows whenever forces use ``nufft``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kmdflow.summation.direct import direct_force, direct_potential
from kmdflow.summation.energy import atomic_energy
from kmdflow.summation.energy_nufft import nufft_energy
from kmdflow.summation.nufft import nufft_force
from kmdflow.summation.sorted import sorted_force

__all__ = [
    "AUTO_NUFFT_PAIRS",
    "SUMMATIONS",
    "Summation",
    "atomic_energy",
    "choose_summation",
    "direct_force",
    "direct_potential",
    "nufft_energy",
    "nufft_force",
    "pair_force",
    "sorted_force",
]


@dataclass(frozen=True)
class Summation:
    """A registered force-summation method.

    Attributes
    ----------
    name : str
        Registry key (the config's ``method.summation``).
    force : callable
        ``force(kernel, targets, sources, charges) -> (N,)``.
    serves : callable
        ``serves(kernel) -> bool``: whether the method is exact/valid for this kernel.
    requirement : str
        What ``serves`` checks, in words, for error messages.
    tolerance : bool
        Whether ``force`` is approximate and takes a ``tol`` keyword (relative to ``max|F|``);
        exact methods meet every ``tol``.
    """

    name: str
    force: Callable[..., np.ndarray]
    serves: Callable[[object], bool]
    requirement: str
    tolerance: bool = False


def _integer_s(kernel) -> bool:
    return bool(getattr(kernel, "is_integer", False))


def _any_kernel(kernel) -> bool:
    return True


#: Methods by name, each with its ``serves`` predicate; :func:`choose_summation` says when
#: ``"auto"`` prefers which.
SUMMATIONS: dict[str, Summation] = {
    "sorted": Summation("sorted", sorted_force, _integer_s, "an integer s (1, 2, 3, ...)"),
    "nufft": Summation("nufft", nufft_force, _any_kernel, "any s", tolerance=True),
    "direct": Summation("direct", direct_force, _any_kernel, "any s"),
}

#: ``"auto"`` uses ``nufft`` (non-integer ``s``) when ``n_targets * n_sources`` exceeds this;
#: below it the direct sum is exact and costs at most ~0.2 s (measured: N = M = 2000, s = 1.5,
#: direct 0.2 s, nufft 10-50 ms).
AUTO_NUFFT_PAIRS = 4_000_000


def choose_summation(kernel, n_targets: int, n_sources: int, method: str = "auto") -> str:
    """Name of the summation method to use for ``kernel`` and the given sizes.

    Parameters
    ----------
    kernel : SobolevKernel
    n_targets, n_sources : int
        Problem sizes.
    method : str
        ``"auto"`` or a key of :data:`SUMMATIONS`.

    Returns
    -------
    str
        For ``method="auto"``: ``"sorted"`` for integer ``s`` (exact), ``"nufft"`` for other ``s``
        when ``n_targets * n_sources > AUTO_NUFFT_PAIRS``, ``"direct"`` otherwise.
        ``method`` itself when it serves the kernel.

    Raises
    ------
    ValueError
        Naming ``summation``, for an unknown method or one that cannot serve the kernel.
    """
    if method == "auto":
        if _integer_s(kernel):
            return "sorted"
        return "nufft" if int(n_targets) * int(n_sources) > AUTO_NUFFT_PAIRS else "direct"
    if method not in SUMMATIONS:
        known = ", ".join(repr(k) for k in ("auto", *SUMMATIONS))
        raise ValueError(f"summation={method!r} is not a known method; choose one of {known}")
    entry = SUMMATIONS[method]
    if not entry.serves(kernel):
        raise ValueError(f"summation={method!r} needs {entry.requirement}, but the kernel has "
                         f"s={getattr(kernel, 's', None)}; use summation='auto' or 'direct'")
    return method


def pair_force(kernel, targets, sources, charges, method: str = "auto",
               tol: float | None = None) -> np.ndarray:
    r"""Force ``F_i = sum_j q_j K'(x_i - y_j)`` by the chosen method.

    Parameters
    ----------
    kernel : SobolevKernel
    targets : (N,) float
        Evaluation points (any reals; wrapped).
    sources : (M,) float
        Atom positions.
    charges : (M,) float
        Signed charges (weights ``w`` and ``-u`` for a particle target).
    method : str
        ``"auto"`` or a key of :data:`SUMMATIONS` (see :func:`choose_summation`).
    tol : float or None
        Accuracy of approximate methods (``nufft``): ``max|F - F_exact| <= tol * max|F_exact|``.
        ``None`` keeps the method's default (``nufft_force``: ``1e-10``); exact methods ignore it.
        The particle flows pass the config's ``method.tol``.

    Returns
    -------
    (N,) float
        The force; Wasserstein particle velocities are ``-F`` (MATH.md section 3).
    """
    name = choose_summation(kernel, np.size(targets), np.size(sources), method)
    entry = SUMMATIONS[name]
    if entry.tolerance and tol is not None:
        return entry.force(kernel, targets, sources, charges, tol=tol)
    return entry.force(kernel, targets, sources, charges)
