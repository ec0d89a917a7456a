r"""Uniform points in the unit cube that sampling maps through a density: :func:`uniform_points`.

Every sampler of :mod:`kmdflow.measures` turns a row of uniforms ``u in [0, 1)^m`` into one
position (inverse cdf in ``d = 1``, the conditional inverse cdfs in ``d >= 2``), so the law and
the discrepancy of the positions are decided here:

- ``"random"``: i.i.d., ``numpy.random.default_rng(seed).random((n, m))`` (row by row; for
  ``m = 1`` the same numbers as ``default_rng(seed).random(n)``).
- ``"sobol"``: the first ``n`` points of a scrambled Sobol' sequence in ``m`` dimensions,
  ``scipy.stats.qmc.Sobol(m, scramble=True)`` driven by ``default_rng(seed)``. Its balance
  properties are best for ``n`` a power of two; other ``n`` are accepted (scipy's warning about
  this is silenced).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from kmdflow.measures.base import SAMPLE_METHODS, MeasureError


def uniform_points(n: int, width: int, seed: int, method: str = "random") -> np.ndarray:
    """``n`` points of ``[0, 1)^width``, i.i.d. or low-discrepancy.

    Parameters
    ----------
    n : int
        Number of points, ``>= 1``.
    width : int
        Coordinates per point (``d``, or ``d + 1`` for a mixture that spends one on the choice
        of its component).
    seed : int
        Seed ``>= 0``; the same arguments give the same points.
    method : {"random", "sobol"}
        I.i.d. uniforms or a scrambled Sobol' sequence (module docstring).

    Returns
    -------
    (n, width) float
    """
    n = _positive_int("n", n, "the number of points")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MeasureError("seed", f"seed = {seed!r}: must be an integer >= 0")
    rng = np.random.default_rng(int(seed))
    if method == "random":
        return rng.random((n, int(width)))
    if method == "sobol":
        from scipy.stats import qmc

        # scipy >= 1.15 calls the generator argument ``rng``; older versions ``seed``
        name = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"
        engine = qmc.Sobol(int(width), scramble=True, **{name: rng})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            return engine.random(n)
    raise MeasureError("method", f"method = {method!r}: choose one of {', '.join(SAMPLE_METHODS)}")


def _positive_int(key: str, value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise MeasureError(key, f"{key} = {value!r}: {what} must be an integer >= 1")
    return int(value)
