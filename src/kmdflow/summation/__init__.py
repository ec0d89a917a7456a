r"""Particle sums ``F_i = sum_j q_j K'(x_i - y_j)`` on ``T^1``: a registry of methods.

Conventions: :mod:`kmdflow.domains.torus`. Every method has the signature
``force(kernel, targets (N,), sources (M,), charges (M,)) -> (N,)`` and agrees with
:func:`direct_force` to round-off (or to its declared tolerance).

========  ===============================================  =======================
name      method                                           serves
========  ===============================================  =======================
sorted    sort + prefix sums of powers, exact               integer ``s``
direct    ``O(N M)`` sum of the exact kernel, blocked       any ``s``
========  ===============================================  =======================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kmdflow.summation.direct import direct_force, direct_potential
from kmdflow.summation.energy import atomic_energy
from kmdflow.summation.sorted import sorted_force

__all__ = [
    "SUMMATIONS",
    "Summation",
    "atomic_energy",
    "choose_summation",
    "direct_force",
    "direct_potential",
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
    """

    name: str
    force: Callable[..., np.ndarray]
    serves: Callable[[object], bool]
    requirement: str


def _integer_s(kernel) -> bool:
    return bool(getattr(kernel, "is_integer", False))


def _any_kernel(kernel) -> bool:
    return True


#: Methods by name. Add a fast approximate method (e.g. "nufft", another issue) here with its
#: ``serves`` predicate and teach :func:`choose_summation` when to prefer it.
SUMMATIONS: dict[str, Summation] = {
    "sorted": Summation("sorted", sorted_force, _integer_s, "an integer s (1, 2, 3, ...)"),
    "direct": Summation("direct", direct_force, _any_kernel, "any s"),
}


def choose_summation(kernel, n_targets: int, n_sources: int, method: str = "auto") -> str:
    """Name of the summation method to use for ``kernel`` and the given sizes.

    Parameters
    ----------
    kernel : SobolevKernel
    n_targets, n_sources : int
        Problem sizes (used by ``"auto"`` once size-dependent methods are registered).
    method : str
        ``"auto"`` or a key of :data:`SUMMATIONS`.

    Returns
    -------
    str
        ``"sorted"`` for integer ``s``, ``"direct"`` otherwise, when ``method="auto"``;
        ``method`` itself when it serves the kernel.

    Raises
    ------
    ValueError
        Naming ``summation``, for an unknown method or one that cannot serve the kernel.
    """
    if method == "auto":
        return "sorted" if _integer_s(kernel) else "direct"
    if method not in SUMMATIONS:
        known = ", ".join(repr(k) for k in ("auto", *SUMMATIONS))
        raise ValueError(f"summation={method!r} is not a known method; choose one of {known}")
    entry = SUMMATIONS[method]
    if not entry.serves(kernel):
        raise ValueError(f"summation={method!r} needs {entry.requirement}, but the kernel has "
                         f"s={getattr(kernel, 's', None)}; use summation='auto' or 'direct'")
    return method


def pair_force(kernel, targets, sources, charges, method: str = "auto") -> np.ndarray:
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

    Returns
    -------
    (N,) float
        The force; Wasserstein particle velocities are ``-F`` (MATH.md section 3).
    """
    name = choose_summation(kernel, np.size(targets), np.size(sources), method)
    return SUMMATIONS[name].force(kernel, targets, sources, charges)
